"""What the judge tests on benchmark documents share: the root findings of a judgement."""

from __future__ import annotations

from pytest_k8snet.judge import FAILED, Finding, Judgement


def roots(j: Judgement) -> list[Finding]:
    """The findings at the end of the root chain of every failed verdict: what a person is
    told to fix (knock-ons count inside their root)."""
    out: dict[str, Finding] = {}
    for v in j.verdicts.values():
        f = j.finding(v.finding) if v.outcome == FAILED else None
        while f is not None and f.root is not None:
            f = j.finding(f.root)
        if f is not None:
            out[f.id] = f
    return list(out.values())
