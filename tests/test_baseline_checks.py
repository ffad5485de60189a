"""A baseline comparison that compares nothing must fail, saying so (issue 8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet.report import baseline
from pytest_k8snet.report.schema import SCHEMA, VERSION

pytest_plugins = ["pytester"]


def results_doc(nodes: list[str], **sections: list[dict[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {"schema": SCHEMA, "version": VERSION, "time": "2026-11-25T10:00:00Z",
                           "cluster": {"kind": "lab", "name": "p0"}, "nodes": nodes}
    for key in ("ping", "path_mtu", "throughput", "http", "dns", "egress", "service",
                "node_checks", "diagnoses"):
        doc[key] = sections.get(key, [])
    return doc


def ping(src: str, dst: str) -> dict[str, Any]:
    return {"src": src, "dst": dst, "network": "pod", "loss_pct": 0.0, "rtt_ms": 0.1}


def test_a_baseline_without_measurements_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """The right schema, nothing measured: it compared nothing and passed before."""
    path = pytester.path / "empty.json"
    path.write_text(json.dumps(results_doc(["node-1", "node-2"])))
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--k8s-baseline", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--k8s-baseline {path}: the file has no measurements*"
                                 "nothing could be compared with it*"])


def test_a_run_that_measures_nothing_fails_against_a_baseline(pytester: pytest.Pytester) -> None:
    """A good baseline, but this run measured nothing comparable: the run fails and says so."""
    path = pytester.path / "base.json"
    path.write_text(json.dumps(results_doc(["node-1", "node-2"], ping=[ping("node-1", "node-2")])))
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--k8s-baseline", str(path))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        f"k8snet: run FAILED: --k8s-baseline {path}: nothing compared, this run measured "
        "nothing comparable*"])


def test_runs_with_nothing_in_common_compare_nothing(tmp_path: Path) -> None:
    before = results_doc(["a", "b"], ping=[ping("a", "b")])
    after = results_doc(["c", "d"], ping=[ping("c", "d")])
    comparison = baseline.compare(before, after, 20.0, "base.json")
    assert comparison.regressions == [] and comparison.compared == 0
    why = baseline.nothing_compared(comparison, "base.json")
    assert why is not None and "no pair or node measured in common" in why
    same = baseline.compare(before, before, 20.0, "base.json")
    assert baseline.nothing_compared(same, "base.json") is None
