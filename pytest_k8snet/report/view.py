"""A results document indexed by pair and node, for the terminal and HTML reports.

Pass and fail come from the run's one judgement (the document's ``verdicts`` and
``findings``), never from the raw numbers: the tests and every report then agree under any
``--k8s-loss-threshold``. The numbers are only shown. A document without verdicts (a run
that took no measurement document) is "not judged"; only the failures its tests recorded
(``diagnoses``) mark pairs there.
"""

from __future__ import annotations

import re
from itertools import compress, repeat
from operator import attrgetter, gt, itemgetter, methodcaller
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..gcpause import no_cyclic_gc
from ..judge import CAUSES, FAILED, PASSED
from ..judge.checks import large_packets, path_mtu, pod_ping, udp_8472

# Status of a matrix cell or table row.
FAIL, PASS, UNJUDGED, NONE = "fail", "pass", "unjudged", "none"
PAIR_TESTS = (pod_ping.NAME, path_mtu.NAME, udp_8472.NAME, large_packets.NAME)
# Findings about the nodes' own network: they colour the host-network matrix.
HOST_CAUSES = ("underlay",)


def natural_key(name: str) -> tuple[Any, ...]:
    """``node-2`` before ``node-10``."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p)
                 for p in re.split(r"(\d+)", name) if p)


@dataclass(slots=True)
class PairCell:
    """Everything measured for one ordered pair on one network, and how it was judged.

    Slots: a 1,000-node run has two million cells, each report reads them all.
    """

    src: str
    dst: str
    network: str
    ping: dict[str, Any] | None = None
    pmtu: dict[str, Any] | None = None
    throughput: dict[str, Any] | None = None
    http: dict[str, Any] | None = None
    diagnoses: list[dict[str, Any]] = field(default_factory=list)
    judged: bool = False
    # Pod network: suite test -> its verdict for this pair. Host network: none.
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Host network: the findings (failing a test, not knock-ons) that cover this pair.
    host_findings: list[dict[str, Any]] = field(default_factory=list)
    # status, once asked: every report asks of every cell, the cell no longer changes then.
    _status: str | None = field(default=None, repr=False, compare=False)

    @property
    def id(self) -> str:
        return f"{self.src}->{self.dst}"

    @property
    def measured(self) -> bool:
        # Spelled out, not any() over a generator: asked of every cell by every report.
        return (self.ping is not None or self.pmtu is not None
                or self.throughput is not None or self.http is not None)

    def outcome(self, test: str) -> str | None:
        """The verdict's outcome for ``test`` on this pair, None when there is none."""
        v = self.verdicts.get(test)
        return None if v is None else str(v.get("outcome"))

    @property
    def status(self) -> str:
        """``fail``, ``pass``, ``unjudged`` (measured, no verdict passed or failed it) or
        ``none`` (nothing measured)."""
        if self._status is None:
            self._status = self._judged_status()
        return self._status

    def _judged_status(self) -> str:
        if (self.ping is None and self.pmtu is None and self.throughput is None
                and self.http is None):  # not measured, spelled out: two million cells
            return NONE
        if not self.judged:
            return FAIL if self.diagnoses else UNJUDGED
        if self.network == "host":
            return FAIL if self.host_findings else PASS
        passed = False
        for v in self.verdicts.values():
            outcome = str(v.get("outcome"))
            if outcome == FAILED:
                return FAIL
            passed = passed or outcome == PASSED
        return PASS if passed else UNJUDGED

    @property
    def problems(self) -> list[str]:
        """What failed, short, with the numbers behind it (empty unless the cell fails)."""
        out = []
        if self.network == "host":
            for f in self.host_findings:
                loss = f"ping: {self.loss_pct:g}% lost, " if self.loss_pct is not None else ""
                out.append(f"{loss}{f.get('title') or f.get('cause')}")
            return out
        for test in (t for t in PAIR_TESTS if self.outcome(t) == FAILED):
            if test == pod_ping.NAME:
                out.append(f"ping: {_number(self.loss_pct)}% lost")
            elif test == path_mtu.NAME:
                expected = (self.pmtu or {}).get("expected")
                out.append(f"path MTU {_number(self.path_mtu)}"
                           + (f" < expected {expected}" if expected else ""))
            elif test == udp_8472.NAME:
                t = self.throughput or {}
                out.append(f"UDP: {t.get('error') or _number(t.get('loss_pct')) + '% lost'}")
            else:
                out.append(f"1 MiB HTTP: {(self.http or {}).get('error') or 'incomplete'}")
        return out

    @property
    def rtt_ms(self) -> float | None:
        return None if self.ping is None else self.ping.get("rtt_ms")

    @property
    def loss_pct(self) -> float | None:
        return None if self.ping is None else self.ping.get("loss_pct")

    @property
    def path_mtu(self) -> int | None:
        return None if self.pmtu is None else self.pmtu.get("bytes")


