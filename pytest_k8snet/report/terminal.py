"""The short cluster summary at the end of a run: text matrices, diagnoses, baseline.

Cells show the numbers: the loss when any ping was lost (``15%``), else the path MTU
(pod network; ``!`` when test_path_mtu failed on the pair) or the round trip in ms (host
network); ``.`` marks a pair that was not measured and ``-`` the diagonal. Whether a pair
fails is the run's judgement (its colour, and the counts under the matrices), never the
numbers: a loss below ``--k8s-loss-threshold`` is shown, not failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..gcpause import no_cyclic_gc
from ..judge import FAILED
from ..judge.checks import path_mtu
from ..text import shorten
from .baseline import KIND_TITLES
from .detected import detected_lines
from .facts import RunFacts
from .results import RunReport, run_report
from .families import family_docs, titled
from .view import FAIL, PASS, ClusterView, PairCell, causes_count, cluster_line, listed

MAX_MATRIX_NODES = 12
Piece = tuple[str, dict[str, bool]]
MAX_LISTED = 20


class Writer(Protocol):
    """The part of pytest's TerminalReporter this module uses."""

    def section(self, title: str, sep: str = ..., **markup: bool) -> None: ...

    def write(self, content: str, *, flush: bool = ..., **markup: bool) -> None: ...

    def write_line(self, line: str | bytes, **markup: bool) -> None: ...

    def line(self, msg: str, **kw: bool) -> None: ...


def _markup(cell: PairCell) -> dict[str, bool]:
    """Red or green as judged; no colour when not judged."""
    return {FAIL: {"red": True}, PASS: {"green": True}}.get(cell.status, {})


def pod_cell_text(cell: PairCell | None) -> tuple[str, dict[str, bool]]:
    """Text and markup for a pod-network cell: the loss when pings lost any, else the path
    MTU, else ``ok`` (``FAIL`` when a test failed on the pair); coloured as judged."""
    if cell is None or not cell.measured:
        return ".", {}
    if cell.ping is not None and (cell.loss_pct or 0) > 0:
        return f"{cell.loss_pct:g}%", _markup(cell)
    if cell.path_mtu is not None:
        mark = "!" if cell.outcome(path_mtu.NAME) == FAILED else ""
        return f"{cell.path_mtu}{mark}", _markup(cell)
    return ("FAIL" if cell.status == FAIL else "ok"), _markup(cell)


def host_cell_text(cell: PairCell | None) -> tuple[str, dict[str, bool]]:
    """Host-network cell: the loss when pings lost any, else the round trip in ms."""
    if cell is None or cell.ping is None:
        return ".", {}
    if (cell.loss_pct or 0) > 0:
        return f"{cell.loss_pct:g}%", _markup(cell)
    rtt = cell.rtt_ms
    return (f"{rtt:.2f}" if rtt is not None else "ok"), _markup(cell)


def matrix_rows(names: list[str], texts: dict[tuple[str, str], tuple[str, dict[str, bool]]]
                ) -> list[list[tuple[str, dict[str, bool]]]]:
    """Rows of (text, markup) pieces, right-aligned in columns as wide as the widest entry."""
    width = max([len(n) for n in names] + [len(t) for t, _ in texts.values()] + [4])
    header: list[Piece] = [(" " * (width + 1), {})]
    rows: list[list[Piece]] = [header + [(f" {n:>{width}}", {}) for n in names]]
    for a in names:
        row: list[Piece] = [(f"{a:<{width}} ", {})]
        for b in names:
            text, markup = ("-", {}) if a == b else texts.get((a, b), (".", {}))
            row += [(" ", {}), (f"{text:>{width}}", markup)]
        rows.append(row)
    return rows


def matrix_lines(names: list[str], cell: dict[tuple[str, str], str]) -> list[str]:
    """The matrix as plain lines (no colors)."""
    empty: dict[str, bool] = {}
    texts = {k: (v, empty) for k, v in cell.items()}
    return ["".join(t for t, _ in row) for row in matrix_rows(names, texts)]


def _write_matrix(tr: Writer, title: str, view: ClusterView, network: str) -> None:
    texts: dict[tuple[str, str], tuple[str, dict[str, bool]]] = {}
    fmt = pod_cell_text if network == "pod" else host_cell_text
    for a in view.nodes:
        for b in view.nodes:
            if a != b:
                texts[(a, b)] = fmt(view.cell(network, a, b))
    tr.write_line(title)
    for row in matrix_rows(view.nodes, texts):
        tr.write("  ")
        for text, markup in row:
            tr.write(text, **markup)
        tr.line("")


def network_counts(view: ClusterView, network: str) -> str:
    """``pod network: 6 pairs probed, 1 failing``; ``not judged`` without verdicts."""
    probed, failing = view.counts(network)
    if view.judged:
        return f"{network} network: {probed} pairs probed, {failing} failing"
    return (f"{network} network: {probed} pairs probed, not judged (no measurement document)"
            + (f"; tests failed on {failing}" if failing else ""))


