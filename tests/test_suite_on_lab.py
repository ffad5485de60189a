"""The built-in suite against a real lab: healthy passes, each fault fails exactly its tests."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import faults, netns
from pytest_k8snet.lab.network import reprogram_overlay
from pytest_k8snet.lab.state import owned_labs
from pytest_k8snet.lab.owner import RUN_ENV, person_uid, sub_run

from .conftest import needs_root

pytestmark = needs_root

# fault -> (failing test names, words the failure must contain); other tests pass or skip.
EXPECTED = {
    "underlay-mtu": ({"test_path_mtu", "test_large_packets", "test_large_packets_to_service"},
                     "path MTU 1400 < expected 1450"),
    "vxlan-blocked": ({"test_pod_ping", "test_udp_8472"}, "UDP 8472"),
    "ip-forward-off": ({"test_pod_ping", "test_node_sysctls"}, "ip_forward=0"),
    "bridge-nf-off": ({"test_service", "test_node_sysctls"}, "bridge-nf-call-iptables"),
    "egress-port-range": ({"test_egress"}, "failures came from source ports below"),
    "dns-blocked": ({"test_dns"}, "no answer from cluster DNS"),
    # node-2's etcd and kubelet ports (the lab's simulated ones listen) and its NodePort
    "host-firewall": ({"test_control_plane_ports", "test_nodeport"},
                      "the NodePort range 30000-32767"),
}


def run_suite(lab_name: str, tmp_path: Path, *extra: str) -> tuple[int, str, dict[str, str]]:
    return _run(tmp_path, ["--k8s-lab-name", lab_name], *extra)


def new_run() -> str:
    """A run marker of our own: the labs a run brings up record it as their owner, so the
    leftover checks below see this test's labs and never another run's on the same host.
    Nested in scripts/test.sh's marker, whose final cleanup then covers what a failure left."""
    return sub_run(f"test-suite-on-lab-{os.getpid()}-{secrets.token_hex(4)}")


def own_labs(run: str) -> set[str]:
    return set(owned_labs({"uid": person_uid(), "run": run}))


def run_env(run: str | None) -> dict[str, str]:
    return dict(os.environ, **({RUN_ENV: run} if run else {}))


def run_suite_auto(tmp_path: Path, *extra: str, run: str | None = None
                   ) -> tuple[int, str, dict[str, str]]:
    return _run(tmp_path, ["--k8s-lab"], *extra, run=run)


def _run(tmp_path: Path, lab_args: list[str], *extra: str,
         run: str | None = None) -> tuple[int, str, dict[str, str]]:
    results = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite",
                           *lab_args, "--k8s-results", str(results), "-p",
                           "no:cacheprovider", "-q", "-rfs", *extra],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=run_env(run))
    outcomes = json.loads(results.read_text())["tests"] if results.exists() else {}
    return proc.returncode, proc.stdout + proc.stderr, outcomes


