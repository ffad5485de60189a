"""The built-in acceptance suite: ``pytest --pyargs pytest_k8snet.suite``.

Test names are part of the product (select them with ``-k``). Every test reads the
verdict for its subject from the run's findings (:mod:`pytest_k8snet.judge`), which
are judged from one measurement document taken once per run: no test measures or
diagnoses on its own, so ``-k``, ``--k8s-pairs``, xdist and test order never change what
a finding says. Each check fails only for the cause it owns; when another finding owns
the cause (no pod connectivity at all, forwarding off), the test skips and names it, so
one broken thing reads as one failure.

Each test here is a check the judge registers under the test's own name
(:data:`pytest_k8snet.judge.checks.CHECKS`); the module refuses to load when the two
lists differ, since a renamed test would otherwise never find its verdicts.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_k8snet import Diagnosis, Pair, per_node
from pytest_k8snet.judge import FAILED, PASSED, SKIPPED, Finding, Judgement
from pytest_k8snet.judge import per_node as node_verdicts
from pytest_k8snet.judge.checks import CHECKS
from pytest_k8snet.run import RUN_KEY
from pytest_k8snet.report.junit import pair_entry, record


def fail(request: pytest.FixtureRequest, diagnosis: Diagnosis, raw: str | None = None,
         finding: Finding | None = None, results: str | None = None, **evidence: Any) -> None:
    """Fail with the diagnosis message; record cause, finding and evidence for the reports."""
    __tracebackhide__ = True
    extra = request.config.hook.pytest_k8snet_diagnose(
        config=request.config, test=request.node.originalname, subject=request.node.name,
        evidence={"diagnosis": diagnosis, **evidence,
                  **({"finding": finding.as_dict()} if finding is not None else {})})
    message = diagnosis.message + "".join(f"\nAlso: {d.message}" for d in extra if d)
    record(request, raw=raw, cause=diagnosis.cause)
    props = request.node.user_properties
    props.append(("k8snet_diagnosis", json.dumps({
        "cause": diagnosis.cause, "nodes": list(diagnosis.nodes), "pairs": list(diagnosis.pairs),
        "message": diagnosis.message, "test": request.node.nodeid,
        **({"finding": finding.id} if finding is not None else {})})))
    if finding is not None:
        # JUnit pointer to the evidence: the finding's entry and its nodes' in the results JSON.
        props.append(("k8snet_finding", finding.id))
        props.append(("k8snet_evidence", f"{results or 'results JSON (--k8s-results)'}: "
                      f"findings[id={finding.id}]; " + ", ".join(
                          f"evidence.{n}" for n in finding.evidence_nodes)))
    pytest.fail(message, pytrace=False)


def judged(request: pytest.FixtureRequest, subject: str, **props: Any) -> None:
    """Apply the verdict the findings give this test for ``subject``."""
    __tracebackhide__ = True
    judgement: Judgement = request.getfixturevalue("k8s_judgement")
    verdict = judgement.verdict(request.node.originalname, subject)
    record(request, **props)
    if verdict.outcome == SKIPPED:
        pytest.skip(verdict.message)
    if verdict.outcome == PASSED and verdict.message:  # what a pass did not check, said
        request.node.user_properties.append(("k8snet_note", verdict.message))
    if verdict.outcome == FAILED:
        finding = judgement.finding(verdict.finding)
        assert finding is not None, verdict
        diagnosis = Diagnosis(finding.cause, verdict.message, finding.nodes, finding.pairs,
                              dict(finding.evidence))
        fail(request, diagnosis, verdict.raw or None, finding,
             request.config.stash[RUN_KEY].settings.results)


def judged_nodes(request: pytest.FixtureRequest, subject: str, **props: Any) -> None:
    """A node check's verdict on one node (with its JUnit ``props``), or (``all-nodes``:
    above --k8s-per-node-threshold) every node's verdict: failed listing its failing
    nodes by what is wrong, the failing nodes as JUnit properties."""
    __tracebackhide__ = True
    if subject != per_node.ALL_NODES:
        judged(request, subject, **props)
        return
    judgement: Judgement = request.getfixturevalue("k8s_judgement")
    doc: dict[str, Any] = request.getfixturevalue("k8s_document")
    cv = node_verdicts.cluster_verdict(judgement, request.node.originalname,
                                       [str(n) for n in doc.get("nodes") or ()])
    top = cv.groups(judgement)[0] if cv.failed else None
    summed(request, cv.outcome, cv.message(judgement), cv.properties(),
           (top[0], tuple(top[1]), top[0].pairs) if top else None)


def summed(request: pytest.FixtureRequest, outcome: str, message: str,
           props: list[tuple[str, str | int]],
           failing: tuple[Finding, tuple[str, ...], tuple[str, ...]] | None) -> None:
    """Apply a verdict summed over many subjects (a node's pairs, the cluster's nodes),
    its ``props`` and, failed, its top finding with the nodes and pairs it names."""
    __tracebackhide__ = True
    request.node.user_properties.extend(props)
    if outcome == SKIPPED:
        pytest.skip(message)
    if outcome == PASSED and message:  # what a pass did not check, said
        request.node.user_properties.append(("k8snet_note", message))
    if outcome == FAILED:
        assert failing is not None
        finding, nodes, pairs = failing
        fail(request, Diagnosis(finding.cause, message, nodes, pairs, dict(finding.evidence)),
             None, finding, request.config.stash[RUN_KEY].settings.results)


PEERS_KEY = pytest.StashKey[dict[str, list[str]]]()


def judged_pairs(request: pytest.FixtureRequest, doc: dict[str, Any], pair: Pair,
                 kind: str) -> None:
    """One pair's verdict, or (above --k8s-per-node-threshold, the pair being a node with
    itself) the verdicts of every pair from the node: failed listing its failing peers,
    the failing pairs as JUnit properties."""
    __tracebackhide__ = True
    src, dst = pair.src.node, pair.dst.node
    if not per_node.is_node_subject(src, dst):
        judged(request, pair.id, **_pair_props(doc, pair, kind))
        return
    judgement: Judgement = request.getfixturevalue("k8s_judgement")
    config = request.config
    if PEERS_KEY not in config.stash:  # once per run: every node's test reads it
        config.stash[PEERS_KEY] = node_verdicts.peers(doc.get("pairs") or [])
    nv = node_verdicts.node_verdict(judgement, request.node.originalname, src,
                                    config.stash[PEERS_KEY].get(src, []), pair.family)
    top = nv.findings(judgement)[0] if nv.failed else None
    summed(request, nv.outcome, nv.message(judgement) if nv.outcome != PASSED else "",
           nv.properties(judgement), (top[0], top[0].nodes, tuple(top[1])) if top else None)


def _pair_props(doc: dict[str, Any], pair: Pair, kind: str) -> dict[str, Any]:
    """The pair and the numbers of this test's own measurement; the pair's ping numbers and
    path MTU are added to every pair test by :func:`pytest_k8snet.report.junit.attach`,
    from the same document."""
    props: dict[str, Any] = {"src": pair.src.node, "dst": pair.dst.node, "network": "pod",
                             **({"family": pair.family} if pair.family else {})}
    e = pair_entry(doc, kind, pair.src.node, pair.dst.node, family=pair.family) \
        if kind != "ping" else {}
    if e and kind == "path_mtu":
        props.update(path_mtu=e.get("bytes"))
    elif e and kind == "throughput":
        props.update(throughput_mbps=round(float(e.get("mbps") or 0), 2),
                     loss_pct=e.get("loss_pct"))
    elif e and kind == "http":
        props.update(throughput_mbps=round(float(e.get("mbps") or 0), 1))
    return props


@per_node.cluster_wide
def test_nodes_ready(request: pytest.FixtureRequest, k8s_judgement: Judgement,
                     k8s_node_subject: str) -> None:
    """Every node Ready, its probe pods started; sandbox/CNI events surfaced."""
    judged_nodes(request, k8s_node_subject)


@per_node.per_node
def test_pod_ping(request: pytest.FixtureRequest, k8s_document: dict[str, Any],
                  pod_pair: Pair) -> None:
    """Pod to pod, small packets, every pair."""
    judged_pairs(request, k8s_document, pod_pair, "ping")


@per_node.per_node
def test_large_packets(request: pytest.FixtureRequest, k8s_document: dict[str, Any],
                       pod_pair: Pair) -> None:
    """1 MiB over HTTP between the pods of every pair."""
    judged_pairs(request, k8s_document, pod_pair, "http")


@per_node.cluster_wide
def test_large_packets_to_service(request: pytest.FixtureRequest, k8s_judgement: Judgement,
                                  k8s_node_subject: str) -> None:
    """1 MiB over HTTP from every node's pod through the Service, to every backend."""
    judged_nodes(request, k8s_node_subject, src=k8s_node_subject, dst="service",
                 network="pod")


