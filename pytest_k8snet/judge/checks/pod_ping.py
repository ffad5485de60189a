"""test_pod_ping: pod to pod, small packets, every pair. Tells a blocked overlay port
(node-to-node ping works) from a broken underlay (it fails too), loss from a block, and
records which finding owns each failing pair's connectivity (``ctx.pod_finding``): the
later pair checks skip behind it (:func:`skip_without_pod_connectivity`)."""

from __future__ import annotations

from typing import Any

from .. import faults, groups, routes
from ..context import Check, Context, ends, listing, loss_text
from ..localize import DROP, ICMP, REJECT, ROUTE, ping_mode
from ..model import PASSED, SKIPPED, Finding
from .nodes_ready import skip_unusable

NAME = "test_pod_ping"


def skip_without_pod_connectivity(ctx: Context, test: str, pid: str) -> bool:
    """Skip a pair whose pod connectivity another finding owns; True when skipped."""
    fid = ctx.pod_finding.get(pid)
    if fid is None:
        return False
    f = ctx.findings[fid]
    ctx.set_verdict(test, pid, SKIPPED, f"{pid}: no pod connectivity ({f.title}), see "
                    f"{NAME}[{pid}]", fid)
    return True


def judge(ctx: Context) -> None:
    groups: dict[str, list[str]] = {"overlay": [], "underlay": [], "lossy": [], "unknown": []}
    threshold = ctx.threshold
    for pid, (a, _, b) in zip(ctx.pairs, ctx.pair_parts):  # ends(pid), made once
        if skip_unusable(ctx, NAME, pid, a, b):
            continue
        p = ctx.ping.get(("pod", pid))
        if p is None:
            ctx.set_verdict(NAME, pid, SKIPPED, f"{pid}: pod-to-pod ping not measured")
            continue
        if int(p.get("received") or 0) > 0 and float(p.get("loss_pct") or 0) <= threshold:
            ctx.set_verdict(NAME, pid, PASSED)  # ctx.pod_ok, inlined: once per pair
            continue
        failure = ctx.probe_failure("ping-pod-56", pid)
        if failure is not None:
            f = ctx.probe_finding(failure, pid, NAME)
            ctx.pod_finding[pid] = f.id
            ctx.fail(NAME, pid, f"{pid}: pod-to-pod ping could not run", f)
            continue
        off = [n for n in (a, b) if ctx.forwarding_off(n)]
        if off:
            fid = f"ip-forward:{off[0]}"
            f = ctx.extend(fid, pairs=[pid], checks=[NAME])
            ctx.pod_finding[pid] = fid
            ctx.fail(NAME, pid, _symptom(ctx, pid), f, _raw(ctx, pid))
            continue
        h = ctx.ping.get(("host", pid))
        received = int(p.get("received") or 0)
        if h is not None and int(h.get("received") or 0) == 0:
            groups["underlay"].append(pid)
        elif received > 0:
            groups["lossy"].append(pid)
        elif h is not None:
            groups["overlay"].append(pid)
        else:
            groups["unknown"].append(pid)
    # The underlay first: its pairs are no pod fault, and the places the overlay group
    # reads (:func:`faults.places`) leave them out.
    _underlay_group(ctx, groups["underlay"])
    _overlay_group(ctx, groups["overlay"])
    _lossy_group(ctx, groups["lossy"])
    for pid in groups["unknown"]:
        f = ctx.add(Finding(
            f"pod-unreachable:{pid}", "inconclusive",
            f"{pid}: pod-to-pod ping gets no reply and node-to-node ping was not measured, "
            "so the underlay cannot be told from the overlay", pairs=(pid,),
            evidence={pid: _numbers(ctx, pid)}))
        ctx.pod_finding[pid] = f.id
        ctx.fail(NAME, pid, _symptom(ctx, pid), f, _raw(ctx, pid))


