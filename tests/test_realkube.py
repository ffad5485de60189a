"""The lab's real Kubernetes mode, and the built-in suite through the kube backend on it.

Everything here runs real kube-apiserver, kubelets, containerd, kube-proxy and CoreDNS in
the lab's namespaces (see pytest_k8snet.lab.kube); nothing is faked.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import faults, kube, netns

from .conftest import kube_artifacts_missing
from .test_suite_on_lab import failing

pytestmark = pytest.mark.skipif(kube_artifacts_missing() is not None,
                                reason=kube_artifacts_missing() or "")

# fault on node-2 -> (tests that must fail, tests that may fail as knock-ons, words). A
# knock-on failure on another node (its DNS sits on node-2, say) must name node-2.
EXPECTED: dict[str, tuple[set[str], set[str], str]] = {
    "underlay-mtu": ({"test_path_mtu", "test_large_packets"},
                     {"test_large_packets_to_service", "test_dns", "test_egress"}, "MTU"),
    "vxlan-blocked": ({"test_pod_ping", "test_udp_8472"},
                      {"test_dns", "test_service", "test_large_packets_to_service",
                       "test_egress", "test_large_packets", "test_path_mtu"}, "8472"),
    "ip-forward-off": ({"test_pod_ping", "test_node_sysctls"},
                       {"test_dns", "test_service", "test_large_packets_to_service",
                        "test_egress", "test_large_packets", "test_path_mtu"}, "ip_forward"),
    "bridge-nf-off": ({"test_node_sysctls"},
                      {"test_dns", "test_service", "test_large_packets_to_service",
                       "test_egress"}, "bridge-nf-call-iptables"),
    "egress-port-range": ({"test_egress"}, set(), "source port"),
    "dns-blocked": ({"test_dns"}, {"test_egress"}, "DNS"),
    "host-firewall": ({"test_control_plane_ports", "test_nodeport"}, set(), "10250"),
}


def kubectl(lab: labmod.Lab, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(kube.artifacts().kube), "kubectl", "--kubeconfig",
                           lab.kubernetes["kubeconfig"], *args],
                          capture_output=True, text=True, timeout=timeout)


def run_suite(lab: labmod.Lab, tmp_path: Path, *extra: str, timeout: float = 400
              ) -> tuple[int, str, dict[str, str]]:
    results = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite",
                           "--k8s-results", str(results), "-p", "no:cacheprovider", "-q",
                           "-rfs", *extra], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp_path, env={**os.environ, **kube.client_env(lab)})
    outcomes = json.loads(results.read_text())["tests"] if results.exists() else {}
    return proc.returncode, proc.stdout + proc.stderr, outcomes


def probe_namespaces(lab: labmod.Lab) -> list[str]:
    proc = kubectl(lab, "get", "namespaces", "-l", "app.kubernetes.io/managed-by=pytest-k8snet",
                   "-o", "name")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def wait_gone(lab: labmod.Lab, seconds: float = 60) -> list[str]:
    """Namespaces are deleted asynchronously; wait for the API to stop listing them."""
    deadline = time.monotonic() + seconds
    left = probe_namespaces(lab)
    while left and time.monotonic() < deadline:
        time.sleep(1)
        left = probe_namespaces(lab)
    return left


def test_three_real_nodes_ready_on_containerd(real_cluster: labmod.Lab) -> None:
    proc = kubectl(real_cluster, "get", "nodes", "-o", "wide", "--no-headers")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert [r[0] for r in rows] == ["node-1", "node-2", "node-3"]
    assert all(r[1] == "Ready" for r in rows), proc.stdout
    assert all(r[-1].startswith("containerd://") for r in rows), proc.stdout
    # InternalIP is the underlay address: probes and VXLAN use the underlay as in production.
    assert [r[5] for r in rows] == [n["ip"] for n in real_cluster.nodes]
    status = subprocess.run([sys.executable, "-m", "pytest_k8snet.lab.cli", "status",
                             real_cluster.name, "--json"], capture_output=True, text=True,
                            timeout=30)
    assert json.loads(status.stdout)["kubeconfig"] == real_cluster.kubernetes["kubeconfig"]
    dns = kubectl(real_cluster, "get", "deploy", "coredns", "-n", "kube-system", "-o",
                  "jsonpath={.status.readyReplicas}")
    assert dns.stdout.strip() == "2", dns.stdout + dns.stderr


def test_status_shows_the_real_cluster_not_simulated_pods(real_cluster: labmod.Lab) -> None:
    """`status` of a --kubernetes lab: its nodes, kubeconfig and the cluster's parts; none of
    the plain lab's simulated pods or Service, which this mode does not build."""
    def status(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "pytest_k8snet.lab.cli", "status",
                               real_cluster.name, *args], capture_output=True, text=True,
                              timeout=30)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    k = real_cluster.kubernetes
    text = status()
    lines = text.splitlines()
    assert lines[0].startswith(f"lab {real_cluster.name}: real Kubernetes {k['version']}, "
                               "3 nodes"), text
    assert f"kubeconfig {k['kubeconfig']}" in text
    assert "etcd, kube-apiserver, kube-controller-manager, kube-scheduler" in text
    for node in real_cluster.nodes:
        row = next(line for line in lines if line.split()[:2] == [node["name"], node["ip"]])
        assert "containerd, kubelet, kube-proxy" in row and node["netns"] in row, row
    assert f"CoreDNS {k['cluster_dns']}" in text and lines[-1] == "  faults: none", text
    simulated = [real_cluster.service["fqdn"], real_cluster.service["ip"]]
    simulated += [n[kind]["ip"] for n in real_cluster.nodes for kind in ("probe", "echo")]
    assert not [word for word in simulated if word in text], text
    assert "EXITED" not in text, text  # every supervisor runs

    data = json.loads(status("--json"))
    assert data["kubeconfig"] == k["kubeconfig"] and data["kubernetes"]["version"] == k["version"]
    assert "service" not in data
    assert [n["name"] for n in data["nodes"]] == ["node-1", "node-2", "node-3"]
    assert not [n for n in data["nodes"] if "probe" in n or "echo" in n], data["nodes"]
    assert not [word for word in simulated if word in json.dumps(data["dns"])], data["dns"]
    assert data["dns"]["names"][real_cluster.world["name"]] == real_cluster.world["ip"]
    # The typed view is the simulated lab's: refused, not handed pods that do not exist.
    with pytest.raises(labmod.LabError, match="runs real Kubernetes"):
        labmod.view_of(real_cluster)


