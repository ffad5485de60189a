"""Path MTU to the exact byte: binary search with Don't-Fragment pings.

A black hole (frames silently dropped) costs one short per-probe wait per step,
so a full search is ~11 steps of at most 2 x ``wait`` seconds. Where not even the
smallest DF ping gets a reply (ICMP filtered), the batched search asks again with DF
UDP datagrams to the probe pod's echo port (:mod:`.pmtu_udp`), in the same job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from . import ping, pmtu_udp

MIN_PACKET = 68 + 16  # smallest we try: a 56-byte ping is 84 bytes on the wire


@dataclass(frozen=True)
class PathMtuResult:
    """``bytes`` is the largest IP packet that crosses (payload + IP and ICMP headers: 28
    bytes on IPv4, 48 on IPv6); 0 if none did."""

    src: str
    dst: str
    bytes: int
    first_lost: int | None
    ceiling: int
    probes: int
    seconds: float
    headers: int = ping.IP_ICMP_HEADERS  # IP + ICMP bytes: ping's payload is bytes - headers
    # "udp": no DF ping got a reply, so the sizes are the UDP search's (pmtu_udp); UDP's
    # 8-byte header equals ICMP's, so ``headers`` and the sizes mean the same either way.
    protocol: str = "icmp"

    @property
    def black_hole(self) -> bool:
        """Packets between ``bytes`` and ``ceiling`` vanish without any ICMP error."""
        return self.first_lost is not None


def probe_argv(dst: str, packet_size: int, wait: float) -> list[str]:
    return ping.argv(dst, count=1, payload=packet_size - ping.headers(dst),
                     dont_fragment=True, wait=wait)


def replied(dst: str, packet_size: int, stdout: str, stderr: str = "") -> bool:
    """Whether one :func:`probe_argv` ping of ``packet_size`` bytes got a reply."""
    return ping.parse(dst, packet_size - ping.headers(dst), True, stdout, stderr).any_reply


def search(crosses: Callable[[int], bool], ceiling: int, floor: int = MIN_PACKET
           ) -> tuple[int, int | None, int]:
    """Largest size in [floor, ceiling] for which ``crosses(size)`` holds.

    Returns ``(largest, smallest_lost, probes)``; largest is 0 if even ``floor`` fails.
    Assumes monotonicity (if N crosses, every smaller size does), true of MTUs.
    """
    probes = 1
    if crosses(ceiling):
        return ceiling, None, probes
    lost = ceiling
    probes += 1
    if not crosses(floor):
        return 0, floor, probes
    good = floor
    while lost - good > 1:
        mid = (good + lost) // 2
        probes += 1
        if crosses(mid):
            good = mid
        else:
            lost = mid
    return good, lost, probes


def measure(run: Callable[[list[str]], tuple[int, str, str]], src: str, dst: str, target_ip: str,
            ceiling: int, wait: float = 0.3) -> PathMtuResult:
    """Search with real pings to ``target_ip``; ``run(argv) -> (exit, stdout, stderr)`` executes
    in ``src``. ``src`` and ``dst`` label the result (node names).

    Each size gets one retry before it counts as lost, so a single dropped echo
    on a healthy path does not shrink the answer.
    """
    start = time.monotonic()

    def crosses(size: int) -> bool:
        for _ in range(2):
            _, out, err = run(probe_argv(target_ip, size, wait))
            if ping.parse(target_ip, size - ping.headers(target_ip), True, out, err).any_reply:
                return True
        return False

    largest, lost, probes = search(crosses, ceiling)
    return PathMtuResult(src=src, dst=dst, bytes=largest, first_lost=lost, ceiling=ceiling,
                         probes=probes, seconds=round(time.monotonic() - start, 3),
                         headers=ping.headers(target_ip))


# -- batched: the same search, run inside the source endpoint by probes/batch.py ---------
#
# ``k8snet_pmtu IP CEILING FLOOR`` mirrors :func:`search` and ``crosses`` in :func:`measure`
# step for step (ceiling, then floor, then bisection; each size tried twice before it counts
# as lost) and prints one ``<size> <1|0>`` line per size it decided. Python then replays
# :func:`search` over those answers, so the result (bytes, first_lost, probes) is the one
# an unbatched search gives for the same replies.
#
# Only when the floor gets no reply either does ``k8snet_udp`` run the same search with DF
# UDP datagrams (pmtu_udp): a fallback, not a second search on every pair, so a healthy
# cluster pays nothing and a filtered one pays one short search per filtered pair, inside
# the same job of the same exec.

_REPLY = "[0-9]+ packets transmitted, 0*[1-9][0-9]* received"  # ping.parse: any_reply


def batch_prelude(wait: float) -> str:
    # Header bytes and ping's family flag follow the target (k8snet_pmtu sets them): IPv6
    # headers are 48 bytes, not 28, and an unquoted empty $k8snet_v adds no argument.
    size_var, ip_var = "$((k8snet_s - k8snet_h))", "$k8snet_ip"
    probe = ping.argv("IPVAR", count=1, payload=0, dont_fragment=True, wait=wait)
    probe[probe.index("-s") + 1] = size_var
    probe[-1] = ip_var
    probe.insert(1, "$k8snet_v")
    ping_cmd = " ".join(probe)
    return "\n".join([
        pmtu_udp.batch_prelude(wait),
        "k8snet_cross() {",
        "  k8snet_s=$1; k8snet_n=0",
        "  while [ $k8snet_n -lt 2 ]; do",
        f"    if {ping_cmd} 2>&1 | grep -Eq '{_REPLY}'; then echo \"$k8snet_s 1\"; return 0; fi",
        "    k8snet_n=$((k8snet_n + 1))",
        "  done",
        "  echo \"$k8snet_s 0\"; return 1",
        "}",
        "k8snet_pmtu() {",
        "  k8snet_ip=$1; k8snet_lost=$2",
        f"  case $1 in *:*) k8snet_v=-6; k8snet_h={ping.IP6_ICMP_HEADERS};; "
        f"*) k8snet_v=; k8snet_h={ping.IP_ICMP_HEADERS};; esac",
        "  k8snet_cross $2 && return 0",
        "  k8snet_cross $3 || { k8snet_udp $1 $2 $3 $k8snet_h; return 0; }",
        "  k8snet_good=$3",
        "  while [ $((k8snet_lost - k8snet_good)) -gt 1 ]; do",
        "    k8snet_mid=$(((k8snet_good + k8snet_lost) / 2))",
        "    if k8snet_cross $k8snet_mid; then k8snet_good=$k8snet_mid; "
        "else k8snet_lost=$k8snet_mid; fi",
        "  done",
        "}",
    ])


def batch_command(target_ip: str, ceiling: int, wait: float) -> str:
    if not all(c.isalnum() or c in ".:" for c in target_ip):
        raise ValueError(f"not an IP address: {target_ip!r}")
    return f"k8snet_pmtu {target_ip} {int(ceiling)} {MIN_PACKET}"


def batch_timeout(wait: float) -> float:
    """Worst case of one search: ceiling, floor and ~11 bisection steps, each size lost
    twice after ``wait`` (plus ping's own start-up); then the UDP search's as many
    sizes, each lost twice after ``wait``, and python3's start-up."""
    return 2 * 14 * (wait + 0.3) + 5 + 2 * 14 * wait + 2


def from_batch(src: str, dst: str, stdout: str, ceiling: int, seconds: float,
               target_ip: str | None = None) -> PathMtuResult:
    """The search's result from the ``<size> <1|0>`` lines; a size with no line (the run
    was cut short) counts as lost, as an unanswered ping would. ``target_ip`` gives the
    header bytes (IPv4 or IPv6) the result's messages subtract."""
    answers: dict[int, bool] = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1] in ("0", "1"):
            answers[int(parts[0])] = parts[1] == "1"
    largest, lost, probes = search(lambda size: answers.get(size, False), ceiling)
    protocol = "icmp"
    udp = pmtu_udp.answers(stdout) if largest == 0 else None
    if udp is not None:
        # The DF pings' two probes stay counted: they are what sent the search to UDP.
        largest, lost, more = search(lambda size: udp.get(size, False), ceiling)
        probes, protocol = probes + more, "udp"
    return PathMtuResult(src=src, dst=dst, bytes=largest, first_lost=lost, ceiling=ceiling,
                         probes=probes, seconds=round(seconds, 3),
                         headers=ping.headers(target_ip or "0.0.0.0"), protocol=protocol)
