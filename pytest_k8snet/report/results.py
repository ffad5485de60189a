"""The results document, built once per run, and the run report every report reads.

Every report (terminal, HTML, the results file ``--k8s-results``, the baseline
comparison) renders the same document (schema: :mod:`pytest_k8snet.report.schema`), built
from the run's measurement document and its one judgement, the diagnoses and the test
outcomes, all read from the run's :class:`~pytest_k8snet.report.facts.RunFacts`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .. import __version__
from ..gcpause import no_cyclic_gc
from ..measure.document import sections
from .baseline import BaselineError, Comparison, compare, load, nothing_compared
from .facts import RunFacts
from .schema import SCHEMA, VERSION
from .stream import write_results
from .view import ClusterView, natural_key

REPORT_KEY = pytest.StashKey["RunReport"]()
# The sections that hold what probes measured (the rest say what, where and why).
MEASURED = ("ping", "path_mtu", "throughput", "http", "dns", "egress", "service",
            "node_checks", "ports", "nodeports")


def _node_names(m: dict[str, Any]) -> list[str]:
    """The nodes a run without a document measured, from its caches' keys."""
    names: set[str] = set()
    for kind, value in m.items():
        if not isinstance(value, dict):
            continue
        for key in value:
            if isinstance(key, tuple) and kind != "egress":
                names.update(str(k) for k in key)
            elif isinstance(key, tuple):
                names.add(str(key[0]))
            elif isinstance(key, str):
                names.add(key)
    return sorted(names, key=natural_key)


def build(facts: RunFacts, args: list[str]) -> dict[str, Any]:
    """The results document (see the module docstring for its schema); ``args`` are
    pytest's arguments."""
    doc: dict[str, Any] = {
        "schema": SCHEMA, "version": VERSION, "plugin_version": __version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(facts.started)),
        "duration_s": round(time.time() - facts.started, 2),
        "cluster": facts.identity(), "options": facts.settings.as_dict(), "args": args,
        "nodes": [], "expected_mtu": None,
        "ping": [], "path_mtu": [], "throughput": [], "http": [], "dns": [], "egress": [],
        "service": [], "node_checks": [], "diagnoses": [], "tests": dict(facts.outcomes),
        "baseline": None,
    }
    for d in facts.diagnoses:
        doc["diagnoses"].append({"cause": d.get("cause", "unknown"),
                                 "nodes": list(d.get("nodes", [])),
                                 "pairs": list(d.get("pairs", [])),
                                 "message": d.get("message", ""),
                                 **{k: v for k, v in d.items()
                                    if k not in ("cause", "nodes", "pairs", "message")}})
    measured, judgement = facts.measured()
    if measured is not None:
        # The run's measurement document (what the tests were judged on) is the source,
        # and its one judgement the verdicts every report colours from.
        doc.update({k: v for k, v in measured.items() if k not in ("nodes", "expected_mtu")})
        doc["nodes"] = list(measured.get("nodes") or [])
        doc["expected_mtu"] = measured.get("expected_mtu")
        if judgement is not None:
            doc["findings"] = [f.as_dict() for f in judgement.findings]
            with no_cyclic_gc():  # four million verdicts at 1,000 nodes
                doc["verdicts"] = [v.as_dict() for v in judgement.verdicts.values()]
    elif facts.outcomes:
        # User tests measured on their own (no document): shown, not judged. A run that
        # stopped before any test reported (interrupted while measuring) shows none: its
        # caches are a measurement phase cut short that no test ever looked at.
        m = facts.raw_measurements()
        doc.update(sections(m))
        doc["nodes"] = _node_names(m)
        doc["expected_mtu"] = m.get("expected-mtu")
    return doc


# -- the run report -------------------------------------------------------------------------

@dataclass
class RunReport:
    """What the reports show: the results document and, with a baseline, the comparison."""

    doc: dict[str, Any]
    comparison: Comparison | None = None
    baseline_error: str | None = None
    notes: list[str] = field(default_factory=list)
    written_to: Path | None = None  # the results file, once written (absolute)
    _view: ClusterView | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def view(self) -> ClusterView:
        """The document indexed once for every report: at 1,000 nodes the index is two
        million cells, built once, not once per report."""
        if self._view is None or self._view.doc is not self.doc:
            self._view = ClusterView(self.doc)
        return self._view

    @property
    def regressions(self) -> int:
        return len(self.comparison.regressions) if self.comparison is not None else 0

    @property
    def fails_run(self) -> bool:
        return self.regressions > 0 or self.baseline_error is not None

    @property
    def has_measurements(self) -> bool:
        """Whether any probe measured anything (False: the probes never ran, or the run
        stopped first; the reports then show no matrix and no count)."""
        return any(self.doc.get(k) for k in MEASURED)

    @property
    def has_cluster_data(self) -> bool:
        return self.has_measurements or bool(self.doc["diagnoses"])


def run_report(config: pytest.Config, facts: RunFacts) -> RunReport:
    """Built once, at the end of the run (controller side); every report shares it."""
    cached = config.stash.get(REPORT_KEY, None)
    if cached is not None:
        return cached
    report = RunReport(build(facts, [str(a) for a in config.invocation_params.args]))
    settings = facts.settings
    if settings.baseline:
        try:
            before = load(settings.baseline)
        except BaselineError as exc:
            report.baseline_error = str(exc)
        else:
            if report.has_cluster_data:
                report.comparison = compare(before, report.doc, settings.baseline_tolerance,
                                            path=settings.baseline)
                report.doc["baseline"] = report.comparison.as_dict()
            else:
                report.notes.append("no cluster measurements in this run: nothing compared "
                                    "with the baseline")
            # A baseline comparison that compared nothing must not pass as "no regressions".
            why = nothing_compared(report.comparison, settings.baseline)
            if why:
                report.baseline_error = why
    config.stash[REPORT_KEY] = report
    return report


def written_to(config: pytest.Config) -> Path | None:
    """The results file this run wrote (absolute), None when it wrote none."""
    report = config.stash.get(REPORT_KEY, None)
    return None if report is None else report.written_to


def finish(session: pytest.Session, facts: RunFacts) -> None:
    """Controller side: write the results file; regressions make the run fail."""
    if facts.worker is not None:
        return
    report = run_report(session.config, facts)
    if facts.settings.results:
        path = Path(facts.settings.results)
        write_results(report.doc, path)
        report.written_to = path.resolve()
    if report.fails_run and session.exitstatus in (pytest.ExitCode.OK,
                                                   pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