def test_suite_passes_on_the_real_cluster(real_cluster: labmod.Lab, tmp_path: Path) -> None:
    code, out, outcomes = run_suite(real_cluster, tmp_path)
    assert code == 0, out
    assert outcomes and set(outcomes.values()) <= {"passed", "skipped"}, out
    # the probe Service's NodePort was found and measured, not skipped as unmeasured
    nodeport = {k: v for k, v in outcomes.items() if "test_nodeport[" in k}
    assert len(nodeport) == 3 and set(nodeport.values()) == {"passed"}, out
    assert "Kubernetes cluster" in out
    assert wait_gone(real_cluster) == []


# The real cluster (conftest.real_cluster) is the default shape, flannel vxlan: there
# ip-forward-off cannot hold and is refused (tests/test_flannel.py checks the refusal).
ON_FLANNEL = sorted(f for f in EXPECTED if not faults.get(f).not_on_flannel)


@pytest.mark.parametrize("fault", ON_FLANNEL)
def test_fault_through_the_kube_backend(real_cluster: labmod.Lab, tmp_path: Path,
                                        fault: str) -> None:
    faults.add(real_cluster, fault, ["node-2"])
    try:
        code, out, outcomes = run_suite(real_cluster, tmp_path)
    finally:
        faults.remove(real_cluster, fault, [])
    must, may, words = EXPECTED[fault]
    bad = failing(outcomes)
    assert code == 1, out
    assert must <= set(bad) <= must | may, out
    assert words in out
    for name in must:
        assert all("node-2" in param for param in bad[name]), (name, bad[name], out)


