"""Located faults as findings: one root per place, with every channel that fails there.

:mod:`.localize` says where each channel's failures sit; here the channels failing at the
same node, direction and mode become one finding (``pod-firewall``) that names what fails
and what still crosses, and the pair checks fail on it instead of on a finding per pair.
Random loss at a node is ``pod-lossy`` (built by test_pod_ping); the failures loss
explains elsewhere (an iperf3 run that timed out, a stalled transfer, a DF probe lost,
a few Service requests) become its knock-ons through :func:`knock_on`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from .context import CONNECTIVITY, Context, listing
from .localize import (CHANNELS, DROP, HTTP, ICMP, IPERF_TCP, IPERF_UDP, LOSS, REJECT, ROUTE,
                       Place, http_mode, iperf_channel, lossy_node, ping_mode, place)
from .model import SKIPPED, Finding
from ..probes.iperf import TIMEOUT
from ..text import shorten

CAUSE = "pod-firewall"
MODE_TEXT = {DROP: "dropped (connections time out, nothing answers)",
             REJECT: "rejected (connection refused)", LOSS: "lossy",
             ROUTE: "unroutable (a router answers host or net unreachable)"}
# Where on a node the fault lives: a firewall rule, or (mode route) its routes.
RULE_PLACE = {False: "its FORWARD chain, a NetworkPolicy", True: "its routes"}
SIDE = {"in": "into {n}'s pods", "out": "out of {n}'s pods",
        "both": "into and out of {n}'s pods"}


def observed(ctx: Context, channel: str) -> tuple[dict[str, str], list[str]]:
    """The pairs failing on ``channel`` (pair -> mode; loss left to the lossy finding) and
    the pairs it was measured on, without the pairs whose pod connectivity a finding of
    another kind (underlay, forwarding) already owns."""
    owned = {p for p, fid in ctx.pod_finding.items()
             if ctx.findings[fid].cause in (*CONNECTIVITY, "probe-failure")}
    failing: dict[str, str] = {}
    measured: list[str] = []
    # iperf3 waiting past its deadline is the network's silence only when other iperf3
    # runs finished in time: else the machines were too starved to run it.
    finished = any(a.get("failure") is None for t in ctx.udp.values()
                   for a in t.get("attempts") or [t])
    for pid in ctx.pairs:
        if pid in owned:
            continue
        if channel == ICMP:
            p, h = ctx.ping.get(("pod", pid)), ctx.ping.get(("host", pid))
            if p is None or (h is not None and not int(h.get("received") or 0)):
                continue  # an underlay fault, not a pod one
            measured.append(pid)
            mode = ping_mode(p)
            if mode is not None:
                failing[pid] = mode
        elif channel == HTTP:
            ht = ctx.http.get(pid)
            if ht is None:
                continue
            measured.append(pid)
            mode = http_mode(ht)
            if mode in (DROP, REJECT):
                failing[pid] = mode
        else:
            u = ctx.udp.get(pid)
            if u is None:
                continue
            measured.append(pid)
            got = iperf_channel(u, ctx.threshold)
            timeout = u.get("failure") == TIMEOUT
            if got is not None and got[0] == channel and got[1] != LOSS and (
                    finished or not timeout):
                failing[pid] = got[1]
    return failing, measured


def places(ctx: Context) -> dict[str, Place]:
    """Every channel's place (cached: the pair checks ask pair by pair)."""
    cache: dict[str, Place] = ctx.places
    if cache:
        return cache
    seen = {channel: observed(ctx, channel) for channel in CHANNELS}
    for channel, (failing, measured) in seen.items():
        if not failing:
            continue
        modes = set(failing.values())
        # One rule that rejects answers with ICMP errors the kernel rate-limits: some of its
        # pairs see none and read as drops. A reject anywhere in one rule's place is its mode.
        mode = REJECT if modes == {REJECT, DROP} else Counter(failing.values()).most_common(1)[0][0]
        whole = place(channel, mode, failing, measured, ctx.nodes)
        if whole.direction is not None or len(modes) == 1:
            cache[channel] = whole
            continue
        # No one rule fails every pair, and they fail in different ways: two rules on one
        # channel (a reject at one node, a drop at another). Each way is placed on its own,
        # among the pairs that did not fail the other way (those could hide either).
        for m in sorted(modes):
            bad = [p for p, got in failing.items() if got == m]
            cache[f"{channel} {m}"] = place(
                channel, m, bad, [p for p in measured if failing.get(p, m) == m], ctx.nodes)
    _explain_away(ctx, cache, seen)
    for key, pl in list(cache.items()):
        cache[key] = _answered_from(ctx, pl)
    return cache


