"""pytest-html integration, registered only when pytest-html is installed.

Uses only pytest-html's public API: the ``pytest_html_results_summary`` hook and
``pytest_html.extras``. The cluster section goes into the summary (its ``prefix``,
so that the result filters stay next to the results table):

- the diagnoses, grouped by cause ("MTU: 4 pairs involving node-2");
- with ``--k8s-baseline``, a banner when the run fails on regressions;
- node x node matrices for the pod and the host network: each cell carrying RTT, loss
  and path MTU, and colored pass or fail as the run's verdicts and findings say (never
  from the numbers; "not judged" without them); hovering (or focusing) a cell shows its
  measurements and diagnosis. From 9 nodes on the matrices are compact (one metric
  per cell, switched with the buttons above them, column names vertical);
- path MTU against the expected MTU, UDP 8472 throughput and loss, DNS, egress and
  Service failure rates, node checks;
- the baseline comparison: regressions before and after, side by side.

Failed tests get the diagnosis' cause and the raw probe output as extras (its message is
the test's failure, which pytest-html shows already).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from ..judge import CAUSES, FAILED, PASSED
from ..judge.checks import large_packets, path_mtu, pod_ping, udp_8472
from .baseline import KIND_TITLES
from .detected import detected_lines
from .facts import FACTS_KEY
from .families import family_docs, titled
from .html_tables import (dns_table, e, egress_table, fmt, node_checks_table, path_mtu_table,
                          td, throughput_table)
from ..gcpause import no_cyclic_gc
from . import matrix_canvas
from .stream import large
from .junit import RAW_KEY
from .results import RunReport, run_report
from .terminal import fail_line
from .view import (FAIL, NONE, PASS, ClusterView, DiagnosisGroup, PairCell, causes_count,
                   cluster_line)

COMPACT_FROM = 9  # nodes: from here on a cell shows one metric
STATUS_TEXT = {FAIL: "FAIL", PASS: "pass", NONE: "not measured"}
# Before each measurement in a tip: its test's verdict (nothing when not judged).
OUTCOME_MARK = {FAILED: "✗ ", PASSED: "✓ ", "skipped": "– "}


def asset(name: str) -> str:
    """``k8snet.css`` or ``k8snet.js``, packaged next to this module."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


# -- matrices ---------------------------------------------------------------------------------

def _mark(cell: PairCell, test: str) -> str:
    """The verdict mark of ``test`` on a pod-network cell. A host-network cell has no test
    of its own: its ping is marked failed only when a finding covers the pair."""
    if cell.network == "host":
        return OUTCOME_MARK[FAILED] if test == pod_ping.NAME and cell.host_findings else ""
    return OUTCOME_MARK.get(cell.outcome(test) or "", "")


def cell_tip(cell: PairCell, expected_mtu: int | None) -> str:
    """The hover text of one matrix cell: its diagnosis first, then what was measured,
    each measurement marked with its test's verdict."""
    verdict = STATUS_TEXT.get(cell.status, "not judged")
    lines = [f"{cell.src} → {cell.dst} ({cell.network} network): {verdict}"]
    by_cause: dict[str, list[dict[str, Any]]] = {}
    for d in cell.diagnoses:
        by_cause.setdefault(str(d.get("cause")), []).append(d)
    for cause, ds in by_cause.items():
        title = CAUSES.get(cause, CAUSES["unknown"])[0]
        more = f" (+{len(ds) - 1} more of this cause)" if len(ds) > 1 else ""
        lines.append(f"Diagnosis, {title}: {ds[0].get('message')}{more}")
    for f in cell.host_findings:
        if f.get("cause") not in by_cause:  # else its diagnosis, just above, says it
            lines.append(f"Finding, {f.get('title')}: {f.get('message')}")
    p = cell.ping
    if p is not None:
        rtt = f", rtt {fmt(p.get('rtt_ms'), ' ms', 3)}" if p.get("rtt_ms") is not None else ""
        lines.append(f"{_mark(cell, pod_ping.NAME)}ping: {p.get('received', '?')}/"
                     f"{p.get('transmitted', '?')} replies, "
                     f"{fmt(p.get('loss_pct'), '%', 1)} lost{rtt}")
    if cell.pmtu is not None:
        got = int(cell.pmtu.get("bytes") or 0)
        against = f" (expected {expected_mtu})" if expected_mtu and cell.network == "pod" else ""
        lines.append(f"{_mark(cell, path_mtu.NAME)}path MTU: {got} bytes{against}")
    t = cell.throughput
    if t is not None:
        lines.append(f"{_mark(cell, udp_8472.NAME)}UDP 8472: {fmt(t.get('mbps'), ' Mbit/s')}, "
                     f"{fmt(t.get('loss_pct'), '%')} lost"
                     + (f" ({t['error']})" if t.get("error") else ""))
    h = cell.http
    if h is not None:
        lines.append(f"{_mark(cell, large_packets.NAME)}1 MiB HTTP: " + (
            f"{fmt(h.get('mbps'), ' Mbit/s', 1)}" if h.get("ok") else
            f"failed after {h.get('bytes')} bytes ({h.get('error')})"))
    return "\n".join(lines)


