"""ping: loss and round-trip time, optionally with Don't Fragment and a payload size."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

IP_ICMP_HEADERS = 28  # 20 bytes IPv4 + 8 bytes ICMP: payload + 28 = IP packet size
IP6_ICMP_HEADERS = 48  # 40 bytes IPv6 + 8 bytes ICMPv6

_STATS = re.compile(r"(\d+) packets transmitted, (\d+) received(?:, \+(\d+) errors)?")
_RTT = re.compile(r"rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")
# iputils says "mtu=1450" for IPv4 and "mtu: 1450" for IPv6.
_LOCAL_MTU = re.compile(r"message too long, mtu[=:] ?(\d+)")
# An ICMP error answering an echo: "From 10.244.1.0 icmp_seq=1 Destination Port Unreachable".
_FROM = re.compile(r"^From (\S+?):? icmp_seq=\d+ (.+?)\s*$", re.MULTILINE)
# iputils' words for each ICMP error (IPv4, then IPv6 "Destination unreachable: ...") and
# the kind recorded. A REJECT rule answers port-unreachable by default, or what its
# --reject-with says; iputils prints icmp-admin-prohibited as "Packet filtered".
ERROR_KINDS: tuple[tuple[str, str], ...] = (
    ("destination net unreachable", "net-unreachable"),
    ("destination host unreachable", "host-unreachable"),
    ("destination protocol unreachable", "protocol-unreachable"),
    ("destination port unreachable", "port-unreachable"),
    ("destination net prohibited", "net-prohibited"),
    ("destination host prohibited", "host-prohibited"),
    ("packet filtered", "admin-prohibited"),
    ("time to live exceeded", "ttl-exceeded"),
    ("frag needed", "frag-needed"),
    ("redirect", "redirect"),
    ("no route", "net-unreachable"),
    ("address unreachable", "host-unreachable"),
    ("port unreachable", "port-unreachable"),
    ("administratively prohibited", "admin-prohibited"),
    ("reject route", "net-prohibited"),
    ("failed ingress/egress policy", "admin-prohibited"),
    ("packet too big", "frag-needed"),
)


@dataclass(frozen=True)
class PingResult:
    """The outcome of one ping run. ``packet_size`` is the IP packet size in bytes."""

    dst: str
    payload: int
    dont_fragment: bool
    transmitted: int
    received: int
    loss_pct: float
    rtt_min_ms: float | None
    rtt_avg_ms: float | None
    rtt_max_ms: float | None
    errors: int = 0
    # The ICMP errors that answered the echoes: the most frequent kind (ERROR_KINDS) and
    # the address that sent most of them (a router or node on the way, or the destination).
    error_kind: str | None = None
    error_from: str | None = None
    local_mtu: int | None = None
    error: str | None = None

    @property
    def packet_size(self) -> int:
        return self.payload + headers(self.dst)

    @property
    def ok(self) -> bool:
        return self.received > 0 and self.loss_pct == 0.0

    @property
    def any_reply(self) -> bool:
        return self.received > 0


def is_ipv6(address: str) -> bool:
    return ":" in address


def headers(dst: str) -> int:
    """IP + ICMP header bytes for a ping to ``dst``: payload + headers = IP packet size."""
    return IP6_ICMP_HEADERS if is_ipv6(dst) else IP_ICMP_HEADERS


def argv(dst: str, *, count: int = 3, payload: int = 56, dont_fragment: bool = False,
         wait: float = 1.0, interval: float = 0.2) -> list[str]:
    """``ping`` argv; ``wait`` bounds the wait for each reply (iputils accepts fractions).
    ``-6`` for an IPv6 destination (iputils guesses it too, older pings do not);
    ``-M do`` means the same there (never fragment, report a too-small local MTU)."""
    args = ["ping", *(["-6"] if is_ipv6(dst) else []), "-n", "-c", str(count), "-i", f"{interval:g}", "-W", f"{wait:g}",
            "-s", str(payload)]
    if dont_fragment:
        args += ["-M", "do"]
    return args + [dst]


def icmp_errors(text: str) -> tuple[str | None, str | None]:
    """The most frequent kind of ICMP error in ping's output and its most frequent sender."""
    kinds: Counter[str] = Counter()
    senders: Counter[str] = Counter()
    for sender, what in _FROM.findall(text):
        low = what.lower()
        kind = next((k for words, k in ERROR_KINDS if words in low), None)
        if kind is None and "bytes from" not in low:
            kind = "other"
        if kind is not None:
            kinds[kind] += 1
            senders[sender] += 1
    if not kinds:
        return None, None
    return kinds.most_common(1)[0][0], senders.most_common(1)[0][0]


def parse(dst: str, payload: int, dont_fragment: bool, stdout: str, stderr: str = "") -> PingResult:
    text = stdout + "\n" + stderr
    stats = _STATS.search(text)
    rtt = _RTT.search(text)
    local = _LOCAL_MTU.search(text)
    transmitted = int(stats.group(1)) if stats else 0
    received = int(stats.group(2)) if stats else 0
    errors = int(stats.group(3) or 0) if stats else 0
    error_kind, error_from = icmp_errors(text)
    loss = 100.0 if transmitted == 0 else round(100.0 * (transmitted - received) / transmitted, 1)
    error = None
    if not stats:
        error = (stderr.strip() or stdout.strip() or "no ping statistics").splitlines()[-1]
    elif local:
        error = f"local interface MTU {local.group(1)} is smaller than the packet"
    return PingResult(dst=dst, payload=payload, dont_fragment=dont_fragment,
                      transmitted=transmitted, received=received, loss_pct=loss,
                      rtt_min_ms=float(rtt.group(1)) if rtt else None,
                      rtt_avg_ms=float(rtt.group(2)) if rtt else None,
                      rtt_max_ms=float(rtt.group(3)) if rtt else None,
                      errors=errors, error_kind=error_kind, error_from=error_from,
                      local_mtu=int(local.group(1)) if local else None, error=error)