@per_node.per_node
def test_path_mtu(request: pytest.FixtureRequest, k8s_document: dict[str, Any],
                  pod_pair: Pair) -> None:
    """Measured path MTU on every pair is at least the expected MTU."""
    judged_pairs(request, k8s_document, pod_pair, "path_mtu")


@per_node.per_node
def test_udp_8472(request: pytest.FixtureRequest, k8s_document: dict[str, Any],
                  pod_pair: Pair) -> None:
    """UDP throughput and loss across the overlay (VXLAN on UDP 8472 on the wire), iperf3;
    a suspect pair is measured again, longer, and only loss in every sample fails."""
    judged_pairs(request, k8s_document, pod_pair, "throughput")


@per_node.cluster_wide
def test_dns(request: pytest.FixtureRequest, k8s_judgement: Judgement,
             k8s_node_subject: str) -> None:
    """Cluster names and an external name resolve from every node's pod."""
    judged_nodes(request, k8s_node_subject)


@per_node.cluster_wide
def test_service(request: pytest.FixtureRequest, k8s_judgement: Judgement,
                 k8s_node_subject: str) -> None:
    """Pod to Service from every node, repeated, so both local and remote backends answer."""
    judged_nodes(request, k8s_node_subject, src=k8s_node_subject, dst="service",
                 network="pod")


