"""The HTML report's tables: path MTU, UDP 8472, DNS, failure rates, node checks.

A row is failing when the run's verdict for its subject and test failed (see
:class:`~pytest_k8snet.report.view.ClusterView`); the numbers are shown as measured and
never judged here. Long tables show their failing rows and fold the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

from ..judge import FAILED, PASSED
from ..judge.checks import dns, node_sysctls, path_mtu, udp_8472
from ..judge.checks import egress as egress_check
from ..judge.checks import service as service_check
from ..judge.checks.dependencies import resolution_only
from .stream import large
from .view import ClusterView, natural_key

COLLAPSE_ROWS = 12  # tables longer than this show their failing rows and fold the rest
NODE_CAUSES = ("ip-forward", "bridge-nf", "pod-cidr-overlap", "node-not-ready")
# The verdict column for a verdict's outcome; a failure says what failed instead.
OUTCOME_TEXT = {PASSED: "ok", "skipped": "skipped", None: "not judged"}


def e(value: object) -> str:
    return escape(str(value), quote=True)


def fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "–"
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
    return text + unit


def judged_class(outcome: str | None, bad: bool = True) -> str:
    """``k8s-bad`` for a failed verdict (when this value is part of the failure),
    ``k8s-ok`` for a passed one, nothing when not judged or skipped."""
    if outcome == FAILED:
        return "k8s-bad" if bad else ""
    return "k8s-ok" if outcome == PASSED else ""


MAX_FOLDED = 5000


def table(head: Iterable[str], rows: list[tuple[bool, list[str]]], title: str,
          empty: str = "not measured in this run", not_drawn: int = 0) -> str:
    """``rows`` are (bad, cells as HTML); bad rows first; long tables fold their good rows.
    ``not_drawn`` passing rows were counted and not built (a large run)."""
    heading = f"<h3>{e(title)}</h3>" + (
        f'<p class="k8s-muted">{not_drawn} passing rows, not drawn at this size (the '
        "results file has them all)</p>" if not_drawn else "")
    if not rows:
        said = "" if not_drawn else f'<p class="k8s-muted">{e(empty)}</p>'
        return f"<div>{heading}{said}</div>"
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
    # Past this many passing rows (a cluster above the per-node threshold) they are
    # counted, not drawn: the page would outgrow any browser; the results file has them.
    rest = folded(good_rows, "passing") if good_rows and len(good_rows) <= MAX_FOLDED else (
        f'<p class="k8s-muted">{len(good_rows)} passing rows, not drawn at this size (the '
        "results file has them all)</p>" if good_rows else "")
    return f"<div>{heading}{shown}{more}{rest}</div>"


def td(value: object, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<td{attr}>{e(value)}</td>"


def path_mtu_table(view: ClusterView) -> str:
    rows: list[tuple[bool, list[str]]] = []
    expected = view.expected_mtu
    big, not_drawn = large(view.doc), 0  # a large run's passing rows are counted only
    for network in ("pod", "host"):
        for c in view.pair_cells(network):
            if c.pmtu is None:
                continue
            if big and (network != "pod" or c.outcome(path_mtu.NAME) != FAILED):
                not_drawn += 1
                continue
            got = int(c.pmtu.get("bytes") or 0)
            want = expected if network == "pod" else None
            # Only the pod network's path MTU is tested (test_path_mtu); the host's is shown.
            outcome = c.outcome(path_mtu.NAME) if network == "pod" else None
            bad = outcome == FAILED
            if not bad:
                verdict = OUTCOME_TEXT.get(outcome, str(outcome)) if network == "pod" else "–"
            elif got == 0:
                verdict = "nothing crosses"
            else:
                verdict = (f"{got - want:+d} bytes" if want else "failed") + (
                    ", black hole" if c.pmtu.get("first_lost") else "")
            rows.append((bad, [td(c.id), td(network), td(got, "num"),
                               td(want if want else "–", "num"),
                               td(verdict, judged_class(outcome)),
                               td(c.pmtu.get("probes", "–"), "num")]))
    return table(["pair", "network", "path MTU", "expected", "verdict", "probes"], rows,
                 f"Path MTU (expected {expected if expected else '?'} bytes)",
                 not_drawn=not_drawn)


def throughput_table(view: ClusterView) -> str:
    rows: list[tuple[bool, list[str]]] = []
    for c in view.pair_cells("pod"):
        t = c.throughput
        if t is None:
            continue
        outcome = c.outcome(udp_8472.NAME)
        port = t.get("node_port") or {}
        note = ("port held by the CNI's VXLAN socket" if port.get("port_busy")
                else port.get("error") or (f"{fmt(port.get('mbps'), ' Mbit/s')}"
                                           if port else "–"))
        rows.append((outcome == FAILED, [
            td(c.id), td(fmt(t.get("mbps")), "num"),
            td(fmt(t.get("loss_pct"), "%"), f"num {judged_class(outcome)}".rstrip()),
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
        outcome = view.outcome(dns.NAME, node)
        cells = [td(node)]
        for name in names:
            d = by_node[node].get(name)
            if d is None:
                cells.append(td("–"))
                continue
            ok = bool(d.get("ok"))
            ms = f", {d['query_ms']} ms" if d.get("query_ms") is not None else ""
            answer = ", ".join(d.get("answers") or []) or "no answer"
            # A failed test marks the lookups that did not answer; a passed one (external
            # names may be left unchecked) colours only the answers.
            cls = ("k8s-bad" if outcome == FAILED and not ok
                   else "k8s-ok" if outcome == PASSED and ok else "")
            cells.append(td(f"{d.get('rcode')}{ms}: {answer}" if ok else f"{d.get('rcode')}",
                            cls))
        rows.append((outcome == FAILED, cells))
    return table(["node", *names], rows, "DNS from each node's pod")


def egress_table(view: ClusterView) -> str:
    rows: list[tuple[bool, list[str]]] = []
    by_node: dict[str, dict[str, dict[str, Any]]] = {}
    for x in view.doc.get("egress") or []:
        by_node.setdefault(str(x.get("node")), {})[str(x.get("network"))] = x
    service = {str(s.get("node")): s for s in view.doc.get("service") or []}
    for node in sorted(set(by_node) | set(service), key=natural_key):
        egress, svc = view.outcome(egress_check.NAME, node), view.outcome(service_check.NAME, node)
        cells = [td(node)]
        for network in ("pod", "host"):
            x = by_node.get(node, {}).get(network)
            if x is None:
                cells.append(td("–"))
                continue
            rate = float(x.get("failure_rate") or 0)
            ports = x.get("failed_ports") or []
            # Source ports only say something when the connections got that far: attempts that
            # never resolved the name point at DNS, not at a firewall on low ports.
            span = ("; every attempt failed resolving the name"
                    if resolution_only(x.get("errors") or ()) else
                    f"; failed source ports {min(ports)}-{max(ports)}" if ports else "")
            # test_egress judges the pod's egress; the host's is the reference it is held to.
            cells.append(td(f"{100 * rate:.0f}% ({x.get('failures')}/{x.get('attempts')}){span}",
                            judged_class(egress) if network == "pod" else ""))
        s = service.get(node)
        if s is None:
            cells.append(td("–"))
        else:
            rate = float(s.get("failure_rate") or 0)
            missing = s.get("missing_backends") or []
            cells.append(td(f"{100 * rate:.0f}% ({s.get('failures')}/{s.get('attempts')})"
                            + (f"; unanswered: {', '.join(missing)}" if missing else ""),
                            judged_class(svc)))
        rows.append((FAILED in (egress, svc), cells))
    return table(["node", "egress from the pod", "egress from the host", "Service"], rows,
                 "Failure rates: egress and Service")


def node_checks_table(view: ClusterView) -> str:
    rows: list[tuple[bool, list[str]]] = []
    for n in sorted(view.doc.get("node_checks") or [], key=lambda x: natural_key(str(x["node"]))):
        node = str(n["node"])
        outcome = view.outcome(node_sysctls.NAME, node)
        s = n.get("sysctls") or {}
        fwd = s.get("net.ipv4.ip_forward")
        bnf = s.get("net.bridge.bridge-nf-call-iptables")
        mtus = ", ".join(f"{i['name']} {i['mtu']}" for i in n.get("interfaces") or []
                         if i.get("name") != "lo")
        node_diags = [d for d in view.node_diagnoses(node) if d.get("cause") in NODE_CAUSES]
        rows.append((outcome == FAILED or bool(node_diags), [
            td(node),
            td(fwd if fwd is not None else "?",
               judged_class(outcome, view.node_finding("ip-forward", node))),
            td(bnf if bnf is not None else "absent",
               judged_class(outcome, view.node_finding("bridge-nf", node))),
            td(s.get("net.ipv4.ip_local_port_range") or "?"), td(mtus),
            td("; ".join(sorted({str(d.get("cause")) for d in node_diags})) or "–",
               "k8s-bad" if node_diags else "")]))
    return table(["node", "ip_forward", "bridge-nf-call-iptables", "ip_local_port_range",
                  "interface MTUs", "node diagnoses"], rows, "Node checks")