def _explain_away(ctx: Context, cache: dict[str, Place],
                  seen: dict[str, tuple[dict[str, str], list[str]]]) -> None:
    """A channel failing on more pairs than one rule gives (or on every pair) while other
    channels place a rule at a node: that node's pairs are the other rule's on this channel
    too, and what is left is placed on its own. Everything out of node-1's pods dropped
    beside ICMP rejected at node-3 fails ICMP on every pair: that is two rules, not an
    ICMP rule on every pair."""
    at_nodes = [q for q in cache.values() if q.node is not None]
    for key, pl in list(cache.items()):
        if pl.node is not None:
            continue
        others = [q for q in at_nodes if q.channel != pl.channel and set(q.pairs) & set(pl.pairs)]
        if not others:
            continue
        failing, measured = seen[pl.channel]
        q = max(others, key=lambda o: len(set(o.pairs) & set(pl.pairs)))
        owned = set(q.pairs)
        mine = {p: failing[p] for p in pl.pairs if p in owned}
        rest = {p: failing[p] for p in pl.pairs if p not in owned}
        if not rest:
            continue
        del cache[key]
        mode = Counter(mine.values()).most_common(1)[0][0]
        cache[f"{pl.channel} @{q.node}"] = Place(pl.channel, mode, q.node, q.direction,
                                                 tuple(mine))
        left_mode = Counter(rest.values()).most_common(1)[0][0]
        cache[f"{pl.channel} {left_mode} rest"] = place(
            pl.channel, left_mode, rest, [p for p in measured if p not in owned], ctx.nodes)


def node_of_address(ctx: Context, ip: str) -> str | None:
    """The node one of whose links holds ``ip`` (the node checks read every link)."""
    for node, check in ctx.checks.items():
        for link in check.get("interfaces") or []:
            if any(str(a).partition("/")[0] == ip for a in link.get("addresses") or []):
                return str(node)
    return None


def _answered_from(ctx: Context, pl: Place) -> Place:
    """Among the nodes a place cannot tell apart, the one its ICMP errors came from: a
    REJECT answers from the node whose rule it is (its bridge or tunnel address)."""
    if not pl.alternatives or pl.mode != REJECT or pl.channel != ICMP:
        return pl
    sources = {str(e) for p in pl.pairs for e in [(ctx.ping.get(("pod", p)) or {}).get(
        "error_from")] if e}
    owners = {node_of_address(ctx, ip) for ip in sources}
    candidates = {n for n, _ in pl.alternatives} | {pl.node}
    if len(owners) != 1 or not owners <= candidates:
        return pl
    (node,) = owners
    direction = pl.direction if node == pl.node else dict(pl.alternatives)[str(node)]
    return Place(pl.channel, pl.mode, node, direction, pl.pairs)


