"""Faults the judge was not tuned on: runs of the diagnosis benchmark with a seed it never
saw (benchmarks/diagnosis.py --seed 2), each a measurement document of a real lab run with
one raw firewall rule. Each gives one located root, the rest its knock-ons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet.judge import SKIPPED, judge
from tests.judged import roots

DATA = Path(__file__).parent / "data" / "diagnosis"


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / f"fresh-{name}.json").read_text())
    return doc


@pytest.mark.parametrize("name, node, cause, mode", [
    # -m statistic 20% on everything in and out of node-2 (iptables INPUT and OUTPUT): the
    # Service requests that lose all their tries to one backend are loss, not "unknown".
    ("all-loss-both-node-2", "node-2", "pod-lossy", "loss"),
    # 20% at the switch port of node-3: egress failures from random source ports are loss,
    # not a source-port firewall that 46 of 50 attempts happen to fit.
    ("switch-all-loss-both-node-3", "node-3", "pod-lossy", "loss"),
    # REJECT of everything node-2 sends through the gateway: DNS refused, egress timing out
    # (the refusal of a TCP SYN does not come back): one rule on the way out.
    ("gateway-all-reject-out-node-2", "node-2", "firewall", "reject"),
])
def test_one_located_root(name: str, node: str, cause: str, mode: str) -> None:
    j = judge(load(name))
    found = roots(j)
    assert [(f.cause, f.nodes, f.mode) for f in found] == [(cause, (node,), mode)], \
        [(f.id, f.cause, f.summary) for f in found]
    assert not [f.id for f in j.findings if f.cause in ("unknown", "inconclusive")]
    assert not [f.id for f in j.findings if f.cause == "egress-port-range"]


def test_the_way_out_names_both_symptoms() -> None:
    j = judge(load("gateway-all-reject-out-node-2"))
    (root,) = roots(j)
    assert root.protocol == "all" and root.direction == "out"
    assert "DNS queries are refused" in root.summary
    assert "egress connections time out" in root.summary
    egress = j.verdict("test_egress", "node-2")
    assert egress.outcome == SKIPPED and j.finding(egress.finding).root == root.id  # type: ignore[union-attr]


def test_two_port_rules_sharing_a_node_stay_two() -> None:
    """udp/53 dropped on node-1's way out (OUTPUT) and tcp/10250 dropped on node-2's way out
    (its switch port): node-2's failed connects go into node-1 and node-3, so a grouping by
    the node failures share most put node-2's kubelet drop on node-1 and node-3. Each port
    placed on its own gives the two rules where they are."""
    j = judge(load("double-dns-out-node-1-kubelet-out-node-2"))
    found = sorted((f.nodes, f.direction, f.protocol, f.port, f.mode) for f in roots(j))
    assert found == [(("node-1",), "out", "udp", "53", "drop"),
                     (("node-2",), "out", "tcp", "10250", "drop")], \
        [(f.id, f.summary) for f in roots(j)]


def test_a_reject_beside_loss_on_one_channel_is_placed_apart() -> None:
    """iperf3's TCP ports rejected out of node-3's pods, and 20% of UDP 8472 lost into
    node-1: iperf3's control connection is refused on node-3's pairs and times out on one
    into node-1. No one rule fails all three; the refusals alone are one rule out of node-3,
    and the timeout is the loss's knock-on (a refusal never is)."""
    j = judge(load("double-iperf-reject-out-node-3-vxlan-loss-node-1"))
    found = sorted((f.cause, f.nodes, f.direction, f.protocol, f.port, f.mode)
                   for f in roots(j))
    assert found == [("pod-firewall", ("node-3",), "out", "tcp", "5201-5209", "reject"),
                     ("pod-lossy", ("node-1",), "both", "udp", "8472", "loss")], found
    assert not [f.id for f in j.findings if f.cause in ("unknown", "inconclusive")]


def test_loss_of_all_traffic_at_a_node_is_told_from_the_overlays_alone() -> None:
    """20% of everything node-2 sends lost at its switch port (seed-1 run 27, measured again
    with the bigger node-to-node sample on the lossy pod pairs): node-to-node ping loses
    too, so the finding names all traffic at node-2, not the overlay's UDP port."""
    (root,) = roots(judge(load("switch-all-loss-out-node-2")))
    assert (root.cause, root.nodes, root.protocol, root.mode) == (
        "pod-lossy", ("node-2",), "all", "loss"), root.summary
    assert "all traffic at node-2 loses packets" in root.summary