def _number(value: object) -> str:
    return "?" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


@dataclass
class DiagnosisGroup:
    """The diagnoses of one cause: ``MTU: 4 pairs involving node-2``."""

    cause: str
    title: str
    fix: str
    findings: list[dict[str, Any]]
    pairs: list[str]
    nodes: list[str]
    involving: list[str]

    finding: dict[str, Any] | None = None  # the finding this group shows, when judged
    evidence: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # The findings whose root this group's finding is: shown inside it, fixed with it.
    knock_ons: list[dict[str, Any]] = field(default_factory=list)

    @property
    def headline(self) -> str:
        """Names exactly what the group covers: its pairs, or the node(s) in every one of
        them, or its nodes; never an example that the named nodes are not part of."""
        if 0 < len(self.pairs) <= 2:
            text = f"{self.title}: " + ", ".join(self.pairs)
        elif self.pairs:
            text = f"{self.title}: {len(self.pairs)} pairs"
            if self.involving:
                text += " involving " + ", ".join(self.involving)
            else:
                shown = self.pairs[:6]
                text += ": " + ", ".join(shown) + (
                    f" and {len(self.pairs) - len(shown)} more" if len(self.pairs) > 6 else "")
        else:
            text = f"{self.title}: " + (", ".join(self.nodes) if self.nodes else "cluster-wide")
        # One test per pair (or per node of a node finding) is the finding itself, not more.
        # A judged group is one finding: what it has more of is tests failed on it.
        if len(self.findings) > max(len(self.pairs) or len(self.nodes), 1):
            text += f" ({len(self.findings)} " + (
                "failed tests)" if self.finding is not None else "findings)")
        return text


def causes_count(groups: Sequence[DiagnosisGroup]) -> str:
    """``2 causes``, or ``1 cause, 2 knock-ons``: a knock-on is not a cause of its own."""
    alone = sum(1 for g in groups if g.finding is not None and g.finding.get("root"))
    knock = alone + sum(len(g.knock_ons) for g in groups)
    roots = len(groups) - alone
    text = f"{roots} cause{'s' if roots != 1 else ''}"
    return text + (f", {knock} knock-on{'s' if knock != 1 else ''}" if knock else "")


def _common(pairs: list[str]) -> list[str]:
    """The nodes that are an end of every pair (none when that is not true of any)."""
    if len(pairs) < 2:
        return []
    ends = [set(p.split("->", 1)) for p in pairs]
    return sorted(set.intersection(*ends), key=natural_key)


