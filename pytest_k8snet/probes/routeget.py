"""Route lookups: how a node's host network would send a packet to each peer's probe pod.

``ip route get <peer pod IP>`` from the node tells a missing route from a firewall: on a
routed overlay (flannel host-gw, Calico BGP) a healthy node sends a peer's pods via that
peer's node address; with the route gone the lookup fails or leaves by another next hop
(the default gateway), which no firewall rule can do. Run inside the node-check exec (no
exec of its own): :func:`script` frames each lookup with what the caller knows of the peer,
:func:`parse` reads the frames back.

Real output (iproute2 6.x; busybox prints the same words)::

    10.244.1.2 via 172.28.128.12 dev eth0 src 172.28.128.11 uid 0
        cache
    10.244.0.2 dev cni0 src 10.244.0.1 uid 0
    RTNETLINK answers: Network is unreachable     (no route at all, not even a default)
    RTNETLINK answers: No route to host           (an ``unreachable`` route)
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace

MARK = "==k8snet-route=="
# Route types ip prints before the destination when it is not a plain unicast route.
ROUTE_TYPES = ("unicast", "local", "broadcast", "multicast", "anycast", "unreachable",
               "blackhole", "prohibit", "throw", "nat")


@dataclass(frozen=True)
class Peer:
    """What the caller knows of a peer: its name, its probe pod's IP, its node address and
    pod CIDRs (empty when the backend does not know them)."""

    node: str
    pod_ip: str
    node_ip: str
    pod_cidrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteLookup:
    """One ``ip route get``: where the node sends ``dst`` (a peer's probe pod)."""

    peer: str
    dst: str
    peer_ip: str  # the peer's node address: the next hop of a routed overlay
    peer_pod_cidrs: tuple[str, ...]
    via: str | None = None  # the gateway; None when the destination is on-link
    dev: str | None = None
    src: str | None = None
    kind: str = "unicast"  # the route type when ip names one (local, unreachable, ...)
    error: str | None = None  # ip's own error line (RTNETLINK answers: ...), or no output


def script(peers: Sequence[Peer]) -> str:
    """Shell text that looks every peer's pod up, each framed by one marker line."""
    parts = []
    for p in peers:
        head = " ".join([MARK, p.node, p.pod_ip, p.node_ip or "-", ",".join(p.pod_cidrs) or "-"])
        parts.append(f"echo {shlex.quote(head)}; ip route get {shlex.quote(p.pod_ip)} 2>&1")
    return "; ".join(parts) if parts else "true"


def parse(text: str) -> tuple[RouteLookup, ...]:
    """Every framed lookup in ``text`` (:func:`script`'s output), in order."""
    out: list[RouteLookup] = []
    head: list[str] | None = None
    body: list[str] = []
    for line in [*text.splitlines(), MARK]:
        if line.startswith(MARK):
            if head is not None and len(head) == 5:
                out.append(parse_one(Peer(head[1], head[2], "" if head[3] == "-" else head[3],
                                          () if head[4] == "-" else tuple(head[4].split(","))),
                                     "\n".join(body)))
            head, body = line.split(), []
        else:
            body.append(line)
    return tuple(out)


def parse_one(peer: Peer, output: str) -> RouteLookup:
    """One lookup of ``peer``'s pod from ``ip route get``'s output (stdout and stderr)."""
    base = RouteLookup(peer.node, peer.pod_ip, peer.node_ip, peer.pod_cidrs)
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("RTNETLINK", "Error", "ip:"))]
    if errors or not lines:
        return replace(base, error=errors[0] if errors else "no output from ip route get")
    words = lines[0].split()
    kind = words.pop(0) if words and words[0] in ROUTE_TYPES else "unicast"
    values = {k: v for k, v in zip(words[1:], words[2:]) if k in ("via", "dev", "src")}
    return replace(base, via=values.get("via"), dev=values.get("dev"), src=values.get("src"),
                   kind=kind)
