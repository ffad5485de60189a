"""The reports of a run above --k8s-per-node-threshold, on a generated 60-node document:
the HTML matrix is a canvas with the failing pairs listed by finding, and the results
file holds its long sections as columns and reads back (the baseline too) as the same
document; at or above 60 (the threshold) the same run gets the table matrix and the
indented file as before."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet.judge import Judgement, judge
from pytest_k8snet.report import columns, html, results
from pytest_k8snet.report.baseline import compare, load
from pytest_k8snet.report.matrix_canvas import cells
from pytest_k8snet.report.results import RunReport
from pytest_k8snet.report.stream import write_compact, write_results
from pytest_k8snet.report.view import ClusterView

from .bigdoc import Faults, generate

CUT = "underlay-cut:node-1..node-20|node-41..node-60"


class Facts:
    """The run as the reports read it (report/facts.py), over a generated document."""

    worker = None
    diagnoses: list[dict[str, Any]] = []

    def __init__(self, doc: dict[str, Any], judgement: Judgement, threshold: int) -> None:
        self.doc, self.judgement = doc, judgement
        self.settings = type("S", (), {"as_dict": lambda _: {"per_node_threshold": threshold}})()
        self.started = time.time()
        self.outcomes: dict[str, str] = {}

    def identity(self) -> dict[str, Any]:
        return {"kind": "generated", "name": "bigdoc"}

    def measured(self) -> tuple[dict[str, Any], Judgement]:
        return self.doc, self.judgement


@pytest.fixture(scope="module")
def generated() -> tuple[dict[str, Any], Judgement]:
    doc = generate(60, 20)
    return doc, judge(doc)


def report(generated: tuple[dict[str, Any], Judgement], threshold: int) -> RunReport:
    return RunReport(results.build(Facts(*generated, threshold), []))  # type: ignore[arg-type]


def test_above_the_threshold_the_matrix_is_a_canvas(generated: tuple[dict[str, Any],
                                                                     Judgement]) -> None:
    r = report(generated, 32)
    page = html.render(r)
    assert page.count('<canvas class="k8s-canvas"') == 2  # the pod and the host network
    assert '<td class="k8s-cell' not in page
    assert f"<b>800 pairs</b> <code>{CUT}</code>" in page
    assert "pod-lossy:node-31" in page and "mtu:node-46" in page
    cut = cells(ClusterView(r.doc), "pod")
    assert len(cut) == 60 * 60
    # node-1's row: itself, 19 of its rack fine, its pairs into rack 3 failing.
    row = cut[:60]
    assert row[0] == "x" and row[40:60] == "f" * 20 and "f" not in row[1:30]


def test_at_or_below_it_the_table_stays(generated: tuple[dict[str, Any], Judgement]) -> None:
    page = html.render(report(generated, 60))
    assert '<canvas class="k8s-canvas"' not in page and '<td class="k8s-cell' in page


def test_the_results_file_holds_long_sections_as_columns(
        generated: tuple[dict[str, Any], Judgement], tmp_path: Path) -> None:
    doc = report(generated, 32).doc
    path = tmp_path / "results.json"
    write_results(doc, path)
    same = json.loads(json.dumps(doc, default=str))
    assert columns.read(path) == same  # every entry back, verdicts with their empty fields
    raw = json.loads(path.read_text())
    for section in ("ping", "path_mtu", "ping_pod_to_node", "verdicts"):
        assert raw[section]["columns"] == columns.ENCODING, section
    ping = raw["ping"]["keys"]
    # Pod then host network, a run each; 3 of 3 received but on the cut and lossy pairs.
    assert ping["network"] == {"runs": [["pod", 3540], ["host", 3540]]}
    received = columns.decode_column(ping["received"])
    assert received.count(0) == 2 * 800 and received.count(8) == 2 * 59
    assert ping["error"] == {"runs": [[None, 2 * 3540]]}  # no ping failed to run
    # The pair sections far smaller than an entry per line (the form before columns).
    for section in ("ping", "path_mtu", "ping_pod_to_node"):
        entry_per_line = sum(len(json.dumps(e, separators=(",", ":"))) + 2
                             for e in same[section])
        assert len(json.dumps(raw[section])) * 8 < entry_per_line, section


def test_a_baseline_in_columns_compares_as_the_document(
        generated: tuple[dict[str, Any], Judgement], tmp_path: Path) -> None:
    """The baseline read back from columns is compared pair by pair: a healthy baseline
    against the run with the rack cut finds every cut pair, in the same order whether the
    entries line up (the fast path) or not (paired by key)."""
    healthy_doc = generate(60, 20, Faults(cut=None, lossy=0, mtu=0))
    healthy = RunReport(results.build(Facts(healthy_doc, judge(healthy_doc), 32), []))  # type: ignore[arg-type]
    path = tmp_path / "baseline.json"
    write_results(healthy.doc, path)
    before = load(path)
    # What the comparison reads is back as entries; the verdicts it never reads stay columns.
    assert isinstance(before["ping"], list) and columns.is_encoded(before["verdicts"])
    now = report(generated, 32).doc
    c = compare(before, now, 20.0)
    cut = [r for r in c.regressions if r.kind == "pair"]
    assert len(cut) == 2 * 800 + 2 * 59  # the cut on both networks, the lossy node to and from
    assert {r.kind for r in c.regressions} == {"pair", "path_mtu", "throughput"}
    assert c.compared == len(now["ping"]) + len(now["path_mtu"]) + len(now["throughput"]) \
        + len(now["egress"]) + len(now["service"])
    shuffled = {**before, "ping": before["ping"][::-1], "path_mtu": before["path_mtu"][::-1]}
    again = compare(shuffled, now, 20.0)
    assert [r.message for r in again.regressions] == [r.message for r in c.regressions]
    assert (again.compared, again.not_compared) == (c.compared, c.not_compared)


def test_columns_keep_every_value_and_its_type() -> None:
    rows = [{"i": i, "x": 0 if i % 2 else 0.0, "node": f"node-{i % 7}", "up": i // 500,
             "none": None, "s": "a" if i < 700 else None} for i in range(1200)]
    encoded = columns.encode(rows)
    assert encoded is not None
    back = columns.decode(json.loads(json.dumps(encoded)))
    assert back == rows
    assert [type(r["x"]) for r in back] == [type(r["x"]) for r in rows]  # 0 stays 0, 0.0 0.0
    keys = encoded["keys"]
    assert "deltas" in keys["i"] and "values" in keys["x"] and "table" in keys["node"]
    assert keys["up"] == {"runs": [[0, 500], [1, 500], [2, 200]]}
    assert keys["s"] == {"runs": [["a", 700], [None, 500]]}
    # Entries that are not all the same shape stay as they are.
    assert columns.encode([*rows[:-1], {"i": 1}]) is None
    assert columns.encode(rows[:10]) is None


def test_below_it_the_results_file_is_indented_as_before(
        generated: tuple[dict[str, Any], Judgement], tmp_path: Path) -> None:
    doc = report(generated, 60).doc
    path = tmp_path / "results.json"
    write_results(doc, path)
    assert path.read_text() == json.dumps(doc, indent=2, default=str)


def test_compact_json_of_small_values() -> None:
    out = io.StringIO()
    write_compact({"a": [1, 2], "b": list(range(20)), "c": {"x": None}}, out)
    assert json.loads(out.getvalue()) == {"a": [1, 2], "b": list(range(20)), "c": {"x": None}}
    # Plain values on one line however many; objects an entry per line.
    assert out.getvalue().splitlines()[:3] == ["{", '"a": [1,2],', f'"b": {json.dumps(list(range(20))).replace(" ", "")},']
    # An entry whose text holds the boundary between two entries: each encoded alone.
    tricky = [{"x": i, "s": '},{"x":' if i == 3 else ""} for i in range(20)]
    out = io.StringIO()
    write_compact({"t": tricky}, out)
    assert json.loads(out.getvalue()) == {"t": tricky}
    assert len(out.getvalue().splitlines()) == 20 + 4


def test_a_large_baseline_section_draws_no_tables(
        generated: tuple[dict[str, Any], Judgement], tmp_path: Path) -> None:
    """Above the threshold the baseline comparison lists the regressions, not two table
    matrices of every pair; at or below it the matrices stay side by side."""
    r = report(generated, 32)
    write_results(r.doc, tmp_path / "before.json")
    r.comparison = compare(load(tmp_path / "before.json"), r.doc, 20.0)
    page = html.render(r)
    assert 'id="k8s-no-side-by-side"' in page and '<td class="k8s-cell' not in page
    assert "Baseline comparison: 0 regressions" in page
    small = report(generated, 60)
    small.comparison = compare(json.loads(json.dumps(small.doc)), small.doc, 20.0)
    page = html.render(small)
    assert "k8s-side-by-side" in page and 'id="k8s-no-side-by-side"' not in page


def test_the_verdicts_in_the_document_are_the_judgements(
        generated: tuple[dict[str, Any], Judgement]) -> None:
    doc = report(generated, 32).doc
    assert doc["verdicts"] == [v.as_dict() for v in generated[1].verdicts.values()]
