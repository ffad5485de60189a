"""pytest-html integration, registered only when pytest-html is installed.

Uses only pytest-html's public API: the ``pytest_html_results_summary`` hook and
``pytest_html.extras``. The cluster section goes into the summary (its ``prefix``,
so that the result filters stay next to the results table):

- the diagnoses, grouped by cause ("MTU: 4 pairs involving node-2");
- with ``--k8s-baseline``, a banner when the run fails on regressions;
- node x node matrices for the pod and the host network: each cell colored pass or
  fail and carrying RTT, loss and path MTU; hovering (or focusing) a cell shows its
  measurements and diagnosis. From 9 nodes on the matrices are compact (one metric
  per cell, switched with the buttons above them, column names vertical);
- path MTU against the expected MTU, UDP 8472 throughput and loss, DNS, egress and
  Service failure rates, node checks;
- the baseline comparison: regressions before and after, side by side.

Failed tests get the diagnosis and the raw probe output as extras.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from html import escape
from importlib import resources
from typing import Any

import pytest

from .results import ClusterView, PairCell, RunReport, cluster_line, natural_key, run_report

COMPACT_FROM = 9  # nodes: from here on a cell shows one metric
COLLAPSE_ROWS = 12  # tables longer than this show their failing rows and fold the rest
NODE_CAUSES = ("ip-forward", "bridge-nf", "pod-cidr-overlap", "node-not-ready")


def asset(name: str) -> str:
    """``k8snet.css`` or ``k8snet.js``, packaged next to this module."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def e(value: object) -> str:
    return escape(str(value), quote=True)


def _fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "–"
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
    return text + unit


# -- matrices ---------------------------------------------------------------------------------

def cell_tip(cell: PairCell, expected_mtu: int | None) -> str:
    """The hover text of one matrix cell: its diagnosis first, then what was measured."""
    from ..judge import CAUSES

    verdict = {"fail": "FAIL", "pass": "pass"}.get(cell.status, "not measured")
    lines = [f"{cell.src} → {cell.dst} ({cell.network} network): {verdict}"]
    by_cause: dict[str, list[dict[str, Any]]] = {}
    for d in cell.diagnoses:
        by_cause.setdefault(str(d.get("cause")), []).append(d)
    for cause, ds in by_cause.items():
        title = CAUSES.get(cause, CAUSES["unknown"])[0]
        more = f" (+{len(ds) - 1} more of this cause)" if len(ds) > 1 else ""
        lines.append(f"Diagnosis, {title}: {ds[0].get('message')}{more}")
    mark = {True: "✗ ", False: "✓ "}
    p = cell.ping
    if p is not None:
        rtt = f", rtt {_fmt(p.get('rtt_ms'), ' ms', 3)}" if p.get("rtt_ms") is not None else ""
        lines.append(f"{mark[(p.get('loss_pct') or 0) > 0]}ping: {p.get('received', '?')}/"
                     f"{p.get('transmitted', '?')} replies, {_fmt(p.get('loss_pct'), '%', 1)} "
                     f"lost{rtt}")
    if cell.pmtu is not None:
        got = int(cell.pmtu.get("bytes") or 0)
        judged = bool(expected_mtu) and cell.network == "pod"
        against = f" (expected {expected_mtu})" if judged else ""
        lines.append(f"{mark[judged and got < (expected_mtu or 0)] if judged else ''}path MTU: "
                     f"{got} bytes{against}")
    t = cell.throughput
    if t is not None:
        bad = bool(t.get("error")) or float(t.get("loss_pct") or 0) > 5.0
        lines.append(f"{mark[bad]}UDP 8472: {_fmt(t.get('mbps'), ' Mbit/s')}, "
                     f"{_fmt(t.get('loss_pct'), '%')} lost"
                     + (f" ({t['error']})" if t.get("error") else ""))
    h = cell.http
    if h is not None:
        lines.append(f"{mark[not h.get('ok')]}1 MiB HTTP: " + (
            f"{_fmt(h.get('mbps'), ' Mbit/s', 1)}" if h.get("ok") else
            f"failed after {h.get('bytes')} bytes ({h.get('error')})"))
    return "\n".join(lines)