def test_a_channel_failing_everywhere_from_two_rules_is_split_between_them() -> None:
    """Everything out of node-1's pods dropped (FORWARD) and ICMP rejected both ways at
    node-3 (seed-1 run 49, measured again): ICMP fails on every pair, which alone reads as
    an ICMP rule on every pair. node-1's pairs fail on every channel, so they are node-1's
    rule on ICMP too; what is left (node-2<->node-3) fits node-2 as well as node-3, and the
    ICMP errors that answered the echoes come from node-3's bridge and tunnel addresses."""
    j = judge(load("double-all-drop-out-node-1-icmp-reject-node-3"))
    found = sorted((f.nodes, f.direction, f.protocol, f.mode) for f in roots(j))
    assert found == [(("node-1",), "both", "all", "drop"),
                     (("node-3",), "both", "icmp", "reject")], \
        [(f.id, f.summary) for f in roots(j)]
    assert not [f.id for f in j.findings if f.cause in ("unknown", "inconclusive")]


def test_rejects_are_told_from_drops_by_the_icmp_errors_some_echoes_got() -> None:
    """ICMP rejected both ways at node-1's pods and everything rejected into node-3 (INPUT;
    seed-1 run 60, measured again). The kernel rate-limits the ICMP errors a REJECT sends,
    so one of node-1's pairs got none; node-to-node ping into node-3 was answered by
    port-unreachable from 172.28.128.13. Both are rejects, not drops."""
    j = judge(load("double-icmp-reject-node-1-all-reject-into-node-3"))
    found = sorted((f.cause, f.nodes, f.protocol, f.mode) for f in roots(j))
    assert found == [("pod-firewall", ("node-1",), "icmp", "reject"),
                     ("underlay", ("node-3",), "all", "reject")], found


@pytest.mark.parametrize("name, node, protocol, port", [
    # 20% of what node-3's pods send dropped in its FORWARD chain (seed-1 run 53, beside a
    # tcp/80 drop on node-2): node-to-node ping is clean, but node-3's pods lose pings to
    # the other nodes' host network too, which crosses no overlay: their own path.
    ("double-forward-all-loss-out-node-3-tcp80-node-2", "node-3", "all", None),
    # 20% of UDP 8472 into node-2 lost at its switch port (seed-1 run 33): pod-to-node
    # pings cross clean, so it is the overlay's port.
    ("switch-vxlan-loss-into-node-2", "node-2", "udp", "8472"),
])
def test_pod_path_loss_is_told_from_the_overlays(name: str, node: str, protocol: str,
                                                 port: str | None) -> None:
    lossy = [f for f in roots(judge(load(name))) if f.cause == "pod-lossy"]
    assert [(f.nodes, f.protocol, f.port, f.mode) for f in lossy] == [
        ((node,), protocol, port, "loss")], [f.summary for f in lossy]


def test_lookups_to_a_dns_replica_behind_a_cut_node_are_its_knock_ons() -> None:
    """The lab's real cluster, everything into and out of node-2's pods rejected (FORWARD)
    while one CoreDNS replica runs on node-2 (the diagnosis benchmark's --kubernetes mode,
    seed 7): 1 of 50 egress attempts from node-1 and node-3 could not resolve the name,
    their lookups having gone to that replica. Knock-ons of node-2's rule, not unknowns."""
    j = judge(load("kube-forward-all-reject-node-2-coredns"))
    assert [(f.cause, f.nodes, f.mode) for f in roots(j)] == [
        ("pod-firewall", ("node-2",), "reject")]
    for n in ("node-1", "node-3"):
        v = j.verdict("test_egress", n)
        f = j.finding(v.finding)
        assert v.outcome == SKIPPED and f is not None and f.root == roots(j)[0].id, v
        assert "cluster DNS endpoint on node-2" in v.message


def test_a_nodeport_behind_a_rule_on_its_pods_port_is_a_knock_on() -> None:
    """TCP 8080 dropped into and out of node-2's pods (FORWARD; seed 5, run 4): node-2's
    NodePort leads to its own probe pod on 8080, so its connects time out too, inside the
    pod rule's finding, not as a NodePort firewall of their own."""
    j = judge(load("forward-tcp8080-drop-both-node-2"))
    (root,) = roots(j)
    assert (root.cause, root.nodes, root.port) == ("pod-firewall", ("node-2",), "8080")
    v = j.verdict("test_nodeport", "node-2")
    f = j.finding(v.finding)
    assert v.outcome == SKIPPED and f is not None and f.root == root.id, v


def test_a_nodeport_connect_lost_to_an_overlapping_pod_cidr_is_its_knock_on() -> None:
    """The lab's real cluster built with a Pod CIDR (172.28.0.0/16) over its node network
    (CI, `k8snet-lab run --kubernetes --fault pod-cidr-overlap`): one NodePort connect of six
    timed out twice. kube-proxy took node-3's address for a pod's and the reply came back
    from another node: the overlap's knock-on, not a NodePort firewall on node-2."""
    j = judge(load("kube-pod-cidr-overlap-nodeport"))
    assert [f.cause for f in roots(j)] == ["pod-cidr-overlap"]
    v = j.verdict("test_nodeport", "node-2")
    f = j.finding(v.finding)
    assert v.outcome == SKIPPED and f is not None and f.root == "pod-cidr-overlap", v