def _overlay_group(ctx: Context, pairs: list[str]) -> None:
    """Pod ping dead, node ping fine: the overlay, when nothing measured disagrees."""
    if not pairs:
        return
    # Before any firewall is placed: a pair a missing route explains is no firewall's.
    for pid, f in routes.claim(ctx, pairs).items():
        ctx.pod_finding[pid] = f.id
        ctx.fail(NAME, pid, _symptom(ctx, pid), f, _raw(ctx, pid))  # the summary says the rest
    pairs = _located_group(ctx, [p for p in pairs if p not in ctx.pod_finding])
    against = [p for p in pairs if ctx.udp_state(p) == "crossed"]
    consistent = [p for p in pairs if p not in against]
    if consistent:
        nodes, why = ctx.culprits(consistent)
        udp_all = all(ctx.udp_state(p) == "blocked" for p in consistent)
        overlay = ctx.overlay(n for p in consistent for n in ends(p))
        f = ctx.add(Finding(
            "vxlan-blocked:" + ",".join(nodes), "vxlan-blocked",
            f"Pod-to-pod ping gets no reply while node-to-node ping works"
            + ("; UDP through the overlay fails too" if udp_all else "")
            + f", on {len(consistent)} pair{'s' if len(consistent) != 1 else ''} "
            f"({listing(consistent)}): the overlay ({overlay}) is dropped between the "
            "nodes" + (f"; {why}" if why else ""), nodes, tuple(consistent),
            evidence={p: _numbers(ctx, p) for p in consistent},
            would_contradict=("UDP through the overlay crossing on these pairs",
                              "node-to-node ping failing (the underlay, not the port)"),
            fix_args=(("overlay", overlay),), **_overlay_fields(ctx, nodes, consistent)))
        for pid in consistent:
            ctx.pod_finding[pid] = f.id
            ctx.fail(NAME, pid, _symptom(ctx, pid) + " while node-to-node ping works",
                     f, _raw(ctx, pid))
    if against:
        f = ctx.add(Finding(
            "inconclusive-overlay:" + ",".join(against), "inconclusive",
            f"Pod-to-pod ping gets no reply while node-to-node ping works on "
            f"{listing(against)}, which looks like a blocked overlay port",
            pairs=tuple(against), evidence={p: _numbers(ctx, p) for p in against},
            contradicting=tuple(f"{p}: UDP through the overlay crossed "
                                f"({loss_text(ctx.udp[p].get('loss_pct'))} lost)"
                                for p in against)))
        for pid in against:
            ctx.pod_finding[pid] = f.id
            ctx.fail(NAME, pid, _symptom(ctx, pid), f, _raw(ctx, pid))


def _located_group(ctx: Context, pairs: list[str]) -> list[str]:
    """Fail the pairs a located pod fault explains; the rest, for the overlay group.

    ICMP failing alone at one node (UDP crossing) is a rule on ICMP. Everything failing at
    one node looks like its overlay port blocked, except that a blocked overlay leaves the
    node's own pods talking to each other and to the outside: when they cannot either
    (:func:`faults.node_local`), the node drops its pods' traffic itself.
    """
    rest = []
    for pid in pairs:
        f = faults.located(ctx, ICMP, pid, add=False)
        alone = ctx.udp_state(pid) == "crossed"
        if f is None or not (alone or (f.protocol == "all" and f.nodes
                                       and faults.node_local(ctx, f.nodes[0]))):
            rest.append(pid)
            continue
        f = ctx.findings.get(f.id) or ctx.add(f)
        if f.protocol != "icmp":
            # A rule on ICMP alone takes only the pings: the pair's TCP and UDP checks
            # judge their own measurements, which crossed, instead of skipping behind it.
            ctx.pod_finding[pid] = f.id
        ctx.fail(NAME, pid, _symptom(ctx, pid) + " while node-to-node ping works", f,
                 _raw(ctx, pid))
    return rest