def _cell_metrics(cell: PairCell, compact: bool, with_mtu: bool) -> str:
    """RTT, loss and path MTU spans (the metric switch shows one of them or all); the
    metrics a failed test rests on are marked."""
    rtt, loss, mtu = cell.rtt_ms, cell.loss_pct, cell.path_mtu
    no_reply = cell.ping is not None and rtt is None
    if compact:
        parts = [("rtt", "✗" if no_reply else fmt(rtt, "", 2)), ("loss", fmt(loss, "", 0)),
                 ("mtu", "–" if mtu is None else str(mtu))]
    else:
        parts = [("rtt", "no reply" if no_reply else fmt(rtt, " ms", 3)),
                 ("loss", fmt(loss, "% loss", 1)),
                 ("mtu", "MTU –" if mtu is None else f"MTU {mtu}")]
    if not with_mtu and not compact:
        parts = parts[:2]
    bad = set()
    if cell.host_findings or cell.outcome(pod_ping.NAME) == FAILED:
        bad |= {"rtt", "loss"}
    if cell.outcome(path_mtu.NAME) == FAILED:
        bad.add("mtu")
    return "".join(f'<span class="m m-{k}{" bad" if k in bad else ""}">{e(v)}</span>'
                   for k, v in parts)


def matrix_counts(view: ClusterView, network: str) -> str:
    """``6 pairs, 1 failing``, ``all pass``, or ``not judged``."""
    probed, failing = view.counts(network)
    bad = f'<span class="k8s-bad-text">{failing} failing</span>'
    if not view.judged:
        return f"{probed} pairs, not judged" + (f"; tests failed on {bad}" if failing else "")
    return f"{probed} pairs, " + (bad if failing else "all pass")


def matrix(view: ClusterView, network: str, title: str, idp: str = "") -> str:
    names = view.nodes
    n = len(names)
    compact = n >= COMPACT_FROM
    with_mtu = any(c.pmtu is not None for c in view.pair_cells(network))
    head = "".join(f'<th class="k8s-col" scope="col"><span>{e(x)}</span></th>' for x in names)
    rows = []
    for i, a in enumerate(names):
        cells = []
        for j, b in enumerate(names):
            if a == b:
                cells.append('<td class="k8s-cell k8s-self" aria-label="same node"></td>')
                continue
            cell = view.cell(network, a, b) or PairCell(a, b, network)
            tipclass = (" k8s-tip-l" if j >= n / 2 and n > 3 else "") + (
                " k8s-tip-u" if i >= n / 2 and n > 6 else "")
            cells.append(
                f'<td class="k8s-cell k8s-{cell.status}{tipclass}" tabindex="0" '
                f'data-pair="{e(cell.id)}" data-network="{e(network)}" '
                f'data-status="{cell.status}" data-tip="{e(cell_tip(cell, view.expected_mtu))}">'
                f"{_cell_metrics(cell, compact, with_mtu)}</td>")
        rows.append(f'<tr><th scope="row">{e(a)}</th>{"".join(cells)}</tr>')
    counts = matrix_counts(view, network)
    return (f'<div class="k8s-grid" id="{e(idp)}k8s-matrix-{network}">'
            f'<div class="k8s-grid-title">{e(title)} <span class="k8s-muted">{counts}</span></div>'
            f'<div class="k8s-matrix-wrap{" k8s-scroll" if compact else ""}">'
            f'<table class="k8s-matrix'
            f'{" k8s-compact" if compact else ""}" data-network="{network}" data-nodes="{n}">'
            f'<thead><tr><th class="k8s-corner">src ↓ dst →</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div></div>')


