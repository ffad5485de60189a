"""UDP throughput and loss with ``iperf3 -u -J``, parsed with the ``iperf3`` package.

The ``iperf3`` package's :class:`iperf3.TestResult` reads iperf3's JSON (its ctypes
client is not used: probes run the real binary inside the endpoints).
"""

from __future__ import annotations

from dataclasses import dataclass

import iperf3

DEFAULT_PORT = 5201
PORT_BUSY = "Address already in use"

# How a probe failed. Only "network" is evidence about the network: the others say the
# probe itself could not do its job (and must never be reported as a network cause).
TOOL_MISSING, EXEC_ERROR, INTERRUPTED, TIMEOUT, NETWORK = (
    "tool-missing", "exec-error", "interrupted", "timeout", "network")
FAILURE_KINDS = (TOOL_MISSING, EXEC_ERROR, INTERRUPTED, TIMEOUT, NETWORK)
_INTERRUPTED = ("interrupt", "has terminated", "control socket has closed",
                "unable to receive control message", "unable to send control message")
_MISSING = ("not found", "no such file or directory", "executable file not found")


@dataclass(frozen=True)
class UdpResult:
    dst: str
    port: int
    mbps: float
    loss_pct: float
    jitter_ms: float | None
    packets: int
    error: str | None
    failure: str | None = None  # one of FAILURE_KINDS when error is set

    @property
    def ok(self) -> bool:
        return self.error is None and self.packets > 0

    @property
    def port_busy(self) -> bool:
        """The server could not bind the UDP port: something (a CNI's VXLAN socket) holds it."""
        return self.error is not None and PORT_BUSY in self.error


def server_argv(port: int, *, idle_timeout: int = 10) -> list[str]:
    """A one-shot server that exits after one test or ``idle_timeout`` seconds of nothing."""
    return ["iperf3", "-s", "-1", "-p", str(port), "--idle-timeout", str(idle_timeout)]


def client_argv(dst: str, port: int, *, seconds: float = 1.0, bandwidth: str = "10M",
                length: int = 1000, connect_timeout_ms: int = 1000) -> list[str]:
    # 1000-byte datagrams fit any sane overlay MTU, so this probe isolates port
    # blocking and loss from MTU problems (test_path_mtu covers those).
    # A 10 ms pacing timer: the default 1 ms wakes hundreds of concurrent clients a
    # thousand times a second each, which on a busy node costs more CPU than the datagrams.
    return ["iperf3", "-c", dst, "-p", str(port), "-u", "-b", bandwidth, "-t", f"{seconds:g}",
            "-l", str(length), "-J", "--connect-timeout", str(connect_timeout_ms),
            "--pacing-timer", "10000"]


def failure_kind(error: str | None, exit_code: int = 0, timed_out: bool = False) -> str | None:
    """How an iperf3 run failed: a network failure, or one of the probe's own."""
    if error is None and not timed_out:
        return None
    text = (error or "").lower()
    if timed_out:
        return TIMEOUT
    if exit_code == 127 or ("iperf3" in text and any(m in text for m in _MISSING)):
        return TOOL_MISSING
    if any(m in text for m in _INTERRUPTED) or exit_code in (-2, -15, 130, 143):
        return INTERRUPTED
    if exit_code == 126 or "cannot open network namespace" in text or "oci runtime" in text:
        return EXEC_ERROR
    return NETWORK


def parse(dst: str, port: int, stdout: str, stderr: str = "", exit_code: int = 0,
          timed_out: bool = False) -> UdpResult:
    def failed(error: str, kind: str | None = None) -> UdpResult:
        return UdpResult(dst, port, 0.0, 100.0, None, 0, error,
                         kind or failure_kind(error, exit_code, timed_out))

    if timed_out:
        # The run was cut off by its own deadline: whatever it printed is incomplete.
        return failed(f"iperf3 did not finish in time (exit {exit_code})"
                      + (f": {stderr.strip()[-200:]}" if stderr.strip() else ""))
    if not stdout.strip():
        return failed(stderr.strip() or "iperf3 printed nothing")
    try:
        result = iperf3.TestResult(stdout)
    except (ValueError, KeyError) as exc:
        return failed(f"unreadable iperf3 JSON: {exc}", EXEC_ERROR)
    if result.error:
        return failed(str(result.error))
    received = result.json["end"].get("sum_received") or result.json["end"]["sum"]
    packets = int(result.json["end"]["sum"].get("packets", 0))
    lost = float(received.get("lost_percent", result.lost_percent))
    return UdpResult(dst, port, mbps=float(received.get("bits_per_second", 0.0)) / 1e6,
                     loss_pct=round(lost, 2), jitter_ms=float(result.jitter_ms),
                     packets=packets, error=None)


SNMP = "/proc/net/snmp"


def receive_buffer_errors(snmp: str) -> int | None:
    """``Udp: RcvbufErrors`` from ``/proc/net/snmp`` (None when absent): datagrams that
    reached this network namespace and were dropped because a socket's receive buffer was
    full. In a probe pod those are the iperf3 servers' own: delivered by the path, but not
    read in time by a starved process."""
    lines = [line.split() for line in snmp.splitlines() if line.startswith("Udp:")]
    if len(lines) < 2 or "RcvbufErrors" not in lines[0]:
        return None
    i = lines[0].index("RcvbufErrors")
    value = lines[1][i] if i < len(lines[1]) else ""
    return int(value) if value.isdigit() else None


def retry_command(client: list[str], seconds: float) -> str:
    """Shell text for a batched client (probes/batch.py) that runs ``client`` again while
    its server is not up yet ("refused"), serves another client ("busy") or is a one-shot
    server ending its last test ("reset by peer": node to node on 8472), for up to
    ``seconds``; only the last run's output is kept, so parse() sees one plain run."""
    import shlex

    run = shlex.join(client)
    # Few forks on the common path (one clean run): the deadline is read after the first
    # failure only; a thousand clients must not fork a dozen helpers each. (iperf3 3.12
    # with -J exits 0 even when refused, so the output decides, not the exit code.) Only
    # the control connection's refusal means "not up yet": the UDP stream's ("unable to
    # read from stream socket: Connection refused") is a REJECT on the datagrams, and a
    # second run would only meet the one-shot server gone and hide it.
    return ('k8snet_o="$d/u$$.o"; k8snet_e="$d/u$$.e"; k8snet_end=; '
            "while :; do " + run + ' >"$k8snet_o" 2>"$k8snet_e"; k8snet_c=$?; '
            "grep -qiE 'connect to server: connection refused|server is busy|reset by peer' "
            "\"$k8snet_o\" \"$k8snet_e\" || break; "
            "[ -n \"$k8snet_end\" ] || k8snet_end=$(($(date +%s) + " + str(max(1, int(seconds)))
            + ")); [ $(date +%s) -lt $k8snet_end ] || break; sleep 0.2; done; "
            'cat "$k8snet_o"; cat "$k8snet_e" >&2; exit $k8snet_c')
