"""The localizer on real lab runs of the diagnosis benchmark (tests/data/diagnosis/judge-*:
measurement documents, one injected firewall fault each): one root that names the node,
direction, protocol/port and mode, every other failure its knock-on, no shrug."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet.judge import FAILED, judge
from pytest_k8snet.judge.localize import place
from tests.judged import roots

DATA = Path(__file__).parent / "data" / "diagnosis"


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / f"judge-{name}.json").read_text())
    return doc


# name -> (node, direction, protocol, port, mode, words in the summary)
CASES = {
    "http-reject-node-2-both": ("node-2", "both", "tcp", "8080", "reject",
                                "TCP 8080 into and out of node-2's pods is rejected"),
    "iperf-tcp-drop-out-of-node-1": ("node-1", "out", "tcp", "5201-5209", "drop",
                                     "out of node-1's pods is dropped"),
    "iperf-udp-drop-out-of-node-1": ("node-1", "out", "udp", "5201-5209", "drop",
                                     "UDP 5201-5209"),
    "vxlan-loss-node-1": ("node-1", "both", "udp", "8472", "loss", "the loss is at node-1"),
    "switch-vxlan-loss-into-node-2": ("node-2", "both", "udp", "8472", "loss",
                                      "the loss is at node-2"),
    # ping answered "Destination Port Unreachable" (an iptables REJECT): no silent drop.
    "icmp-reject-into-node-2": ("node-2", "in", "icmp", None, "reject",
                                "ICMP (ping) into node-2's pods is rejected"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_located_root(name: str) -> None:
    node, direction, proto, port, mode, words = CASES[name]
    j = judge(load(name))
    (root,) = roots(j)
    assert root.nodes == (node,), root
    assert (root.direction, root.protocol, root.port, root.mode) == (direction, proto, port,
                                                                     mode), root
    assert words in root.summary
    assert not [f for f in j.findings if f.cause in ("inconclusive", "unknown")]
    # every other finding a verdict names is the root's knock-on
    named = {v.finding for v in j.verdicts.values() if v.finding}
    assert all(f.root == root.id for f in j.findings if f.id in named and f.id != root.id)


def test_http_reject_makes_service_failures_knock_ons() -> None:
    j = judge(load("http-reject-node-2-both"))
    (root,) = roots(j)
    assert root.cause == "pod-firewall" and "while ICMP (ping)" in root.summary
    for n in ("node-1", "node-2", "node-3"):
        v = j.verdict("test_service", n)
        assert v.outcome == "skipped" and v.finding == root.id, v


def test_all_pod_traffic_dropped_at_a_node_is_no_blocked_overlay() -> None:
    """Everything fails into and out of node-2 while its host network works: its own pods
    cannot reach the outside or its own backends either, so the node drops them, not the
    overlay's port on the wire."""
    j = judge(load("forward-all-drop-node-2"))
    pod = j.finding(j.verdict("test_pod_ping", "node-1->node-2").finding)
    assert pod is not None and pod.cause == "pod-firewall", pod
    assert (pod.nodes, pod.direction, pod.protocol, pod.mode) == (("node-2",), "both", "all",
                                                                 "drop")
    assert "All pod traffic into and out of node-2's pods" in pod.summary
    assert "host network is fine" in pod.summary
    assert not [f for f in j.findings if f.cause == "vxlan-blocked"]
    for t in ("test_large_packets", "test_udp_8472"):
        assert j.verdict(t, "node-2->node-1").finding == pod.id


def test_loss_is_no_mtu_finding() -> None:
    """A DF ping lost to random loss on a lossy path is not an MTU limit."""
    j = judge(load("vxlan-loss-node-1"))
    assert not [f for f in j.findings if f.cause == "mtu"]


