"""How a probe failed, told apart from what the network did (pure: no lab needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_k8snet.backends import ExecResult
from pytest_k8snet.measure.failures import exec_failure, key_id
from pytest_k8snet.probes import iperf

DATA = Path(__file__).parent / "data"


def res(code: int, out: str = "", err: str = "", timed_out: bool = False) -> ExecResult:
    return ExecResult(("tool",), code, out, err, 0.1, timed_out)


@pytest.mark.parametrize("result, kind", [
    (res(0, "ok"), None),
    (res(1, "3 packets transmitted, 0 received"), None),  # ping's verdict on the network
    (res(28, "", "curl: (28) Connection timed out"), None),
    (res(1, "", 'exec of "iperf3" failed: No such file or directory'), "tool-missing"),
    (res(127, "", "sh: dig: not found"), "tool-missing"),
    (res(126, "", 'OCI runtime exec failed: exec failed: unable to start container process: '
               'exec: "iperf3": executable file not found in $PATH'), "tool-missing"),
    (res(255, "", 'Cannot open network namespace "k8snet-x": No such file or directory'),
     "exec-error"),
    (res(124, "", "", timed_out=True), "timeout"),
    (res(-15, "", ""), "interrupted"),
])
def test_exec_failure_kinds(result: ExecResult, kind: str | None) -> None:
    assert exec_failure(result) == kind


def test_iperf_failures_say_how() -> None:
    interrupted = json.dumps({"start": {}, "intervals": [], "end": {},
                              "error": "interrupt - the client has terminated"})
    assert iperf.parse("x", 1, interrupted).failure == iperf.INTERRUPTED
    assert iperf.parse("x", 1, "", 'exec of "iperf3" failed: No such file or directory',
                       1).failure == iperf.TOOL_MISSING
    assert iperf.parse("x", 1, "", "", 124, timed_out=True).failure == iperf.TIMEOUT
    assert iperf.parse("x", 1, "{not json").failure == iperf.EXEC_ERROR
    timeout = (DATA / "iperf3_connect_timeout.json").read_text()
    assert iperf.parse("x", 1, timeout).failure == iperf.NETWORK
    ok = iperf.parse("x", 1, (DATA / "iperf3_udp_ok.json").read_text())
    assert ok.ok and ok.failure is None


def test_key_ids() -> None:
    assert key_id("ping-pod-56", ("node-1", "node-2")) == "node-1->node-2"
    assert key_id("udp", ("node-1", "node-2")) == "node-1->node-2"
    assert key_id("egress", ("node-1", "pod")) == "node-1/pod"
    assert key_id("dns", ("node-1", "world.example.com")) == "node-1/world.example.com"
    assert key_id("service", "node-1") == "node-1"


def test_the_document_says_where_the_expected_mtu_came_from_and_what_the_links_show() -> None:
    from pytest_k8snet.measure.document import DEFAULT_MTU_SOURCE, expected_mtu_source, sections
    from pytest_k8snet.probes import nodecheck

    assert expected_mtu_source(1500, {"node-1": 1450}) == "flag"
    assert expected_mtu_source(None, {"node-1": None, "node-2": 1450}) == "pod interface"
    assert expected_mtu_source(None, {"node-1": None}) == DEFAULT_MTU_SOURCE
    assert expected_mtu_source(None, {}) == DEFAULT_MTU_SOURCE
    assert expected_mtu_source(0, {"node-1": 0}) == DEFAULT_MTU_SOURCE  # 0: nothing read
    links = (DATA / "ip_link_calico_vxlan.txt").read_text()
    checks = nodecheck.parse("node-1", "net.ipv4.ip_forward=1\n", "[]", links)
    out = sections({"nodecheck": {"node-1": checks}})
    assert out["encapsulation"]["node-1"]["udp_port"] == 4789
    assert out["encapsulation"]["node-1"]["bridged"] is False
    assert "encapsulation" not in out["node_checks"][0]  # said once, in its own section


def test_the_readiness_exec_takes_the_links_the_encapsulation_is_detected_from() -> None:
    """node_checks() parses what the host's readiness exec read: the links must be there,
    or every node's encapsulation is "not detected" (and the UDP check falls back to 8472);
    kube-proxy's mode is read in the same exec (no exec session of its own)."""
    import shlex

    from pytest_k8snet.measure.readiness import READY_HOST, READY_SEP
    from pytest_k8snet.probes import nodecheck, proxymode

    assert READY_HOST.count(READY_SEP) == 5
    assert shlex.join(nodecheck.links_argv()) in READY_HOST.split(READY_SEP)[3]
    assert READY_HOST.split(READY_SEP)[-1].endswith(proxymode.COMMAND)


def test_a_measurement_is_taken_once_per_run_and_shared_through_the_run_directory(
        tmp_path: Path) -> None:
    """What xdist relies on: the first worker measures, another reads its file by kind name."""
    from pytest_k8snet.measure.cache import MeasurementCache

    calls: list[str] = []

    def compute() -> dict[str, int]:
        calls.append("measured")
        return {"node-1": 1450}

    first, other = MeasurementCache(tmp_path), MeasurementCache(tmp_path)
    assert first.once("pod-mtu", compute) == {"node-1": 1450}
    assert first.once("pod-mtu", compute) == {"node-1": 1450}
    assert other.once("pod-mtu", compute) == {"node-1": 1450}
    assert calls == ["measured"]
    assert (tmp_path / "pod-mtu.pickle").exists()  # the reports read it by this name
    assert other.measurements == {"pod-mtu": {"node-1": 1450}}
    alone = MeasurementCache()  # no xdist: nothing shared
    alone.once("pod-mtu", compute)
    assert calls == ["measured", "measured"]


def test_a_second_chance_measures_only_failures_and_keeps_the_better_result() -> None:
    from pytest_k8snet.measure.engine import second_chance

    asked: list[list[str]] = []

    def again(keys: list[str]) -> dict[str, int]:
        asked.append(keys)
        return {"a": 0, "b": 5, "c": 2}  # failures per key the second time

    first = {"ok": 0, "a": 3, "b": 1}
    assert second_chance(first, lambda r: r, again) == {"ok": 0, "a": 0, "b": 1}
    assert asked == [["a", "b"]]
    assert second_chance({"ok": 0}, lambda r: r, again) == {"ok": 0}  # healthy: no redo
    assert asked == [["a", "b"]]


def test_ping_entries_carry_the_icmp_errors_that_answered_them() -> None:
    """A REJECT rule's ICMP errors reach the document from the same ping run (no extra
    exec); a ping without them keeps the entry it always had."""
    from pytest_k8snet.measure.document import sections
    from pytest_k8snet.probes import ping

    rejected = ping.parse("10.244.1.2", 56, False,
                          (DATA / "ping_reject_host_prohibited.txt").read_text())
    ok = ping.parse("10.244.1.2", 56, False, (DATA / "ping_ok.txt").read_text())
    out = sections({"ping-pod-56": {("node-1", "node-2"): rejected, ("node-2", "node-1"): ok}})
    bad, good = out["ping"]
    assert (bad["received"], bad["errors"], bad["error_kind"], bad["error_from"]) == (
        0, 3, "host-prohibited", "10.244.1.0")
    assert set(good) == {"src", "dst", "network", "loss_pct", "rtt_ms", "transmitted",
                         "received", "error"}