def _cell_metrics(cell: PairCell, compact: bool, with_mtu: bool) -> str:
    """RTT, loss and path MTU spans (the metric switch shows one of them or all)."""
    rtt, loss, mtu = cell.rtt_ms, cell.loss_pct, cell.path_mtu
    no_reply = cell.ping is not None and rtt is None
    if compact:
        parts = [("rtt", "✗" if no_reply else _fmt(rtt, "", 2)), ("loss", _fmt(loss, "", 0)),
                 ("mtu", "–" if mtu is None else str(mtu))]
    else:
        parts = [("rtt", "no reply" if no_reply else _fmt(rtt, " ms", 3)),
                 ("loss", _fmt(loss, "% loss", 1)),
                 ("mtu", "MTU –" if mtu is None else f"MTU {mtu}")]
    if not with_mtu and not compact:
        parts = parts[:2]
    bad = set()
    if no_reply or (loss or 0) > 0:
        bad |= {"rtt", "loss"}
    if any(p.startswith("path MTU") for p in cell.problems):
        bad.add("mtu")
    return "".join(f'<span class="m m-{k}{" bad" if k in bad else ""}">{e(v)}</span>'
                   for k, v in parts)


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
    measured = [c for c in view.pair_cells(network) if c.measured]
    bad = sum(1 for c in measured if c.status == "fail")
    counts = f"{len(measured)} pairs, " + (f'<span class="k8s-bad-text">{bad} failing</span>'
                                           if bad else "all pass")
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
    out = [f"<h3>Diagnoses: {len(view.groups)} cause{'s' if len(view.groups) != 1 else ''}</h3>",
           '<div class="k8s-diagnoses">']
    for g in view.groups:
        first = g.findings[0]
        items = "".join(f"<li>{e(d.get('message'))}" + (
            f' <span class="k8s-muted">({e(d["test"])})</span>' if d.get("test") else "")
            + "</li>" for d in g.findings)
        out.append(
            f'<div class="k8s-diag" data-cause="{e(g.cause)}">'
            f'<div class="k8s-diag-head">{e(g.headline)}'
            f'<span class="k8s-diag-cause">cause: {e(g.cause)}</span></div>'
            f"<p>{e(first.get('message'))}</p>"
            + f"<details><summary>all {len(g.findings)} finding"
              f"{'s' if len(g.findings) != 1 else ''}"
            + (f", pairs: {e(_some(g.pairs, 6))}" if g.pairs else "")
            + f"</summary><ul>{items}</ul></details>" + finding_evidence(g) + "</div>")
    out.append("</div>")
    return "".join(out)


def finding_evidence(g: Any) -> str:
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


# -- tables -----------------------------------------------------------------------------------

def table(head: Iterable[str], rows: list[tuple[bool, list[str]]], title: str,
          empty: str = "not measured in this run") -> str:
    """``rows`` are (bad, cells as HTML); bad rows first; long tables fold their good rows."""
    heading = f"<h3>{e(title)}</h3>"
    if not rows:
        return f'<div>{heading}<p class="k8s-muted">{e(empty)}</p></div>'
    th = "".join(f"<th>{e(h)}</th>" for h in head)

    def render(rs: list[tuple[bool, list[str]]]) -> str:
        bad_attr = ' class="k8s-bad"'
        return "".join(f"<tr{bad_attr if bad else ''}>{''.join(cs)}</tr>" for bad, cs in rs)

    def folded(rs: list[tuple[bool, list[str]]], what: str) -> str:
        return (f'<details class="k8s-more"><summary>{len(rs)} {what} row'
                f"{'s' if len(rs) != 1 else ''}</summary><table class=\"k8s-table\"><thead><tr>"
                f"{th}</tr></thead><tbody>{render(rs)}</tbody></table></details>")

    bad_rows = [r for r in rows if r[0]]
    good_rows = [r for r in rows if not r[0]]
    if len(rows) <= COLLAPSE_ROWS:
        return (f'<div>{heading}<table class="k8s-table"><thead><tr>{th}</tr></thead><tbody>'
                f"{render(bad_rows + good_rows)}</tbody></table></div>")
    shown = (f'<table class="k8s-table"><thead><tr>{th}</tr></thead><tbody>'
             f"{render(bad_rows[:COLLAPSE_ROWS])}</tbody></table>") if bad_rows else ""
    more = folded(bad_rows[COLLAPSE_ROWS:], "more failing") if len(bad_rows) > COLLAPSE_ROWS \
        else ""
    rest = folded(good_rows, "passing") if good_rows else ""
    return f"<div>{heading}{shown}{more}{rest}</div>"