def test_nodeport_rejected_into_a_real_node(real_cluster: labmod.Lab, tmp_path: Path) -> None:
    """A REJECT of the NodePort range on node-2, where real kube-proxy's DNAT leaves it
    (the conntrack's original port, on FORWARD to node-2's own probe pod): only node-2's
    test_nodeport fails, refused, naming the range."""
    where = real_cluster.node("node-2")["netns"]
    rule = ["FORWARD", "-i", "eth0", "-p", "tcp", "-m", "conntrack", "--ctorigdstport",
            "30000:32767", "-j", "REJECT"]
    netns.iptables(where, ["-I", *rule])
    try:
        code, out, outcomes = run_suite(real_cluster, tmp_path)
    finally:
        netns.iptables(where, ["-D", *rule])
    assert code == 1, out
    assert failing(outcomes) == {"test_nodeport": {"node-2"}}, out
    assert "are refused" in out and "30000-32767" in out


def test_broken_cni_on_a_node_is_named(real_cluster: labmod.Lab, tmp_path: Path) -> None:
    from pytest_k8snet.lab.kube import flannel

    # flanneld's conflist is the one containerd reads on the default (flannel) cluster.
    assert real_cluster.spec["cni"] == "flannel"
    d = real_cluster.state_dir / "node-3"
    flannel.write_conflist(d, broken=True)
    try:
        code, out, outcomes = run_suite(real_cluster, tmp_path, "--k8s-setup-timeout", "60")
    finally:
        flannel.write_conflist(d)
    assert code == 1, out
    assert "node-3" in failing(outcomes).get("test_nodes_ready", set()), out
    assert "FailedCreatePodSandBox" in out or "sandbox" in out.lower(), out
    assert wait_gone(real_cluster) == []


def test_missing_probe_image_names_node_and_image(real_cluster: labmod.Lab,
                                                  tmp_path: Path) -> None:
    """No node can pull the probe image: the terminal summary, the results file and the HTML
    say once, as one cause, that the probe pods did not start, with the pull error whole,
    and show nothing that reads as a measurement (no matrix, no pair count, no loss)."""
    image = "localhost/k8snet-no-such-image:1"
    code, out, _ = run_suite(real_cluster, tmp_path, "--k8s-probe-image", image,
                             "--k8s-setup-timeout", "60", "--html", str(tmp_path / "r.html"))
    assert code != 0
    assert image in out
    assert "node-1" in out
    assert "Traceback" not in out
    summary = out.split(" k8snet cluster summary ")[1].split("\n", 1)[1]
    summary = re.split(r"^[=-]{3,}", summary, flags=re.M)[0]
    doc = json.loads((tmp_path / "results.json").read_text())
    (finding,) = doc["findings"]
    cause = f"Probe pods did not start on any node: image {image} could not be pulled"
    assert finding["cause"] == "image-pull" and finding["message"].startswith(cause)
    # The pull error as the kubelet gave it, whole, in the one place the summary says it.
    error = doc["readiness"]["node-1"][0].split(f"image {image}: ", 1)[1]
    assert error in finding["message"] and finding["message"] in summary, summary
    assert summary.count(cause) == 1 and "diagnoses (1 cause):" in summary, summary
    assert ": nothing measured" in summary, summary
    for words in ("pairs probed", "%", "expected MTU", "unreachable"):
        assert words not in summary, (words, summary)
    assert all(doc[k] == [] for k in ("ping", "path_mtu", "throughput", "http", "dns",
                                      "egress", "service", "node_checks")), doc
    page = (tmp_path / "r.html").read_text()
    section = page[page.index('id="k8snet"'):]
    assert 'id="k8s-nothing-measured"' in section and "Diagnoses: 1 cause<" in section
    assert "k8s-matrix" not in section.split("</section>")[0]
    assert wait_gone(real_cluster) == []


@pytest.mark.parametrize("sig,workers", [(signal.SIGINT, "0"), (signal.SIGTERM, "2"),
                                         (signal.SIGINT, "2")])
