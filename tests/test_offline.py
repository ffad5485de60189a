"""No cluster I/O unless a k8snet fixture is used; cleanup and SIGTERM under xdist (issue 8).

The kubeconfig points at a local TCP port that accepts connections, records them and never
answers: any API call would be seen, and would hang until its timeout.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_k8snet import lab as labmod
from tests.conftest import needs_root

pytest_plugins = ["pytester"]


class SilentApiServer:
    """Accepts TCP connections, keeps what the clients sent, answers nothing."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            conn.settimeout(0.5)
            try:
                self.requests.append(conn.recv(4096) or b"<connected>")
            except OSError:
                self.requests.append(b"<connected>")

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{self.port}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: ctx, context: {{cluster: c, user: u}}}}]
current-context: ctx
""")
        return path

    def close(self) -> None:
        self.sock.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def api(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[SilentApiServer]:
    server = SilentApiServer()
    monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig(pytester.path / "kubeconfig")))
    for var in ("K8SNET_LAB", "K8SNET_LAB_NAME", "K8SNET_BACKEND"):
        monkeypatch.delenv(var, raising=False)
    yield server
    server.close()


NODE_TESTS = """
def test_pairs(pod_pair):
    pass

def test_nodes(k8s_node_host):
    pass

def test_cluster(k8s_cluster):
    pass
"""


@pytest.mark.parametrize("args, expect", [
    (["--help"], "*--k8s-lab-name*"),
    (["--fixtures"], "pod_pair -- *fixtures.py*"),
    (["--collect-only", "-q"], "*test_pairs?cluster-pairs?*"),
    (["--fixtures-per-test"], "*pod_pair*"),
    (["--setup-plan"], "*::test_cluster (fixtures used: k8s_cluster*"),
])
def test_help_fixtures_collect_only_and_setup_plan_do_no_cluster_io(
        pytester: pytest.Pytester, api: SilentApiServer, args: list[str], expect: str) -> None:
    """With a kubeconfig found in KUBECONFIG: fast, no connection to the API at all."""
    pytester.makepyfile(NODE_TESTS)
    start = time.monotonic()
    result = pytester.runpytest_subprocess(*args, timeout=60)
    seconds = time.monotonic() - start
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines([expect])
    assert api.requests == [], api.requests
    assert seconds < 20, f"{args}: {seconds:.1f} s"


def test_collect_only_lists_node_tests_once_and_says_why(pytester: pytest.Pytester,
                                                         api: SilentApiServer) -> None:
    pytester.makepyfile(NODE_TESTS)
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert [line for line in result.stdout.lines if "::" in line] == [
        "test_collect_only_lists_node_tests_once_and_says_why.py::test_pairs[cluster-pairs]",
        "test_collect_only_lists_node_tests_once_and_says_why.py::test_nodes[cluster-nodes]",
        "test_collect_only_lists_node_tests_once_and_says_why.py::test_cluster"]
    result.stdout.fnmatch_lines(["k8snet: no cluster I/O in --collect-only*"])
    assert api.requests == []


def test_unrelated_xdist_run_sends_nothing_to_the_cluster(pytester: pytest.Pytester,
                                                          api: SilentApiServer) -> None:
    """Before: GET pods, DELETE service, DELETE namespace from the controller's cleanup."""
    pytester.makepyfile("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=2)
    assert api.requests == [], api.requests


def test_controller_says_when_cleanup_cannot_connect(pytester: pytest.Pytester,
                                                     api: SilentApiServer) -> None:
    """A worker created probes (it says so before creating), then the kubeconfig went away:
    the controller's cleanup cannot connect and must say so, with the command to run."""
    pytester.makepyfile("""
        import os
        from pytest_k8snet.run import RUN_KEY

        def test_creates(pytestconfig):
            pytestconfig.stash[RUN_KEY].share.mark_created()
            os.remove(os.environ["KUBECONFIG"])
    """)
    result = pytester.runpytest_subprocess("-n", "1", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=1)
    result.stderr.fnmatch_lines([
        "k8snet: cleanup of run *could not connect to the cluster (*kubeconfig*not found*); "
        "its probes may still run. Remove them with `kubectl*delete namespace,pods,services "
        "-A -l k8snet.io/run=*`"])
    assert api.requests == []


def _lab_running(name: str) -> bool:
    return name in labmod.running_labs()


@needs_root
def test_sigterm_to_the_xdist_controller_removes_the_lab(tmp_path: Path) -> None:
    """Before: the handler was installed only where a cluster was built (the workers), so a
    SIGTERM to the controller left the run's lab up for good."""
    run_uid = "c0ffee" + os.urandom(13).hex()
    lab = f"r{run_uid[:10]}"  # the lab the run brings up, named after the xdist run id
    (tmp_path / "test_sleep.py").write_text(
        "import time\n\ndef test_sleep(k8s_cluster):\n    time.sleep(120)\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("KUBECONFIG", "K8SNET_LAB", "K8SNET_LAB_NAME", "PYTEST_ADDOPTS")}
    env["HOME"] = str(tmp_path)  # no ~/.kube/config: auto is a lab
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-n", "2", "--testrunuid", run_uid, "--k8s-lab",
         "-p", "no:cacheprovider", "-q", str(tmp_path)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _lab_running(lab) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert _lab_running(lab), "the run never brought its lab up"
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert not _lab_running(lab), out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if _lab_running(lab):
            labmod.down(lab)