def toolbar() -> str:
    legend = ('<span class="k8s-legend">'
              '<span><span class="k8s-swatch" style="background:var(--k8s-pass)"></span>pass</span>'
              '<span><span class="k8s-swatch" style="background:var(--k8s-fail)"></span>fail</span>'
              '<span><span class="k8s-swatch" style="background:var(--k8s-unjudged)"></span>'
              'not judged</span>'
              '<span><span class="k8s-swatch" style="background:var(--k8s-none)"></span>not '
              'measured</span><span class="k8s-muted">hover a cell for its measurements and '
              'diagnosis</span></span>')
    labels = "".join(f'<label for="k8s-m-{k}">{t}</label>' for k, t in (
        ("all", "RTT · loss · MTU"), ("rtt", "RTT ms"), ("loss", "loss %"), ("mtu", "path MTU")))
    return f'<div class="k8s-toolbar">show {labels}{legend}</div>'


def metric_inputs(compact: bool) -> str:
    default = "rtt" if compact else "all"
    return "".join(f'<input class="k8s-metric" type="radio" name="k8s-metric" id="k8s-m-{k}"'
                   f'{" checked" if k == default else ""} aria-label="show {k}">'
                   for k in ("all", "rtt", "loss", "mtu"))


# -- diagnoses --------------------------------------------------------------------------------

def diagnoses(view: ClusterView) -> str:
    if not view.groups:
        return ""
    out = [f"<h3>Diagnoses: {causes_count(view.groups)}</h3>",
           '<div class="k8s-diagnoses">']
    for g in view.groups:
        first = g.findings[0]
        said = {str(first.get("message"))}  # shown above the list
        items = ""
        for d in g.findings:
            # Each message once: tests that failed with words already shown list their name.
            message = str(d.get("message"))
            items += "<li>" + ("" if message in said else e(message)) + (
                f' <span class="k8s-muted">({e(d["test"])})</span>' if d.get("test") else "")
            items += "</li>"
            said.add(message)
        out.append(
            f'<div class="k8s-diag" data-cause="{e(g.cause)}">'
            f'<div class="k8s-diag-head">{e(g.headline)}'
            f'<span class="k8s-diag-cause">cause: {e(g.cause)}</span></div>'
            f"<p>{e(first.get('message'))}</p>"
            + f"<details><summary>all {len(g.findings)} finding"
              f"{'s' if len(g.findings) != 1 else ''}"
            + (f", pairs: {e(_some(g.pairs, 6))}" if g.pairs else "")
            + f"</summary><ul>{items}</ul></details>" + _knock_ons(g) + finding_evidence(g)
            + "</div>")
    out.append("</div>")
    return "".join(out)


def _knock_ons(g: DiagnosisGroup) -> str:
    """What fails only because of this fault, inside its box: fixed with it."""
    if not g.knock_ons:
        return ""
    items = "".join(f"<li>{e(k.get('summary'))}</li>" for k in g.knock_ons)
    return (f'<div class="k8s-knock-ons"><p class="k8s-muted">{len(g.knock_ons)} knock-on'
            f"{'s' if len(g.knock_ons) != 1 else ''}, fixed with it:</p><ul>{items}</ul></div>")