def node_local(ctx: Context, node: str) -> list[str]:
    """What shows ``node``'s own pods cut off at the node, not on the wire between nodes:
    pod egress failing while host egress works, and Service requests from it that miss
    its own backends (pod to pod on one node never touches the overlay)."""
    seen = []
    pod, host = ctx.egress.get((node, "pod")), ctx.egress.get((node, "host"))
    if pod and host and int(pod.get("failures") or 0) == int(pod.get("attempts") or -1) \
            and not int(host.get("failures") or 0):
        seen.append(f"every pod egress connection from {node} fails while the host "
                    "network's work")
    cut = pod_path(ctx, node, cut=True)
    if cut:
        seen.append(f"{node}'s pods get no reply from the other nodes' host network "
                    f"({listing(cut)}, no overlay on the way) while node to node works")
    s = ctx.service.get(node) or {}
    own = [b for b in s.get("missing_backends") or [] if ctx.backends.get(str(b)) == node]
    # kube-proxy picks a backend at random: only when enough requests failed is it
    # unlikely (under 5%) that none of them went to the node's own backends.
    share = len(own) / max(1, len(ctx.backends))
    if own and not s.get("answered_by") and (1 - share) ** int(s.get("attempts") or 0) < 0.05:
        seen.append(f"Service requests from {node} fail even to its own backends "
                    f"({', '.join(map(str, own))})")
    return seen


def pod_path(ctx: Context, node: str, cut: bool) -> list[str]:
    """The pairs out of ``node`` whose pod-to-node pings (``ping_pod_to_node``: the pod's
    own path out of its node and the underlay, no overlay) lose every echo (``cut``), or
    more than the loss threshold, while node-to-node ping on them works and the same pings
    from the other nodes' pods do not: the fault is on ``node``'s pod path, not on the
    overlay. Empty when that is not so (or was not measured)."""
    mine = {p: e for p, e in ctx.pod_to_node.items() if p.startswith(f"{node}->")}
    others = [e for p, e in ctx.pod_to_node.items() if p not in mine]
    if not mine or not others or any(
            not int((ctx.ping.get(("host", p)) or {}).get("received") or 0) for p in mine):
        return []
    limit = 100.0 if cut else ctx.threshold
    if _lost_pct(list(mine.values())) < limit or _lost_pct(others) >= limit:
        return []
    return list(mine)


def _lost_pct(entries: list[dict[str, Any]]) -> float:
    sent = sum(int(e.get("transmitted") or 0) for e in entries)
    got = sum(int(e.get("received") or 0) for e in entries)
    return 100.0 * (sent - got) / sent if sent else 0.0


def located(ctx: Context, channel: str, pid: str, add: bool = True) -> Finding | None:
    """The root finding for ``pid`` failing on ``channel`` when one rule explains the
    channel's failures (placed at a node or on every pair); None when it does not.
    ``add`` False only looks: the finding is not recorded."""
    pl = next((q for q in places(ctx).values() if q.channel == channel and pid in q.pairs),
              None)
    if pl is None or pl.direction is None:
        return None
    same = [q for q in places(ctx).values()
            if (q.node, q.direction, q.mode) == (pl.node, pl.direction, pl.mode)]
    here = [q for q in places(ctx).values() if (q.node, q.direction) == (pl.node, pl.direction)]
    if _every([q.channel for q in here]) and not _every([q.channel for q in same]):
        # Every channel fails at one place, some refused and some timing out: one rule on
        # all traffic that rejects (a refusal going in, the refused reply of a connection
        # going out times out), not a rule per channel.
        mode = REJECT if any(q.mode == REJECT for q in here) else pl.mode
        same, pl = here, Place(pl.channel, mode, pl.node, pl.direction, pl.pairs,
                               pl.alternatives)
    if pl.mode == DROP and pl.channel != ICMP and pl.node is not None \
            and lossy_root(ctx, pl.node) is not None:
        # Connections timing out at a node that loses packets on every probe: the loss
        # took their handshakes (the lossy finding owns them), no rule.
        return None
    if any(q.direction is None and set(q.pairs) & set(pl.pairs) for q in places(ctx).values()):
        # Another channel fails on some of these pairs in no shape one rule gives: the
        # measurements disagree, and the overlay's judgement (or inconclusive) says so.
        return None
    fid = f"{CAUSE}:{pl.node or 'all'}:{pl.direction}:{pl.mode}"
    if fid in ctx.findings:
        return ctx.findings[fid]
    f = _finding(ctx, fid, pl, same)
    return ctx.add(f) if add else f