def _overlay_fields(ctx: Context, nodes: tuple[str, ...], pairs: list[str]) -> dict[str, Any]:
    """Where a blocked overlay is: its UDP port, dropped, both ways (the overlay carries
    both directions of every pod connection), when one node is in every failing pair."""
    port = next((str(ctx.encap[n].get("udp_port")) for n in nodes
                 if n in ctx.encap and ctx.encap[n].get("udp_port")), None)
    if port is None and all(n not in ctx.encap for n in nodes):
        port = "8472"
    return {"protocol": "udp" if port else None, "port": port, "mode": "drop",
            "direction": "both" if len(nodes) == 1 else None}


def _underlay_group(ctx: Context, pairs: list[str]) -> None:
    """Pod ping and node ping both dead: the underlay itself."""
    if not pairs:
        return
    cut = groups.find_cut(pairs, ctx.node_order)
    if cut is not None:
        _cut_group(ctx, pairs, cut)
        return
    nodes, why = ctx.culprits(pairs)
    f = ctx.add(Finding(
        "underlay:" + ",".join(nodes), "underlay",
        f"Pod-to-pod and node-to-node ping both get no reply on {len(pairs)} pair"
        f"{'s' if len(pairs) != 1 else ''} ({listing(pairs)})"
        + (f"; {why}" if why else ""), nodes, tuple(pairs),
        evidence={p: _numbers(ctx, p) for p in pairs},
        would_contradict=("node-to-node ping working on these pairs",),
        # Nothing crosses, host or pod, whatever the protocol: a drop, unless the echoes
        # were answered by a REJECT's ICMP errors (or a router's unreachable).
        protocol="all", mode=_host_mode(ctx, pairs),
        direction="both" if len(nodes) == 1 else None))
    for pid in pairs:
        ctx.pod_finding[pid] = f.id
        ctx.fail(NAME, pid, _symptom(ctx, pid) + " and node-to-node ping fails too",
                 f, _raw(ctx, pid))


def _cut_group(ctx: Context, pairs: list[str], cut: groups.Cut) -> None:
    """Every pair between two groups dead, pod and host, and nothing else: the underlay
    between the groups (a rack's uplink, a router, an ACL), one finding naming both."""
    where = groups.describe(cut, ctx.node_order)
    within = len(ctx.pairs) - len(pairs)
    f = ctx.add(Finding(
        f"underlay-cut:{groups.span(cut.a, ctx.node_order)}|"
        f"{groups.span(cut.b, ctx.node_order)}", "underlay",
        f"{where}: pod-to-pod and node-to-node ping both get no reply on all {len(pairs)} "
        f"pairs between the two groups ({listing(pairs, 4)}) and on none of the other "
        f"{within} pairs (within each group, to every other node): the underlay between the "
        "two groups (a switch or router between them, an ACL, a rack's uplink) drops "
        "their traffic", cut.nodes, tuple(pairs),
        evidence={"groups": {"a": list(cut.a), "b": list(cut.b), "both_ways": cut.both},
                  **{p: _numbers(ctx, p) for p in pairs}},
        would_contradict=("a pair between the two groups that gets a reply",
                          "a pair within one group failing the same way"),
        protocol="all", mode=_host_mode(ctx, pairs), direction=None))
    for pid in pairs:
        ctx.pod_finding[pid] = f.id
        ctx.fail(NAME, pid, _symptom(ctx, pid) + " and node-to-node ping fails too",
                 f, _raw(ctx, pid))