def finding_evidence(g: DiagnosisGroup) -> str:
    """Collapsed under a finding: its numbers, what contradicts it or would, and what was
    taken from its nodes (routes, neighbours, FDB, firewall counters, links)."""
    f = g.finding
    if not f:
        return ""
    parts = []
    if f.get("nodes") or f.get("pairs"):
        parts.append("<p><b>covers</b> " + e(", ".join(
            [*(f"node {n}" for n in f.get("nodes", [])), *f.get("pairs", [])])) + "</p>")
    if f.get("evidence"):
        rows = "".join(f"<tr><td>{e(k)}</td><td>{e(json.dumps(v, sort_keys=True))}</td></tr>"
                       for k, v in f["evidence"].items())
        parts.append(f'<table class="k8s-evidence-numbers"><tr><th>subject</th>'
                     f"<th>measured</th></tr>{rows}</table>")
    if f.get("contradicting"):
        parts.append("<p><b>contradicting</b></p><ul>" + "".join(
            f"<li>{e(c)}</li>" for c in f["contradicting"]) + "</ul>")
    if f.get("would_contradict"):
        parts.append("<p><b>would contradict</b>: " + e("; ".join(f["would_contradict"]))
                     + "</p>")
    for node, items in g.evidence.items():
        blocks = "".join(
            f'<details class="k8s-evidence-cmd"><summary>{e(i.get("name"))}: '
            f'<code>{e(" ".join(i.get("argv") or []))}</code></summary>'
            f"<pre>{e(i.get('output') or '')}</pre></details>" for i in items)
        parts.append(f'<div class="k8s-evidence-node"><b>{e(node)}</b>{blocks}</div>')
    return (f'<details class="k8s-evidence" data-finding="{e(f.get("id"))}"><summary>evidence '
            f'({e(f.get("id"))})</summary>{"".join(parts)}</details>')


