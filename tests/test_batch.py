"""The batch runner (probes/batch.py): framing and parsing on captured output, the runner
itself under /bin/sh with fake tools, and on a lab: exec sessions per suite are O(N)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet.probes import batch, iperf, pathmtu, ping

from .conftest import needs_root


def frame(i: int, key: str, code: int, out: str, err: str) -> str:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode() + "\n" if text else ""

    return (f"{batch.MARK} {i} {key} {code}\n{b64(out)}{batch.ERR_MARK}\n{b64(err)}"
            f"{batch.END_MARK}\n")


JOBS = [batch.Job.of("node-2", ["ping", "10.244.1.2"]), batch.Job.of("node-3", ["ping", "x"]),
        batch.Job.of("node-4", ["ping", "y"])]


def test_parse_frames_each_job_separately() -> None:
    # A probe's own output that looks like a frame must stay its output (base64 inside).
    text = (frame(0, "node-2", 0, f"{batch.MARK} 1 node-3 0\nreply\n", "")
            + frame(1, "node-3", 1, "", "ping: unknown host\n") + "trailing noise\n")
    got = batch.parse(JOBS, text)
    assert got["node-2"] == batch.JobResult("node-2", 0, f"{batch.MARK} 1 node-3 0\nreply\n", "")
    assert got["node-3"] == batch.JobResult("node-3", 1, "", "ping: unknown host\n")
    # No frame at all (the exec was cut short): said so, never an empty success.
    assert got["node-4"].framed is False and got["node-4"].exit_code == batch.NO_RESULT


def test_parse_ignores_a_truncated_or_foreign_frame() -> None:
    full = frame(0, "node-2", 0, "ok\n", "")
    cut = frame(1, "node-3", 0, "partial\n", "")[:-len(batch.END_MARK) - 1]
    wrong_key = frame(2, "node-9", 0, "x\n", "")
    got = batch.parse(JOBS, full + cut + wrong_key)
    assert got["node-2"].stdout == "ok\n"
    assert not got["node-3"].framed and not got["node-4"].framed


def test_job_keys_must_be_one_word() -> None:
    with pytest.raises(ValueError):
        batch.script([batch.Job.of("a b", ["true"])])


def test_lanes_bound_concurrency() -> None:
    assert batch.lanes(5, 2) == [[0, 2, 4], [1, 3]]
    assert batch.lane_length(63, 16) == 4 and len(batch.lanes(63, 16)) == 16
    jobs = [batch.Job.of(f"j{i}", ["true"], timeout=3) for i in range(5)]
    assert batch.exec_timeout(jobs, 2, slack=1) == 10


def run_sh(jobs: list[batch.Job], parallel: int = 16, prelude: str = "",
           path: Path | None = None) -> tuple[dict[str, batch.JobResult], float]:
    env = {**os.environ, "PATH": f"{path}:{os.environ['PATH']}" if path else os.environ["PATH"]}
    t = time.monotonic()
    proc = subprocess.run(batch.argv(jobs, parallel, prelude), capture_output=True, text=True,
                          timeout=60, env=env, check=False)
    return batch.parse(jobs, proc.stdout), time.monotonic() - t


def test_runner_separates_output_exit_codes_and_timeouts() -> None:
    jobs = [batch.Job.of("a", ["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=5),
            batch.Job.of("b", ["sleep", "30"], timeout=1),
            batch.Job("c", "exit 7"),  # a job's own exit must not end its lane
            batch.Job.of("d", ["printf", "%s", "no newline"])]
    got, seconds = run_sh(jobs, parallel=1)
    assert (got["a"].exit_code, got["a"].stdout, got["a"].stderr) == (3, "out\n", "err\n")
    assert got["b"].timed_out and got["b"].exit_code == batch.TIMED_OUT
    assert got["c"].exit_code == 7 and got["d"].stdout == "no newline"
    assert seconds < 10


def test_runner_runs_lanes_concurrently_but_bounded() -> None:
    jobs = [batch.Job.of(f"j{i}", ["sleep", "1"]) for i in range(4)]
    _, two_lanes = run_sh(jobs, parallel=2)
    assert 1.9 < two_lanes < 3.5  # two at a time: two rounds of 1 s, not 1 s nor 4 s


def test_runner_does_not_wait_for_what_setup_started() -> None:
    # UDP servers for other endpoints' clients start in ``setup`` and end on their own.
    jobs = [batch.Job.of("a", ["echo", "hi"])]
    env = dict(os.environ)
    t = time.monotonic()
    proc = subprocess.run(batch.argv(jobs, setup="sleep 5 >/dev/null 2>&1 </dev/null &"),
                          capture_output=True, text=True, timeout=60, env=env, check=False)
    assert batch.parse(jobs, proc.stdout)["a"].stdout == "hi\n"
    assert time.monotonic() - t < 3


def test_results_come_back_in_one_archive_or_in_frames_without_tar(tmp_path: Path) -> None:
    jobs = [batch.Job.of("a", ["sh", "-c", "printf 'x\\0y'; echo err >&2; exit 2"], timeout=5),
            batch.Job("b", "echo shell text; exit 4", timeout=5), batch.Job.of("c", ["true"])]
    proc = subprocess.run(batch.argv(jobs), capture_output=True, text=True, timeout=60,
                          check=False)
    assert batch.TAR_MARK in proc.stdout and batch.MARK + " " not in proc.stdout
    with_tar = batch.parse(jobs, proc.stdout)
    assert (with_tar["a"].exit_code, with_tar["a"].stdout, with_tar["a"].stderr) == \
        (2, "x\0y", "err\n")
    assert (with_tar["b"].exit_code, with_tar["b"].stdout) == (4, "shell text\n")
    assert with_tar["c"].exit_code == 0 and with_tar["c"].framed
    # An image without tar: the same results, framed job by job.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "mktemp", "rm", "cat", "base64", "timeout", "printf", "true"):
        found = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True,
                               text=True, check=False).stdout.strip()
        if found.startswith("/"):
            (bin_dir / tool).symlink_to(found)
    proc = subprocess.run([str(bin_dir / "sh"), "-c", batch.script(jobs)], capture_output=True,
                          text=True, timeout=60, env={"PATH": str(bin_dir)}, check=False)
    assert batch.TAR_MARK not in proc.stdout and batch.MARK + " " in proc.stdout
    assert batch.parse(jobs, proc.stdout) == with_tar


def test_a_cut_off_archive_keeps_the_jobs_that_came_through_whole() -> None:
    jobs = [batch.Job.of(f"j{i}", ["sh", "-c", f"head -c 20000 /dev/zero; exit {i}"])
            for i in range(3)]
    out = subprocess.run(batch.argv(jobs, parallel=1), capture_output=True, text=True,
                         timeout=60, check=False).stdout
    body = out.split(batch.TAR_MARK + "\n", 1)[1]
    cut = batch.TAR_MARK + "\n" + body[:len(body) // 2]  # the exec ended mid-archive
    got = batch.parse(jobs, cut)
    assert got["j0"].framed and got["j0"].exit_code == 0 and len(got["j0"].stdout) == 20000
    assert not got["j2"].framed and got["j2"].exit_code == batch.NO_RESULT


FAKE_PING = """#!/bin/sh
# fake ping: a reply when the IP packet (payload + 28) fits LIMIT
for a; do [ "$prev" = "-s" ] && size=$((a + 28)); prev=$a; done
if [ "$size" -le "$LIMIT" ]; then echo "1 packets transmitted, 1 received, 0% packet loss"
else echo "1 packets transmitted, 0 received, 100% packet loss"; exit 1; fi
"""


@pytest.mark.parametrize("limit", [1450, 1400, 1449, 1300, 84, 60])
def test_batched_path_mtu_search_is_the_python_search(tmp_path: Path, limit: int) -> None:
    (tmp_path / "ping").write_text(FAKE_PING)
    (tmp_path / "ping").chmod(0o755)
    os.environ["LIMIT"] = str(limit)
    try:
        jobs = [batch.Job("node-2", pathmtu.batch_command("10.244.1.2", 1450, 0.1),
                          ("ping",), pathmtu.batch_timeout(0.1))]
        got, _ = run_sh(jobs, prelude=pathmtu.batch_prelude(0.1), path=tmp_path)
    finally:
        del os.environ["LIMIT"]
    result = pathmtu.from_batch("node-1", "node-2", got["node-2"].stdout, 1450, 0.5)
    want = pathmtu.search(lambda size: size <= limit, 1450)
    assert result.bytes == (limit if limit >= pathmtu.MIN_PACKET else 0)
    if result.bytes:
        assert (result.bytes, result.first_lost, result.probes) == want
        assert result.protocol == "icmp"
    else:
        # Not even the floor crossed: the UDP search ran too (nothing echoes on this
        # host's 10.244.1.2, so it finds nothing either) and its probes are counted.
        assert (result.first_lost, result.protocol) == (pathmtu.MIN_PACKET, "udp")
        assert result.probes == want[2] + 2


def test_path_mtu_from_batch_counts_a_missing_answer_as_lost() -> None:
    r = pathmtu.from_batch("a", "b", "1450 0\n84 1\n", 1450, 1.0)
    assert r.bytes == pathmtu.MIN_PACKET and r.first_lost == pathmtu.MIN_PACKET + 1


def test_batched_ping_prelude_matches_the_argv_builder() -> None:
    text = pathmtu.batch_prelude(0.5)
    assert "-n -c 1 -i 0.2 -W 0.5 -s" in text and "-M do" in text
    assert ping.argv("x", count=1, payload=1, dont_fragment=True, wait=0.5)[:8] == \
        ["ping", "-n", "-c", "1", "-i", "0.2", "-W", "0.5"]


FAKE_IPERF = """#!/bin/sh
# fake iperf3: refused twice (the server is not up yet), then a result
n=$(cat "$STATE" 2>/dev/null || echo 0); echo $((n + 1)) >"$STATE"
if [ "$n" -lt 2 ]; then
  echo '{"error": "unable to connect to server: Connection refused"}'; exit 1; fi