@per_node.cluster_wide
def test_egress(request: pytest.FixtureRequest, k8s_judgement: Judgement,
                k8s_node_subject: str) -> None:
    """Repeated egress connections: the failure rate from the pod versus the host network."""
    judged_nodes(request, k8s_node_subject, src=k8s_node_subject, dst="egress",
                 network="pod")


@per_node.cluster_wide
def test_node_sysctls(request: pytest.FixtureRequest, k8s_judgement: Judgement,
                      k8s_node_subject: str) -> None:
    """net.ipv4.ip_forward and net.bridge.bridge-nf-call-iptables on every node."""
    judged_nodes(request, k8s_node_subject)


@per_node.cluster_wide
def test_pod_cidr(request: pytest.FixtureRequest, k8s_judgement: Judgement,
                  k8s_node_subject: str) -> None:
    """The Pod CIDR (and Service CIDR) do not overlap the node's addresses."""
    judged_nodes(request, k8s_node_subject)


@per_node.cluster_wide
def test_control_plane_ports(request: pytest.FixtureRequest, k8s_judgement: Judgement,
                             k8s_node_subject: str) -> None:
    """From every node's host network: the API server (6443), every other node's kubelet
    (10250) and etcd (2379-2380), the cluster DNS over UDP and TCP 53. A port nothing
    listens on is said and skipped; only a connect that times out fails (incident 1)."""
    judged_nodes(request, k8s_node_subject)


@per_node.cluster_wide
def test_nodeport(request: pytest.FixtureRequest, k8s_judgement: Judgement,
                  k8s_node_subject: str) -> None:
    """The probe Service's NodePort on this node's address, from every other node's host
    network (TCP connect and a small HTTP GET; never localhost, which kube-proxy's nftables
    mode does not answer): a firewall that closes 30000-32767 fails it."""
    judged_nodes(request, k8s_node_subject)


def _tie_to_the_judge() -> None:
    """Refuse to load when a test here has no check in the judge, or a check no test."""
    tests = {name for name, obj in globals().items()
             if name.startswith("test_") and callable(obj)}
    checks = {c.name for c in CHECKS}
    if tests != checks:
        raise RuntimeError(
            "the suite and the judge's checks differ: tests without a check: "
            f"{sorted(tests - checks) or 'none'}; checks without a test: "
            f"{sorted(checks - tests) or 'none'} (pytest_k8snet.judge.checks.CHECKS)")


_tie_to_the_judge()
