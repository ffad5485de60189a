"""The reports of a run above --k8s-per-node-threshold, on a generated 60-node document:
the HTML matrix is a canvas with the failing pairs listed by finding, and the results
file is streamed one compact line per entry and reads back as the same document; at or
above 60 (the threshold) the same run gets the table matrix as before."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet.judge import Judgement, judge
from pytest_k8snet.report import html, results
from pytest_k8snet.report.matrix_canvas import cells
from pytest_k8snet.report.results import RunReport
from pytest_k8snet.report.stream import write_compact, write_results
from pytest_k8snet.report.view import ClusterView

from .bigdoc import generate

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


def test_the_results_file_streams_an_entry_per_line(
        generated: tuple[dict[str, Any], Judgement], tmp_path: Path) -> None:
    doc = report(generated, 32).doc
    path = tmp_path / "results.json"
    write_results(doc, path)
    text = path.read_text()
    back, same = json.loads(text), json.loads(json.dumps(doc, default=str))
    empty = {"message": "", "raw": "", "finding": None}
    assert [{**empty, **v} for v in back.pop("verdicts")] == same.pop("verdicts")
    assert back == same
    assert '"outcome":"passed"}' in text  # a plain pass carries nothing empty
    lines = text.splitlines()
    pair = [x for x in lines if x.startswith('{"src":"node-1","dst":"node-41","network":"pod"')]
    # Its pod ping and its path-MTU search, a line each.
    assert len(pair) == 2 and json.loads(pair[0].rstrip(","))["received"] == 0
    assert len(lines) > len(doc["ping"]) + len(doc["verdicts"])


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
    assert out.getvalue().splitlines()[:3] == ["{", '"a": [1,2],', '"b": [']
    # An entry whose text holds the boundary between two entries: each encoded alone.
    tricky = [{"x": i, "s": '},{"x":' if i == 3 else ""} for i in range(20)]
    out = io.StringIO()
    write_compact({"t": tricky}, out)
    assert json.loads(out.getvalue()) == {"t": tricky}
    assert len(out.getvalue().splitlines()) == 20 + 4
