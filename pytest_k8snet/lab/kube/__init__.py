"""The lab's real Kubernetes mode: a real cluster on the lab's network (``up --kubernetes``).

What runs, all real, from one cache directory (``tools/build-kube.sh`` / ``k8snet-lab build``):
kube-apiserver, kube-controller-manager, kube-scheduler, and per node a kubelet and an
iptables-mode kube-proxy (one multi-command binary built from the Go module proxy); etcd,
containerd, runc and the CNI plugins from Debian; CoreDNS as a Deployment behind
``kube-dns``; a locally built probe image and pause image imported into each node.

Topology on top of the plain lab (whose simulated pods, Service and kube-proxy rules are
left out in this mode)::

    cp (etcd, apiserver, controllers) 198.19.0.2 ─ mgmt (br0) ─ mgmt0 of every node 198.19.0.1N

The management network is the control path only: kubelets keep the underlay address as
their InternalIP, so probes, kube-proxy and VXLAN use the underlay as in production, and a
fault on a node's underlay never cuts the API server's path to its kubelet.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import netns as ns
from ..netns import LabError

if TYPE_CHECKING:
    from ..lab import Lab

KUBE_VERSION = "v1.33.13"
COREDNS_VERSION = "v1.15.0"
PAUSE_IMAGE = "localhost/k8snet-pause:dev"
PROBE_IMAGE = "localhost/k8snet-probe:dev"
COREDNS_IMAGE = "localhost/k8snet-coredns:dev"
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
CLUSTER_DNS = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
MGMT_CIDR = ipaddress.ip_network("198.19.0.0/24")  # RFC 2544 like the lab's edge: never routed
API_PORT = 6443
BUILD_SCRIPT = Path(__file__).with_name("build.sh")
# The Debian packages this mode runs (besides the plain lab's).
PACKAGES = {"etcd": "etcd-server", "containerd": "containerd", "runc": "runc", "ctr": "containerd",
            "nsenter": "util-linux", "unshare": "util-linux", "openssl": "openssl",
            "curl": "curl"}
CNI_DIR = Path("/usr/lib/cni")


def cgroup_name(lab_name: str, part: str) -> str:
    return f"k8snet-{lab_name}-{part}"


def join_cgroup_sh(cg: str) -> str:
    """Shell lines moving the script into cgroup ``cg`` of every hierarchy, before it starts
    anything: then every process it starts, containers included, is found there."""
    return f"""for h in /sys/fs/cgroup/*/; do
  [ -f "$h/cgroup.procs" ] || continue
  mkdir -p "${{h}}{cg}"
  if [ -f "${{h}}{cg}/cpuset.cpus" ] && [ -z "$(cat "${{h}}{cg}/cpuset.cpus")" ]; then
    cat "$h/cpuset.cpus" >"${{h}}{cg}/cpuset.cpus"; cat "$h/cpuset.mems" >"${{h}}{cg}/cpuset.mems"
  fi
  echo $$ >"${{h}}{cg}/cgroup.procs"
done"""


def cache_dir() -> Path:
    return Path(os.environ.get("K8SNET_CACHE", "/var/cache/k8snet"))


@dataclass(frozen=True)
class Artifacts:
    kube: Path
    pause: Path
    probe: Path
    coredns: Path

    def missing(self) -> list[Path]:
        return [p for p in (self.kube, self.pause, self.probe, self.coredns) if not p.exists()]


def artifacts() -> Artifacts:
    """Where the build puts each piece (the build script is the one source of the paths)."""
    proc = subprocess.run(["bash", str(BUILD_SCRIPT), "paths"], capture_output=True, text=True,
                          check=False, env={**os.environ, "K8SNET_CACHE": str(cache_dir())})
    paths = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    try:
        return Artifacts(Path(paths["kube"]), Path(paths["pause"]), Path(paths["probe"]),
                         Path(paths["coredns_image"]))
    except KeyError:
        raise LabError(f"cannot read the build paths: {proc.stderr.strip()}") from None


def build(quiet: bool = False) -> Artifacts:
    """Build whatever is missing (cold: ~8 min on 2 cores; warm: nothing to do)."""
    arts = artifacts()
    if not arts.missing():
        return arts
    if shutil.which("go") is None:
        raise LabError("the real-cluster mode needs its binaries built once, and that needs Go "
                       ">= 1.24 (e.g. apt-get install golang-1.24 or /usr/local/go); missing: "
                       + ", ".join(str(p) for p in arts.missing()))
    print(f"k8snet-lab: building Kubernetes {KUBE_VERSION}, CoreDNS {COREDNS_VERSION} and the "
          f"images into {cache_dir()} (first time: about 8 minutes)", file=sys.stderr, flush=True)
    proc = subprocess.run(["bash", str(BUILD_SCRIPT), "all"], check=False,
                          stdout=subprocess.DEVNULL if quiet else sys.stderr,
                          env={**os.environ, "K8SNET_CACHE": str(cache_dir())})
    if proc.returncode != 0:
        raise LabError(f"building the real-cluster pieces failed (exit {proc.returncode}); "
                       f"see the output above, or run: bash {BUILD_SCRIPT} all")
    return artifacts()


def require_tools() -> None:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    missing = {t: p for t, p in PACKAGES.items() if shutil.which(t, path=path) is None}
    if not (CNI_DIR / "bridge").exists():
        missing["bridge (CNI)"] = "containernetworking-plugins"
    if missing:
        raise LabError(f"the real-cluster mode needs {', '.join(sorted(missing))}; install with: "
                       f"apt-get install -y {' '.join(sorted(set(missing.values())))}")
    if not Path("/sys/fs/cgroup/cpu").is_dir() and not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        raise LabError("the real-cluster mode needs cgroups mounted under /sys/fs/cgroup")


def plan(lab: "Lab") -> dict[str, Any]:
    """The management network and where the cluster keeps its files."""
    p = f"k8snet-{lab.name}"
    hosts = list(MGMT_CIDR.hosts())
    return {
        "version": KUBE_VERSION,
        "mgmt_netns": f"{p}-mgmt",
        "cp_netns": f"{p}-cp",
        "cp_ip": str(hosts[1]),
        "mgmt_cidr": str(MGMT_CIDR),
        "nodes": {n["name"]: str(hosts[9 + n["index"]]) for n in lab.nodes},
        "api_server": f"https://{hosts[1]}:{API_PORT}",
        "kubeconfig": str(lab.state_dir / "kubeconfig"),
        "service_cidr": SERVICE_CIDR,
        "cluster_dns": CLUSTER_DNS,
        "cluster_domain": CLUSTER_DOMAIN,
        "images": {"probe": PROBE_IMAGE, "pause": PAUSE_IMAGE, "coredns": COREDNS_IMAGE},
        "api_port": 0,
    }


def netns_names(k: dict[str, Any]) -> list[str]:
    return [k["mgmt_netns"], k["cp_netns"]]


def links(lab: "Lab") -> list[str]:
    k = lab.kubernetes
    cmds = [f"link add name mgmt0 netns {n['netns']} type veth "
            f"peer name mport-{n['name']} netns {k['mgmt_netns']}" for n in lab.nodes]
    cmds.append(f"link add name eth0 netns {k['cp_netns']} type veth "
                f"peer name mport-cp netns {k['mgmt_netns']}")
    return cmds


def setup_network(lab: "Lab") -> None:
    k = lab.kubernetes
    plen = MGMT_CIDR.prefixlen
    alias = f"link set dev {{}} alias k8snet-{lab.name}"
    cmds = ["link set lo up", "link add br0 type bridge", alias.format("br0"), "link set br0 up"]
    for port in [f"mport-{n['name']}" for n in lab.nodes] + ["mport-cp"]:
        cmds += [f"link set {port} master br0 up", alias.format(port)]
    ns.ip_batch(k["mgmt_netns"], cmds)
    ns.write_sysctls(k["mgmt_netns"], {"net.bridge.bridge-nf-call-iptables": "0"})
    ns.ip_batch(k["cp_netns"], ["link set lo up", "link set eth0 up", alias.format("eth0"),
                                f"addr add {k['cp_ip']}/{plen} dev eth0"])
    for n in lab.nodes:
        ns.ip_batch(n["netns"], ["link set mgmt0 up", alias.format("mgmt0"),
                                 f"addr add {k['nodes'][n['name']]}/{plen} dev mgmt0"])


def node_nat_rules(lab: "Lab") -> str:
    """flannel's NAT (pods leaving the Pod network are masqueraded); kube-proxy adds its own."""
    pod = lab.spec["pod_cidr"]
    return "\n".join([
        "*nat", ":POSTROUTING ACCEPT [0:0]", ":FLANNEL-POSTRTG - [0:0]",
        "-A POSTROUTING -m comment --comment flanneld-masq -j FLANNEL-POSTRTG",
        f"-A FLANNEL-POSTRTG -s {pod} -d {pod} -j RETURN",
        f"-A FLANNEL-POSTRTG -s {pod} ! -d 224.0.0.0/4 -j MASQUERADE",
        "COMMIT"]) + "\n"


def _issue_certs(lab: "Lab", pki_dir: Path) -> None:
    from . import pki

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


def _spawn(lab: "Lab", netns: str, script: Path, log: Path) -> int:
    """Run ``script`` in ``netns`` and a mount namespace of its own, detached from us."""
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{netns}", "--", "unshare", "--mount",
             "--propagation", "private", "--", "sh", str(script)],
            stdin=subprocess.DEVNULL, stdout=fh, stderr=fh, start_new_session=True)
    from ..lab import _CHILDREN

    _CHILDREN[proc.pid] = proc
    return proc.pid


def start(lab: "Lab", timeout: float = 300.0) -> None:
    """Start the control plane, every node and CoreDNS; return once the probes can run."""
    from . import addons, control, node, pki

    t0 = time.monotonic()
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
        cp_dir, lab.name, arts.kube, k["cp_ip"], lab.spec["pod_cidr"]))
    lab.pids["control-plane"] = _spawn(lab, k["cp_netns"], cp_dir / "run.sh", cp_dir / "run.log")

    # containerd puts shim sockets under /run/containerd whatever its config says; each node
    # mounts a private tmpfs there, which needs the (standard, empty) mount point.
    Path("/run/containerd").mkdir(exist_ok=True)
    images = [(arts.pause, PAUSE_IMAGE.split(":")[0]), (arts.probe, PROBE_IMAGE.split(":")[0]),
              (arts.coredns, COREDNS_IMAGE.split(":")[0])]
    for n in lab.nodes:
        d = root / n["name"]
        d.mkdir(parents=True, exist_ok=True)
        node.write_cni(d, n, lab.spec["overlay_mtu"])
        (d / "containerd.toml").write_text(node.containerd_toml(d))
        resolv = Path("/etc/netns") / n["netns"] / "resolv.conf"
        (d / "kubelet.yaml").write_text(node.kubelet_yaml(d, lab.name, n, ca, resolv))
        (d / "kube-proxy.yaml").write_text(node.kube_proxy_yaml(d, n, lab.spec["pod_cidr"]))
        pki.kubeconfig(d / "kubelet.kubeconfig", k["api_server"], ca,
                       pki_dir / f"kubelet-{n['name']}.crt", pki_dir / f"kubelet-{n['name']}.key",
                       f"system:node:{n['name']}")
        pki.kubeconfig(d / "kube-proxy.kubeconfig", k["api_server"], ca,
                       pki_dir / "kube-proxy.crt", pki_dir / "kube-proxy.key", "kube-proxy")
        (d / "run.sh").write_text(node.supervisor_script(d, lab.name, n, arts.kube, images))
        lab.pids[n["name"]] = _spawn(lab, n["netns"], d / "run.sh", d / "run.log")

    port = _start_forwarder(lab)
    k["api_port"] = port
    pki.kubeconfig(Path(k["kubeconfig"]), f"https://127.0.0.1:{port}", ca,
                   pki_dir / "admin.crt", pki_dir / "admin.key", "admin")
    lab.save()
    kubectl = Kubectl(arts.kube, Path(k["kubeconfig"]))
    deadline = t0 + timeout
    _wait(lambda: _started(cp_dir), deadline, "the control plane did not start", lab)
    _wait(lambda: kubectl.ok("get", "--raw", "/readyz"), deadline,
          "kube-apiserver did not become ready", lab)
    kubectl.apply(addons.coredns(replicas=min(2, len(lab.nodes))))
    kubectl.apply(addons.kubeadm_config(lab.spec["pod_cidr"], SERVICE_CIDR, KUBE_VERSION))
    names = [n["name"] for n in lab.nodes]
    _wait(lambda: set(names) <= set(kubectl.lines("get", "nodes", "-o", "name", prefix="node/")),
          deadline, "not every kubelet registered", lab)
    for n in lab.nodes:  # the lab's routes fix each node's Pod subnet, as flannel's lease does
        kubectl.run("patch", "node", n["name"], "--type", "merge", "-p", json.dumps(
            {"spec": {"podCIDR": n["pod_cidr"], "podCIDRs": [n["pod_cidr"]]}}))
    _wait(lambda: _all_ready(kubectl, names), deadline, "not every node became Ready", lab)
    kubectl.apply("\n---\n".join(addons.dns_check_pod(n) for n in names))
    _wait(lambda: _dns_checked(kubectl, names), deadline,
          "cluster DNS did not answer from every node", lab)
    kubectl.run("delete", "pods", "-n", "kube-system", "-l", addons.DNS_CHECK_LABEL,
                "--wait=false")
    k["ready_seconds"] = round(time.monotonic() - t0, 2)
    lab.save()


def _started(d: Path) -> bool:
    return (d / "started").exists()


def _wait(check: Any, deadline: float, what: str, lab: "Lab") -> None:
    while True:
        if check():
            return
        dead = [part for part in ("control-plane", *(n["name"] for n in lab.nodes))
                if part in lab.pids and not _running(lab.pids[part])]
        if dead:
            log = lab.state_dir / ("cp" if dead[0] == "control-plane" else dead[0]) / "run.log"
            tail = log.read_text().strip().splitlines()[-1:] if log.exists() else []
            raise LabError(f"{what}: the {dead[0]} supervisor exited"
                           + (f" ({tail[0]})" if tail else "") + f"; logs in {log.parent}")
        if time.monotonic() > deadline:
            raise LabError(f"{what} in time; logs in {lab.state_dir}")
        time.sleep(0.25)


def _running(pid: int) -> bool:
    from ..lab import _alive

    return _alive(pid)


def _all_ready(kubectl: "Kubectl", names: list[str]) -> bool:
    out = kubectl.lines("get", "nodes", "-o",
                        "jsonpath={range .items[*]}{.metadata.name}="
                        "{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}")
    ready = {line.split("=")[0] for line in out if line.endswith("=True")}
    coredns = kubectl.lines("get", "deploy", "coredns", "-n", "kube-system", "-o",
                            "jsonpath={.status.readyReplicas}")
    return set(names) <= ready and bool(coredns) and coredns[0].isdigit() and int(coredns[0]) > 0


def _dns_checked(kubectl: "Kubectl", names: list[str]) -> bool:
    from .addons import DNS_CHECK_LABEL

    out = kubectl.lines("get", "pods", "-n", "kube-system", "-l", DNS_CHECK_LABEL, "-o",
                        "jsonpath={range .items[*]}{.metadata.name}={.status.phase}{\"\\n\"}{end}")
    phases = dict(line.split("=", 1) for line in out if "=" in line)
    if "Failed" in phases.values():
        raise LabError("cluster DNS did not answer from "
                       + ", ".join(n for n, p in phases.items() if p == "Failed"))
    return len(phases) == len(names) and all(p == "Succeeded" for p in phases.values())


class Kubectl:
    """The cluster's own kubectl, through the forwarder, for the lab's bring-up."""

    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.argv = [str(binary), "kubectl", "--kubeconfig", str(kubeconfig),
                     "--request-timeout", "5s"]

    def _run(self, args: tuple[str, ...], stdin: str | None = None
             ) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run([*self.argv, *args], input=stdin, capture_output=True,
                                  text=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(args, 124, "", "timed out")

    def ok(self, *args: str) -> bool:
        return self._run(args).returncode == 0

    def lines(self, *args: str, prefix: str = "") -> list[str]:
        proc = self._run(args)
        if proc.returncode != 0:
            return []
        return [line[len(prefix):] if line.startswith(prefix) else line
                for line in proc.stdout.splitlines() if line.strip()]

    def run(self, *args: str) -> str:
        proc = self._run(args)
        if proc.returncode != 0:
            raise LabError(f"kubectl {' '.join(args[:3])} failed: "
                           f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
        return proc.stdout

    def apply(self, manifest: str) -> None:
        for _ in range(20):  # the API server may still be installing its default RBAC
            proc = self._run(("apply", "-f", "-"), stdin=manifest)
            if proc.returncode == 0:
                return
            time.sleep(0.5)
        raise LabError(f"kubectl apply failed: {proc.stderr.strip().splitlines()[-1:]}")


def _start_forwarder(lab: "Lab") -> int:
    k = lab.kubernetes
    from ..lab import _CHILDREN

    log = open(lab.state_dir / "forward.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_k8snet.lab.kube.forward", "--state",
         f"{lab.state_dir}/", "--netns", k["cp_netns"], "--target", f"{k['cp_ip']}:{API_PORT}"],
        stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
        start_new_session=True)
    log.close()
    _CHILDREN[proc.pid] = proc
    lab.pids["forward"] = proc.pid
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    proc.stdout.close()
    if len(line) != 2 or line[0] != "ready":
        raise LabError("the API forwarder did not start; see " + str(lab.state_dir / "forward.log"))
    return int(line[1])


# -- teardown: everything by name, also after a SIGKILL of `up` ------------------------------


def _lab_cgroups(lab_name: str) -> list[Path]:
    prefix = cgroup_name(lab_name, "")
    found = []
    root = Path("/sys/fs/cgroup")
    for hierarchy in root.iterdir() if root.is_dir() else []:
        try:
            found += [c for c in hierarchy.iterdir()
                      if c.is_dir() and c.name.startswith(prefix)
                      and (c.name[len(prefix):] == "cp" or c.name[len(prefix):].startswith("node-"))]
        except OSError:
            continue
    return found


def cgroup_pids(lab_name: str) -> set[int]:
    pids: set[int] = set()
    for cg in _lab_cgroups(lab_name):
        for procs in cg.rglob("cgroup.procs"):
            try:
                pids.update(int(p) for p in procs.read_text().split())
            except OSError:
                continue
    return pids


def teardown(lab_name: str) -> None:
    """Kill every process in the lab's cgroups and remove the cgroups (deepest first)."""
    from ..lab import _CHILDREN

    killed: set[int] = set()
    for _ in range(50):
        pids = cgroup_pids(lab_name)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)
    # The supervisors this process started (_spawn) are our children: reap them, or they
    # stay zombies (and unwaited Popen objects) until the interpreter exits.
    for pid in killed:
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
    for cg in _lab_cgroups(lab_name):
        dirs = sorted((p for p in cg.rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                      reverse=True)
        for d in [*dirs, cg]:
            for _ in range(40):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


# -- using the cluster -------------------------------------------------------------------------


def client_env(lab: "Lab") -> dict[str, str]:
    """What points pytest (and kubectl) at this lab's cluster: the kubeconfig, the locally
    imported probe image and the lab's own egress target (the lab has no internet)."""
    k = lab.kubernetes
    return {"KUBECONFIG": k["kubeconfig"], "K8SNET_BACKEND": "kube",
            "K8SNET_PROBE_IMAGE": k["images"]["probe"],
            "K8SNET_EGRESS_URL": f"http://{lab.world['name']}:{lab.world['port']}/"}


def run_with_cluster(spec: Any, command: list[str]) -> int:
    """``k8snet-lab run --kubernetes -- CMD``: up, CMD with :func:`client_env`, down."""
    from ..lab import down, up

    lab = up(spec)
    env = {**os.environ, **client_env(lab)}
    try:
        try:
            proc = subprocess.Popen(command, env=env)
        except FileNotFoundError:
            print(f"k8snet-lab: {command[0]}: command not found", file=sys.stderr)
            return 127
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            return proc.wait()
    finally:
        down(lab.name)
