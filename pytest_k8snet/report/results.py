"""The JSON results file (``--k8s-results``) and the run report every other report reads.

Every report (terminal, HTML, the results file, the baseline comparison) renders the
same document, built once per run from the cluster's cached measurements (or, under
xdist, from the pickles the workers shared), the diagnoses and the test outcomes.

Results file, schema ``pytest-k8snet/results`` version 1
--------------------------------------------------------

A JSON object. Within one version fields are only ever added; a field that changes
meaning or goes away raises ``version``. Readers should ignore fields they do not
know. "Fixed" fields are always present in their entries (values may be ``null``
where a probe gave no number); other entry fields are informative.

Top level:

- ``schema`` ``"pytest-k8snet/results"``, ``version`` ``1``, ``plugin_version``
- ``time``: start of the run, UTC, ``YYYY-MM-DDTHH:MM:SSZ``; ``duration_s``
- ``cluster``: the cluster's identity (lab: ``kind``, ``name``, ``nodes``, ``faults``;
  kube: ``kind``, server, context ...)
- ``options``: every ``--k8s-*`` setting after precedence; ``args``: pytest's arguments
- ``nodes``: the probed node names, in cluster order
- ``expected_mtu``: the path MTU the pod network must carry (bytes), or ``null``
- ``ping`` [fixed ``{src, dst, network, loss_pct, rtt_ms}``; also ``transmitted``,
  ``received``]: small pings per ordered pair, ``network`` is ``pod`` or ``host``,
  ``rtt_ms`` the average (``null`` without replies)
- ``path_mtu`` [fixed ``{src, dst, network, bytes}``; also ``expected``, ``first_lost``,
  ``probes``, ``seconds``]: the largest IP packet (bytes) that crosses, 0 if none
- ``throughput`` [fixed ``{src, dst, mbps, loss_pct}``; also ``network``, ``error``,
  ``node_port``]: iperf3 UDP across the overlay (VXLAN, UDP 8472 on the wire)
- ``http``: 1 MiB transfers, pod to pod (``dst`` a node) and to the Service
  (``dst`` ``"service"``): ``{src, dst, ok, bytes, seconds, mbps, error, ...}``
- ``dns``: ``{node, name, rcode, answers, query_ms, server, ok}``
- ``egress``: ``{node, network, attempts, failures, failure_rate, failed_ports}``
- ``service``: ``{node, attempts, failures, failure_rate, answered_by, missing_backends,
  errors}``
- ``node_checks``: ``{node, sysctls, interfaces}``
- ``diagnoses`` [fixed ``{cause, nodes, pairs, message}``; also ``test``, ``finding``]: one
  per failed check; ``cause`` is one of :data:`pytest_k8snet.judge.CAUSES`, ``pairs``
  read ``"node-1->node-2"``, ``finding`` the id of the finding it comes from

Added within version 1 by the measure/judge split (:mod:`pytest_k8snet.measure`,
:mod:`pytest_k8snet.judge`); present when the run took its measurement document:

- ``pairs``, ``pair_mode``, ``thresholds`` ``{loss_pct}``, ``readiness``,
  ``service_backends``, ``dns_endpoints``, ``targets``, ``measured_s``
- ``throughput`` entries also carry ``packets``, ``failure`` (how iperf3 failed:
  ``tool-missing``, ``exec-error``, ``interrupted``, ``timeout`` or ``network``) and
  ``attempts`` (every sample; a suspect pair is measured again and ``loss_pct`` is the
  decisive, least lossy sample); ``ping`` entries ``error``; ``egress`` ``passed_ports``
- ``probe_failures``: probe runs that failed for a reason of their own (see measure.py)
- ``udp_receive_drops`` ``{node: datagrams or null}``: UDP datagrams each node's probe pod
  dropped at its own full socket buffers while UDP was measured (delivered by the path)
- ``findings`` [``{id, cause, title, summary, message, fix, nodes, pairs, checks, evidence,
  contradicting, would_contradict, root, evidence_nodes}``]: judged from the measurements
  alone; ``root`` names the finding a knock-on comes from
- ``verdicts`` [``{test, subject, outcome, message, finding, raw}``]: what each suite test
  does, with the raw probe output behind a failure
- ``evidence`` ``{node: [{name, argv, exit_code, output}]}``: routes, neighbours, FDB,
  firewall rules with counters, links, offloads from the nodes of failing findings
- ``tests``: test node id -> outcome (``passed``, ``failed``, ``skipped``)
- ``baseline``: ``null``, or the comparison with ``--k8s-baseline``: ``{path, time,
  cluster, tolerance_pct, compared, regressions, improvements, not_compared}``; each
  regression is ``{kind, src, dst, node, network, before, after, message}`` with
  ``kind`` one of ``pair``, ``path_mtu``, ``throughput``, ``failure_rate``
"""

