"""The judge: a pure function from one measurement document to findings and verdicts.

A finding names a cause only when every measurement it rests on agrees with it; where
measurements disagree it is ``inconclusive`` and says what is known and what contradicts.
Partial loss is ``lossy``, never a blocked port. A probe that failed for a reason of its
own (tool missing, exec error, interrupted, its own timeout) is ``probe-failure``, never a
network cause. A failure that another finding explains (DNS whose endpoints all sit behind
a failed pair) is a knock-on: it names that finding (``root``) and its test skips.

Nothing here measures or reads the clock: the same document always gives the same
findings and the same text, whichever tests run, in whatever order, in whichever worker.
"""

from __future__ import annotations

from typing import Any

from ..gcpause import no_cyclic_gc
from .causes import CAUSES
from .checks import CHECKS
from .context import Context
from .family import judge_families
from .model import FAILED, PASSED, SKIPPED, Diagnosis, Finding, Judgement, Verdict

__all__ = ["CAUSES", "FAILED", "PASSED", "SKIPPED", "Diagnosis", "Finding", "Judgement",
           "Verdict", "judge"]


def judge(doc: dict[str, Any]) -> Judgement:
    """Findings and verdicts for a measurement document: every check, in order, over one
    context; a dual-stack document once per IP family (:mod:`.family`)."""
    with no_cyclic_gc():  # millions of verdicts at 1,000 nodes, no cycles
        return judge_families(doc, _judge_one)


def _judge_one(doc: dict[str, Any]) -> Judgement:
    ctx = Context(doc)
    for check in CHECKS:
        check.judge(ctx)
    return Judgement(tuple(ctx.findings.values()), dict(ctx.verdicts),
                     tuple(c.name for c in CHECKS))