def _finding(ctx: Context, fid: str, pl: Place, same: list[Place]) -> Finding:
    chans = [q.channel for q in same]
    every = _every(chans)
    pairs = tuple(dict.fromkeys(p for q in same for p in q.pairs))
    n = pl.node or ""
    where = SIDE[pl.direction or ""].format(n=n) if pl.node else "between the pods of every pair"
    local = node_local(ctx, n) if pl.node else []
    what = "all pod traffic" if every else " and ".join(CHANNELS[c][0] for c in chans)
    protos = {CHANNELS[c][1] for c in chans}
    proto = "all" if every else protos.pop() if len(protos) == 1 else None
    crossing = "" if every else _crossing(chans)
    summary = (f"{what[:1].upper()}{what[1:]} {where} is {_mode_text(pl.mode, proto)} on "
               f"{len(pairs)} pair{'s' if len(pairs) != 1 else ''} ({listing(pairs)})"
               + (f" while {crossing}" if crossing else "")
               + "; node-to-node ping works, so the host network is fine and "
               + ("a missing route" if pl.mode == ROUTE else "a firewall rule")
               + (f" on {n} ({RULE_PLACE[pl.mode == ROUTE]}) or on its path" if n else "")
               + " stops the pods' traffic" + (f"; {'; '.join(local)}" if local else "")
               + (_pmtud(ctx, pairs) if ICMP in chans and not every
                  and pl.mode in (DROP, REJECT) else "") + _alternatives(pl))
    ports = {CHANNELS[c][2] for c in chans}
    return Finding(
        fid, CAUSE, summary, (n,) if n else (), pairs,
        evidence={p: _evidence(ctx, p, chans) for p in pairs},
        would_contradict=(f"{what} crossing on one of these pairs",
                          "a pair that does not touch the node failing the same way"),
        fix_args=(("node", n or "every node"), ("what", what)),
        protocol=proto, port=None if every or len(ports) != 1 else ports.pop(),
        mode=pl.mode, direction=pl.direction if pl.node else "both")


def _every(chans: list[str]) -> bool:
    """The channels are all the pod traffic the probes send."""
    return {ICMP, HTTP} <= set(chans) and (IPERF_TCP in chans or IPERF_UDP in chans)


def _pmtud(ctx: Context, pairs: Iterable[str]) -> str:
    """What filtering ICMP costs beyond ping, and how path MTU was measured despite it."""
    udp = [p for p in pairs if (ctx.pmtu.get(p) or {}).get("protocol") == "udp"
           and int(ctx.pmtu[p].get("bytes") or 0)]
    return ("; path MTU discovery breaks where such a rule drops ICMP \"fragmentation "
            "needed\" too (senders never learn a smaller path MTU, so their large packets "
            "vanish)" + (f"; path MTU measured with DF UDP instead on {listing(udp)}"
                         if udp else ""))


def _alternatives(pl: Place) -> str:
    if not pl.alternatives:
        return ""
    other = " or ".join(SIDE[d].format(n=n).replace("'s pods", "") for n, d in pl.alternatives)
    return (f"; {other} fits the same failures: no measured pair tells them apart (too "
            "few nodes, or another fault cuts the pairs that would)")


def _mode_text(mode: str, proto: str | None) -> str:
    if mode == DROP:
        return {"udp": "dropped (no datagram arrives)", "icmp": "dropped (no reply)"}.get(
            proto or "", "dropped (connections time out, nothing answers)")
    if mode == REJECT and proto == "icmp":
        return "rejected (answered with an ICMP error)"
    if mode == REJECT and proto == "udp":
        return "rejected (the datagrams are answered with ICMP port unreachable)"
    return MODE_TEXT[mode]


def _crossing(chans: list[str]) -> str:
    """What still crosses the same pairs, in words: what tells this rule from a dead path."""
    out = [CHANNELS[c][0] for c in (ICMP, HTTP) if c not in chans]
    if IPERF_TCP not in chans and IPERF_UDP not in chans:
        out.append("iperf3 (TCP and UDP 5201-5209)")
    elif IPERF_TCP not in chans:
        out.append("iperf3's control connection (TCP 5201-5209)")
    if not out:
        return ""
    text = ", ".join(out[:-1]) + " and " + out[-1] if len(out) > 1 else out[0]
    return text + (" cross" if len(out) > 1 else " crosses")


