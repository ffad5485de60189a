"""examples/conftest.py skips the examples only where they need a lab and are not root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

EXAMPLES_CONFTEST = Path(__file__).resolve().parent.parent / "examples" / "conftest.py"
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://192.0.2.10:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
"""


@pytest.fixture
def as_a_user(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The examples' conftest in a fresh directory, run as a normal user (uid 1000)."""
    pytester.makeconftest(EXAMPLES_CONFTEST.read_text())
    pytester.makepyfile("def test_example():\n    pass\n")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for var in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "K8SNET_LAB", "K8SNET_LAB_NAME",
                "K8SNET_BACKEND"):
        monkeypatch.delenv(var, raising=False)


def test_examples_run_on_a_cluster_from_kubeconfig_env(pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       as_a_user: None) -> None:
    """Before: skipped, because only --k8s-kubeconfig was looked at."""
    config = pytester.path / "kubeconfig"
    config.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(config))
    pytester.runpytest_inprocess().assert_outcomes(passed=1)
    monkeypatch.delenv("KUBECONFIG")
    (pytester.path / ".kube").mkdir()
    (pytester.path / ".kube" / "config").write_text(KUBECONFIG)  # pytester's HOME
    pytester.runpytest_inprocess().assert_outcomes(passed=1)


def test_examples_on_a_lab_skip_for_a_normal_user(pytester: pytest.Pytester,
                                                  as_a_user: None) -> None:
    result = pytester.runpytest_inprocess("-rs", "--k8s-lab")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*the lab needs root*"])
