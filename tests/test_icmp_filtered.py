"""ICMP filtered at one node, on real lab runs (tests/data/diagnosis/pmtu-*: a 3-node lab,
and pmtu-kube-*: the lab's real Kubernetes cluster with the kube backend's probe pods, with
a raw iptables rule in node-2's FORWARD chain): one finding that names the node, the
protocol and the mode and says what it costs path MTU discovery, while the path MTU is
still measured (DF UDP) and judged on its real value; an underlay MTU fault under the
same filter, and alone, keeps its exact ``mtu`` diagnosis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet.judge import FAILED, PASSED, judge
from tests.judged import roots

DATA = Path(__file__).parent / "data" / "diagnosis"
NODE2 = ("node-1->node-2", "node-2->node-1", "node-2->node-3", "node-3->node-2")


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / f"pmtu-{name}.json").read_text())
    return doc


# name -> the rule on node-2 (iptables -I FORWARD ...), the mode it gives
FILTERS = {
    "icmp-drop-node-2": ("-p icmp -j DROP", "drop"),
    "icmp-echo-request-drop-node-2": ("-p icmp --icmp-type echo-request -j DROP", "drop"),
    "icmp-reject-node-2": ("-p icmp -j REJECT", "reject"),
    "kube-icmp-drop-node-2": ("-p icmp -j DROP", "drop"),
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_icmp_filter_is_one_finding_and_path_mtu_is_still_measured(name: str) -> None:
    doc = load(name)
    j = judge(doc)
    (root,) = roots(j)
    assert (root.cause, root.nodes, root.protocol, root.mode) == (
        "pod-firewall", ("node-2",), "icmp", FILTERS[name][1]), root
    assert "ICMP (ping) into and out of node-2's pods" in root.summary
    assert 'drops ICMP "fragmentation needed" too' in root.summary
    assert "path MTU measured with DF UDP instead on " + ", ".join(NODE2) in root.summary
    assert [f.id for f in j.findings] == [root.id]  # nothing else, not even a knock-on
    measured = {f"{e['src']}->{e['dst']}": e for e in doc["path_mtu"]}
    for pid, e in measured.items():
        assert e["bytes"] == 1450 and e["protocol"] == ("udp" if pid in NODE2 else "icmp")
        v = j.verdict("test_path_mtu", pid)
        assert v.outcome == PASSED and v.finding is None, v
        assert ("measured with DF UDP" in v.message) == (pid in NODE2), v


@pytest.mark.parametrize("name", ["icmp-drop-underlay-mtu-node-2",
                                  "kube-icmp-drop-underlay-mtu-node-2"])
def test_underlay_mtu_under_an_icmp_filter_is_measured_and_diagnosed(name: str) -> None:
    """Both faults at node-2: the ICMP filter, and the lab's underlay-mtu fault at 1400
    (VXLAN's 50 bytes leave 1350 for pod packets). Only DF UDP saw the 1350. On the real
    cluster every one of node-2's 1 MiB transfers through the Service timed out (PMTUD
    cannot shrink TCP's segments past the filter): node-2 is behind the small path MTU, so
    they are the MTU finding's, not an unknown of their own."""
    j = judge(load(name))
    by_cause = {f.cause: f for f in roots(j)}
    assert sorted(by_cause) == ["mtu", "pod-firewall"], by_cause
    mtu = by_cause["mtu"]
    assert mtu.nodes == ("node-2",) and set(mtu.pairs) == set(NODE2)
    assert dict(mtu.fix_args)["limit"] == 1350
    assert "the underlay carries 1400 here" in mtu.summary
    for pid in NODE2:
        v = j.verdict("test_path_mtu", pid)
        assert v.outcome == FAILED and v.finding == mtu.id, v
        assert "1422-byte DF UDP payload lost, 1322 passes; path MTU 1350" in v.message
    fw = by_cause["pod-firewall"]
    assert (fw.nodes, fw.protocol, fw.mode) == (("node-2",), "icmp", "drop")


def test_underlay_mtu_alone_is_still_the_df_ping_search() -> None:
    j = judge(load("underlay-mtu-node-2"))
    (root,) = roots(j)
    assert (root.cause, root.nodes, dict(root.fix_args)["limit"]) == ("mtu", ("node-2",), 1350)
    for pid in NODE2:
        v = j.verdict("test_path_mtu", pid)
        assert v.outcome == FAILED and "1422-byte DF ping lost" in v.message, v
        assert "UDP" not in v.message


def test_a_document_without_the_protocol_field_judges_as_before() -> None:
    """An older document (no ``protocol``; the ICMP search found nothing, so bytes 0):
    the path-MTU verdicts are the ICMP filter's knock-ons. The pair's other checks judge
    their own measurements, which crossed: a rule on ICMP takes only the pings."""
    doc = load("icmp-drop-node-2")
    for e in doc["path_mtu"]:
        if e.pop("protocol") == "udp":
            e.update(bytes=0, first_lost=84, probes=2)
    j = judge(doc)
    (root,) = roots(j)
    assert "measured with DF UDP" not in root.summary
    for pid in NODE2:
        v = j.verdict("test_path_mtu", pid)
        f = j.finding(v.finding)
        assert v.outcome == "skipped" and f is not None and f.root == root.id, v
        for test in ("test_large_packets", "test_udp_8472"):
            assert j.verdict(test, pid).outcome == PASSED, j.verdict(test, pid)