def td(value: object, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<td{attr}>{e(value)}</td>"


def path_mtu_table(view: ClusterView) -> str:
    rows: list[tuple[bool, list[str]]] = []
    expected = view.expected_mtu
    for network in ("pod", "host"):
        for c in view.pair_cells(network):
            if c.pmtu is None:
                continue
            got = int(c.pmtu.get("bytes") or 0)
            want = expected if network == "pod" else None
            bad = want is not None and got < want
            if got == 0:
                verdict = "nothing crosses"
            elif bad and want is not None:
                verdict = f"{got - want:+d} bytes" + (
                    ", black hole" if c.pmtu.get("first_lost") else "")
            else:
                verdict = "ok"
            rows.append((bad, [td(c.id), td(network), td(got, "num"),
                               td(want if want else "–", "num"),
                               td(verdict, "k8s-bad" if bad else "k8s-ok"),
                               td(c.pmtu.get("probes", "–"), "num")]))
    return table(["pair", "network", "path MTU", "expected", "verdict", "probes"], rows,
                 f"Path MTU (expected {expected if expected else '?'} bytes)")


def throughput_table(view: ClusterView) -> str:
    rows: list[tuple[bool, list[str]]] = []
    for c in view.pair_cells("pod"):
        t = c.throughput
        if t is None:
            continue
        bad = bool(t.get("error")) or float(t.get("loss_pct") or 0) > 5.0
        port = t.get("node_port") or {}
        note = ("port held by the CNI's VXLAN socket" if port.get("port_busy")
                else port.get("error") or (f"{_fmt(port.get('mbps'), ' Mbit/s')}"
                                           if port else "–"))
        rows.append((bad, [td(c.id), td(_fmt(t.get("mbps")), "num"),
                           td(_fmt(t.get("loss_pct"), "%"), "num" + (" k8s-bad" if bad else "")),
                           td(t.get("error") or "–"), td(note)]))
    return table(["pair", "Mbit/s", "loss", "error", "node to node, UDP 8472"], rows,
                 "UDP 8472: throughput and loss across the overlay")


def dns_table(view: ClusterView) -> str:
    entries = list(view.doc.get("dns") or [])
    names = list(dict.fromkeys(str(d.get("name")) for d in entries))
    by_node: dict[str, dict[str, dict[str, Any]]] = {}
    for d in entries:
        by_node.setdefault(str(d.get("node")), {})[str(d.get("name"))] = d
    rows: list[tuple[bool, list[str]]] = []
    for node in sorted(by_node, key=natural_key):
        cells, bad = [td(node)], False
        for name in names:
            d = by_node[node].get(name)
            if d is None:
                cells.append(td("–"))
                continue
            ok = bool(d.get("ok"))
            bad |= not ok
            ms = f", {d['query_ms']} ms" if d.get("query_ms") is not None else ""
            answer = ", ".join(d.get("answers") or []) or "no answer"
            cells.append(td(f"{d.get('rcode')}{ms}: {answer}" if ok else f"{d.get('rcode')}",
                            "k8s-ok" if ok else "k8s-bad"))
        rows.append((bad, cells))
    return table(["node", *names], rows, "DNS from each node's pod")


def egress_table(view: ClusterView) -> str:
    rows: list[tuple[bool, list[str]]] = []
    by_node: dict[str, dict[str, dict[str, Any]]] = {}
    for x in view.doc.get("egress") or []:
        by_node.setdefault(str(x.get("node")), {})[str(x.get("network"))] = x
    service = {str(s.get("node")): s for s in view.doc.get("service") or []}
    for node in sorted(set(by_node) | set(service), key=natural_key):
        cells, bad = [td(node)], False
        for network in ("pod", "host"):
            x = by_node.get(node, {}).get(network)
            if x is None:
                cells.append(td("–"))
                continue
            rate = float(x.get("failure_rate") or 0)
            bad |= rate > 0
            ports = x.get("failed_ports") or []
            span = f"; failed source ports {min(ports)}-{max(ports)}" if ports else ""
            cells.append(td(f"{100 * rate:.0f}% ({x.get('failures')}/{x.get('attempts')}){span}",
                            "k8s-bad" if rate > 0 else "k8s-ok"))
        s = service.get(node)
        if s is None:
            cells.append(td("–"))
        else:
            rate = float(s.get("failure_rate") or 0)
            bad |= rate > 0
            missing = s.get("missing_backends") or []
            cells.append(td(f"{100 * rate:.0f}% ({s.get('failures')}/{s.get('attempts')})"
                            + (f"; unanswered: {', '.join(missing)}" if missing else ""),
                            "k8s-bad" if rate > 0 else "k8s-ok"))
        rows.append((bad, cells))
    return table(["node", "egress from the pod", "egress from the host", "Service"], rows,
                 "Failure rates: egress and Service")


def node_checks_table(view: ClusterView) -> str:
    rows: list[tuple[bool, list[str]]] = []
    for n in sorted(view.doc.get("node_checks") or [], key=lambda x: natural_key(str(x["node"]))):
        s = n.get("sysctls") or {}
        fwd = s.get("net.ipv4.ip_forward")
        bnf = s.get("net.bridge.bridge-nf-call-iptables")
        mtus = ", ".join(f"{i['name']} {i['mtu']}" for i in n.get("interfaces") or []
                         if i.get("name") != "lo")
        node_diags = [d for d in view.node_diagnoses(str(n["node"]))
                      if d.get("cause") in NODE_CAUSES]
        bad = fwd != "1" or bnf != "1" or bool(node_diags)
        rows.append((bad, [td(n["node"]), td(fwd if fwd is not None else "?",
                                             "k8s-ok" if fwd == "1" else "k8s-bad"),
                           td(bnf if bnf is not None else "absent",
                              "k8s-ok" if bnf == "1" else "k8s-bad"),
                           td(s.get("net.ipv4.ip_local_port_range") or "?"), td(mtus),
                           td("; ".join(sorted({str(d.get("cause")) for d in node_diags}))
                              or "–", "k8s-bad" if node_diags else "")]))
    return table(["node", "ip_forward", "bridge-nf-call-iptables", "ip_local_port_range",
                  "interface MTUs", "node diagnoses"], rows, "Node checks")


# -- baseline ---------------------------------------------------------------------------------

def baseline_section(report: RunReport) -> str:
    from .baseline import KIND_TITLES

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
    side = side_by_side(ClusterView(c.baseline), ClusterView(report.doc))
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
    view = ClusterView(report.doc)
    doc = report.doc
    compact = len(view.nodes) >= COMPACT_FROM
    parts = [f"<style>{asset('k8snet.css')}</style>", '<section class="k8s" id="k8snet">',
             metric_inputs(compact), "<h2>Cluster network</h2>"]
    meta = [f"<b>{e(cluster_line(doc))}</b>"]
    if view.expected_mtu:
        meta.append(f"expected path MTU <b>{view.expected_mtu}</b>")
    meta.append(f"started {e(doc.get('time', '?'))}")
    meta.append(f"pytest-k8snet {e(doc.get('plugin_version', '?'))}")
    parts.append(f'<p class="k8s-meta">{" · ".join(meta)}</p>')
    fail = _fail_text(report)
    if fail:
        parts.append(f'<div class="k8s-banner k8s-bad" id="k8s-run-fails">{e(fail)} '
                     '(see <a href="#k8s-baseline">Baseline comparison</a>)</div>')
    parts.append(diagnoses(view))
    networks = [n for n in ("pod", "host") if view.has_network(n)]
    if networks:
        parts.append(toolbar())
        titles = {"pod": "Pod network (pod to pod)", "host": "Host network (node to node)"}
        parts.append('<div class="k8s-grids">'
                     + "".join(matrix(view, n, titles[n]) for n in networks) + "</div>")
    parts.append('<div class="k8s-tables">' + path_mtu_table(view) + throughput_table(view)
                 + "</div>")
    parts.append('<div class="k8s-tables">' + dns_table(view) + egress_table(view) + "</div>")
    parts.append('<div class="k8s-tables">' + node_checks_table(view) + "</div>")
    parts.append(baseline_section(report))
    parts.append(f"<script>{asset('k8snet.js')}</script></section>")
    return "".join(parts)


def _fail_text(report: RunReport) -> str | None:
    from .terminal import fail_line

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
        from ..judge import CAUSES

        title = CAUSES.get(d.get("cause"), CAUSES["unknown"])[0]
        finding = d.get("finding")
        parts.append(f'<div class="k8s-diag"><div class="k8s-diag-head">{e(title)}'
                     f'<span class="k8s-diag-cause">cause: {e(d.get("cause"))}</span></div>'
                     f"<p>{e(d.get('message'))}</p>" + (
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
            from .junit import RAW_KEY

            props = {str(k): v for k, v in item.user_properties}
            extras = extras_for(props, item.stash.get(RAW_KEY, []), bool(report.failed))
            if extras:
                report.extras = [*getattr(report, "extras", []), *extras]
        return report

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str],
                                    postfix: list[str], session: pytest.Session) -> None:
        from ..run import RUN_KEY as STATE_KEY

        state = session.config.stash.get(STATE_KEY, None)
        if state is None or state.worker is not None:
            return
        report = run_report(state)
        if report.has_cluster_data or report.comparison is not None or report.baseline_error:
            prefix.append(render(report))

