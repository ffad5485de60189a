"""UDP throughput and loss with ``iperf3 -u -J``, parsed with the ``iperf3`` package.

The ``iperf3`` package's :class:`iperf3.TestResult` reads iperf3's JSON (its ctypes
client is not used: probes run the real binary inside the endpoints).
"""

from __future__ import annotations

from dataclasses import dataclass

import iperf3

DEFAULT_PORT = 5201
PORT_BUSY = "Address already in use"


@dataclass(frozen=True)
class UdpResult:
    dst: str
    port: int
    mbps: float
    loss_pct: float
    jitter_ms: float | None
    packets: int
    error: str | None

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
    return ["iperf3", "-c", dst, "-p", str(port), "-u", "-b", bandwidth, "-t", f"{seconds:g}",
            "-l", str(length), "-J", "--connect-timeout", str(connect_timeout_ms)]


def parse(dst: str, port: int, stdout: str, stderr: str = "") -> UdpResult:
    if not stdout.strip():
        return UdpResult(dst, port, 0.0, 100.0, None, 0, stderr.strip() or "iperf3 printed nothing")
    try:
        result = iperf3.TestResult(stdout)
    except (ValueError, KeyError) as exc:
        return UdpResult(dst, port, 0.0, 100.0, None, 0, f"unreadable iperf3 JSON: {exc}")
    if result.error:
        return UdpResult(dst, port, 0.0, 100.0, None, 0, str(result.error))
    received = result.json["end"].get("sum_received") or result.json["end"]["sum"]
    packets = int(result.json["end"]["sum"].get("packets", 0))
    lost = float(received.get("lost_percent", result.lost_percent))
    return UdpResult(dst, port, mbps=float(received.get("bits_per_second", 0.0)) / 1e6,
                     loss_pct=round(lost, 2), jitter_ms=float(result.jitter_ms),
                     packets=packets, error=None)