def group_diagnoses(diagnoses: list[dict[str, Any]],
                    findings: list[dict[str, Any]] | None = None,
                    evidence: dict[str, Any] | None = None) -> list[DiagnosisGroup]:
    """One group per judged finding that a test failed on (when ``findings`` are given),
    else the diagnoses grouped by cause; the group with the most pairs first."""
    groups = []
    if findings:
        by_finding: dict[str, list[dict[str, Any]]] = {}
        for d in diagnoses:
            by_finding.setdefault(str(d.get("finding")), []).append(d)
        shown = {str(f["id"]) for f in findings if by_finding.get(str(f["id"]))}
        inside: dict[str, list[dict[str, Any]]] = {}
        for f in findings:
            if f.get("root") and str(f["root"]) in shown:
                inside.setdefault(str(f["root"]), []).append(f)
        for f in findings:
            items = by_finding.get(str(f["id"]), [])
            if not items and (f.get("root") is None or str(f["root"]) in shown):
                # No test of this run failed on it (-k chose others), or a knock-on that
                # its root's group shows: one box per fault, not one per symptom.
                continue
            if not items:
                items = [{"message": f.get("message", ""), "cause": f.get("cause"),
                          "nodes": f.get("nodes", []), "pairs": f.get("pairs", [])}]
            pairs = [str(p) for p in f.get("pairs", [])]
            nodes = [str(n) for n in f.get("nodes", [])]
            common = _common(pairs)
            involving = [n for n in nodes if n in common]
            title = str(f.get("title") or CAUSES.get(str(f.get("cause")), CAUSES["unknown"])[0])
            if f.get("root"):
                title += " (knock-on)"
            groups.append(DiagnosisGroup(
                str(f.get("cause")), title, str(f.get("fix", "")), items, pairs, nodes,
                involving, f, {n: (evidence or {}).get(n, []) for n in f.get("evidence_nodes", [])
                               if (evidence or {}).get(n)}, inside.get(str(f["id"]), [])))
        groups.sort(key=lambda g: (-len(g.pairs), -len(g.findings), g.cause))
        return groups
    by_cause: dict[str, list[dict[str, Any]]] = {}
    for d in diagnoses:
        by_cause.setdefault(str(d.get("cause", "unknown")), []).append(d)
    for cause, items in by_cause.items():
        title, fix, _ = CAUSES.get(cause, CAUSES["unknown"])
        pairs = sorted({str(p) for d in items for p in d.get("pairs", [])}, key=natural_key)
        nodes = sorted({str(n) for d in items for n in d.get("nodes", [])}, key=natural_key)
        groups.append(DiagnosisGroup(cause, title, fix, items, pairs, nodes, _common(pairs)))
    groups.sort(key=lambda g: (-len(g.pairs), -len(g.findings), g.cause))
    return groups


