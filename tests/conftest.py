from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import netns

needs_root = pytest.mark.skipif(os.geteuid() != 0 or bool(netns.missing_tools()),
                                reason="the lab needs root and its system tools")


def sh(lab: labmod.Lab, target: str, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", lab.target_netns(target), *argv],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def lab() -> Iterator[labmod.Lab]:
    """A 3-node lab for the whole test session; faults are switched per test."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    name = f"t{os.getpid()}"
    built = labmod.up(labmod.LabSpec(name=name))
    yield built
    labmod.down(name)


def pytest_sessionfinish(session: pytest.Session) -> None:
    leftovers = [n for n in netns.list_netns("k8snet-") if n.startswith(f"k8snet-t{os.getpid()}-")]
    assert not leftovers, leftovers


def kube_artifacts_missing() -> str | None:
    """Why the real-cluster tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "the real cluster needs root"
    from pytest_k8snet.lab import kube

    try:
        kube.require_tools()
    except netns.LabError as exc:
        return str(exc)
    missing = kube.artifacts().missing()
    if missing:
        return ("the real-cluster binaries and images are not built (k8snet-lab build, or "
                f"scripts/test.sh builds them): missing {', '.join(map(str, missing))}")
    return None


def assert_nothing_left(name: str) -> None:
    """Nothing of real-cluster lab ``name`` after its down: namespaces, cgroup, state,
    processes (flanneld, kubelets...), mounts."""
    from pytest_k8snet.lab import kube

    assert not netns.list_netns(f"k8snet-{name}-")
    assert not kube.cgroup_pids(name)
    assert not (labmod.STATE_ROOT / name).exists()
    ps = subprocess.run(["pgrep", "-f", f"/{name}/"], capture_output=True, text=True)
    assert ps.stdout.strip() == ""
    with open("/proc/mounts") as fh:
        assert f"k8snet-{name}" not in fh.read()


def real_cluster_for(prefix: str, **spec: Any) -> Iterator[labmod.Lab]:
    """A fixture's body: a 3-node real-Kubernetes lab ``<prefix><pid>`` of ``spec`` (skipped
    where the binaries are not built), then down with nothing left and every process up
    started (supervisors, forwarder) reaped, not a zombie until the interpreter exits."""
    why = kube_artifacts_missing()
    if why:
        pytest.skip(why)
    from pytest_k8snet.lab import processes

    name = f"{prefix}{os.getpid()}"
    before = set(processes.children())
    built = labmod.up(labmod.LabSpec(name=name, kubernetes=True, **spec))
    yield built
    labmod.down(name)
    assert_nothing_left(name)
    unwaited = [pid for pid, child in processes.children().items()
                if pid not in before and child.returncode is None]
    assert not unwaited, f"down left these children of ours unreaped: {unwaited}"


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[labmod.Lab]:
    """A 3-node lab running real Kubernetes, shared by the session's real-cluster tests."""
    yield from real_cluster_for("rk")
