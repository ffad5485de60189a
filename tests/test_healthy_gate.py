"""The healthy gate's pure parts (benchmarks/healthy.py): what a run's line says from its
results document. Nothing here builds a lab or starts stress-ng."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import healthy  # noqa: E402

DATA = Path(__file__).parent / "data" / "diagnosis"


def test_a_clean_run_is_one_line_with_its_counts() -> None:
    doc = {"tests": {"t.py::a[node-1]": "passed", "t.py::b[node-2]": "passed",
                     "t.py::c": "skipped"}, "findings": [], "verdicts": []}
    assert healthy.outcome(doc) == (2, 0, [], [])
    assert healthy.line(0, 9.25, 0, "", doc) == (True, "run  1: 2 passed, 0 failed,   9.2 s")


def test_a_failing_run_names_its_tests_and_the_judges_root_findings() -> None:
    doc = json.loads((DATA / "etcd-drop-node-3.json").read_text())
    passed, failed, failing, roots = healthy.outcome(doc)
    assert failed == len(failing) > 0 and passed > 0
    assert all("test_control_plane_ports" in t for t in failing)
    assert roots == ["control-plane-ports [node-3] node-3: connects time out (dropped, no reset) "
                     "into node-3: tcp/2379 (etcd on node-3 172.28.128.13) from node-1, node-2"]
    ok, text = healthy.line(4, 30.0, 1, "", doc)
    assert not ok
    first, *rest = text.splitlines()
    assert first == f"run  5: {passed} passed, {failed} failed,  30.0 s FAILED (pytest exit 1)"
    assert rest == [f"    test {t}" for t in failing] + [f"    root {r}" for r in roots]


def test_a_run_with_no_document_or_a_timeout_fails_even_with_no_failed_test() -> None:
    assert healthy.line(0, 300.0, None, "suite timed out after 300s", None) == (
        False, "run  1: 0 passed, 0 failed, 300.0 s FAILED (suite timed out after 300s)")
    assert not healthy.line(0, 1.0, 0, "", None)[0]
    assert not healthy.line(0, 1.0, 1, "", {"tests": {"t": "passed"}})[0]