def _write_cluster(tr: Writer, view: ClusterView, measured: bool = True) -> None:
    doc = view.doc
    line = cluster_line(doc)
    if not measured:
        # No matrix and no count: they would show pairs as probed that no probe reached.
        # Why is the diagnoses' to say, once.
        tr.write_line(f"{line}: nothing measured", yellow=True, bold=True)
        return
    if view.expected_mtu:
        line += f"; expected MTU {view.expected_mtu}" + mtu_source(doc.get("expected_mtu_source"))
    tr.write_line(line)
    for text in detected_lines(doc):
        tr.write_line(text)
    # One pair of matrices per IP family on a dual-stack run (report.families).
    views = [(fam, ClusterView(d) if fam else view) for fam, d in family_docs(view.doc)]
    for fam, fview in views:
        _write_networks(tr, fview, fam)


def _write_networks(tr: Writer, view: ClusterView, fam: str | None) -> None:
    networks = [n for n in ("pod", "host") if view.has_network(n)]
    small = len(view.nodes) <= MAX_MATRIX_NODES
    for network in networks:
        if small and network == "pod":
            _write_matrix(tr, titled("pod network", fam) + " (path MTU, or ok; loss % when "
                          "pings lost any; ! path MTU judged below the expected):", view, "pod")
        elif small:
            _write_matrix(tr, titled("host network", fam) + " (rtt ms; loss % when pings "
                          "lost any):", view, "host")
    for network in networks:
        bad = view.failing(network)
        counts = network_counts(view, network)
        tr.write_line(counts if fam is None else titled(counts.split(":", 1)[0], fam) + ":"
                      + counts.split(":", 1)[1], **({"red": True} if bad else {}))
        if bad and not small:
            for c in bad[:MAX_LISTED]:
                tr.write_line(f"  {c.id}: {'; '.join(c.problems) or 'see the diagnoses'}")
            if len(bad) > MAX_LISTED:
                tr.write_line(f"  ... {len(bad) - MAX_LISTED} more (the HTML report has them "
                              "all: --html)")


def mtu_source(source: object) -> str:
    """Where the expected MTU came from (measure.py ``expected_mtu_source``), as a suffix."""
    if not source:
        return ""
    if str(source).startswith("default"):
        return " (a default: no pod MTU could be read; set --k8s-expect-mtu)"
    return {"flag": " (--k8s-expect-mtu)", "pod interface": " (the pods' interface MTU)"}.get(
        str(source), f" ({source})")


def _write_diagnoses(tr: Writer, view: ClusterView) -> None:
    if not view.groups:
        return
    tr.write_line(f"diagnoses ({causes_count(view.groups)}):")
    for group in view.groups:
        tr.write_line(f"  {group.headline}", red=True, bold=True)
        first = str(group.findings[0].get("message"))
        for line in first.splitlines():  # a per-node test's lists its peers a line each
            tr.write_line(f"    {line}")
        # Tests that failed with the very same words (one image on every node) are not
        # more findings: the message is said once.
        more = len({str(d.get("message")) for d in group.findings} - {first})
        if more:
            what = "test failure" if group.finding is not None else "finding"
            tr.write_line(f"    (+{more} more {what}{'s' if more > 1 else ''} of this cause "
                          "above)")
        elif len(group.findings) > 1:
            tr.write_line(f"    ({len(group.findings)} tests failed on it)")
        for k in group.knock_ons:
            tr.write_line(f"    knock-on: {shorten(str(k.get('summary')), 200)}")


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(f"{v:<{w}}" for v, w in zip(r, widths)).rstrip() for r in rows]


def _write_baseline(tr: Writer, report: RunReport) -> None:
    if report.baseline_error:
        tr.write_line(f"baseline: {report.baseline_error}", red=True)
        return
    c = report.comparison
    if c is None:
        for note in report.notes:
            tr.write_line(f"baseline: {note}", yellow=True)
        return
    tr.write_line(f"baseline {c.path} ({c.baseline.get('time', '?')}, "
                  f"{cluster_line(c.baseline)}): {c.compared} measurements compared, "
                  f"{len(c.regressions)} regressions, {len(c.improvements)} improvements"
                  + (f", {c.not_compared} in only one run" if c.not_compared else ""),
                  **({"red": True} if c.regressions else {"green": True}))
    if c.regressions:
        rows = [("regression", "subject", "before", "after")]
        rows += [(KIND_TITLES.get(r.kind, r.kind), r.subject, r.shown(r.before), r.shown(r.after))
                 for r in c.regressions[:MAX_LISTED * 2]]
        for i, line in enumerate(_table(rows)):
            tr.write_line("  " + line, **({"bold": True} if i == 0 else {"red": True}))
        if len(c.regressions) > MAX_LISTED * 2:
            tr.write_line(f"  ... {len(c.regressions) - MAX_LISTED * 2} more in the results "
                          "file (--k8s-results)")
        pairs = c.regressed_pairs
        if pairs:
            tr.write_line(f"  pairs that regressed: {', '.join(pairs)}", red=True)
    if c.improvements:
        tr.write_line(f"  improved: " + "; ".join(i.message for i in c.improvements[:5])
                      + (" ..." if len(c.improvements) > 5 else ""), green=True)