def _evidence(ctx: Context, pid: str, chans: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ICMP in chans:
        p = ctx.ping.get(("pod", pid)) or {}
        out["pod_ping"] = f"{p.get('received')}/{p.get('transmitted')} replies"
        if p.get("error_kind"):
            out["pod_ping"] += (f", {p.get('errors')} ICMP {p['error_kind']} from "
                                f"{p.get('error_from')}")
    if HTTP in chans:
        out["http_8080"] = shorten(str((ctx.http.get(pid) or {}).get("error") or ""), 120)
    if IPERF_TCP in chans or IPERF_UDP in chans:
        out["iperf3"] = shorten(str((ctx.udp.get(pid) or {}).get("error") or ""), 120)
    return out


# -- loss --------------------------------------------------------------------------------

def lossy_pairs(ctx: Context) -> list[str]:
    """Pairs that lost some packets on any channel: pod or node ping with some replies missing,
    UDP datagrams lost in every sample, a 1 MiB transfer that stalled part way."""
    out = []
    limit = ctx.threshold
    for pid in ctx.pairs:
        # A plain loop: this runs once per pair (a million at 1,000 nodes).
        ping = False
        for net in ("pod", "host"):
            p = ctx.ping.get((net, pid))
            if p is not None and int(p.get("received") or 0) > 0 \
                    and float(p.get("loss_pct") or 0) > limit:
                ping = True
                break
        u = ctx.udp.get(pid)
        udp = u is not None and iperf_channel(u, ctx.threshold) == (IPERF_UDP, LOSS)
        h = ctx.http.get(pid)
        http = h is not None and http_mode(h) == LOSS
        if ping or udp or http:
            out.append(pid)
    return out


def lossy_place(ctx: Context) -> tuple[str | None, tuple[str, ...]]:
    # Measurements alone decide it (no finding does): once per judgement, for every
    # check that asks (a pass over every pair at 1,000 nodes).
    if ctx.lossy_place is None:
        ctx.lossy_place = lossy_node(lossy_pairs(ctx), ctx.nodes)
    return ctx.lossy_place


def host_loss(ctx: Context, pairs: Iterable[str]) -> str:
    """'lost N of M replies' when node-to-node ping on ``pairs`` lost some (not all): the
    loss then takes the host network's packets too, not only the overlay's."""
    hs = [h for p in pairs for h in [ctx.ping.get(("host", p))] if h is not None]
    sent = sum(int(h.get("transmitted") or 0) for h in hs)
    got = sum(int(h.get("received") or 0) for h in hs)
    return f"lost {sent - got} of {sent} replies" if 0 < got < sent else ""


def lossy_root(ctx: Context, *nodes: str) -> Finding | None:
    """The lossy finding at one of ``nodes`` (any, when none given), the one naming the
    fewest nodes first: some of any traffic there is lost, so a probe, query or connect
    that fails now and then is its knock-on."""
    found = [f for f in ctx.findings.values() if f.cause in ("pod-lossy", "udp-lossy")
             and f.root is None and (not nodes or set(nodes) & set(f.nodes))]
    return min(found, key=lambda f: len(f.nodes)) if found else None


def backend_root(ctx: Context, client: str, node: str) -> Finding | None:
    """Why pods on ``client`` cannot reach a Service backend on ``node``: the pair's pod
    connectivity finding, else a located fault on TCP (the backends listen on the probe's
    port 8080) between them, or at ``client`` itself for its own node's backends."""
    if node != client:
        f = ctx.behind(client, node) or located(ctx, HTTP, f"{client}->{node}", add=False)
        # Only a finding a pair check failed on: the Service adds no root of its own.
        return f if f is not None and f.id in ctx.findings else None
    return next((f for f in ctx.findings.values() if f.cause == CAUSE and f.nodes == (node,)
                 and f.protocol in ("tcp", "all") and f.port in (None, "8080")), None)