echo '{"ok": true}'
"""


def run_fake_iperf(tmp_path: Path, script: str) -> Any:
    """The batched UDP client against ``script`` as iperf3; what it gave back."""
    (tmp_path / "iperf3").write_text(script)
    (tmp_path / "iperf3").chmod(0o755)
    os.environ["STATE"] = str(tmp_path / "state")
    try:
        argv = iperf.client_argv("10.244.1.2", 5201)
        jobs = [batch.Job("node-2", iperf.retry_command(argv, 5), tuple(argv), 10)]
        got, _ = run_sh(jobs, path=tmp_path)
    finally:
        del os.environ["STATE"]
    return got["node-2"]


def test_udp_client_retries_a_refused_connect(tmp_path: Path) -> None:
    got = run_fake_iperf(tmp_path, FAKE_IPERF)
    assert got.exit_code == 0 and got.stdout == '{"ok": true}\n'
    assert (tmp_path / "state").read_text().strip() == "3"


COUNTER = """
def pytest_sessionfinish(session):
    from pytest_k8snet.run import RUN_KEY
    cluster = session.config.stash[RUN_KEY].cluster_if_started
    if cluster is not None:
        print(f"\\nK8SNET-EXECS {cluster.backend.exec_count} {len(cluster.node_names)}")