def _verdicts_by_key(verdicts: list[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The verdicts by (test, subject). At 1,000 nodes they are four million: the keys
    are taken by itemgetter's C loop when every verdict has its two strings."""
    try:
        tests = list(map(itemgetter("test"), verdicts))
        subjects = list(map(itemgetter("subject"), verdicts))
        if set(map(type, tests)) | set(map(type, subjects)) <= {str}:
            return dict(zip(zip(tests, subjects), verdicts))
    except (KeyError, TypeError):  # an entry that is no verdict: the careful way
        pass
    return {(str(v.get("test")), str(v.get("subject"))): v for v in verdicts
            if isinstance(v, dict)}


def _failed(verdicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The verdicts that failed (in C loops; see :func:`_verdicts_by_key`)."""
    return list(compress(verdicts, map(FAILED.__eq__, map(methodcaller("get", "outcome"),
                                                          verdicts))))


def _pod_verdicts(cells: list[PairCell],
                  verdicts: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Each pod cell's verdicts of the pair tests, in :data:`PAIR_TESTS` order.

    A million cells at 1,000 nodes: the lookups are C loops, one per test, and when every
    cell has all four (a run of the suite) each cell's dict is made in C as well.
    """
    pids = list(map("{}->{}".format, map(attrgetter("src"), cells),
                    map(attrgetter("dst"), cells)))
    cols = [list(map(verdicts.get, zip(repeat(t), pids))) for t in PAIR_TESTS]
    if all(None not in col for col in cols):
        for cell, found in zip(cells, map(dict, map(zip, repeat(PAIR_TESTS), zip(*cols)))):
            cell.verdicts = found
        return
    for cell, row in zip(cells, zip(*cols)):
        cell.verdicts = {t: v for t, v in zip(PAIR_TESTS, row) if v is not None}


class ClusterView:
    """Index of a results document by pair and node, with the judgement's outcomes."""

    def __init__(self, doc: dict[str, Any]) -> None:
        with no_cyclic_gc():  # two million cells at 1,000 nodes, no cycles
            self._index(doc)

    def _index(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.expected_mtu: int | None = doc.get("expected_mtu")
        self.judged = isinstance(doc.get("verdicts"), list)
        self.verdicts = _verdicts_by_key(list(doc.get("verdicts") or []))
        failing_ids = {str(v.get("finding")) for v in _failed(list(self.verdicts.values()))
                       if v.get("finding")}
        # A knock-on's test skips: only findings that fail a test of their own count.
        self.failing_findings = [f for f in doc.get("findings") or []
                                 if str(f.get("id")) in failing_ids and not f.get("root")]
        self.cells: dict[tuple[str, str, str], PairCell] = {}
        names: list[str] = list(doc.get("nodes") or [])
        cells = self.cells
        # The two big sections (every pair, both networks) without a method call per entry;
        # the pings, one per pair and network as measured, by C loops.
        pings = list(doc.get("ping", []))
        srcs, dsts, nets = (list(map(itemgetter(k), pings)) for k in ("src", "dst", "network"))
        keys = list(zip(nets, srcs, dsts))
        if len(set(keys)) == len(keys):
            cells.update(zip(keys, map(PairCell, srcs, dsts, nets, pings)))
        else:
            for key, e in zip(keys, pings):
                cell = cells.get(key)
                if cell is None:
                    cell = cells[key] = PairCell(e["src"], e["dst"], e["network"])
                cell.ping = e
        for e in doc.get("path_mtu", []):
            key = (e["network"], e["src"], e["dst"])
            cell = cells.get(key)
            if cell is None:
                cell = cells[key] = PairCell(e["src"], e["dst"], e["network"])
            cell.pmtu = e
        for e in doc.get("throughput", []):
            self._cell(e.get("network") or "pod", e["src"], e["dst"]).throughput = e
        for e in doc.get("http", []):
            if e.get("dst") != "service":
                self._cell("pod", e["src"], e["dst"]).http = e
        for d in doc.get("diagnoses", []):
            for pid in d.get("pairs", []):
                src, _, dst = str(pid).partition("->")
                # Pair diagnoses come from pod-network checks; underlay ones concern both.
                for net in (("pod", "host") if d.get("cause") == "underlay" else ("pod",)):
                    if net == "pod" or (net, src, dst) in self.cells:
                        self._cell(net, src, dst).diagnoses.append(d)
        judged = self.judged
        for cell in cells.values():
            cell.judged = judged
        # Each network's cells in the order made (C loops: two million cells at 1,000 nodes).
        networks = list(map(itemgetter(0), cells))
        self._by_network = {net: list(compress(cells.values(), map(net.__eq__, networks)))
                            for net in dict.fromkeys(networks)}
        # Each host finding put on the cells of its own pairs (a few thousand), in the
        # findings' order, rather than each of a million cells asking every finding.
        for f in self.failing_findings:
            if f.get("cause") not in HOST_CAUSES:
                continue
            for pid in dict.fromkeys(f.get("pairs") or []):
                src, _, dst = str(pid).partition("->")
                for net in self._by_network:
                    cell = cells.get((net, src, dst)) if net != "pod" else None
                    if cell is not None:
                        cell.host_findings.append(f)
        _pod_verdicts(self._by_network.get("pod", []), self.verdicts)
        seen = set(names)
        ends = set(map(itemgetter(1), cells)) | set(map(itemgetter(2), cells))
        self.nodes = names + sorted(ends - seen, key=natural_key)
        self._sorted: dict[str, list[PairCell]] = {}
        self._counts: dict[str, tuple[int, int]] = {}
        self._failing: dict[str, list[PairCell]] = {}
        self.groups = group_diagnoses(list(doc.get("diagnoses", [])), doc.get("findings"),
                                      doc.get("evidence"))

    def _cell(self, network: str, src: str, dst: str) -> PairCell:
        key = (network, src, dst)
        if key not in self.cells:
            self.cells[key] = PairCell(src, dst, network)
        return self.cells[key]

    def outcome(self, test: str, subject: str) -> str | None:
        """The verdict's outcome for ``test`` on ``subject`` (a node or a pair), None when
        the document has none (not judged, or not measured)."""
        v = self.verdicts.get((test, subject))
        return None if v is None else str(v.get("outcome"))

    def node_finding(self, cause: str, node: str) -> bool:
        """Whether a finding of ``cause`` about ``node`` fails a test."""
        return any(f.get("cause") == cause and node in (f.get("nodes") or [])
                   for f in self.failing_findings)

    def cell(self, network: str, src: str, dst: str) -> PairCell | None:
        return self.cells.get((network, src, dst))

    def has_network(self, network: str) -> bool:
        return any(k[0] == network and c.measured for k, c in self.cells.items())

    def pair_cells(self, network: str) -> list[PairCell]:
        # Sorted once per network: every report and table asks, and at 1,000 nodes each
        # sort is a million cells. The sort keys are made by C loops, and the cells are
        # usually in node order already (the document's pair order): then no sort at all.
        if network not in self._sorted:
            order = {n: i for i, n in enumerate(self.nodes)}
            cells = self._by_network.get(network, [])
            keys = list(zip(map(order.get, map(attrgetter("src"), cells), repeat(0)),
                            map(order.get, map(attrgetter("dst"), cells), repeat(0))))
            if any(map(gt, keys, keys[1:])):
                cells = [cells[i] for i in sorted(range(len(cells)), key=keys.__getitem__)]
            self._sorted[network] = cells
        return list(self._sorted[network])

    def failing(self, network: str) -> list[PairCell]:
        """The cells of ``network`` that fail, in node order (asked by every report)."""
        if network not in self._failing:
            self._failing[network] = [c for c in self.pair_cells(network)
                                      if c.status == FAIL]
        return list(self._failing[network])

    def counts(self, network: str) -> tuple[int, int]:
        """(pairs measured, pairs failing) on ``network``."""
        if network not in self._counts:
            measured = sum(1 for c in self.pair_cells(network) if c.measured)
            self._counts[network] = (measured, len(self.failing(network)))
        return self._counts[network]

    def node_diagnoses(self, node: str) -> list[dict[str, Any]]:
        return [d for d in self.doc.get("diagnoses", []) if node in d.get("nodes", [])
                and not d.get("pairs")]


def listed(names: Sequence[str], limit: int = 8) -> str:
    """Node names in natural order, the first ``limit`` of them and how many more."""
    ordered = sorted(names, key=natural_key)
    return ", ".join(ordered[:limit]) + (f" and {len(ordered) - limit} more"
                                         if len(ordered) > limit else "")


def cluster_line(doc: dict[str, Any]) -> str:
    """``lab x1, 3 nodes, faults: vxlan-blocked on node-2`` or the kube server and context."""
    c = doc.get("cluster") or {}
    nodes = doc.get("nodes") or []
    if c.get("kind") == "lab":
        text = f"lab {c.get('name', '?')}, {len(nodes) or c.get('nodes', '?')} nodes"
        faults = [f for f in c.get("faults") or [] if isinstance(f, dict)]
        if faults:
            text += ", faults: " + ", ".join(
                f"{f.get('name')}{'=' + str(f['value']) if f.get('value') else ''}"
                + (f" on {f['node']}" if f.get("node") else "") for f in faults)
        return text
    keys = ("server", "context", "name", "version")
    described = ", ".join(f"{k} {c[k]}" for k in keys if c.get(k))
    return f"{c.get('kind', 'cluster')}" + (f" ({described})" if described else "") + (
        f", {len(nodes)} nodes" if nodes else "")
