"""Path MTU to the exact byte: binary search with Don't-Fragment pings.

A black hole (frames silently dropped) costs one short per-probe wait per step,
so a full search is ~11 steps of at most 2 x ``wait`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from . import ping

MIN_PACKET = 68 + 16  # smallest we try: a 56-byte ping is 84 bytes on the wire


@dataclass(frozen=True)
class PathMtuResult:
    """``bytes`` is the largest IP packet that crosses (payload + 28); 0 if none did."""

    src: str
    dst: str
    bytes: int
    first_lost: int | None
    ceiling: int
    probes: int
    seconds: float

    @property
    def black_hole(self) -> bool:
        """Packets between ``bytes`` and ``ceiling`` vanish without any ICMP error."""
        return self.first_lost is not None


def probe_argv(dst: str, packet_size: int, wait: float) -> list[str]:
    return ping.argv(dst, count=1, payload=packet_size - ping.IP_ICMP_HEADERS,
                     dont_fragment=True, wait=wait)


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
            if ping.parse(target_ip, size - ping.IP_ICMP_HEADERS, True, out, err).any_reply:
                return True
        return False

    largest, lost, probes = search(crosses, ceiling)
    return PathMtuResult(src=src, dst=dst, bytes=largest, first_lost=lost, ceiling=ceiling,
                         probes=probes, seconds=round(time.monotonic() - start, 3))
