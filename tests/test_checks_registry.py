"""The suite's tests and the judge's checks are the same list, under the same names: a
suite test the judge does not know would only ever read "not measured"."""

from __future__ import annotations

import inspect

import pytest

from pytest_k8snet.judge import SKIPPED, judge
from pytest_k8snet.judge.checks import CHECKS
from pytest_k8snet.suite import test_network


def suite_tests() -> dict[str, inspect.Signature]:
    return {name: inspect.signature(obj) for name, obj in vars(test_network).items()
            if name.startswith("test_") and inspect.isfunction(obj)}


def test_every_suite_test_has_a_check_and_every_check_a_suite_test() -> None:
    assert set(suite_tests()) == {c.name for c in CHECKS}
    assert len({c.name for c in CHECKS}) == len(CHECKS)


def test_each_check_judges_the_subjects_its_suite_test_is_parametrized_by() -> None:
    tests = suite_tests()
    for check in CHECKS:
        fixture = "pod_pair" if check.subjects == "pairs" else "k8s_node_subject"
        assert fixture in tests[check.name].parameters, check.name


def test_an_unknown_test_name_raises_and_names_the_checks() -> None:
    j = judge({"nodes": ["node-1"], "thresholds": {"loss_pct": 5.0}})
    with pytest.raises(ValueError, match="test_pod_ping") as e:
        j.verdict("test_pod_pings", "node-1->node-2")
    assert "test_pod_pings" in str(e.value)


def test_an_unmeasured_subject_of_a_known_check_skips() -> None:
    j = judge({"nodes": ["node-1"], "thresholds": {"loss_pct": 5.0}})
    v = j.verdict("test_pod_ping", "node-1->node-9")
    assert v.outcome == SKIPPED and "not measured" in v.message
