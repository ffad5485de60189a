"""Knock-ons through cluster DNS: a request by name rests on DNS from its node, DNS on the
pod paths to its endpoints. One root finding fails tests; what rests on it skips, naming it.

``kube-vxlan-blocked-dns-on-node-1.json`` is a results file from the lab's real cluster
(``k8snet-lab up --kubernetes``) with both CoreDNS replicas pinned to node-1 and
``vxlan-blocked`` on node-2: node-2's DNS, egress by name and the Service all fail.
"""

from __future__ import annotations

import copy
from typing import Any

from pytest_k8snet.judge import FAILED, SKIPPED, Judgement, judge

from .test_diagnose import failed, load, texts

REAL = "kube-vxlan-blocked-dns-on-node-1"


def roots(j: Judgement) -> list[str]:
    """The findings that fail tests of their own (not knock-ons, not a probe's failure)."""
    failing = {v.finding for v in j.verdicts.values() if v.outcome == FAILED}
    return [f.id for f in j.findings if f.root is None and f.id in failing]


def test_real_cluster_has_one_root_the_overlay_and_dns_egress_service_as_knock_ons() -> None:
    j = judge(load(REAL))
    (root_id,) = roots(j)
    root = j.finding(root_id)
    assert root is not None and root.cause == "vxlan-blocked" and root.nodes == ("node-2",)
    assert "UDP 8472" in root.message
    assert failed(j) == {"test_pod_ping": {"node-1->node-2", "node-2->node-1",
                                           "node-2->node-3", "node-3->node-2"},
                         "test_udp_8472": {"node-1->node-2", "node-2->node-1",
                                           "node-2->node-3", "node-3->node-2"}}
    assert not [f for f in j.findings if f.cause in ("unknown", "inconclusive")]
    assert {f.id for f in j.findings if f.root is None} == {root_id}
    for test, fid in (("test_dns", "dns-knock-on:node-2"), ("test_egress", "egress-knock-on:node-2")):
        v = j.verdict(test, "node-2")
        f = j.finding(v.finding)
        assert v.outcome == SKIPPED and f is not None and f.id == fid, v
        assert f.root == root_id
        assert "Overlay port blocked" in v.message and "test_pod_ping[node-2->node-1]" in v.message
        # the fix is the root's: not "check the DNS pods" for DNS that only lost its path
        assert f.fix == "Fix Overlay port blocked first: this failure follows from it"
    for n in ("node-1", "node-2", "node-3"):
        v = j.verdict("test_service", n)
        assert v.outcome == SKIPPED and v.finding == root_id, v
        assert "Overlay port blocked" in v.message


def test_egress_by_name_says_resolution_not_source_ports() -> None:
    v = judge(load(REAL)).verdict("test_egress", "node-2")
    assert v.message.startswith("egress from node-2 fails: every attempt timed out resolving "
                                "the name world.example.com (50 of 50)")
    assert "host network's too" in v.message and "source port" not in v.message
    assert "Contradicting" not in v.message


def test_few_service_requests_that_never_answered_say_nothing_against_the_other_backends() -> None:
    """node-1 asked 3 times, none answered: its own backend and node-3's are in
    missing_backends only because no request answered, which 3 requests over 3 backends
    do 30% of the time for any one backend."""
    v = judge(load(REAL)).verdict("test_service", "node-1")
    assert "k8snet-probe-node-2, behind node-1->node-2" in v.message
    assert "30% of the time" in v.message


def test_enough_service_requests_to_every_backend_failing_is_not_a_knock_on() -> None:
    doc = load(REAL)
    s = next(e for e in doc["service"] if e["node"] == "node-1")
    s.update(attempts=18, failures=18)  # (2/3)**18: the local backend's silence counts
    v = judge(doc).verdict("test_service", "node-1")
    assert v.outcome == FAILED