def fail_line(report: RunReport) -> str | None:
    """The one line saying why the run fails although the tests may all pass."""
    if report.baseline_error:
        return f"k8snet: run FAILED: {report.baseline_error}"
    if report.comparison is not None and report.comparison.regressions:
        n = len(report.comparison.regressions)
        return (f"k8snet: run FAILED: {n} regression{'s' if n != 1 else ''} against the "
                f"baseline {report.comparison.path}")
    return None


def coverage_lines(facts: RunFacts, unreachable: bool = True) -> list[Piece]:
    """What the run actually tested (:meth:`RunFacts.coverage`), so that a run that tested
    little cannot read as a full pass: the target (a simulated lab says so), nodes and
    pairs that ran a test, nodes left out and why, nodes the probes could not reach (not
    with ``unreachable`` False).

    Empty when no k8snet test asked for nodes (an unrelated run says nothing).
    """
    cov = facts.coverage()
    if cov is None:
        return []
    target, selected, nodes = cov["target"], cov["selected"], cov["tested_nodes"]
    lines: list[Piece] = [(f"target: {target['target']}",
                           {"yellow": True, "bold": True} if target["simulated"] else {})]
    pairs = cov["tested_pairs"]
    nets = ", ".join(f"{net} network {pairs[net]}" for net in ("pod", "host") if pairs[net])
    tested = (f"tested: {len(nodes)} node{'s' if len(nodes) != 1 else ''}"
              + (f" of {selected} selected" if selected is not None else "")
              + f" and {pairs['all']} node pair{'s' if pairs['all'] != 1 else ''}"
              + (f" ({nets})" if nets else ""))
    short = not nodes or not pairs["all"] or (selected is not None and len(nodes) < selected)
    lines.append((tested, {"yellow": True} if short else {"green": True}))
    by_reason: dict[str, list[str]] = {}
    for name, why in cov["left_out"].items():
        by_reason.setdefault(why, []).append(name)
    for why, names in sorted(by_reason.items()):
        lines.append((f"left out: {listed(names)} ({why})", {"yellow": True}))
    for name, notes in sorted(cov["probed_despite"].items()):
        lines.append((f"probed although {'; '.join(notes)}: {name}", {}))
    gone = cov["unreachable"] if unreachable else {}
    if gone:
        lines.append((f"unreachable: {len(gone)} node"
                      f"{'s' if len(gone) != 1 else ''} the probes cannot run on, "
                      "their network tests skipped:", {"red": True}))
        for name, why in sorted(gone.items()):
            lines.append((f"  {name}: {why}", {"red": True}))
    return lines


def summary(tr: Any, facts: RunFacts) -> None:
    """``pytest_terminal_summary``: the controller writes the cluster summary."""
    if facts.worker is not None:
        return
    report = run_report(tr.config, facts)
    # Nothing measured and the diagnoses say why: a line per unreachable node would say the
    # same cause once more for every node.
    said = not report.has_measurements and bool(ClusterView(report.doc).groups)
    write(tr, report, baseline_given=bool(facts.settings.baseline),
          coverage=coverage_lines(facts, unreachable=not said))


def write(tr: Writer, report: RunReport, baseline_given: bool = False,
          coverage: Sequence[Piece] = ()) -> None:
    """The ``k8snet cluster summary`` section for ``report``: what was tested (``coverage``),
    then the measurements (nothing when neither is there)."""
    with no_cyclic_gc():  # two million cells at 1,000 nodes, no cycles
        return _write(tr, report=report, baseline_given=baseline_given, coverage=coverage)


def _write(tr: Writer, report: RunReport, baseline_given: bool,
           coverage: Sequence[Piece]) -> None:
    if not report.has_cluster_data and report.comparison is None and not report.baseline_error \
            and not coverage:
        return
    tr.section("k8snet cluster summary")
    for text, markup in coverage:
        tr.write_line(text, **markup)
    if report.has_cluster_data:
        view = report.view
        _write_cluster(tr, view, report.has_measurements)
        _write_diagnoses(tr, view)
    if baseline_given or report.comparison is not None or report.baseline_error:
        _write_baseline(tr, report)
    line = fail_line(report)
    if line:
        tr.write_line(line, red=True, bold=True)