def test_interrupt_mid_run_leaves_no_pods(real_cluster: labmod.Lab, tmp_path: Path,
                                          sig: signal.Signals, workers: str) -> None:
    env = {**os.environ, **kube.client_env(real_cluster)}
    # A shell that runs CI in the background hands SIGINT down as ignored, and Python then
    # keeps it ignored: give the run the default, as a terminal's Ctrl-C would find it.
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite",
                             "-p", "no:cacheprovider", "-q", "-n", workers],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        pods = kubectl(real_cluster, "get", "pods", "-A", "-l",
                       "app.kubernetes.io/managed-by=pytest-k8snet", "-o", "name")
        if pods.stdout.strip():
            break
        time.sleep(0.2)
    # At once: with batched probes the measurements take only seconds after the pods exist.
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, out
    assert wait_gone(real_cluster) == [], out
    pods = kubectl(real_cluster, "get", "pods", "-A", "-l",
                   "app.kubernetes.io/managed-by=pytest-k8snet", "-o", "name")
    assert pods.stdout.strip() == "", out


def test_xdist_run_shares_one_probe_set(real_cluster: labmod.Lab, tmp_path: Path) -> None:
    seen: set[str] = set()
    pods: set[str] = set()
    done = threading.Event()
    before = set(probe_namespaces(real_cluster))  # an earlier test's, still terminating

    def watch() -> None:  # what the API holds while the run goes on
        while not done.is_set():
            seen.update(set(probe_namespaces(real_cluster)) - before)
            out = kubectl(real_cluster, "get", "pods", "-A", "-l",
                          "app.kubernetes.io/managed-by=pytest-k8snet", "-o", "name").stdout
            pods.update(out.split())
            time.sleep(0.5)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        code, out, _ = run_suite(real_cluster, tmp_path, "-n", "2")
    finally:
        done.set()
        watcher.join()
    assert code == 0, out
    assert len(seen) == 1, seen  # both workers used the one probe set
    assert len(pods) == 2 * len(real_cluster.nodes), pods
    assert wait_gone(real_cluster) == []


def test_down_after_sigkill_of_up_leaves_nothing(tmp_path: Path) -> None:
    name = f"rx{os.getpid()}"
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "pytest_k8snet.lab.cli", "up", "--name",
                                 name, "--kubernetes", "--json"], stdout=out, stderr=err)
    state = labmod.STATE_ROOT / name
    deadline = time.monotonic() + 60
    # kill it once kubelets and containers run: the hardest moment to clean up after
    while time.monotonic() < deadline and not list(state.glob("node-*/started")):
        time.sleep(0.2)
    time.sleep(3)
    proc.kill()
    proc.wait()
    assert labmod.down(name)
    assert not [n for n in netns.list_netns(f"k8snet-{name}-")]
    assert not kube.cgroup_pids(name)
    cgroups = [p for h in Path("/sys/fs/cgroup").iterdir() if h.is_dir()
               for p in h.glob(f"k8snet-{name}-*")]
    assert cgroups == []
    assert not state.exists()
    ps = subprocess.run(["pgrep", "-f", f"/{name}/"], capture_output=True, text=True)
    assert ps.stdout.strip() == ""
    with open("/proc/mounts") as fh:
        assert f"k8snet-{name}" not in fh.read()
    # The bring-up said it had begun, on stderr: stdout is --json's, and it had no JSON yet.
    assert (tmp_path / "stdout").read_text() == ""
    assert (tmp_path / "stderr").read_text().startswith(
        f"k8snet-lab: bringing up lab {name} with Kubernetes {kube.KUBE_VERSION} on 3 node(s)")