from __future__ import annotations

import json
import pickle
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .. import __version__
from ..measure.document import sections

if TYPE_CHECKING:
    from ..run import Run as State
    from .baseline import Comparison

SCHEMA = "pytest-k8snet/results"
VERSION = 1
DIAG_PROP = "k8snet_diagnosis"
IDENTITY_FILE = "k8snet-identity.json"
REPORT_KEY = pytest.StashKey["RunReport"]()
_IDENTITY_KEY = pytest.StashKey[dict[str, Any]]()


# -- measurements ---------------------------------------------------------------------------

def measurements(state: "State") -> dict[str, Any]:
    """The run's cached measurements: in-process, or the files xdist workers shared."""
    cluster = state.cluster_if_started
    if cluster is not None:
        return dict(cluster.measurements)
    d = state.shared_dir_for_run()
    out: dict[str, Any] = {}
    if d.is_dir():
        for path in sorted(d.glob("*.pickle")):
            try:
                out[path.stem] = pickle.loads(path.read_bytes())
            except (OSError, EOFError, pickle.UnpicklingError):
                continue  # a worker died mid-write: that measurement is simply missing
    return out


def note_identity(state: "State") -> None:
    """While the cluster is up (its backend is gone by the end of the run), remember who it
    is; an xdist worker also leaves it in the run's shared dir for the controller."""
    if state.cluster_if_started is None or _IDENTITY_KEY in state.config.stash:
        return
    ident = dict(state.identity())
    state.config.stash[_IDENTITY_KEY] = ident
    shared = state.shared_dir
    if state.worker is None or shared is None:
        return
    path = shared / IDENTITY_FILE
    if not path.exists():
        tmp = path.with_suffix(f".{state.worker}.tmp")
        tmp.write_text(json.dumps(ident, default=str))
        tmp.replace(path)


def identity(state: "State") -> dict[str, Any]:
    noted = state.config.stash.get(_IDENTITY_KEY, None)
    if noted is not None:
        return dict(noted)
    path = state.shared_dir_for_run() / IDENTITY_FILE
    if state.worker is None and path.is_file():
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            pass
    return dict(state.identity())


