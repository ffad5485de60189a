"""The judge's verdicts summed up for a test above ``--k8s-per-node-threshold``
(:mod:`pytest_k8snet.per_node`): every pair from one node for a pair test, every node for
a node test; its outcome, its failing subjects by finding, its JUnit properties. Their
messages name the suite's tests by the ids such a run has (``test_pod_ping[node-2]``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..gcpause import no_cyclic_gc
from ..per_node import ALL_NODES, TEST_ID, retarget
from .model import FAILED, PASSED, SKIPPED, Finding, Judgement, Verdict

# Failing peers named in a test's message; JUnit gets every failing pair as a property.
LISTED = 12


@dataclass(frozen=True)
class Summed:
    """Every verdict of one test on many subjects, summed up: failed when any fails,
    passed when any passes and none fails, skipped when all skip."""

    test: str
    outcome: str
    passed: int
    failed: tuple[Verdict, ...]
    skipped: tuple[Verdict, ...]

    @property
    def total(self) -> int:
        return self.passed + len(self.failed) + len(self.skipped)

    def findings(self, judgement: Judgement) -> list[tuple[Finding, list[str]]]:
        """The findings behind the failing subjects, the one with the most first, each with
        its subjects."""
        by: dict[str, list[str]] = {}
        for v in self.failed:
            by.setdefault(str(v.finding), []).append(v.subject)
        out = [(f, subjects) for fid, subjects in by.items()
               if (f := judgement.finding(fid)) is not None]
        return sorted(out, key=lambda fs: -len(fs[1]))

    def _skip_reasons(self) -> str:
        reasons = sorted({retarget(v.message.partition(": ")[2] or v.message)
                          for v in self.skipped})
        return "; ".join(reasons[:3]) + (" ..." if len(reasons) > 3 else "")

    def _listing(self, judgement: Judgement, prefix: str, name: Callable[[str], str]) -> str:
        """One line per finding: its subjects (by ``name``, the first :data:`LISTED`) and
        its message; then how many skipped, when some also failed."""
        parts = []
        for f, subjects in self.findings(judgement):
            parts.append(f"{prefix}{_shown([name(s) for s in subjects])}: "
                         f"{retarget(f.message)}")
        if self.skipped and self.failed:
            parts.append(f"{len(self.skipped)} skipped")
        return "\n" + "\n".join(parts) if parts else ""


def _shown(names: list[str]) -> str:
    """The first :data:`LISTED` of ``names``, then how many more."""
    return ", ".join(names[:LISTED]) + (
        f" and {len(names) - LISTED} more" if len(names) > LISTED else "")


def _sum(verdicts: Iterable[Verdict]) -> tuple[str, int, tuple[Verdict, ...],
                                                  tuple[Verdict, ...]]:
    passed, failed, skipped = 0, [], []
    for v in verdicts:
        if v.outcome == FAILED:
            failed.append(v)
        elif v.outcome == PASSED:
            passed += 1
        else:
            skipped.append(v)
    outcome = FAILED if failed else PASSED if passed else SKIPPED
    return outcome, passed, tuple(failed), tuple(skipped)


@dataclass(frozen=True)
class NodeVerdict(Summed):
    """Every verdict of one test on the pairs from one node, summed up."""

    node: str = ""
    family: str | None = None  # on a dual-stack cluster: the family of these pairs

    @property
    def label(self) -> str:
        """The node as its test's id names it (``node-17``, ``node-17/ipv6``)."""
        return f"{self.node}/{self.family}" if self.family else self.node

    @property
    def pairs(self) -> int:
        return self.total

    def message(self, judgement: Judgement) -> str:
        """``node-17: 20 of 999 pairs fail: to node-41, node-42 ... (finding)``."""
        if self.outcome == SKIPPED:
            return f"{self.label}: all {self.pairs} pairs from it skipped: " \
                + self._skip_reasons()
        head = (f"{self.label}: {len(self.failed)} of {self.pairs} pairs from it fail"
                if self.failed else f"{self.label}: {self.passed} of {self.pairs} pairs pass")
        return head + self._listing(
            judgement, "to ", lambda pair: pair.partition("->")[2].partition("/")[0])

    def properties(self, judgement: Judgement) -> list[tuple[str, str | int]]:
        """JUnit properties: the counts, then one ``failing_pair`` per failing pair with
        the finding it fails on."""
        props: list[tuple[str, str | int]] = [
            ("src", self.node), ("network", "pod"),
            *((("family", self.family),) if self.family else ()), ("pairs", self.pairs),
            ("pairs_passed", self.passed), ("pairs_failed", len(self.failed)),
            ("pairs_skipped", len(self.skipped))]
        props += [("failing_pair", f"{v.subject} {v.finding}") for v in self.failed]
        return props


