"""One fault, one finding, for the client-side checks (DNS, egress, control-plane ports):
measurement documents of the diagnosis benchmark's lab runs (tests/data/measure/bench-*,
each says in ``note`` which raw firewall rule was injected) judged into one root that
names the node, the direction, the protocol/port and the mode, every other failure a
knock-on of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet.judge import FAILED, Finding, Judgement, judge
from tests.judged import roots

DATA = Path(__file__).parent / "data" / "measure"


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((DATA / f"bench-{name}.json").read_text()))


def only_root(j: Judgement) -> Finding:
    found = roots(j)
    assert len(found) == 1, [(f.id, f.summary) for f in found]
    assert not [f for f in j.findings if f.cause in ("unknown", "inconclusive")]
    return found[0]


# document -> (cause, node, direction, protocol, port, mode, words of the summary)
CASES: dict[str, tuple[str, str, str, str, str | None, str, str]] = {
    "dns-udp53-drop-out-node-3": ("dns", "node-3", "out", "udp", "53", "drop",
                                  "queries to 198.18.0.53 on udp/53 time out"),
    "dns-udp53-reject-out-node-1": ("dns", "node-1", "out", "udp", "53", "reject",
                                    "on udp/53 are refused"),
    "egress-tcp80-drop-out-node-2": ("firewall", "node-2", "out", "tcp", "80", "drop",
                                     "egress connections on tcp/80 to http://198.18.0.10:80/"
                                     " time out"),
    "egress-tcp80-reject-out-node-1": ("firewall", "node-1", "out", "tcp", "80", "reject",
                                       "from the pods only"),
    "gateway-all-drop-node-3": ("firewall", "node-3", "out", "all", None, "drop",
                                "all traffic out of the cluster from node-3 fails"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_located_root(name: str) -> None:
    cause, node, direction, proto, port, mode, words = CASES[name]
    f = only_root(judge(load(name)))
    assert (f.cause, f.nodes, f.direction, f.protocol, f.port, f.mode) == (
        cause, (node,), direction, proto, port, mode)
    assert words in f.summary


def test_egress_blocked_fix_names_the_rule_and_where_to_look() -> None:
    f = only_root(judge(load("egress-tcp80-reject-out-node-1")))
    assert f.fix.startswith("Find the rule that rejects tcp/80 leaving node-1")
    assert "nft list ruleset" in f.fix


def test_all_traffic_out_through_the_gateway_makes_egress_a_knock_on() -> None:
    j = judge(load("gateway-all-drop-node-3"))
    v = j.verdict("test_egress", "node-3")
    f = j.finding(v.finding)
    assert f is not None and f.root == "outward:node-3"
    assert j.verdict("test_dns", "node-3").finding == "outward:node-3"


PORTS: dict[str, tuple[str, str, str, str]] = {
    # one source's way out to every node: grouped by the source, not one per destination
    "ports-tcp10250-drop-out-node-2": ("control-plane-unreachable", "node-2", "out",
                                       "from node-2: tcp/10250 (the kubelet) on node-1, "
                                       "node-3 (every other node)"),
    # into and out of one node: one finding for both ways
    "ports-tcp10250-drop-both-node-2": ("firewall", "node-2", "both",
                                        "into node-2: tcp/10250 (the kubelet on node-2 "
                                        "172.28.128.12) from node-1, node-3"),
}


@pytest.mark.parametrize("name", sorted(PORTS))
def test_control_plane_ports_group_by_the_node_they_share(name: str) -> None:
    cause, node, direction, words = PORTS[name]
    j = judge(load(name))
    f = only_root(j)
    assert (f.cause, f.nodes, f.direction, f.protocol, f.port, f.mode) == (
        cause, (node,), direction, "tcp", "10250", "drop")
    assert words in f.summary
    # every node whose kubelet node-2 cannot reach fails on that one finding
    for n in ("node-1", "node-3"):
        v = j.verdict("test_control_plane_ports", n)
        assert v.outcome == FAILED and v.finding == f.id
        assert f"tcp/10250 (the kubelet on {n}) from node-2 times out" in v.message


@pytest.mark.parametrize("name", ["switch-all-drop-out-node-1", "host-all-reject-both-node-3"])
def test_a_node_cut_off_makes_its_port_failures_knock_ons(name: str) -> None:
    j = judge(load(name))
    f = only_root(j)
    assert f.cause == "underlay"
    for (test, _), v in j.verdicts.items():
        if test in ("test_control_plane_ports", "test_dns", "test_egress") and v.finding:
            k = j.finding(v.finding)
            assert k is not None and k.root == f.id, (test, v)


def test_dns_unreachable_from_dig_is_a_reject_not_an_error_answer() -> None:
    """A FORWARD reject of udp/53 leaves the host's own probe open: only dig's
    "connection refused" (rcode UNREACHABLE) tells the reject from a drop."""
    doc = load("dns-udp53-drop-out-node-3")
    for r in doc["dns"]:
        if r["node"] == "node-3":
            r["rcode"] = "UNREACHABLE"
    for e in doc["ports"]:
        if e["src"] == "node-3" and e["kind"] == "dns-udp":
            e["state"] = "open"
    f = only_root(judge(doc))
    assert (f.cause, f.nodes, f.protocol, f.port, f.mode, f.direction) == (
        "dns", ("node-3",), "udp", "53", "reject", "out")
    assert "are refused" in f.summary


def test_partial_failures_on_a_lossy_node_are_the_loss_not_a_block() -> None:
    """node-1 loses some of everything (and node-3 drops tcp/2379 both ways): one DNS
    name timing out from node-1 is the loss's knock-on, and the port rule is its own root."""
    j = judge(load("double-tcp2379-both-node-3-switch-loss-node-1"))
    dns = j.finding(j.verdict("test_dns", "node-1").finding)
    assert dns is not None and dns.root == "pod-lossy:node-1"
    ports = j.finding(j.verdict("test_control_plane_ports", "node-3").finding)
    assert ports is not None and ports.root is None
    assert (ports.nodes, ports.direction, ports.protocol, ports.port, ports.mode) == (
        ("node-3",), "both", "tcp", "2379", "drop")