def natural_key(name: str) -> tuple[Any, ...]:
    """``node-2`` before ``node-10``."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p)
                 for p in re.split(r"(\d+)", name) if p)


def _node_names(state: "State", m: dict[str, Any]) -> list[str]:
    cluster = state.cluster_if_started
    if cluster is not None:
        return list(cluster.node_names)
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


def build(state: "State", outcomes: dict[str, str]) -> dict[str, Any]:
    """The results document (see the module docstring for its schema)."""
    m = measurements(state)
    expected = m.get("expected-mtu")
    doc: dict[str, Any] = {
        "schema": SCHEMA, "version": VERSION, "plugin_version": __version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.started)),
        "duration_s": round(time.time() - state.started, 2),
        "cluster": identity(state), "options": state.settings.as_dict(),
        "args": [str(a) for a in state.config.invocation_params.args],
        "nodes": _node_names(state, m), "expected_mtu": expected,
        "ping": [], "path_mtu": [], "throughput": [], "http": [], "dns": [], "egress": [],
        "service": [], "node_checks": [], "diagnoses": [], "tests": dict(outcomes),
        "baseline": None,
    }
    for d in state.diagnoses:
        doc["diagnoses"].append({"cause": d.get("cause", "unknown"),
                                 "nodes": list(d.get("nodes", [])),
                                 "pairs": list(d.get("pairs", [])),
                                 "message": d.get("message", ""),
                                 **{k: v for k, v in d.items()
                                    if k not in ("cause", "nodes", "pairs", "message")}})
    measured = m.get("document")
    if isinstance(measured, dict):
        # The run's measurement document (what the tests were judged on) is the source.
        doc.update({k: v for k, v in measured.items() if k not in ("nodes", "expected_mtu")})
        doc["nodes"] = list(measured.get("nodes") or doc["nodes"])
        doc["expected_mtu"] = measured.get("expected_mtu", expected)
    else:
        doc.update(sections(m))
    if isinstance(measured, dict):
        judgement = state.judgement_of(measured)
        doc["findings"] = [f.as_dict() for f in judgement.findings]
        doc["verdicts"] = [v.as_dict() for v in judgement.verdicts.values()]
    return doc


# -- the run report -------------------------------------------------------------------------

@dataclass
class RunReport:
    """What the reports show: the results document and, with a baseline, the comparison."""

    doc: dict[str, Any]
    comparison: "Comparison | None" = None
    baseline_error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> int:
        return len(self.comparison.regressions) if self.comparison is not None else 0

    @property
    def fails_run(self) -> bool:
        return self.regressions > 0 or self.baseline_error is not None

    @property
    def has_cluster_data(self) -> bool:
        d = self.doc
        return bool(d["ping"] or d["path_mtu"] or d["throughput"] or d["dns"] or d["egress"]
                    or d["node_checks"] or d["diagnoses"] or d["http"] or d["service"])


def run_report(state: "State") -> RunReport:
    """Built once, at the end of the run (controller side); every report shares it."""
    cached = state.config.stash.get(REPORT_KEY, None)
    if cached is not None:
        return cached
    from . import baseline

    report = RunReport(build(state, state.outcomes))
    if state.settings.baseline:
        try:
            before = baseline.load(state.settings.baseline)
        except baseline.BaselineError as exc:
            report.baseline_error = str(exc)
        else:
            if report.has_cluster_data:
                report.comparison = baseline.compare(before, report.doc,
                                                     state.settings.baseline_tolerance,
                                                     path=state.settings.baseline)
                report.doc["baseline"] = report.comparison.as_dict()
            else:
                report.notes.append("no cluster measurements in this run: nothing compared "
                                    "with the baseline")
    state.config.stash[REPORT_KEY] = report
    return report


def finish(session: pytest.Session, state: "State") -> None:
    """Controller side: write the results file; regressions make the run fail."""
    if state.worker is not None:
        return
    report = run_report(state)
    if state.settings.results:
        path = Path(state.settings.results)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(report.doc, indent=2, default=str))
        tmp.replace(path)
    if report.fails_run and session.exitstatus in (pytest.ExitCode.OK,
                                                   pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# -- a view of the document for the terminal and HTML reports -------------------------------

UDP_LOSS_LIMIT = 5.0  # test_udp_8472 fails above this loss (documents without thresholds)


@dataclass
class PairCell:
    """Everything measured for one ordered pair on one network, and whether it passes."""

    src: str
    dst: str
    network: str
    ping: dict[str, Any] | None = None
    pmtu: dict[str, Any] | None = None
    throughput: dict[str, Any] | None = None
    http: dict[str, Any] | None = None
    diagnoses: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.src}->{self.dst}"

    @property
    def measured(self) -> bool:
        return any(v is not None for v in (self.ping, self.pmtu, self.throughput, self.http))

    @property
    def status(self) -> str:
        """``fail``, ``pass``, or ``none`` when nothing was measured for the pair."""
        if self.problems or self.diagnoses:
            return "fail"
        return "pass" if self.measured else "none"

    @property
    def rtt_ms(self) -> float | None:
        return None if self.ping is None else self.ping.get("rtt_ms")

    @property
    def loss_pct(self) -> float | None:
        return None if self.ping is None else self.ping.get("loss_pct")

    @property
    def path_mtu(self) -> int | None:
        return None if self.pmtu is None else self.pmtu.get("bytes")


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
        if len(self.findings) > max(len(self.pairs), 1):
            text += f" ({len(self.findings)} findings)"
        return text


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
    from ..judge import CAUSES

    groups = []
    if findings:
        by_finding: dict[str, list[dict[str, Any]]] = {}
        for d in diagnoses:
            by_finding.setdefault(str(d.get("finding")), []).append(d)
        for f in findings:
            items = by_finding.get(str(f["id"]), [])
            if not items and f.get("root") is None:
                continue  # no test of this run failed on it (-k chose others)
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
                               if (evidence or {}).get(n)}))
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


class ClusterView:
    """Index of a results document by pair and node, for rendering."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.expected_mtu: int | None = doc.get("expected_mtu")
        self.cells: dict[tuple[str, str, str], PairCell] = {}
        names: list[str] = list(doc.get("nodes") or [])
        for e in doc.get("ping", []):
            self._cell(e["network"], e["src"], e["dst"]).ping = e
        for e in doc.get("path_mtu", []):
            self._cell(e["network"], e["src"], e["dst"]).pmtu = e
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
        for cell in self.cells.values():
            cell.problems = self._problems(cell)
        seen = set(names)
        extra = {n for (_, a, b) in self.cells for n in (a, b) if n not in seen}
        self.nodes = names + sorted(extra, key=natural_key)
        self.groups = group_diagnoses(list(doc.get("diagnoses", [])), doc.get("findings"),
                                      doc.get("evidence"))

    def _cell(self, network: str, src: str, dst: str) -> PairCell:
        key = (network, src, dst)
        if key not in self.cells:
            self.cells[key] = PairCell(src, dst, network)
        return self.cells[key]

    def _problems(self, c: PairCell) -> list[str]:
        out = []
        if c.ping is not None and (c.ping.get("loss_pct") or 0) > 0:
            out.append(f"ping: {c.ping.get('loss_pct'):g}% lost")
        if c.pmtu is not None and c.network == "pod" and self.expected_mtu:
            if int(c.pmtu.get("bytes") or 0) < self.expected_mtu:
                out.append(f"path MTU {c.pmtu.get('bytes')} < expected {self.expected_mtu}")
        t = c.throughput
        limit = float((self.doc.get("thresholds") or {}).get("loss_pct", UDP_LOSS_LIMIT))
        if t is not None and (t.get("error") or (t.get("loss_pct") or 0) > limit):
            out.append(f"UDP: {t.get('error') or str(t.get('loss_pct')) + '% lost'}")
        if c.http is not None and not c.http.get("ok", True):
            out.append(f"1 MiB HTTP: {c.http.get('error') or 'incomplete'}")
        return out

    def cell(self, network: str, src: str, dst: str) -> PairCell | None:
        return self.cells.get((network, src, dst))

    def has_network(self, network: str) -> bool:
        return any(k[0] == network and c.measured for k, c in self.cells.items())

    def pair_cells(self, network: str) -> list[PairCell]:
        order = {n: i for i, n in enumerate(self.nodes)}
        return sorted((c for k, c in self.cells.items() if k[0] == network),
                      key=lambda c: (order.get(c.src, 0), order.get(c.dst, 0)))

    def node_diagnoses(self, node: str) -> list[dict[str, Any]]:
        return [d for d in self.doc.get("diagnoses", []) if node in d.get("nodes", [])
                and not d.get("pairs")]


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
