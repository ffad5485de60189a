"""Above --k8s-per-node-threshold the suite's pair tests run one per source node and its
node tests once for all nodes: on the plain 3-node lab at threshold 2, with node-2's
overlay blocked, test_pod_ping[node-1] fails naming node-2 as its failing peer and JUnit
carries the failing pairs; with node-2's forwarding off, test_node_sysctls[all-nodes]
fails naming node-2 and JUnit carries the failing node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_k8snet import lab as labmod
from pytest_k8snet import per_node
from pytest_k8snet.lab import faults
from pytest_k8snet.options import OPTIONS_BY_NAME

from .conftest import needs_root

PAIR_TESTS = ("test_pod_ping", "test_large_packets", "test_path_mtu", "test_udp_8472")
NODE_TESTS = ("test_nodes_ready", "test_large_packets_to_service", "test_dns", "test_service",
              "test_egress", "test_node_sysctls", "test_pod_cidr",
              "test_control_plane_ports", "test_nodeport")


def run(lab: labmod.Lab, tmp_path: Path, *extra: str,
        env: dict[str, str] | None = None) -> tuple[int, str, dict[str, str], ET.Element]:
    results, junit = tmp_path / "results.json", tmp_path / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite", "--k8s-lab-name",
         lab.name, "--k8s-results", str(results), "--junitxml", str(junit), "-p",
         "no:cacheprovider", "-q", "-rfs", *extra], capture_output=True, text=True,
        timeout=300, cwd=tmp_path, env=dict(os.environ, **(env or {})))
    outcomes = json.loads(results.read_text())["tests"] if results.exists() else {}
    return proc.returncode, proc.stdout + proc.stderr, outcomes, ET.parse(junit).getroot()


def ids(outcomes: dict[str, str], test: str) -> set[str]:
    return {k.rpartition("[")[2].rstrip("]") for k in outcomes if f"::{test}[" in k}


def test_the_option_is_in_group_k8snet() -> None:
    opt = OPTIONS_BY_NAME["per-node-threshold"]
    assert opt.default == 32 and opt.kind is int


def test_only_marked_tests_go_per_node() -> None:
    def plain() -> None: ...

    assert not per_node.wanted(plain, 1000, 32)
    marked = per_node.per_node(lambda: None)
    assert per_node.wanted(marked, 33, 32) and not per_node.wanted(marked, 32, 32)
    assert per_node.params(["a", "b"]) == ([("a", "a"), ("b", "b")], ["a", "b"])
    assert not per_node.whole(marked, 1000, 32)
    whole = per_node.cluster_wide(lambda: None)
    assert per_node.whole(whole, 33, 32) and not per_node.whole(whole, 32, 32)


@needs_root
def test_pair_tests_per_node_above_the_threshold(lab: labmod.Lab, tmp_path: Path) -> None:
    faults.add(lab, "vxlan-blocked", ["node-2"])
    try:
        code, out, outcomes, junit = run(lab, tmp_path, "--k8s-per-node-threshold", "2")
    finally:
        faults.remove(lab, "vxlan-blocked", [])
    assert code == 1, out
    nodes = {"node-1", "node-2", "node-3"}
    for test in PAIR_TESTS:
        assert ids(outcomes, test) == nodes, (test, sorted(outcomes))
    for test in NODE_TESTS:
        assert ids(outcomes, test) == {"all-nodes"}, (test, sorted(outcomes))
    assert not any("->" in k for k in outcomes)
    # 4 pair tests per node, and the 9 node tests once each
    assert len(outcomes) == 4 * len(nodes) + len(NODE_TESTS), sorted(outcomes)
    assert outcomes["test_network.py::test_pod_ping[node-1]"] == "failed"
    assert outcomes["test_network.py::test_pod_ping[node-2]"] == "failed"
    assert "node-1: 1 of 2 pairs from it fail" in out and "to node-2: " in out
    # The summary counts the pairs the per-node tests stand for, not each node as a pair.
    assert "tested: 3 nodes of 3 selected and 6 node pairs (pod network 6)" in out, out
    case = next(c for c in junit.iter("testcase") if c.get("name") == "test_pod_ping[node-1]")
    props = {(p.get("name"), p.get("value")) for p in case.iter("property")}
    assert ("pairs", "2") in props and ("pairs_failed", "1") in props
    failing = [v for k, v in props if k == "failing_pair"]
    assert len(failing) == 1 and failing[0].startswith("node-1->node-2 "), props


@needs_root
def test_a_configuration_check_is_one_test_naming_its_nodes(lab: labmod.Lab,
                                                            tmp_path: Path) -> None:
    faults.add(lab, "ip-forward-off", ["node-2"])
    try:
        code, out, outcomes, junit = run(lab, tmp_path, "--k8s-per-node-threshold", "2",
                                         "-k", "test_node_sysctls or test_nodes_ready")
    finally:
        faults.remove(lab, "ip-forward-off", [])
    assert code == 1, out
    assert outcomes == {"test_network.py::test_node_sysctls[all-nodes]": "failed",
                        "test_network.py::test_nodes_ready[all-nodes]": "passed"}, outcomes
    assert "1 of 3 nodes fail\nnode-2: net.ipv4.ip_forward=0" in out, out
    assert "tested: 3 nodes of 3 selected" in out, out
    case = next(c for c in junit.iter("testcase")
                if c.get("name") == "test_node_sysctls[all-nodes]")
    props = {(p.get("name"), p.get("value")) for p in case.iter("property")}
    assert {("nodes", "3"), ("nodes_failed", "1"), ("nodes_passed", "2"),
            ("failing_node", "node-2 ip-forward:node-2")} <= props, props


@needs_root
def test_at_or_below_the_threshold_pairs_keep_their_ids(lab: labmod.Lab,
                                                         tmp_path: Path) -> None:
    # The ini file names 2, the environment 1: the command line's 3 wins over both.
    (tmp_path / "pytest.ini").write_text("[pytest]\nk8s_per_node_threshold = 2\n")
    code, out, outcomes, _ = run(lab, tmp_path, "--k8s-per-node-threshold", "3",
                                 "-k", "test_pod_ping or test_nodes_ready",
                                 env={"K8SNET_PER_NODE_THRESHOLD": "1"})
    assert code == 0, out
    assert ids(outcomes, "test_pod_ping") == {f"node-{a}->node-{b}" for a in (1, 2, 3)
                                              for b in (1, 2, 3) if a != b}
    assert ids(outcomes, "test_nodes_ready") == {"node-1", "node-2", "node-3"}
    code, out, outcomes, _ = run(lab, tmp_path, "-k", "test_pod_ping or test_nodes_ready")
    assert ids(outcomes, "test_pod_ping") == {"node-1", "node-2", "node-3"}, out
    assert ids(outcomes, "test_nodes_ready") == {"all-nodes"}, out


def test_a_bad_threshold_is_a_one_line_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite",
                           "--k8s-per-node-threshold", "0", "-p", "no:cacheprovider", "-q"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--k8s-per-node-threshold must be at least 1, got 0" in proc.stderr