def test_suite_from_a_pod_with_in_cluster_config(real_cluster: labmod.Lab) -> None:
    """A CI runner pod: no kubeconfig, the pod's service account bound by examples/rbac.yaml.

    The pod runs this checkout's plugin (mounted from the machine, with the venv's packages:
    the probe image has the same Debian python3) with the plain `auto` backend choice."""
    root = Path(__file__).resolve().parents[1]
    site = Path(subprocess.run([sys.executable, "-c", "import pytest, os; "
                                "print(os.path.dirname(os.path.dirname(pytest.__file__)))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    rbac = kubectl(real_cluster, "apply", "-f", str(root / "examples" / "rbac.yaml"))
    assert rbac.returncode == 0, rbac.stderr
    env = kube.client_env(real_cluster)
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "k8snet-runner", "namespace": "k8snet"},
        "spec": {
            "serviceAccountName": "k8snet", "restartPolicy": "Never",
            "activeDeadlineSeconds": 300, "nodeName": "node-1",
            "containers": [{
                "name": "pytest", "image": kube.PROBE_IMAGE, "imagePullPolicy": "Never",
                "workingDir": "/tmp",
                "command": ["python3", "-m", "pytest", "-p", "no:cacheprovider", "-q",
                            "--pyargs", "pytest_k8snet.suite"],
                "env": [{"name": "PYTHONPATH", "value": "/src:/site"},
                        {"name": "K8SNET_PROBE_IMAGE", "value": env["K8SNET_PROBE_IMAGE"]},
                        {"name": "K8SNET_EGRESS_URL", "value": env["K8SNET_EGRESS_URL"]}],
                "volumeMounts": [{"name": "src", "mountPath": "/src", "readOnly": True},
                                 {"name": "site", "mountPath": "/site", "readOnly": True}]}],
            "volumes": [{"name": "src", "hostPath": {"path": str(root)}},
                        {"name": "site", "hostPath": {"path": str(site)}}]}}
    created = subprocess.run([str(kube.artifacts().kube), "kubectl", "--kubeconfig",
                              real_cluster.kubernetes["kubeconfig"], "apply", "-f", "-"],
                             input=json.dumps(pod), capture_output=True, text=True, timeout=30)
    assert created.returncode == 0, created.stderr
    try:
        deadline = time.monotonic() + 240
        phase = ""
        while time.monotonic() < deadline:
            phase = kubectl(real_cluster, "get", "pod", "k8snet-runner", "-n", "k8snet", "-o",
                            "jsonpath={.status.phase}").stdout
            if phase in ("Succeeded", "Failed"):
                break
            time.sleep(2)
        logs = kubectl(real_cluster, "logs", "k8snet-runner", "-n", "k8snet").stdout
        assert phase == "Succeeded", logs
        assert " passed" in logs and "failed" not in logs, logs
        assert "service account" in logs or "in-cluster" in logs.lower(), logs
    finally:
        kubectl(real_cluster, "delete", "pod", "k8snet-runner", "-n", "k8snet", "--wait=false")
    assert wait_gone(real_cluster) == []


def test_plugin_brings_up_a_real_cluster_for_the_run(tmp_path: Path) -> None:
    """--k8s-lab --k8s-lab-kubernetes: a lab with real Kubernetes for this run only, tested
    through the kube backend (under xdist: one lab for both workers), and gone afterwards."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite",
                           "--k8s-lab", "--k8s-lab-kubernetes", "-n", "2", "-p",
                           "no:cacheprovider", "-q"], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "SIMULATED" not in out, out
    m = re.search(r"Kubernetes cluster in lab (\S+) brought up for this run", out)
    assert m, out
    assert m.group(1) not in labmod.running_labs(), out


def test_pod_cidr_overlap_built_into_a_real_cluster(tmp_path: Path) -> None:
    """pod-cidr-overlap is a build-time option of the real cluster too: kubelets, CNI and
    kube-proxy get the overlapping Pod CIDR, and test_pod_cidr names it. Brought up with
    `k8snet-lab run --kubernetes`, which says how the bring-up goes on stderr."""
    name = f"ro{os.getpid()}"
    results = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "pytest_k8snet.lab.cli", "run", "--kubernetes",
                           "--name", name, "--fault", "pod-cidr-overlap", "--", sys.executable,
                           "-m", "pytest", "--pyargs", "pytest_k8snet.suite", "--k8s-results",
                           str(results), "-p", "no:cacheprovider", "-q", "-rfs"],
                          capture_output=True, text=True, timeout=700, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert name not in labmod.running_labs(), out
    assert proc.returncode == 1, out
    outcomes = json.loads(results.read_text())["tests"]
    assert set(failing(outcomes)) == {"test_pod_cidr"}, out
    assert "172.28.0.0/16" in out
    # A handful of progress lines, in order, each with the seconds since the start; none on
    # stdout, which is the command's.
    said = [line for line in proc.stderr.splitlines() if line.startswith("k8snet-lab: ")]
    stages = ["bringing up lab", "control plane started", "API server ready",
              "kubelets registered 3/3", "nodes Ready 3/3", "cluster DNS answers on every node"]
    found = [next((i for i, line in enumerate(said) if line[12:].startswith(stage)), -1)
             for stage in stages]
    assert -1 not in found and found == sorted(found), said
    assert len(said) <= 10, said
    seconds = [float(m.group(1)) for line in said
               if (m := re.search(r"\((\d+\.\d) s\)$", line))]
    assert len(seconds) == len(said) and seconds == sorted(seconds), said
    assert "k8snet-lab:" not in proc.stdout


def test_overlay_blocked_with_dns_elsewhere_is_one_root_and_one_box(
        real_cluster: labmod.Lab, tmp_path: Path) -> None:
    """Issue 15: both CoreDNS replicas pinned to node-1 and vxlan-blocked on node-2. node-2's
    DNS, egress by name and Service requests fail only because its overlay is cut: one root
    finding (the overlay on node-2), the rest its knock-ons, no unknown or inconclusive, and
    the HTML report shows one box."""
    pin = '{"spec":{"template":{"spec":{"nodeSelector":{"kubernetes.io/hostname":"node-1"}}}}}'
    unpin = '[{"op":"remove","path":"/spec/template/spec/nodeSelector"}]'

    def rollout() -> None:
        proc = kubectl(real_cluster, "-n", "kube-system", "rollout", "status",
                       "deploy/coredns", "--timeout=120s", timeout=150)
        assert proc.returncode == 0, proc.stderr

    assert kubectl(real_cluster, "-n", "kube-system", "patch", "deploy", "coredns",
                   "-p", pin).returncode == 0
    try:
        rollout()
        deadline, nodes = time.monotonic() + 120, ""
        while time.monotonic() < deadline:  # the replaced pods take a while to go
            nodes = kubectl(real_cluster, "-n", "kube-system", "get", "pods", "-l",
                            "k8s-app=kube-dns", "-o", "jsonpath={.items[*].spec.nodeName}").stdout
            if set(nodes.split()) == {"node-1"}:
                break
            time.sleep(2)
        assert set(nodes.split()) == {"node-1"}, nodes
        faults.add(real_cluster, "vxlan-blocked", ["node-2"])
        try:
            code, out, _ = run_suite(real_cluster, tmp_path, "--html",
                                     str(tmp_path / "report.html"), "--self-contained-html")
        finally:
            faults.remove(real_cluster, "vxlan-blocked", [])
    finally:
        kubectl(real_cluster, "-n", "kube-system", "patch", "deploy", "coredns",
                "--type=json", "-p", unpin)
        rollout()
    assert code == 1, out
    doc = json.loads((tmp_path / "results.json").read_text())
    failing_ids = {v["finding"] for v in doc["verdicts"] if v["outcome"] == "failed"}
    by_id = {f["id"]: f for f in doc["findings"]}
    roots = {fid for fid in failing_ids if not by_id[fid].get("root")}
    assert [(by_id[r]["cause"], by_id[r]["nodes"]) for r in roots] == [
        ("vxlan-blocked", ["node-2"])], out
    assert not [f["id"] for f in doc["findings"] if f["cause"] in ("unknown", "inconclusive")]
    knocked = {v["test"] for v in doc["verdicts"] if v["outcome"] == "skipped"
               and v.get("finding") and by_id[v["finding"]].get("root") in roots}
    assert {"test_dns", "test_egress"} <= knocked, knocked
    html = (tmp_path / "report.html").read_text()
    assert html.count('class="k8s-diag"') == 1, out