def test_place_shapes() -> None:
    pairs = ["a->b", "a->c", "b->a", "b->c", "c->a", "c->b"]
    nodes = ["a", "b", "c"]
    assert place("x", "drop", ["b->a", "c->a"], pairs, nodes).direction == "in"
    assert place("x", "drop", ["a->b", "a->c"], pairs, nodes).direction == "out"
    p = place("x", "drop", ["a->b", "a->c", "b->a", "c->a"], pairs, nodes)
    assert (p.node, p.direction) == ("a", "both")
    assert place("x", "drop", pairs, pairs, nodes).direction == "all"
    # two pairs that share no one rule stay unplaced
    assert place("x", "drop", ["a->b", "c->a"], pairs, nodes).direction is None


def healthy_with_http(into: str, error: str, exit_code: int,
                      src: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (Path(__file__).parent / "data" / "measure" / "healthy.json").read_text())
    for e in doc["http"]:
        if e["dst"] == into and (src is None or e["src"] == src):
            e.update(ok=False, bytes=0, exit_code=exit_code, error=error)
    return doc


def test_tcp_8080_dropped_into_one_node_is_located_there() -> None:
    """The class, not one run: connects timing out on every pair into node-3, and nowhere
    else, is a drop of TCP 8080 into node-3's pods."""
    j = judge(healthy_with_http("node-3", "Failed to connect to 10.244.2.2 port 8080 after "
                                "2001 ms: Timeout was reached", 28))
    (root,) = roots(j)
    assert (root.cause, root.nodes, root.direction, root.protocol, root.port, root.mode) == (
        "pod-firewall", ("node-3",), "in", "tcp", "8080", "drop"), root
    assert "TCP 8080 into node-3's pods is dropped" in root.summary


def test_one_pair_refused_is_no_located_fault() -> None:
    """One pair alone fits no one-node rule: it stays a pair finding that says so."""
    j = judge(healthy_with_http("node-3", "Failed to connect to 10.244.2.2 port 8080 after "
                                "0 ms: Couldn't connect to server", 7, src="node-1"))
    assert not [f for f in j.findings if f.cause == "pod-firewall"]
    assert j.verdict("test_large_packets", "node-1->node-3").outcome == FAILED


def test_loss_that_node_to_node_ping_sees_too_is_all_traffic() -> None:
    """Loss at a node that takes node-to-node pings too is no overlay port's: all traffic."""
    doc = load("vxlan-loss-node-1")
    for e in doc["ping"]:
        if e.get("network") == "host" and "node-1" in (e["src"], e["dst"]):
            e.update(transmitted=10, received=8, loss_pct=20.0)
    (root,) = roots(judge(doc))
    assert (root.cause, root.nodes, root.protocol, root.mode) == ("pod-lossy", ("node-1",),
                                                                  "all", "loss"), root
    assert "all traffic at node-1 loses packets" in root.summary


def test_a_place_the_pairs_cannot_tell_says_what_else_fits() -> None:
    p = place("x", "drop", ["a->b"], ["a->b", "b->a"], ["a", "b"])
    assert (p.node, p.direction, p.alternatives) == ("b", "in", (("a", "out"),))


def _icmp_errors(doc: dict[str, Any], kind: str | None) -> dict[str, Any]:
    """The lab's ICMP REJECT document with its ICMP errors of another kind."""
    for p in doc["ping"]:
        if p.get("error_kind"):
            p["error_kind"] = kind
    return doc


@pytest.mark.parametrize(("kind", "mode"), [
    ("host-prohibited", "reject"), ("admin-prohibited", "reject"),
    ("host-unreachable", "route"), ("net-unreachable", "route"), (None, "drop")])
def test_icmp_errors_say_the_mode(kind: str | None, mode: str) -> None:
    """A firewall's REJECT answers port-unreachable or prohibited; a router without a
    route host or net unreachable; no ICMP error at all (documents before error_kind) is
    the silent drop it always was."""
    j = judge(_icmp_errors(load("icmp-reject-into-node-2"), kind))
    (root,) = roots(j)
    assert (root.nodes, root.direction, root.protocol, root.mode) == (
        ("node-2",), "in", "icmp", mode), root
    if mode == "route":
        assert "unroutable" in root.summary and "a missing route on node-2 (its routes)" \
            in root.summary
