"""The judge's verdicts of every pair from one node, summed up for a per-node test
(``--k8s-per-node-threshold``, :mod:`pytest_k8snet.per_node`): its outcome, its failing
peers by finding, its JUnit properties."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..gcpause import no_cyclic_gc
from .model import FAILED, PASSED, SKIPPED, Finding, Judgement, Verdict

# Failing peers named in a test's message; JUnit gets every failing pair as a property.
LISTED = 12


@dataclass(frozen=True)
class NodeVerdict:
    """Every verdict of one test on the pairs from one node, summed up."""

    test: str
    node: str
    outcome: str
    passed: int
    failed: tuple[Verdict, ...]
    skipped: tuple[Verdict, ...]
    family: str | None = None  # on a dual-stack cluster: the family of these pairs

    @property
    def label(self) -> str:
        """The node as its test's id names it (``node-17``, ``node-17/ipv6``)."""
        return f"{self.node}/{self.family}" if self.family else self.node

    @property
    def pairs(self) -> int:
        return self.passed + len(self.failed) + len(self.skipped)

    def findings(self, judgement: Judgement) -> list[tuple[Finding, list[str]]]:
        """The findings behind the failing pairs, the one with the most pairs first, each
        with its pairs from this node."""
        by: dict[str, list[str]] = {}
        for v in self.failed:
            by.setdefault(str(v.finding), []).append(v.subject)
        out = [(f, pairs) for fid, pairs in by.items()
               if (f := judgement.finding(fid)) is not None]
        return sorted(out, key=lambda fp: -len(fp[1]))

    def message(self, judgement: Judgement) -> str:
        """``node-17: 20 of 999 pairs fail: to node-41, node-42 ... (finding)``."""
        if self.outcome == SKIPPED:
            reasons = sorted({v.message.partition(": ")[2] or v.message for v in self.skipped})
            return (f"{self.label}: all {self.pairs} pairs from it skipped: "
                    + "; ".join(reasons[:3]) + (" ..." if len(reasons) > 3 else ""))
        head = (f"{self.label}: {len(self.failed)} of {self.pairs} pairs from it fail"
                if self.failed else f"{self.label}: {self.passed} of {self.pairs} pairs pass")
        parts = []
        for f, pairs in self.findings(judgement):
            peers = [p.partition("->")[2].partition("/")[0] for p in pairs]
            shown = ", ".join(peers[:LISTED]) + (
                f" and {len(peers) - LISTED} more" if len(peers) > LISTED else "")
            parts.append(f"to {shown}: {f.message}")
        if self.skipped and self.failed:
            parts.append(f"{len(self.skipped)} skipped")
        return head + ("\n" + "\n".join(parts) if parts else "")

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
    passed, failed, skipped = 0, [], []
    suffix = f"/{family}" if family else ""
    for other in others:
        if other == node:
            continue
        subject = f"{node}->{other}{suffix}"
        v = get((test, subject)) or judgement.verdict(test, subject)  # missing: skipped
        if v.outcome == FAILED:
            failed.append(v)
        elif v.outcome == PASSED:
            passed += 1
        else:
            skipped.append(v)
    outcome = FAILED if failed else PASSED if passed else SKIPPED
    return NodeVerdict(test, node, outcome, passed, tuple(failed), tuple(skipped), family)


def outcomes(judgement: Judgement, doc: dict[str, Any], pair_tests: Iterable[str],
             node_tests: Iterable[str], nodeid: str = "test_network.py::{test}[{subject}]"
             ) -> dict[str, str]:
    """What a per-node run's tests come out as, by test id: the pair tests per node and
    the node tests as they are (for reports measured without pytest: benchmarks)."""
    with no_cyclic_gc():  # four million verdicts read at 1,000 nodes
        return _outcomes(judgement, doc, pair_tests, node_tests, nodeid)


def _outcomes(judgement: Judgement, doc: dict[str, Any], pair_tests: Iterable[str],
              node_tests: Iterable[str], nodeid: str) -> dict[str, str]:
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
    for test in node_tests:
        for n in nodes:
            out[nodeid.format(test=test, subject=n)] = judgement.verdict(test, n).outcome
    return out
