"""A node without a route to a peer's pods (``no-route``), told from a firewall.

The node checks look up, on each node's host network, how it would send a packet to every
peer's probe pod (``ip route get``, :mod:`pytest_k8snet.probes.routeget`). A pair whose pod
ping gets no reply while node-to-node ping works is the missing route's when the source
node's lookup for the destination's pod finds no route, or leaves by another kind of next
hop than the lookups of the pairs that work (on host-gw those go via the peer's node
address; the broken one via the default gateway). The pair back is the same route's: its
replies take that lookup. A firewall cannot change where a node routes, so such pairs are
no blocked overlay; an ICMP "net/host unreachable" answering the pings says the same.

Documents without route lookups (older results files) give nothing here: judged as before.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from .context import Context, ends, listing, pair_id
from .localize import ROUTE, ping_mode
from .model import Finding

CAUSE = "no-route"


def _lookups(ctx: Context) -> dict[str, dict[str, Any]]:
    """(source node -> peer) -> its route lookup, for every node whose routes were read."""
    out: dict[str, dict[str, Any]] = {}
    for node, checks in ctx.checks.items():
        for r in checks.get("routes") or []:
            out[pair_id(str(node), str(r.get("peer")))] = r
    return out


def _hop(r: dict[str, Any]) -> str:
    """The kind of next hop a lookup found: ``peer`` (via the peer's node address),
    ``dev X`` (a tunnel or device route, also via the peer's tunnel address inside its pod
    CIDR), ``via A dev X`` (a fixed gateway), ``none`` (no route)."""
    if r.get("error") or r.get("kind") not in ("unicast", "local"):
        return "none"
    via = r.get("via")
    if via is not None and via == r.get("peer_ip"):
        return "peer"
    if via is None or _inside(str(via), r.get("peer_pod_cidrs") or []):
        return f"dev {r.get('dev')}"
    return f"via {via} dev {r.get('dev')}"


def _inside(ip: str, cidrs: list[str]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
        return any(addr in ipaddress.ip_network(c, strict=False) for c in cidrs)
    except ValueError:
        return False


def _said(r: dict[str, Any]) -> str:
    """The lookup in the words ``ip route get`` printed."""
    if r.get("error"):
        return str(r["error"])
    return " ".join(f"{k} {r[k]}" for k in ("via", "dev") if r.get(k)) or "no next hop"


def claim(ctx: Context, pairs: list[str]) -> dict[str, Finding]:
    """The pairs (pod ping dead, node ping fine) a missing route explains, each with its
    finding: one per node that lacks routes, naming the peers whose pods it cannot reach."""
    lookups = _lookups(ctx)
    if not lookups:
        return {}
    working = {_hop(r) for pid, r in lookups.items() if ctx.pod_ok(pid)}
    missing: dict[str, list[str]] = {}  # node -> peers whose pod route is missing
    for pid, r in lookups.items():
        hop = _hop(r)
        failing = pid in pairs or pair_id(*reversed(ends(pid))) in pairs
        # With no working pair to compare with (two nodes, say), a next hop other than the
        # peer counts only when a router also answered the pings "unreachable".
        unrouted = hop != "peer" and ping_mode(ctx.ping.get(("pod", pid)) or {}) == ROUTE
        if failing and (hop == "none" or (hop not in working if working else unrouted)):
            missing.setdefault(ends(pid)[0], []).append(ends(pid)[1])
    out: dict[str, Finding] = {}
    for node, peers in missing.items():
        mine = [p for peer in peers for p in (pair_id(node, peer), pair_id(peer, node))
                if p in pairs]
        if mine:
            # Two nodes missing each other's routes: both are named, the pair goes to one.
            f = ctx.add(_finding(ctx, node, peers, mine, lookups, working))
            for p in mine:
                out.setdefault(p, f)
    return out


def _finding(ctx: Context, node: str, peers: list[str], pairs: list[str],
             lookups: dict[str, dict[str, Any]], working: set[str]) -> Finding:
    looks = [lookups[pair_id(node, peer)] for peer in peers]
    whose = listing(f"{peer}'s pods ({', '.join(r.get('peer_pod_cidrs') or [r['dst']])})"
                    for peer, r in zip(peers, looks))
    said = "; ".join(f"`ip route get {r['dst']}` says {_said(r)}, not via {r['peer']} "
                     f"({r.get('peer_ip')})" for r in looks)
    good = (" while the pairs that work are routed ("
            + ", ".join(sorted(w if w != "peer" else "via the peer's node address"
                               for w in working)) + ")") if working else ""
    unreachable = [p for p in pairs if ping_mode(ctx.ping.get(("pod", p)) or {}) == ROUTE]
    answered = "".join(
        f"; pings on {p} are answered {ctx.ping[('pod', p)].get('error_kind')} by "
        f"{ctx.ping[('pod', p)].get('error_from')}" for p in unreachable)
    summary = (f"No route to {whose} on {node}: {said}{good}; pod-to-pod ping fails on "
               f"{listing(pairs)} (the way back takes the same route) while node-to-node "
               f"ping works{answered}: a missing route, not a firewall")
    return Finding(
        f"{CAUSE}:{node}", CAUSE, summary, (node,), tuple(pairs),
        evidence={f"{node}->{r['peer']}": {"route_get": _said(r), "dst": r["dst"],
                                           "peer_ip": r.get("peer_ip")} for r in looks},
        would_contradict=(f"{node} routing {listing(peers)}'s pods via the peer node",
                          "pod-to-pod ping crossing on these pairs"),
        fix_args=(("node", node),), protocol="all", mode=ROUTE, direction="out")