@dataclass(frozen=True)
class ClusterVerdict(Summed):
    """Every node's verdict of one node check, summed up for its one cluster-wide test."""

    def groups(self, judgement: Judgement) -> list[tuple[Finding, list[str], str]]:
        """The failing nodes grouped by what is wrong, the largest group first: findings of
        one cause whose messages differ only in the node's name (``bridge-nf:node-5`` and
        ``bridge-nf:node-7``) are one group. Each: its first finding, its nodes, the
        message with the node's name taken out."""
        by: dict[tuple[str, str], tuple[Finding, list[str], str]] = {}
        for f, subjects in self.findings(judgement):
            for node in subjects:
                text = _without(f.message, node)
                # the tests it points to ("see test_dns[node-5]") may differ by node
                key = (f.cause, TEST_ID.sub(r"\1", text))
                by.setdefault(key, (f, [], text))[1].append(node)
        return sorted(by.values(), key=lambda g: -len(g[1]))

    def message(self, judgement: Judgement) -> str:
        """``2 of 1000 nodes fail\nnode-4, node-9: (what is wrong)``; a pass names the
        nodes that skipped, since they were not checked."""
        if self.outcome == SKIPPED:
            return f"all {self.total} nodes skipped: " + self._skip_reasons()
        if not self.failed:
            if not self.skipped:
                return ""
            return (f"{self.passed} of {self.total} nodes pass; "
                    f"{len(self.skipped)} skipped: " + self._skip_reasons())
        lines = [f"{len(self.failed)} of {self.total} nodes fail"]
        groups = self.groups(judgement)
        for _, nodes, text in groups[:LISTED]:
            lines.append(f"{_shown(nodes)}: {retarget(text)}")
        if len(groups) > LISTED:
            lines.append(f"and {len(groups) - LISTED} more kinds of failure (JUnit "
                         "failing_node properties, the results file's findings)")
        if self.skipped:
            lines.append(f"{len(self.skipped)} skipped")
        return "\n".join(lines)

    def properties(self) -> list[tuple[str, str | int]]:
        """JUnit properties: the counts, then one ``failing_node`` per failing node with
        the finding it fails on."""
        props: list[tuple[str, str | int]] = [
            ("nodes", self.total), ("nodes_passed", self.passed),
            ("nodes_failed", len(self.failed)), ("nodes_skipped", len(self.skipped))]
        props += [("failing_node", f"{v.subject} {v.finding}") for v in self.failed]
        return props


def _without(message: str, node: str) -> str:
    """``message`` without ``node``'s name: a leading ``node: `` dropped, any other mention
    said as "the node", but not inside a test id (``test_dns[node-5]``)."""
    text = message[len(node) + 2:] if message.startswith(f"{node}: ") else message
    return re.sub(rf"(?<![\w\-\[>]){re.escape(node)}(?![\w\-\]/])", "the node", text)


def peers(pairs: Iterable[str]) -> dict[str, list[str]]:
    """Each source node's destinations among the run's pairs (``node-1->node-2``)."""
    out: dict[str, list[str]] = {}
    for pid in pairs:
        a, _, b = pid.partition("->")
        out.setdefault(a, []).append(b)
    return out


def node_verdict(judgement: Judgement, test: str, node: str,
                 others: Iterable[str], family: str | None = None) -> NodeVerdict:
    """The verdicts of ``test`` on every pair from ``node`` to ``others`` (the run's pairs
    from it; on a dual-stack cluster those of ``family``, whose subjects end ``/family``):
    failed when any fails, passed when any passes and none fails, skipped when all skip."""
    if test not in judgement.checks:
        judgement.verdict(test, node)  # raises: no check judges it
    # The judgement's dict directly: a thousand nodes ask for a million pairs per test.
    get = judgement.verdicts.get
    suffix = f"/{family}" if family else ""
    subjects = (f"{node}->{other}{suffix}" for other in others if other != node)
    # missing: the judgement's verdict for it (skipped)
    summed = _sum(get((test, s)) or judgement.verdict(test, s) for s in subjects)
    return NodeVerdict(test, *summed, node=node, family=family)


def cluster_verdict(judgement: Judgement, test: str, nodes: Iterable[str]) -> ClusterVerdict:
    """The verdicts of the node check ``test`` on every one of ``nodes``, summed up."""
    return ClusterVerdict(test, *_sum(judgement.verdict(test, n) for n in nodes))


def outcomes(judgement: Judgement, doc: dict[str, Any], pair_tests: Iterable[str],
             node_tests: Iterable[str], cluster_tests: Iterable[str] = (),
             nodeid: str = "test_network.py::{test}[{subject}]") -> dict[str, str]:
    """What a per-node run's tests come out as, by test id: the pair tests per node, the
    node tests as they are, the cluster-wide ones once (``all-nodes``) (for reports
    measured without pytest: benchmarks)."""
    with no_cyclic_gc():  # four million verdicts read at 1,000 nodes
        return _outcomes(judgement, doc, pair_tests, node_tests, cluster_tests, nodeid)


def _outcomes(judgement: Judgement, doc: dict[str, Any], pair_tests: Iterable[str],
              node_tests: Iterable[str], cluster_tests: Iterable[str],
              nodeid: str) -> dict[str, str]:
    out: dict[str, str] = {}
    nodes, by_src = list(doc.get("nodes") or []), peers(doc.get("pairs") or [])
    fams: list[str | None] = list(doc.get("families") or [])
    if len(fams) < 2:
        fams = [None]
    for test in pair_tests:
        for fam in fams:
            for n in nodes:
                subject = f"{n}/{fam}" if fam else n
                out[nodeid.format(test=test, subject=subject)] = node_verdict(
                    judgement, test, n, by_src.get(n, []), fam).outcome
    whole = set(cluster_tests)
    for test in node_tests:
        if test in whole:
            out[nodeid.format(test=test, subject=ALL_NODES)] = cluster_verdict(
                judgement, test, nodes).outcome
            continue
        for n in nodes:
            out[nodeid.format(test=test, subject=n)] = judgement.verdict(test, n).outcome
    return out
