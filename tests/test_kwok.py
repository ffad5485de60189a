"""The kube backend at 50 kwok nodes, through a real kube-apiserver (tools/kwok.sh).

kwok makes the fake nodes Ready and the probe pods Running/Ready, but no kubelet serves
exec: the run must stay bounded and say "does not run commands" instead of trying every
probe, with a request count per node that does not grow with the pods' churn. The figures
at 100 and 1,000 nodes are benchmarks/kwok_scale.py's.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import kwok_scale  # noqa: E402

from pytest_k8snet.backends.kube.readiness import EXEC_GIVE_UP_AFTER  # noqa: E402

BIN = Path(os.environ.get("K8SNET_CACHE", "/var/cache/k8snet")) / "bin"
NODES = 50


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "the kwok tests run as root (tools/kwok.sh)"
    for name in ("kwok", "kube-apiserver", "kube-controller-manager"):
        if not os.access(BIN / name, os.X_OK):
            return f"{BIN / name} missing: run `tools/kwok.sh build`"
    stages = BIN.parent / "kwok" / "stages-v0.8.0.yaml"
    if not stages.is_file():
        return f"{stages} missing: run `tools/kwok.sh build`"
    if not shutil.which(os.environ.get("ETCD", "etcd")):
        return "etcd missing: run `tools/kwok.sh build`"
    return None


@pytest.fixture(scope="module")
def kwok_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int, float]]:
    """The built-in suite (ring pairs) on 50 kwok nodes: (work dir, exit code, seconds)."""
    why = _why_not()
    if why:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("kwok")
    with kwok_scale.control_plane(work):
        api = kwok_scale.admin_api(work)
        try:
            kwok_scale.make_nodes(api, NODES)
            kubeconfig = kwok_scale.run_kubeconfig(api, work)
            code, wall, _ = kwok_scale.run_pytest(
                work, kubeconfig, ["--k8s-pairs", "ring", "--k8s-timeout", "5",
                                   "-k", "test_nodes_ready or test_pod_ping"])
            yield work, code, wall
        finally:
            api.close()


def test_run_without_exec_is_bounded_and_says_why(kwok_run: tuple[Path, int, float]) -> None:
    work, code, wall = kwok_run
    out = (work / "pytest.log").read_text()
    assert code == 1, out[-3000:]
    assert "Traceback" not in out
    assert wall < 120, out[-3000:]
    # every node fails test_nodes_ready (one test above the per-node threshold), most of
    # them without an exec attempt of their own
    assert "test_nodes_ready[all-nodes]" in out and "test_nodes_ready[kwok-" not in out
    assert f"{NODES} of {NODES} nodes fail" in out, out[-3000:]
    assert "does not run commands" in out, out[-3000:]
    assert "exec into the probe pods does not work in this cluster" in out, out[-3000:]
    # the reason ends in the API server's dial error, not in the kubelet URL it quotes
    assert "error sending request: dial tcp" in out and "command=" not in out, out[-3000:]
    counts = kwok_scale.audit_counts(work)
    execs = sum(v for k, v in counts.items() if k.endswith("pods/exec"))
    # the give-up threshold, plus the attempts already under way (16 threads)
    assert EXEC_GIVE_UP_AFTER <= execs <= EXEC_GIVE_UP_AFTER + 16, counts


def test_requests_per_node_are_bounded(kwok_run: tuple[Path, int, float]) -> None:
    work, _, _ = kwok_run
    counts = kwok_scale.audit_counts(work)
    assert counts["create pods"] == 2 * NODES, counts
    # one list to start waiting, one to clean up: changes come from watches, not relists
    assert counts["list pods"] <= 2, counts
    assert counts["list nodes"] == 1, counts
    assert "get nodes" not in counts and "get pods" not in counts, counts
    assert sum(counts.values()) <= 10 * NODES, counts


def test_cleanup_leaves_no_pods(kwok_run: tuple[Path, int, float]) -> None:
    work, _, _ = kwok_run
    counts = kwok_scale.audit_counts(work)
    assert counts["delete namespaces"] == 1, counts
    api = kwok_scale.admin_api(work)
    try:
        from kubernetes import client

        core = client.CoreV1Api(api)
        deadline = time.monotonic() + 30
        while True:
            left = [p.metadata.name for p in core.list_pod_for_all_namespaces(
                label_selector="app.kubernetes.io/managed-by=pytest-k8snet").items]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert not left
    finally:
        api.close()