def _some(items: list[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# -- baseline ---------------------------------------------------------------------------------

def baseline_section(report: RunReport) -> str:
    if report.baseline_error:
        return (f'<div class="k8s-baseline" id="k8s-baseline"><h3>Baseline</h3>'
                f'<div class="k8s-banner k8s-bad">{e(report.baseline_error)}</div></div>')
    c = report.comparison
    if c is None:
        notes = "".join(f'<p class="k8s-muted">{e(n)}</p>' for n in report.notes)
        return f'<div class="k8s-baseline" id="k8s-baseline"><h3>Baseline</h3>{notes}</div>' \
            if notes else ""
    head = (f"<h3>Baseline comparison: {len(c.regressions)} regression"
            f"{'s' if len(c.regressions) != 1 else ''}</h3>"
            f'<p class="k8s-meta">before: <b>{e(c.path)}</b> ({e(c.baseline.get("time", "?"))}, '
            f"{e(cluster_line(c.baseline))}) · after: this run · {c.compared} measurements "
            f"compared, throughput tolerance {c.tolerance_pct:g}%"
            + (f", {c.not_compared} measured in only one run" if c.not_compared else "") + "</p>")
    rows = "".join(
        f'<tr data-kind="{e(r.kind)}" data-pair="{e(r.pair or "")}">{td(KIND_TITLES.get(r.kind, r.kind))}'
        f"{td(r.subject)}{td(r.shown(r.before), 'k8s-before')}{td(r.shown(r.after), 'k8s-after')}"
        f"{td(r.message)}</tr>" for r in c.regressions)
    regress = (f'<table class="k8s-table" id="k8s-regressions"><thead><tr><th>regression</th>'
               f"<th>subject</th><th>before (baseline)</th><th>after (this run)</th><th>detail"
               f"</th></tr></thead><tbody>{rows}</tbody></table>" if rows
               else '<div class="k8s-banner k8s-good">No regressions against the baseline.</div>')
    pairs = c.regressed_pairs
    pairs_line = (f'<p>Pairs that regressed: <b class="k8s-bad-text">{e(", ".join(pairs))}</b>'
                  "</p>" if pairs else "")
    improved = ""
    if c.improvements:
        items = "".join(f"<li>{e(i.message)}</li>" for i in c.improvements)
        improved = (f'<details class="k8s-more"><summary>{len(c.improvements)} improvement'
                    f"{'s' if len(c.improvements) != 1 else ''}</summary><ul>{items}</ul>"
                    "</details>")
    if matrix_canvas.is_large(report.view) or large(c.baseline):
        # A table cell per pair, twice, is what the canvas exists to avoid; the table of
        # regressions above names every pair that got worse. (A large baseline's verdicts
        # are also still columns: baseline.load reads back what it compares.)
        side = ('<p class="k8s-muted" id="k8s-no-side-by-side">No matrices side by side '
                "above --k8s-per-node-threshold: the regressions above list every pair "
                "that got worse.</p>")
    else:
        side = side_by_side(ClusterView(c.baseline), report.view)
    return (f'<div class="k8s-baseline" id="k8s-baseline">{head}{regress}{pairs_line}{improved}'
            f"{side}</div>")


def side_by_side(before: ClusterView, after: ClusterView) -> str:
    """The pod matrices of the baseline and of this run next to each other."""
    if not before.has_network("pod") or not after.has_network("pod"):
        return ""
    return ('<div class="k8s-grids k8s-side-by-side">'
            + matrix(before, "pod", "Before (baseline): pod network", "before-")
            + matrix(after, "pod", "After (this run): pod network", "after-") + "</div>")


# -- the whole section ------------------------------------------------------------------------

def render(report: RunReport) -> str:
    """The cluster section of the summary, with its stylesheet, as one HTML string."""
    with no_cyclic_gc():  # two million cells at 1,000 nodes, no cycles
        return _render(report)


def _render(report: RunReport) -> str:
    view = report.view
    doc = report.doc
    compact = len(view.nodes) >= COMPACT_FROM
    parts = [f"<style>{asset('k8snet.css')}</style>", '<section class="k8s" id="k8snet">',
             metric_inputs(compact), "<h2>Cluster network</h2>"]
    parts.append(simulated_banner(doc.get("cluster") or {}))
    meta = [f"<b>{e(cluster_line(doc))}</b>"]
    if view.expected_mtu:
        meta.append(f"expected path MTU <b>{view.expected_mtu}</b>")
    meta += [e(text) for text in detected_lines(doc)]
    meta.append(f"started {e(doc.get('time', '?'))}")
    meta.append(f"pytest-k8snet {e(doc.get('plugin_version', '?'))}")
    parts.append(f'<p class="k8s-meta">{" · ".join(meta)}</p>')
    fail = _fail_text(report)
    if fail:
        parts.append(f'<div class="k8s-banner k8s-bad" id="k8s-run-fails">{e(fail)} '
                     '(see <a href="#k8s-baseline">Baseline comparison</a>)</div>')
    if not report.has_measurements:
        # No matrix, no table of "not measured" rows: one line, and the diagnoses say why.
        parts.append('<div class="k8s-banner k8s-bad" id="k8s-nothing-measured">Nothing '
                     "measured</div>" + diagnoses(view) + baseline_section(report)
                     + f"<script>{asset('k8snet.js')}</script></section>")
        return "".join(parts)
    parts.append(diagnoses(view))
    # One set of matrices and pair tables per IP family on a dual-stack run.
    fviews = [(fam, ClusterView(d) if fam else view) for fam, d in family_docs(doc)]
    if any(fv.has_network(n) for _, fv in fviews for n in ("pod", "host")):
        parts.append(toolbar())
    titles = {"pod": "Pod network (pod to pod)", "host": "Host network (node to node)"}
    big = matrix_canvas.is_large(view)
    for fam, fview in fviews:
        networks = [n for n in ("pod", "host") if fview.has_network(n)]
        if networks:
            # Above the per-node threshold a canvas, one pixel a pair, and the failing list.
            parts.append('<div class="k8s-grids">' + "".join(
                matrix_canvas.canvas_matrix(fview, n, titled(titles[n], fam),
                                            matrix_counts(fview, n), f"{fam}-" if fam else "")
                if big
                else matrix(fview, n, titled(titles[n], fam), f"{fam}-" if fam else "")
                for n in networks) + "</div>")
    if big:
        parts.append(matrix_canvas.script())
    for fam, fview in fviews:
        heading = f'<h3 class="k8s-family">{e(titled("Pairs", fam))}</h3>' if fam else ""
        parts.append(heading + '<div class="k8s-tables">' + path_mtu_table(fview)
                     + throughput_table(fview) + "</div>")
    parts.append('<div class="k8s-tables">' + dns_table(view) + egress_table(view) + "</div>")
    parts.append('<div class="k8s-tables">' + node_checks_table(view) + "</div>")
    parts.append(baseline_section(report))
    parts.append(f"<script>{asset('k8snet.js')}</script></section>")
    return "".join(parts)


def simulated_banner(ident: dict[str, Any]) -> str:
    """The line that keeps a lab run's report from passing for a cluster's ("" for one)."""
    if not ident.get("simulated"):
        return ""
    return (f'<div class="k8s-banner k8s-sim" id="k8s-simulated">'
            f'{e(ident.get("target") or "SIMULATED lab, not a Kubernetes cluster")}</div>')


def _fail_text(report: RunReport) -> str | None:
    line = fail_line(report)
    return line.replace("k8snet: ", "", 1) if line else None


# -- per-test extras --------------------------------------------------------------------------

def extras_for(props: dict[str, Any], raw: list[str], failed: bool) -> list[dict[str, Any]]:
    """Extras for one k8snet test: its measurements and diagnosis (HTML), raw output (text)."""
    import pytest_html

    out: list[dict[str, Any]] = []
    parts = []
    if props.get("src") and props.get("dst"):
        labels = {"rtt_ms": "rtt {} ms", "loss_pct": "loss {}%", "path_mtu": "path MTU {} bytes",
                  "throughput_mbps": "{} Mbit/s"}
        measured = ", ".join(t.format(props[k]) for k, t in labels.items() if k in props)
        parts.append(f"<p><b>{e(props['src'])} → {e(props['dst'])}</b> "
                     f"({e(props.get('network', 'pod'))} network)"
                     + (f": {e(measured)}" if measured else "") + "</p>")
    diagnosis = props.get("k8snet_diagnosis")
    if failed and diagnosis:
        d = json.loads(str(diagnosis))
        title = CAUSES.get(d.get("cause"), CAUSES["unknown"])[0]
        finding = d.get("finding")
        # Not the message: it is the test's failure, which pytest-html shows as the log
        # right under this (said once, there).
        parts.append(f'<div class="k8s-diag"><div class="k8s-diag-head">{e(title)}'
                     f'<span class="k8s-diag-cause">cause: {e(d.get("cause"))}</span></div>' + (
                         f'<p class="k8s-muted">finding {e(finding)}: its evidence (routes, '
                         "neighbours, FDB, firewall counters, links) is under the finding in "
                         "the cluster summary above</p>" if finding else "") + "</div>")
    # The raw output itself is in the test's log (section "k8snet probe output") and
    # behind the "probe output" link: not repeated here.
    if parts:
        out.append(pytest_html.extras.html(f'<div class="k8s-extra">{"".join(parts)}</div>'))
    if failed:
        out += [pytest_html.extras.text(text, name="probe output") for text in raw]
    return out


class HtmlHooks:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def _active(self) -> bool:
        return bool(self.config.getoption("htmlpath", None))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Any:
        report = yield
        if report.when == "call" and self._active():
            props = {str(k): v for k, v in item.user_properties}
            extras = extras_for(props, item.stash.get(RAW_KEY, []), bool(report.failed))
            if extras:
                report.extras = [*getattr(report, "extras", []), *extras]
        return report

    def pytest_html_report_title(self, report: Any) -> None:
        """A lab run's report says so in its title: it tested no Kubernetes cluster."""
        facts = self.config.stash.get(FACTS_KEY, None)
        if facts is not None and facts.identity().get("simulated"):
            report.title = f"SIMULATED lab, not a Kubernetes cluster: {report.title}"

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str],
                                    postfix: list[str], session: pytest.Session) -> None:
        facts = session.config.stash.get(FACTS_KEY, None)
        if facts is None or facts.worker is not None:
            return
        report = run_report(session.config, facts)
        if report.has_cluster_data or report.comparison is not None or report.baseline_error:
            prefix.append(render(report))
        elif banner := simulated_banner(facts.identity()):
            prefix.append(f"<style>{asset('k8snet.css')}</style>"
                          f'<section class="k8s" id="k8snet">{banner}</section>')
