"""What the judge hands out: findings (causes), verdicts (one per suite test and subject),
the judgement that holds both, and the diagnosis a failing test reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .causes import CAUSES, FIX_DEFAULTS, KNOCK_ON_FIX, ipv6_words

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
EVIDENCE_MAX_NODES = 6


def _cause_entry(cause: str) -> tuple[str, str, str]:
    return CAUSES.get(cause, CAUSES["unknown"])


@dataclass(frozen=True)
class Finding:
    """One cause (or one honest "don't know") and everything it covers."""

    id: str
    cause: str
    summary: str
    nodes: tuple[str, ...] = ()
    pairs: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    contradicting: tuple[str, ...] = ()  # measured facts that disagree (then: inconclusive)
    would_contradict: tuple[str, ...] = ()  # what, if measured, would refute the cause
    root: str | None = None  # the finding this one is a knock-on of
    fix_args: tuple[tuple[str, Any], ...] = ()
    # Where a located fault is, when the measurements say: ``protocol`` icmp, tcp, udp or
    # all; ``port`` "8080" or "5201-5209"; ``mode`` drop (timeouts), reject (refused, reset,
    # unreachable), loss (some packets) or route (no route); ``direction`` in, out or both,
    # as seen from the finding's nodes.
    protocol: str | None = None
    port: str | None = None
    mode: str | None = None
    direction: str | None = None
    # The IP family of a dual-stack cluster the finding is about (judge.family); None on a
    # single-family cluster, whose findings say nothing of families.
    family: str | None = None

    @property
    def title(self) -> str:
        return _cause_entry(self.cause)[0]

    @property
    def fix(self) -> str:
        args = {**FIX_DEFAULTS, **dict(self.fix_args)}
        if self.root is not None and "root" in dict(self.fix_args):
            # A knock-on's own cause's fix would send a person to the wrong place.
            return KNOCK_ON_FIX.format(**args)
        text = ipv6_words(_cause_entry(self.cause)[1].format(**args), self.family)
        return text[:1].upper() + text[1:]

    @property
    def incidents(self) -> str:
        return _cause_entry(self.cause)[2]

    @property
    def message(self) -> str:
        """``summary. Fix (incidents N).`` plus what contradicts, when anything does."""
        text = self.summary.rstrip(".")
        if self.contradicting:
            text += ". Contradicting: " + "; ".join(self.contradicting)
        inc = self.incidents
        return f"{text}. {self.fix}" + (
            f" (incidents {inc})." if "," in inc else f" (incident {inc})." if inc else ".")

    @property
    def evidence_nodes(self) -> tuple[str, ...]:
        """Where to look: the finding's nodes, else both ends of its pairs."""
        if self.nodes:
            return self.nodes
        out: list[str] = []
        for p in self.pairs:
            out += [n for n in p.split("->", 1) if n not in out]
        return tuple(out)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "cause": self.cause, "title": self.title,
                "summary": self.summary, "message": self.message, "fix": self.fix,
                "nodes": list(self.nodes), "pairs": list(self.pairs), "checks": list(self.checks),
                "evidence": self.evidence, "contradicting": list(self.contradicting),
                "would_contradict": list(self.would_contradict), "root": self.root,
                "evidence_nodes": list(self.evidence_nodes), "protocol": self.protocol,
                "port": self.port, "mode": self.mode, "direction": self.direction,
                **({"family": self.family} if self.family else {})}


@dataclass(frozen=True)
class Verdict:
    """What one suite test does for one subject (``node-1->node-2`` or ``node-1``)."""

    test: str
    subject: str
    outcome: str  # passed, failed, skipped
    message: str = ""
    finding: str | None = None
    raw: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"test": self.test, "subject": self.subject, "outcome": self.outcome,
                "message": self.message, "finding": self.finding, "raw": self.raw}


@dataclass(frozen=True)
class Judgement:
    """Every finding and verdict of one document; ``checks`` names the suite tests judged."""

    findings: tuple[Finding, ...]
    verdicts: dict[tuple[str, str], Verdict]
    checks: tuple[str, ...]

    def finding(self, fid: str | None) -> Finding | None:
        return next((f for f in self.findings if f.id == fid), None)

    def verdict(self, test: str, subject: str) -> Verdict:
        """The verdict for ``test`` on ``subject``; a subject the run did not measure skips.

        A test name no check judges raises: a renamed suite test would otherwise skip as
        "not measured" everywhere and pass the run without anyone noticing.
        """
        if test not in self.checks:
            raise ValueError(f"no check judges {test!r}; the registered checks are "
                             + ", ".join(self.checks))
        v = self.verdicts.get((test, subject))
        if v is not None:
            return v
        return Verdict(test, subject, SKIPPED, f"{subject}: not measured in this run's "
                       "measurement phase (not a selected node or pair)")

    def evidence_nodes(self, limit: int = EVIDENCE_MAX_NODES) -> list[str]:
        """The nodes worth looking at: those of every finding that fails a test (not its
        knock-ons, not a probe's own failure, not a probe image that never started: no
        command runs there), finding by finding, at most ``limit``."""
        nodes: list[str] = []
        for f in self.findings:
            if f.root is not None or f.cause in ("probe-failure", "image-pull"):
                continue
            nodes += [n for n in f.evidence_nodes if n not in nodes]
        return nodes[:limit]


@dataclass(frozen=True)
class Diagnosis:
    """One likely cause for one failure; ``message`` is what a person reads."""

    cause: str
    message: str
    nodes: tuple[str, ...] = ()
    pairs: tuple[str, ...] = ()
    evidence: dict[str, object] = field(default_factory=dict, compare=False, hash=False)