def failing(outcomes: dict[str, str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for nodeid, outcome in outcomes.items():
        if outcome == "failed":
            name, _, param = nodeid.split("::")[-1].partition("[")
            out.setdefault(name, set()).add(param.rstrip("]"))
    return out


def test_healthy_lab_passes_everything(lab: labmod.Lab, tmp_path: Path) -> None:
    code, out, outcomes = run_suite(lab.name, tmp_path)
    assert code == 0, out
    assert outcomes and set(outcomes.values()) == {"passed"}
    assert re.search(r"\b\d+ passed", out)


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_fault_fails_its_tests_only(lab: labmod.Lab, tmp_path: Path, fault: str) -> None:
    faults.add(lab, fault, ["node-2"])
    try:
        code, out, outcomes = run_suite(lab.name, tmp_path)
    finally:
        faults.remove(lab, fault, [])
    expected_tests, words = EXPECTED[fault]
    bad = failing(outcomes)
    assert code == 1, out
    assert set(bad) == expected_tests, out
    for name, params in bad.items():
        if name == "test_large_packets_to_service":  # every node has backends on node-2
            continue
        assert all("node-2" in p for p in params), f"{name} failed off node-2: {params}"
    assert words in out


def test_a_transfer_cut_off_once_is_measured_again(lab: labmod.Lab, tmp_path: Path) -> None:
    """A starved machine can cut one 1 MiB transfer off; a second measurement, not a false
    failure, must follow. Here node-2's probe pod drops the first two SYNs node-1 sends to
    its HTTP port (150 bytes of quota: two 60-byte SYNs), so node-1's first transfer cannot
    connect within its 2 s; its second connects at once."""
    src = lab.node("node-1")["probe"]["ip"]
    where = lab.node("node-2")["probe"]["netns"]
    rule = ["INPUT", "-s", src, "-p", "tcp", "--dport", "8080", "--syn", "-m", "quota",
            "--quota", "150", "-j", "DROP"]
    netns.iptables(where, ["-I", *rule])
    try:
        code, out, outcomes = run_suite(lab.name, tmp_path, "-k", "test_large_packets")
        counters = netns.run(["ip", "netns", "exec", where, "iptables", "-w", "-L", "INPUT",
                              "-v", "-x", "-n"]).stdout
    finally:
        netns.iptables(where, ["-D", *rule])
    dropped = [line.split()[0] for line in counters.splitlines() if "quota" in line]
    assert dropped == ["2"], counters  # node-1's first connection did fail
    assert code == 0, out
    assert {k.split("::")[-1]: v for k, v in outcomes.items()}[
        "test_large_packets[node-1->node-2]"] == "passed", outcomes


def test_pod_cidr_overlap_fails_test_pod_cidr(tmp_path: Path) -> None:
    name = f"c{os.getpid()}"
    labmod.up(labmod.LabSpec(name=name, faults=(("pod-cidr-overlap", (), None),)))
    try:
        code, out, outcomes = run_suite(name, tmp_path)
    finally:
        labmod.down(name)
    assert set(failing(outcomes)) == {"test_pod_cidr"}, out
    assert "overlaps the Pod CIDR 172.28.0.0/16" in out


def test_xdist_two_workers_share_one_lab(tmp_path: Path) -> None:
    run = new_run()
    code, out, outcomes = run_suite_auto(tmp_path, "-n", "2", run=run)
    assert code == 0, out
    assert "bringing up nodes" in out and len(outcomes) >= 45
    name = json.loads((tmp_path / "results.json").read_text())["cluster"]["name"]
    assert not own_labs(run)  # the run's own lab is gone, whatever other runs have up
    assert name not in labmod.running_labs() and not netns.list_netns(f"k8snet-{name}-")


def test_auto_lab_interrupted_leaves_nothing(tmp_path: Path) -> None:
    import signal
    import time

    run = new_run()
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite",
                             "--k8s-lab", "-p", "no:cacheprovider", "-q"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=run_env(run))
    deadline = time.monotonic() + 30
    ours: set[str] = set()
    while time.monotonic() < deadline and not ours:
        ours = own_labs(run)
        time.sleep(0.05)
    assert ours, "the run never brought its lab up"
    time.sleep(1.0)  # mid-run: lab up, probes running
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert not ours & set(labmod.running_labs()), out
    assert not [n for n in netns.list_netns("k8snet-") if any(n.startswith(f"k8snet-{o}-") for o in ours)]


def test_udp_8472_node_to_node_before_the_cni(lab: labmod.Lab, tmp_path: Path) -> None:
    """With node-2's VXLAN device down (as before the CNI is up) port 8472 is free there,
    so iperf3 runs node to node on 8472 itself; with the port blocked that is what fails."""
    node2 = lab.node("node-2")["netns"]
    netns.ip_batch(node2, ["link set flannel.1 down"])
    faults.add(lab, "vxlan-blocked", ["node-2"])
    try:
        code, out, _ = run_suite(lab.name, tmp_path, "-k", "test_udp_8472")
    finally:
        faults.remove(lab, "vxlan-blocked", [])
        reprogram_overlay(lab, "node-2")
    assert code == 1
    assert "node-1->node-2: node to node on UDP 8472 itself fails" in out
    assert "node-1->node-3" not in out.split("short test summary")[-1]
    code, out, _ = run_suite(lab.name, tmp_path, "-k", "test_pod_ping")
    assert code == 0, out  # the lab is whole again


def test_keep_leaves_the_lab_and_says_how_to_remove_it(tmp_path: Path) -> None:
    run = new_run()
    code, out, _ = run_suite_auto(tmp_path, "--k8s-keep", "-k", "test_nodes_ready", run=run)
    kept = own_labs(run)
    try:
        assert code == 0 and len(kept) == 1, out
        name = kept.pop()
        assert f"remove it with `k8snet-lab down {name}`" in out
    finally:
        for name in own_labs(run):  # only what this run kept: never another run's lab
            labmod.down(name)


COUNT_JUDGE = '''
import os
import pytest_k8snet.run as run_module

_judge = run_module.judge


def counting(doc):
    with open(os.environ["K8SNET_JUDGE_LOG"], "a") as log:
        log.write(f"{os.getpid()}\\n")
    return _judge(doc)


run_module.judge = counting
'''


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_the_judge_runs_once_per_process(lab: labmod.Lab, tmp_path: Path,
                                         workers: list[str]) -> None:
    """Measure once, judge once, report from that: with every report on (results, HTML,
    JUnit, terminal) and the whole suite, each process judges the document at most once."""
    (tmp_path / "countjudge.py").write_text(COUNT_JUDGE)
    log = tmp_path / "judged.log"
    env = dict(os.environ, K8SNET_JUDGE_LOG=str(log),
               PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite", "-p", "countjudge",
         "--k8s-lab-name", lab.name, "--k8s-results", str(tmp_path / "r.json"),
         "--junitxml", str(tmp_path / "j.xml"), "--html", str(tmp_path / "r.html"),
         "-p", "no:cacheprovider", "-q", *workers],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pids = log.read_text().split()
    # One process: one judgement. xdist: each worker and the controller judge at most once.
    assert pids and len(pids) == len(set(pids)) <= (3 if workers else 1), pids


def test_a_lossy_pod_pair_takes_the_bigger_node_sample(lab: labmod.Lab,
                                                       tmp_path: Path) -> None:
    """node-2's FORWARD chain drops every 2nd echo its pod sends to node-1's pod: that pair's
    pod ping loses some, so its node-to-node and pod-to-node pings take the 10-echo sample
    as well (whether those lose too tells loss of all traffic at a node, or on its pods'
    own path, from the overlay's alone; 3 echoes of a path losing 20% all cross half the
    time). The other pairs keep 3."""
    dst = lab.node("node-1")["probe"]["ip"]
    where = lab.target_netns("node-2")
    rule = ["FORWARD", "-d", dst, "-p", "icmp", "--icmp-type", "echo-request", "-m",
            "statistic", "--mode", "nth", "--every", "2", "--packet", "0", "-j", "DROP"]
    netns.iptables(where, ["-I", *rule])
    try:
        code, out, _ = run_suite(lab.name, tmp_path)
    finally:
        netns.iptables(where, ["-D", *rule])
    assert code == 1, out  # the lossy pair fails test_pod_ping
    pings = {(p["network"], p["src"], p["dst"]): p for p in
             json.loads((tmp_path / "results.json").read_text())["ping"]}
    pod = pings[("pod", "node-2", "node-1")]
    assert 0 < pod["received"] < pod["transmitted"] == 10, pod
    # The pod pairs beside it (sharing node-1 or node-2: here every pair) take the bigger
    # sample too, so where a loss sits is told by which of a node's pairs lose.
    assert pings[("pod", "node-1", "node-3")]["transmitted"] == 10
    assert pings[("host", "node-2", "node-1")]["transmitted"] == 10
    assert pings[("host", "node-1", "node-3")]["transmitted"] == 3
    # node-2's pod to node-1's host network takes the bigger sample too, and crosses: the
    # rule is on the way to node-1's pod only (what tells the pod path from the overlay).
    to_node = {(p["src"], p["dst"]): p for p in
               json.loads((tmp_path / "results.json").read_text())["ping_pod_to_node"]}
    assert (to_node[("node-2", "node-1")]["transmitted"],
            to_node[("node-2", "node-1")]["received"]) == (10, 10)
    assert to_node[("node-1", "node-3")]["transmitted"] == 3
