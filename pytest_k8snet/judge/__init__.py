"""The judge: a pure function from one measurement document to findings and verdicts."""

from .causes import CAUSES, Diagnosis
from .rules import FAILED, PASSED, SKIPPED, Finding, Judgement, Verdict, judge

__all__ = ["CAUSES", "FAILED", "PASSED", "SKIPPED", "Diagnosis", "Finding", "Judgement",
           "Verdict", "judge"]
