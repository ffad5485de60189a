"""The diagnosis benchmark's pure parts: the faults' rules, the seeded draw, the scorer on
results documents of real lab runs (tests/data/diagnosis/, trimmed to findings and
verdicts; each says in ``note`` which fault produced it) and the lines it prints.
Nothing here builds a lab."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet import lab as labmod
from pytest_k8snet.measure.udp import IPERF_BASE_PORT

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import diagnosis  # noqa: E402
import diagnosis_runs  # noqa: E402
import diagnosis_faults as F  # noqa: E402
import diagnosis_kube  # noqa: E402
from diagnosis_score import Score, named, roots_of, score  # noqa: E402

DATA = Path(__file__).parent / "data" / "diagnosis"
LAB = labmod.plan(labmod.LabSpec(name="bench"))
NODES = [n["name"] for n in LAB.nodes]


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / name).read_text())
    return doc


def fault(node: str, direction: str, label: str, mode: str, where: str) -> F.Fault:
    proto, _, port = label.partition("/")
    lo, _, hi = port.partition("-")
    ports = (int(lo), int(hi or lo)) if port else None
    return F.Fault(node, direction, proto, ports, mode, where)  # type: ignore[arg-type]


def every_fault() -> list[F.Fault]:
    return [F.Fault("node-2", d, c.proto, c.ports, m, c.where)
            for c in F.catalogue(3) for d in c.directions for m in c.modes]


# -- rules --------------------------------------------------------------------------------

def test_host_vxlan_both_ways_is_an_input_and_an_output_chain_on_eth0() -> None:
    f = fault("node-2", "both", "udp/8472", "drop", "host")
    comment = ["-m", "comment", "--comment", "k8snet-bench:node-2 INPUT+OUTPUT both udp/8472 drop"]
    assert [s.argv for s in F.install(f, LAB, 4)] == [
        ("iptables", "-w", "-N", "KBENCH-4-IN"),
        ("iptables", "-w", "-A", "KBENCH-4-IN", "-i", "eth0", "-p", "udp", "--dport", "8472",
         *comment, "-j", "DROP"),
        ("iptables", "-w", "-I", "INPUT", "1", "-j", "KBENCH-4-IN"),
        ("iptables", "-w", "-N", "KBENCH-4-OUT"),
        ("iptables", "-w", "-A", "KBENCH-4-OUT", "-o", "eth0", "-p", "udp", "--dport", "8472",
         *comment, "-j", "DROP"),
        ("iptables", "-w", "-I", "OUTPUT", "1", "-j", "KBENCH-4-OUT"),
    ]
    assert {s.netns for s in F.install(f, LAB, 4)} == {"k8snet-bench-node-2"}
    assert [s.argv for s in F.remove(f, LAB, 4)] == [
        ("iptables", "-w", "-D", "INPUT", "-j", "KBENCH-4-IN"),
        ("iptables", "-w", "-F", "KBENCH-4-IN"), ("iptables", "-w", "-X", "KBENCH-4-IN"),
        ("iptables", "-w", "-D", "OUTPUT", "-j", "KBENCH-4-OUT"),
        ("iptables", "-w", "-F", "KBENCH-4-OUT"), ("iptables", "-w", "-X", "KBENCH-4-OUT"),
    ]


@pytest.mark.parametrize("f, where, target", [
    (fault("node-1", "in", "tcp/8080", "reject", "forward"), ["-o", "cni0"],
     ["-j", "REJECT", "--reject-with", "tcp-reset"]),
    (fault("node-1", "out", "udp/53", "reject", "forward"), ["-i", "cni0"],
     ["-j", "REJECT", "--reject-with", "icmp-port-unreachable"]),
    (fault("node-1", "in", "icmp", "loss", "forward"), ["-o", "cni0"],
     ["-m", "statistic", "--mode", "random", "--probability", "0.2", "-j", "DROP"]),
    (fault("node-3", "out", "tcp/80", "drop", "gateway"), ["-s", "172.28.128.13"],
     ["-j", "DROP"]),
    (fault("node-3", "in", "all", "drop", "gateway"), ["-d", "172.28.128.13"], ["-j", "DROP"]),
])
def test_iptables_rule_places_and_modes(f: F.Fault, where: list[str], target: list[str]) -> None:
    rules = [s.argv for s in F.install(f, LAB, 0) if s.argv[2] == "-A"]
    assert len(rules) == 1
    rule = list(rules[0])
    assert rule[4:4 + len(where)] == where
    assert rule[-len(target):] == target
    assert ("--icmp-type" in rule) == (f.proto == "icmp")  # echo requests only
    netns = "k8snet-bench-gw" if f.where == "gateway" else f"k8snet-bench-{f.node}"
    assert F.install(f, LAB, 0)[0].netns == netns


def test_switch_faults_are_an_nft_bridge_table_on_the_nodes_port() -> None:
    f = fault("node-2", "both", "udp/8472", "loss", "switch")
    (step,) = F.install(f, LAB, 1)
    assert step.netns == "k8snet-bench-sw" and step.argv == ("nft", "-f", "-")
    assert step.input is not None and "table bridge k8snet_bench_1" in step.input
    assert ('oifname "port-node-2" meta l4proto udp udp dport 8472 numgen random mod 100 < 20 '
            'counter drop') in step.input
    assert 'iifname "port-node-2"' in step.input
    assert [s.argv for s in F.remove(f, LAB, 1)] == [
        ("nft", "delete", "table", "bridge", "k8snet_bench_1")]
    with pytest.raises(ValueError, match="reject"):
        F.install(fault("node-2", "in", "all", "reject", "switch"), LAB, 1)


def test_removal_undoes_exactly_what_every_catalogue_fault_installs() -> None:
    faults = every_fault()
    assert len(faults) > 60
    for f in faults:
        added = F.install(f, LAB, 9)
        removed = F.remove(f, LAB, 9)
        assert {s.netns for s in added} == {s.netns for s in removed} == {F.netns_of(f, LAB)}
        if f.where == "switch":
            assert "k8snet_bench_9" in str(added[0].input) and "k8snet_bench_9" in removed[0].argv
            continue
        created = {s.argv[3] for s in added if s.argv[2] == "-N"}
        jumps = {(s.argv[3], s.argv[-1]) for s in added if s.argv[2] == "-I"}
        assert created == {s.argv[3] for s in removed if s.argv[2] == "-X"}
        assert jumps == {(s.argv[3], s.argv[-1]) for s in removed if s.argv[2] == "-D"}
        assert created == {c for _, c in jumps} and all(c.startswith("KBENCH-9-") for c in created)


def test_iperf_ports_cover_every_sample_the_suite_takes() -> None:
    lo, hi = F.iperf_ports(3)
    # measure/udp.py: IPERF_BASE_PORT + attempt * nodes + the source's index, three attempts.
    used = {IPERF_BASE_PORT + attempt * 3 + i for attempt in range(3) for i in range(3)}
    assert (lo, hi) == (min(used), max(used))


def test_the_draw_is_seeded_and_pairs_are_two_causes() -> None:
    runs = F.draw(1, 40, 20, NODES)
    assert runs == F.draw(1, 40, 20, NODES) and runs != F.draw(2, 40, 20, NODES)
    assert [len(r) for r in runs] == [1] * 40 + [2] * 20
    allowed = {(c.where, c.proto, c.ports, d, m) for c in F.catalogue(3)
               for d in c.directions for m in c.modes}
    for fs in runs:
        for f in fs:
            assert (f.where, f.proto, f.ports, f.direction, f.mode) in allowed
            assert F.install(f, LAB, 0)
        if len(fs) == 2:
            assert fs[0].node != fs[1].node and fs[0].label != fs[1].label


def test_the_real_cluster_draws_from_the_catalogue_less_what_has_no_effect_there() -> None:
    left_out = set(F.KUBE_LEFT_OUT)
    every = {(c.where, c.proto, c.ports) for c in F.catalogue(3)}
    assert left_out and left_out < every  # no stale reason for a class that is gone
    assert all(F.KUBE_LEFT_OUT.values())
    assert {(c.where, c.proto, c.ports) for c in F.kube_catalogue(3)} == every - left_out
    runs = F.draw(7, 40, 20, NODES, kubernetes=True)
    assert runs == F.draw(7, 40, 20, NODES, kubernetes=True) != F.draw(7, 40, 20, NODES)
    assert not {(f.where, f.proto, f.ports) for fs in runs for f in fs} & left_out


def test_only_faults_on_all_of_a_nodes_pod_traffic_leave_the_cluster_to_heal() -> None:
    # They cut a CoreDNS replica on that node from the API server (diagnosis_kube.py).
    leaking = {(c.where, c.proto) for c in F.kube_catalogue(3)
               for f in [F.Fault("node-1", c.directions[0], c.proto, c.ports, c.modes[0], c.where)]
               if diagnosis_kube.leaks(f)}
    assert leaking == {("forward", "all")}


def test_what_a_judge_can_tell() -> None:
    assert fault("node-1", "in", "tcp/8080", "reject", "forward").expected_modes == {"reject"}
    assert fault("node-1", "in", "udp/8472", "reject", "host").expected_modes == {"reject", "drop"}
    assert fault("node-1", "in", "udp/8472", "drop", "host").expected_directions == {"both"}
    assert fault("node-1", "in", "all", "drop", "forward").expected_directions == {"both"}
    assert fault("node-1", "in", "all", "drop", "gateway").expected_directions == {"out"}
    assert fault("node-1", "in", "tcp/8080", "drop", "forward").expected_directions == {"in"}
    assert F.Fault.from_dict(fault("node-3", "out", "udp/5201-5209", "loss", "forward")
                             .as_dict()).label == "udp/5201-5209"


# -- the scorer ---------------------------------------------------------------------------

def test_one_named_root_passes() -> None:
    doc = load("etcd-drop-node-3.json")
    sc = score(doc, [fault("node-3", "in", "tcp/2379", "drop", "host")])
    assert sc.status == "pass", sc.as_dict()
    assert sc.criteria == {"a": True, "b": True, "c": True, "d": True}
    assert sc.matches[0]["root"] == "control-plane-ports:node-3"
    assert sc.failed == ["test_control_plane_ports[node-3]"]


@pytest.mark.parametrize("wrong, failing", [
    (fault("node-2", "in", "tcp/2379", "drop", "host"), "b"),   # another node
    (fault("node-3", "out", "tcp/2379", "drop", "host"), "b"),  # the other direction
    (fault("node-3", "in", "tcp/10250", "drop", "host"), "c"),  # another port
    (fault("node-3", "in", "tcp/2379", "reject", "forward"), "c"),  # the judge said dropped
])
def test_a_root_naming_something_else_fails(wrong: F.Fault, failing: str) -> None:
    sc = score(load("etcd-drop-node-3.json"), [wrong])
    assert sc.status == "fail" and not sc.criteria[failing]
    assert sc.criteria["a"] and sc.criteria["d"]


def test_many_roots_and_an_unknown_fail_even_when_the_first_root_is_right() -> None:
    sc = score(load("switch-all-drop-node-1.json"), [fault("node-1", "both", "all", "drop",
                                                           "switch")])
    assert sc.status == "fail"
    assert sc.criteria == {"a": False, "b": True, "c": True, "d": False}
    assert len(sc.roots) == 6 and sc.matches[0]["root"] == "underlay:node-1"
    assert [b["id"] for b in sc.bad] == ["egress:node-1"]


def test_a_finding_per_pair_fails_every_criterion() -> None:
    sc = score(load("http-reject-into-node-3.json"),
               [fault("node-3", "in", "tcp/8080", "reject", "forward")])
    assert sc.criteria == {"a": False, "b": False, "c": False, "d": False}
    assert len(sc.roots) == 7
    # A pair's finding names both its ends, not the node every failing pair shares; it
    # says "connection failed" (a reject) but never which port.
    assert sc.matches[0]["named"] == {"nodes": ["node-1", "node-3"], "direction": "in",
                                      "ports": [], "icmp": False, "all": False,
                                      "modes": ["reject"]}


def test_a_drop_blamed_on_the_probe_is_placed_but_not_named() -> None:
    sc = score(load("iperf-udp-drop-from-node-1.json"),
               [fault("node-1", "out", "udp/5201-5209", "drop", "forward")])
    assert sc.roots[0]["cause"] == "probe-failure"
    assert sc.criteria == {"a": True, "b": True, "c": False, "d": True}


def test_two_faults_two_roots_in_either_order() -> None:
    doc = load("double-etcd-node-1-kubelet-node-3.json")
    a = fault("node-1", "in", "tcp/2379", "drop", "host")
    b = fault("node-3", "in", "tcp/10250", "drop", "host")
    assert score(doc, [a, b]).status == "pass" and score(doc, [b, a]).status == "pass"
    assert score(doc, [a]).criteria["a"] is False  # two roots for one fault


def test_green_is_no_effect_and_a_missing_document_an_error() -> None:
    assert score(load("healthy.json"), [fault("node-1", "in", "icmp", "drop", "host")]
                 ).status == "no-effect"
    assert score(None, []).status == "error"
    assert score({"findings": []}, []).error.startswith("the results document has no verdicts")
    assert score(load("healthy.json"), [], "suite timed out after 5s").status == "error"


def test_a_failing_knock_on_counts_inside_its_root() -> None:
    doc = {"findings": [
        {"id": "vx", "cause": "vxlan-blocked", "root": None, "nodes": ["node-2"], "pairs": []},
        {"id": "dns-k", "cause": "dns", "root": "vx", "nodes": ["node-1"], "pairs": []},
        {"id": "svc-k", "cause": "service", "root": "dns-k", "nodes": ["node-1"], "pairs": []}],
        "verdicts": [{"test": "test_pod_ping", "subject": "node-1->node-2",
                      "outcome": "failed", "finding": "vx"},
                     {"test": "test_service", "subject": "node-1", "outcome": "failed",
                      "finding": "svc-k"},
                     {"test": "test_dns", "subject": "node-1", "outcome": "skipped",
                      "finding": "dns-k"}]}
    roots, failed = roots_of(doc)
    assert [r["id"] for r in roots] == ["vx"]
    assert failed == ["test_pod_ping[node-1->node-2]", "test_service[node-1]"]


@pytest.mark.parametrize("finding, node, direction, ports, modes", [
    ({"summary": "node-2: connects time out (dropped, no reset) into node-2: tcp/10250 (x)",
      "nodes": ["node-2"], "evidence": {"node-2": {"dropped_into": {"tcp/10250": ["node-1"]},
                                                   "dropped_from": {}}}},
     "node-2", "in", ["tcp/10250"], ["drop"]),
    ({"summary": "the overlay (UDP 8472 (VXLAN)) is dropped between the nodes",
      "pairs": ["node-1->node-2", "node-2->node-1"]}, "node-2", "both", ["udp/8472"], ["drop"]),
    ({"summary": "tcp 8080 into node-2: connection refused", "pairs": ["node-1->node-2",
                                                                       "node-3->node-2"]},
     "node-2", "in", ["tcp/8080"], ["reject"]),
    ({"summary": "UDP through the overlay drops some", "cause": "udp-lossy",
      "pairs": ["node-2->node-1"]}, "node-2", "out", [], ["loss"]),
    ({"summary": "No answer from cluster DNS on node-1", "checks": ["test_dns"],
      "nodes": ["node-1"]}, "node-1", "out", [], ["drop"]),
    ({"summary": "anything", "protocol": "udp", "port": "5201-5209", "mode": "loss",
      "direction": "in"}, "node-1", "in", ["udp/5201-5209"], ["loss"]),
    # An ICMP finding names no port: the ports in its text are what still crosses.
    ({"summary": "ICMP into node-3's pods is dropped while TCP 8080 and iperf3 (TCP and UDP "
                 "5201-5209) cross", "protocol": "icmp", "mode": "drop", "direction": "in"},
     "node-3", "in", [], ["drop"]),
])
def test_what_a_finding_names(finding: dict[str, Any], node: str, direction: str,
                              ports: list[str], modes: list[str]) -> None:
    n = named(finding, node).as_dict()
    assert (n["direction"], n["ports"], n["modes"]) == (direction, ports, modes)


# -- what the benchmark prints --------------------------------------------------------------

def test_accuracy_leaves_out_runs_with_no_visible_effect() -> None:
    f = fault("node-1", "in", "icmp", "drop", "forward")
    Run = diagnosis_runs.Run
    runs = [Run(0, (f,), Score("pass")), Run(1, (f,), Score("fail")),
            Run(2, (f,), Score("no-effect")), Run(3, (f,), Score("error")),
            Run(4, (f, f), Score("pass"))]
    assert diagnosis.accuracy(runs) == "accuracy: single 1/3 (33%), double 1/1 (100%)"
    assert diagnosis.accuracy([]) == "accuracy: single 0/0 (n/a), double 0/0 (n/a)"
    assert diagnosis.report(runs, 1.0, 0.0)[-1] == diagnosis.accuracy(runs)


def test_one_line_per_run_with_every_criterion_and_the_roots() -> None:
    f = fault("node-3", "in", "tcp/2379", "drop", "host")
    run = diagnosis_runs.Run(1, (f,), score(load("etcd-drop-node-3.json"), [f]), seconds=3.0)
    text = diagnosis.line(run)
    assert "\n" not in text and len(text) <= diagnosis.LINE_WIDTH
    assert text.startswith("  2 S node-3 INPUT in tcp/2379 drop")
    assert "PASS" in text and "a:ok b:ok c:ok d:ok (1 root)" in text
    assert "control-plane-ports [node-3] node-3: connects time out" in text


def test_a_recheck_after_the_run_is_on_its_line_and_state_left_behind_in_the_report() -> None:
    f = fault("node-3", "in", "tcp/2379", "drop", "host")
    doc = load("etcd-drop-node-3.json")
    clean = diagnosis_runs.Run(0, (f,), score(doc, [f]), after="")
    leaky = diagnosis_runs.Run(1, (f,), score(doc, [f]), after="test_dns[node-2]")
    unchecked = diagnosis_runs.Run(2, (f,), score(doc, [f]))
    assert " after:ok " in diagnosis.line(clean)
    assert " after:LEAK(test_dns[node-2]) " in diagnosis.line(leaky)
    assert "after:" not in diagnosis.line(unchecked)
    assert diagnosis_runs.Run.from_dict(leaky.as_dict()).after == "test_dns[node-2]"
    text = "\n".join(diagnosis.report([clean, leaky], 1.0, 0.0))
    assert "state left behind (healthy suite failed after the run): 1\n" \
        "  node-3 INPUT in tcp/2379 drop: test_dns[node-2]" in text
    assert "state left behind" not in "\n".join(diagnosis.report([unchecked], 1.0, 0.0))