def resolution_failing(doc: dict[str, Any], node: str, error: str) -> dict[str, Any]:
    """``node``'s pod egress failing every attempt on name resolution."""
    out = copy.deepcopy(doc)
    e = next(e for e in out["egress"] if e["node"] == node and e["network"] == "pod")
    e.update(failed_ports=sorted(e["failed_ports"] + e["passed_ports"]), passed_ports=[],
             errors=[error], url="http://world.example.com/")
    e.update(failures=len(e["failed_ports"]), attempts=len(e["failed_ports"]), failure_rate=1.0)
    return out


def test_egress_resolution_failing_where_dns_is_the_root_is_its_knock_on() -> None:
    j = judge(resolution_failing(load("dns-blocked"), "node-2",
                                 "Resolving timed out after 3000 milliseconds"))
    dns = j.finding(j.verdict("test_dns", "node-2").finding)
    assert dns is not None and dns.root is None
    v = j.verdict("test_egress", "node-2")
    f = j.finding(v.finding)
    assert v.outcome == SKIPPED and f is not None and f.root == dns.id
    assert "a knock-on of Cluster DNS unreachable (see test_dns[node-2])" in v.message
    assert roots(j) == [dns.id]


def test_service_by_name_not_resolving_is_a_knock_on_of_dns() -> None:
    doc = load("dns-blocked")
    s = next(e for e in doc["service"] if e["node"] == "node-2")
    s.update(failures=12, attempts=12, answered_by={},
             missing_backends=sorted(doc["service_backends"]),
             errors=["Could not resolve host: k8snet-probe.default.svc.cluster.local"])
    j = judge(doc)
    v = j.verdict("test_service", "node-2")
    f = j.finding(v.finding)
    assert v.outcome == SKIPPED and f is not None and f.root == "dns:node-2"
    assert "could not resolve the name" in v.message


def test_resolution_failures_with_dns_passing_are_no_source_port_firewall() -> None:
    """The low-port split of egress-port-range, but every error a lookup that failed: no
    packet left from those ports, so no firewall by source port is named."""
    doc = load("egress-port-range")
    e = next(e for e in doc["egress"] if e["node"] == "node-2" and e["network"] == "pod")
    e["errors"] = ["Could not resolve host: world.example.com"]
    j = judge(doc)
    v = j.verdict("test_egress", "node-2")
    f = j.finding(v.finding)
    assert v.outcome == FAILED and f is not None and f.cause != "egress-port-range"
    assert "could not resolve the name" in v.message and "source ports below" not in v.message


def test_the_real_document_judges_the_same_in_any_entry_order() -> None:
    doc = load(REAL)
    shuffled = copy.deepcopy(doc)
    for key in ("ping", "http", "dns", "egress", "service"):
        shuffled[key].reverse()
    assert texts(judge(shuffled)) == texts(judge(doc))


def test_a_first_round_that_all_failed_does_not_say_the_own_backend_failed() -> None:
    """The same fault measured again on the lab's real cluster under load: node-2's Service
    probe stopped after its first round (3 requests, none answered), so it cannot say that
    node-2's own backend failed: kube-proxy picks at random, and 3 requests miss the one
    local backend of 3 nearly a third of the time. Still the overlay, not node-2 dropping
    its pods' traffic."""
    j = judge(load("kube-vxlan-blocked-dns-on-node-1-first-round"))
    (root_id,) = roots(j)
    root = j.finding(root_id)
    assert root is not None and (root.cause, root.nodes) == ("vxlan-blocked", ("node-2",))
    assert "own backends" not in root.summary


def test_every_knock_on_points_to_a_test_id_that_has_a_verdict() -> None:
    """"see test_x[subject]" names a test and subject the root has a verdict on: a node
    check's node, never one of the root's pairs (there is no test_node_sysctls[a->b])."""
    from pytest_k8snet.per_node import TEST_ID

    from .test_diagnose import DATA

    pointed = 0
    for path in sorted(DATA.glob("*.json")):
        j = judge(load(path.stem))
        for f in j.findings:
            if f.root is None:
                continue
            for test, subject in TEST_ID.findall(f.summary.partition("a knock-on of")[2]):
                pointed += 1
                assert (test, subject) in j.verdicts, (path.stem, f.id, f.summary)
    assert pointed >= 10, pointed