"""


@needs_root
def test_exec_sessions_per_suite_are_linear(request: pytest.FixtureRequest,
                                            tmp_path: Path) -> None:
    """The full suite on a healthy lab: at most 20 exec sessions per node (batch by source).
    K8SNET_BATCH_LAB=NAME uses a running lab instead of the session's own."""
    name = os.environ.get("K8SNET_BATCH_LAB") or request.getfixturevalue("lab").name
    (tmp_path / "k8snet_count_execs.py").write_text(COUNTER)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "pytest_k8snet.suite",
                           "-p", "no:cacheprovider", "-p", "k8snet_count_execs", "-q", "-s",
                           "--k8s-lab-name", name], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("K8SNET-EXECS")][-1]
    execs, nodes = (int(v) for v in line.split()[1:])
    assert 0 < execs <= 20 * nodes, line


FAKE_IPERF_STREAM = """#!/bin/sh
# fake iperf3: the control connection opened, then the datagrams were refused
n=$(cat "$STATE" 2>/dev/null || echo 0); echo $((n + 1)) >"$STATE"
echo '{"error": "unable to read from stream socket: Connection refused"}'
"""


def test_udp_client_keeps_a_refusal_of_its_datagrams(tmp_path: Path) -> None:
    """A REJECT on the UDP port refuses the stream, not the control connection: running
    again would only meet the one-shot server gone ("unable to connect to server") and
    hide what the datagrams met."""
    assert "stream socket" in run_fake_iperf(tmp_path, FAKE_IPERF_STREAM).stdout
    assert (tmp_path / "state").read_text().strip() == "1"
