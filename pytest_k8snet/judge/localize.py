"""Where a fault is, from the per-pair measurements alone (network tomography, as in
Pingmesh, 007 or NetBouncer).

Every pair probe crosses the pod network on one *channel*: a protocol and port (ICMP
echo, TCP 8080 to the probe pod, iperf3's TCP control connection on 5201-5209, its UDP
data on the same ports). For one channel, the set of ordered pairs that fail is matched
against the few shapes one firewall rule can give: everything into a node (``in``),
everything out of it (``out``), both, or every pair. The first shape that fails exactly
the failing pairs and no pair that works is the fault's place; a set no shape matches
stays unplaced (two faults, or one this cannot tell).

How a channel fails says the mode: a refused or reset connection is a reject, a timeout
with nothing received a silent drop, a transfer that stalls part way (or some replies) is
loss. An echo answered by an ICMP error is a reject when the error is one a firewall's
REJECT sends (port unreachable, host/net/admin prohibited), and a route problem when a
router says the host or net is unreachable (or the TTL ran out). Nothing here writes findings: :mod:`.faults` turns the places into findings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..probes.iperf import NETWORK, TIMEOUT

ICMP, HTTP, IPERF_TCP, IPERF_UDP = "icmp", "tcp/8080", "tcp/5201-5209", "udp/5201-5209"
# What a channel is called in a sentence, and its protocol and port fields.
CHANNELS: dict[str, tuple[str, str, str | None]] = {
    ICMP: ("ICMP (ping)", "icmp", None),
    HTTP: ("TCP 8080", "tcp", "8080"),
    IPERF_TCP: ("TCP 5201-5209 (iperf3's control connection)", "tcp", "5201-5209"),
    IPERF_UDP: ("UDP 5201-5209 (iperf3's datagrams)", "udp", "5201-5209"),
}
DROP, REJECT, LOSS, STALL, ROUTE = "drop", "reject", "loss", "stall", "route"
# ping's error_kind (probes/ping.py): what a REJECT rule answers with (iptables' default
# is port-unreachable; --reject-with the others), and what a router without a route does.
ICMP_REJECT_KINDS = frozenset({"port-unreachable", "protocol-unreachable", "host-prohibited",
                               "net-prohibited", "admin-prohibited"})
ICMP_ROUTE_KINDS = frozenset({"host-unreachable", "net-unreachable", "ttl-exceeded"})
# curl: 7 = could not connect (refused, reset, or an ICMP unreachable answered it).
CURL_REFUSED = 7
REJECT_WORDS = ("refused", "reset", "unreachable", "no route", "prohibited")


@dataclass(frozen=True)
class Place:
    """Where one channel's failures sit: a node and a direction as seen from it, or every
    pair (``node`` None, ``direction`` "all"), or nowhere one rule explains (both None)."""

    channel: str
    mode: str
    node: str | None
    direction: str | None
    pairs: tuple[str, ...]
    # Other one-rule places that fail exactly the same measured pairs: the pairs that
    # would tell them apart were not measurable (another fault owns them).
    alternatives: tuple[tuple[str, str], ...] = ()


def _ends(pid: str) -> tuple[str, str]:
    a, _, b = pid.partition("->")
    return a, b


def http_mode(h: dict[str, Any]) -> str | None:
    """None when the transfer worked; else how it failed."""
    if h.get("ok"):
        return None
    if int(h.get("exit_code") or 0) == CURL_REFUSED:
        return REJECT
    if int(h.get("bytes") or 0) > 0:
        return LOSS  # bytes crossed, then the transfer stalled: packets go missing
    error = str(h.get("error") or "").lower()
    if any(w in error for w in REJECT_WORDS):
        return REJECT
    # A connection that opened and then carried nothing (an MTU black hole) is no rule
    # on the port: only a connect that never completed is a drop.
    return DROP if "connect" in error else STALL


def ping_mode(p: dict[str, Any]) -> str | None:
    """None when a reply came back; else how the echoes failed, from the ICMP errors that
    answered them (documents before ``error_kind`` have none: a drop)."""
    if int(p.get("received") or 0):
        return None
    kind = p.get("error_kind")
    if kind in ICMP_REJECT_KINDS:
        return REJECT
    if kind in ICMP_ROUTE_KINDS:
        return ROUTE
    return DROP


def iperf_channel(u: dict[str, Any], threshold: float) -> tuple[str, str] | None:
    """The channel and mode an iperf3 run failed on, None when it crossed (or failed for
    reasons of its own: a tool missing, an exec error)."""
    error = str(u.get("error") or "").lower()
    failure = u.get("failure")
    if "unable to connect" in error:
        # The TCP control connection never opened: no datagram was ever sent.
        return IPERF_TCP, (REJECT if any(w in error for w in REJECT_WORDS) else DROP)
    attempts = [a for a in u.get("attempts") or [u] if a]
    if failure == TIMEOUT and all(a.get("failure") == TIMEOUT for a in attempts):
        # Connected, then waited for datagrams that never arrived, past every deadline.
        return IPERF_UDP, DROP
    if failure not in (None, NETWORK):
        return None
    if u.get("error") or not int(u.get("packets") or 0):
        # The control connection opened (else the first branch): a refusal now answered
        # the datagrams themselves (an ICMP port unreachable: a REJECT on UDP).
        return IPERF_UDP, (REJECT if "refused" in error else DROP)
    if float(u.get("loss_pct") or 0) > threshold:
        return IPERF_UDP, LOSS
    return None


def place(channel: str, mode: str, failing: Iterable[str], measured: Iterable[str],
          nodes: Iterable[str]) -> Place:
    """The one-rule place that fails exactly ``failing`` among ``measured``."""
    bad = frozenset(failing)
    seen = [p for p in measured]
    ordered = tuple(p for p in seen if p in bad)
    if bad and bad == frozenset(seen) and len(seen) > 2:
        return Place(channel, mode, None, "all", ordered)
    fits = [(n, direction) for direction in ("in", "out", "both") for n in nodes
             if (shape := frozenset(p for p in seen if _touches(p, n, direction)))
             and shape == bad]
    if fits:
        # The narrowest rule first (in, out before both); the others stay on record.
        (node, direction), *others = fits
        return Place(channel, mode, node, direction, ordered,
                     tuple(o for o in others if o[0] != node))
    return Place(channel, mode, None, None, ordered)


def _touches(pid: str, node: str, direction: str) -> bool:
    a, b = _ends(pid)
    return {"in": b == node, "out": a == node}.get(direction, node in (a, b))


def lossy_node(lossy: Iterable[str], nodes: Iterable[str]) -> tuple[str | None, tuple[str, ...]]:
    """The node random loss sits at: the one in the most lossy pairs, when it is in at
    least two of them and in more than any other node; and the lossy pairs it is in.

    Loss is sampled: a lossy node's pairs need not all lose in one run, so this counts
    instead of matching a shape exactly.
    """
    pairs = list(dict.fromkeys(lossy))
    counts = sorted(((sum(n in _ends(p) for p in pairs), n) for n in nodes),
                    key=lambda c: -c[0])
    if not counts or counts[0][0] < 2 or (len(counts) > 1 and counts[1][0] == counts[0][0]):
        return None, ()
    node = counts[0][1]
    return node, tuple(p for p in pairs if node in _ends(p))