def _lossy_group(ctx: Context, pairs: list[str]) -> None:
    """Some replies, but more loss than the threshold after re-measuring: lossy, not blocked."""
    if not pairs:
        return
    nodes, why = ctx.culprits(pairs)
    node, every = faults.lossy_place(ctx)
    fields: dict[str, Any] = {}
    if node is not None and set(pairs) <= set(every):
        # Every probe that lost packets (ping, UDP, a stalled transfer) touches one node:
        # the loss is there. A ping is a round trip, so which way is not told.
        nodes, fields = (node,), {"mode": "loss", "direction": "both"}
        why = (f"every pair that lost packets on any probe ({listing(every)}) touches "
               f"{node}, so the loss is at {node}")
        clean, host = _host_clean(ctx, every), faults.host_loss(ctx, every)
        if host:
            fields.update(protocol="all")
            why += (f"; node-to-node ping {host} there too, so all traffic at {node} loses "
                    "packets, not only the overlay's")
        elif clean and (own := faults.pod_path(ctx, node, cut=False)):
            fields.update(protocol="all")
            why += (f"; node-to-node ping lost nothing there ({clean}), but {node}'s pods "
                    f"lose pings to the other nodes' host network too ({listing(own)}, no "
                    f"overlay on the way), so {node}'s pods' own path loses all their "
                    "traffic, not only the overlay")
        elif clean:
            port = _overlay_fields(ctx, nodes, list(every))["port"]
            fields.update(protocol="udp" if port else None, port=port)
            why += (f"; node-to-node ping lost nothing there ({clean}), so it hits the "
                    f"overlay's packets ({ctx.overlay(nodes)})")
    f = ctx.add(Finding(
        "pod-lossy:" + ",".join(nodes), "pod-lossy",
        f"Pod-to-pod ping loses more than {ctx.threshold:g}% but not everything, "
        f"re-measured with a bigger sample, on {listing(pairs)}"
        + (f"; {why}" if why else "") + ": some packets cross, so no port is blocked",
        nodes, tuple(pairs), evidence={p: _numbers(ctx, p) for p in pairs},
        would_contradict=("a loss-free re-measurement",), **fields))
    for pid in pairs:
        ctx.pod_finding[pid] = f.id
        ctx.fail(NAME, pid, _symptom(ctx, pid), f, _raw(ctx, pid))


def _host_mode(ctx: Context, pairs: list[str]) -> str:
    """How node-to-node ping failed on ``pairs``: a reject (or route) when any echo was
    answered by such an ICMP error (the kernel rate-limits them, so some pairs get none),
    else a drop."""
    modes = {ping_mode(h) for p in pairs if (h := ctx.ping.get(("host", p))) is not None}
    return REJECT if REJECT in modes else ROUTE if ROUTE in modes else DROP


def _host_clean(ctx: Context, pairs: tuple[str, ...]) -> str:
    """'N of N replies' when node-to-node ping on ``pairs`` lost nothing, else ''."""
    hs = [ctx.ping.get(("host", p)) for p in pairs]
    if not hs or any(h is None or float(h.get("loss_pct") or 0) > 0 for h in hs):
        return ""
    got = sum(int(h.get("received") or 0) for h in hs if h)
    return f"{got} of {got} replies"


def _numbers(ctx: Context, pid: str) -> dict[str, Any]:
    p, h = ctx.ping.get(("pod", pid)) or {}, ctx.ping.get(("host", pid))
    u = ctx.udp.get(pid)
    out: dict[str, Any] = {"pod_ping_loss_pct": p.get("loss_pct"),
                           "pod_ping_replies": f"{p.get('received')}/{p.get('transmitted')}"}
    if h is not None:
        out["host_ping_loss_pct"] = h.get("loss_pct")
    if u is not None:
        out["udp_overlay"] = u.get("error") or f"{loss_text(u.get('loss_pct'))} lost"
    return out


def _symptom(ctx: Context, pid: str) -> str:
    p = ctx.ping.get(("pod", pid)) or {}
    return f"{pid}: pod-to-pod ping lost {loss_text(p.get('loss_pct'))}"


def _raw(ctx: Context, pid: str) -> str:
    p = ctx.ping.get(("pod", pid)) or {}
    return (f"ping {pid} (pod): {p.get('received')}/{p.get('transmitted')} replies, "
            f"{loss_text(p.get('loss_pct'))} lost" + (f", {p['error']}" if p.get("error") else "")
            + (f", {p.get('errors')} ICMP {p['error_kind']} from {p.get('error_from')}"
               if p.get("error_kind") else ""))


CHECK = Check(NAME, "pairs", judge)
