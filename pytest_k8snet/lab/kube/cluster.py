"""Starting the lab's real cluster on a built lab: certificates, the control plane, every
node's supervisor, the API forwarder, and the wait until the probes can run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .. import processes
from ..netns import LabError
from ..state import Lab
from ..family import has_ipv6
from ..plan import cni_of, overlay_of, proxy_mode_of
from . import addons, control, flannel, node, pki
from .binaries import artifacts, build
from .constants import (API_PORT, CLUSTER_DOMAIN, COREDNS_IMAGE, KUBE_VERSION,
                        KUBERNETES_SERVICE_IP, PAUSE_IMAGE, PROBE_IMAGE)
from .kubectl import Kubectl


def _issue_certs(lab: Lab, pki_dir: Path) -> None:
    k = lab.kubernetes
    pki.make_ca(pki_dir)
    pki.issue(pki_dir, "apiserver", "kube-apiserver", server=True, sans=[
        "IP:127.0.0.1", f"IP:{k['cp_ip']}", f"IP:{KUBERNETES_SERVICE_IP}", "DNS:localhost",
        "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
        f"DNS:kubernetes.default.svc.{CLUSTER_DOMAIN}"])
    pki.issue(pki_dir, "apiserver-kubelet", "kube-apiserver-kubelet-client", "system:masters")
    pki.issue(pki_dir, "admin", "kubernetes-admin", "system:masters")
    pki.issue(pki_dir, "controller-manager", "system:kube-controller-manager")
    pki.issue(pki_dir, "scheduler", "system:kube-scheduler")
    pki.issue(pki_dir, "kube-proxy", "system:kube-proxy", "system:node-proxier")
    for n in lab.nodes:
        pki.issue(pki_dir, f"kubelet-{n['name']}", f"system:node:{n['name']}", "system:nodes")
    if cni_of(lab) == "flannel":
        pki.issue(pki_dir, "flannel", flannel.USER)


def _spawn(netns: str, script: Path, log: Path) -> int:
    """Run ``script`` in ``netns`` and a mount namespace of its own, detached from us."""
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{netns}", "--", "unshare", "--mount",
             "--propagation", "private", "--", "sh", str(script)],
            stdin=subprocess.DEVNULL, stdout=fh, stderr=fh, start_new_session=True)
    return processes.adopt(proc)


# Told each stage of a bring-up as it is reached (the command line prints them: the wait
# is ~25 s, too long to sit through in silence).
Progress = Callable[[str], None]


def _quiet(_stage: str) -> None:
    pass


def start(lab: Lab, timeout: float = 300.0, progress: Progress | None = None) -> None:
    """Start the control plane, every node and CoreDNS; return once the probes can run."""
    t0 = time.monotonic()
    progress = progress or _quiet
    arts = artifacts()
    if arts.missing():
        arts = build()
    k = lab.kubernetes
    root = lab.state_dir
    pki_dir = root / "cp" / "pki"
    _issue_certs(lab, pki_dir)
    ca = pki_dir / "ca.crt"
    cp_dir = root / "cp"
    local_api = f"https://127.0.0.1:{API_PORT}"
    for name in ("controller-manager", "scheduler", "admin"):
        pki.kubeconfig(cp_dir / f"{name}.kubeconfig", local_api, ca,
                       pki_dir / f"{name}.crt", pki_dir / f"{name}.key", name)
    (cp_dir / "hosts").write_text(control.hosts_file(lab.nodes, k))
    (cp_dir / "run.sh").write_text(control.supervisor_script(
        cp_dir, lab.name, arts.kube, k["cp_ip"], k["cluster_cidr"], k["service_cidr"]))
    lab.pids["control-plane"] = _spawn(k["cp_netns"], cp_dir / "run.sh", cp_dir / "run.log")

    # containerd puts shim sockets under /run/containerd whatever its config says; each node
    # mounts a private tmpfs there, which needs the (standard, empty) mount point.
    Path("/run/containerd").mkdir(exist_ok=True)
    images = [(arts.pause, PAUSE_IMAGE.split(":")[0]), (arts.probe, PROBE_IMAGE.split(":")[0]),
              (arts.coredns, COREDNS_IMAGE.split(":")[0])]
    with_flannel = cni_of(lab) == "flannel"
    dual = has_ipv6(lab.spec)
    for n in lab.nodes:
        d = root / n["name"]
        d.mkdir(parents=True, exist_ok=True)
        cni_daemon = ""
        if with_flannel:
            flannel.write_net_conf(d, lab.spec["pod_cidr"], overlay_of(lab), ipv6=dual,
                                   underlay_mtu=lab.spec["underlay_mtu"])
            pki.kubeconfig(d / "flannel.kubeconfig", k["api_server"], ca,
                           pki_dir / "flannel.crt", pki_dir / "flannel.key", flannel.USER)
            cni_daemon = flannel.supervisor_sh(d, n["name"], arts.flanneld, overlay_of(lab),
                                               arts.wireguard_go)
        else:
            node.write_cni(d, n, lab.spec["overlay_mtu"])
        (d / "containerd.toml").write_text(node.containerd_toml(d))
        resolv = Path("/etc/netns") / n["netns"] / "resolv.conf"
        (d / "kubelet.yaml").write_text(node.kubelet_yaml(d, lab.name, n, ca, resolv))
        (d / "kube-proxy.yaml").write_text(node.kube_proxy_yaml(d, n, k["cluster_cidr"],
                                                                proxy_mode_of(lab)))
        pki.kubeconfig(d / "kubelet.kubeconfig", k["api_server"], ca,
                       pki_dir / f"kubelet-{n['name']}.crt", pki_dir / f"kubelet-{n['name']}.key",
                       f"system:node:{n['name']}")
        pki.kubeconfig(d / "kube-proxy.kubeconfig", k["api_server"], ca,
                       pki_dir / "kube-proxy.crt", pki_dir / "kube-proxy.key", "kube-proxy")
        (d / "run.sh").write_text(node.supervisor_script(d, lab.name, n, arts.kube, images,
                                                         cni_daemon))
        lab.pids[n["name"]] = _spawn(n["netns"], d / "run.sh", d / "run.log")

    port = _start_forwarder(lab)
    k["api_port"] = port
    pki.kubeconfig(Path(k["kubeconfig"]), f"https://127.0.0.1:{port}", ca,
                   pki_dir / "admin.crt", pki_dir / "admin.key", "admin")
    lab.save()
    kubectl = Kubectl(arts.kube, Path(k["kubeconfig"]))
    deadline = t0 + timeout
    _wait(lambda: _started(cp_dir), deadline, "the control plane did not start", lab)
    progress("control plane started")
    _wait(lambda: kubectl.ok("get", "--raw", "/readyz"), deadline,
          "kube-apiserver did not become ready", lab)
    progress("API server ready")
    dns = addons.coredns(replicas=min(2, len(lab.nodes)), cluster_dns6=k.get("cluster_dns6"))
    if with_flannel:
        kubectl.apply(flannel.rbac())
    else:
        kubectl.apply(dns)
    kubectl.apply(addons.kubeadm_config(k["cluster_cidr"], k["service_cidr"], KUBE_VERSION))
    names = [n["name"] for n in lab.nodes]
    _wait(lambda: set(names) <= set(kubectl.lines("get", "nodes", "-o", "name", prefix="node/")),
          deadline, "not every kubelet registered", lab)
    progress(f"kubelets registered {len(names)}/{len(names)}")
    for n in lab.nodes:  # the lab's routes fix each node's Pod subnet, as flannel's lease does
        cidrs = [n["pod_cidr"], *([n["pod_cidr6"]] if dual else [])]  # flanneld reads both
        kubectl.run("patch", "node", n["name"], "--type", "merge", "-p", json.dumps(
            {"spec": {"podCIDR": n["pod_cidr"], "podCIDRs": cidrs}}))
    counts = _Counter(progress)
    _wait(lambda: _nodes_ready(kubectl, names, counts), deadline, "not every node became Ready",
          lab)
    if with_flannel:
        # With flanneld the nodes turn Ready one by one (as each writes its subnet.env):
        # CoreDNS applied earlier put both replicas on the first, not on two nodes.
        kubectl.apply(dns)
    _wait(lambda: _coredns_ready(kubectl), deadline, "CoreDNS did not become ready", lab)
    progress(f"nodes Ready {len(names)}/{len(names)}, CoreDNS running")
    kubectl.apply("\n---\n".join(addons.dns_check_pod(n) for n in names))
    _wait(lambda: _dns_checked(kubectl, names), deadline,
          "cluster DNS did not answer from every node", lab)
    kubectl.run("delete", "pods", "-n", "kube-system", "-l", addons.DNS_CHECK_LABEL,
                "--wait=false")
    k["ready_seconds"] = round(time.monotonic() - t0, 2)
    lab.save()
    progress("cluster DNS answers on every node: Kubernetes ready")


def _started(d: Path) -> bool:
    return (d / "started").exists()


def _wait(check: Callable[[], bool], deadline: float, what: str, lab: Lab) -> None:
    while True:
        if check():
            return
        dead = [part for part in ("control-plane", *(n["name"] for n in lab.nodes))
                if part in lab.pids and not processes.alive(lab.pids[part])]
        if dead:
            log = lab.state_dir / ("cp" if dead[0] == "control-plane" else dead[0]) / "run.log"
            tail = log.read_text().strip().splitlines()[-1:] if log.exists() else []
            raise LabError(f"{what}: the {dead[0]} supervisor exited"
                           + (f" ({tail[0]})" if tail else "") + f"; logs in {log.parent}")
        if time.monotonic() > deadline:
            raise LabError(f"{what} in time; logs in {lab.state_dir}")
        time.sleep(0.25)


class _Counter:
    """Passes a count on (``nodes Ready 2/3``) when it changed and the last line is at
    least 5 s old: a slow wait says where it is, and neither a quick wait nor one for 64
    nodes adds a line per node."""

    def __init__(self, progress: Progress, every: float = 5.0) -> None:
        self.progress, self.every = progress, every
        self.last_said, self.last = time.monotonic(), ""

    def __call__(self, what: str) -> None:
        if what != self.last and time.monotonic() - self.last_said >= self.every:
            self.progress(what)
            self.last_said, self.last = time.monotonic(), what


def _nodes_ready(kubectl: Kubectl, names: list[str], counts: Callable[[str], None]) -> bool:
    out = kubectl.lines("get", "nodes", "-o",
                        "jsonpath={range .items[*]}{.metadata.name}="
                        "{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}")
    ready = {line.split("=")[0] for line in out if line.endswith("=True")}
    if not set(names) <= ready:
        counts(f"nodes Ready {len(ready & set(names))}/{len(names)}")
    return set(names) <= ready


def _coredns_ready(kubectl: Kubectl) -> bool:
    coredns = kubectl.lines("get", "deploy", "coredns", "-n", "kube-system", "-o",
                            "jsonpath={.status.readyReplicas}")
    return bool(coredns) and coredns[0].isdigit() and int(coredns[0]) > 0


def _dns_checked(kubectl: Kubectl, names: list[str]) -> bool:
    out = kubectl.lines("get", "pods", "-n", "kube-system", "-l", addons.DNS_CHECK_LABEL, "-o",
                        "jsonpath={range .items[*]}{.metadata.name}={.status.phase}{\"\\n\"}{end}")
    phases = dict(line.split("=", 1) for line in out if "=" in line)
    if "Failed" in phases.values():
        raise LabError("cluster DNS did not answer from "
                       + ", ".join(n for n, p in phases.items() if p == "Failed"))
    return len(phases) == len(names) and all(p == "Succeeded" for p in phases.values())




def _start_forwarder(lab: Lab) -> int:
    k = lab.kubernetes
    log = open(lab.state_dir / "forward.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_k8snet.lab.kube.forward", "--state",
         f"{lab.state_dir}/", "--netns", k["cp_netns"], "--target", f"{k['cp_ip']}:{API_PORT}"],
        stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
        start_new_session=True)
    log.close()
    processes.adopt(proc)
    lab.pids["forward"] = proc.pid
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    proc.stdout.close()
    if len(line) != 2 or line[0] != "ready":
        raise LabError("the API forwarder did not start; see " + str(lab.state_dir / "forward.log"))
    return int(line[1])

