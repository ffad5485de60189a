"""test_nodeport: per node, the probe Service's NodePort on that node's address as every
other node's host network reaches it (a TCP connect and a small HTTP GET). A connect
that times out is a dropped NodePort; one refused is a rejected one: kube-proxy serves a
NodePort on every node, so a refusal is a firewall's reset or ICMP unreachable, never a
port nothing listens on. The failures are located like the control-plane ports'
(:mod:`..ports`): a rule on node-2's way in fails every connect into node-2, one on its
way out fails its connects to every other node."""

from __future__ import annotations

from typing import Any

from .. import faults, groups, knock_ons, located, ports
from ..context import Check, Context
from ..model import PASSED, SKIPPED, Finding
from .nodes_ready import skip_unusable

NAME = "test_nodeport"
RANGE = "30000-32767"


def judge(ctx: Context) -> None:
    entries = list(ctx.doc.get("nodeports") or [])
    index = ports.Index(ctx, entries)
    judged = []
    for n in ctx.nodes:
        if skip_unusable(ctx, NAME, n, n) or ctx.skip_no_host_probe(NAME, n, n):
            continue
        if not entries:
            ctx.set_verdict(NAME, n, SKIPPED, f"{n}: the NodePort not measured")
            continue
        if not index.src.get(n) and not index.into.get(n):
            ctx.set_verdict(NAME, n, SKIPPED, f"{n}: no other node to reach its NodePort")
            continue
        judged.append(n)
    chosen = set(judged)
    measured = [e for e in entries if e.get("src") in chosen]
    measured_index = ports.Index(ctx, measured)
    fails = [_failed(ctx, e) for e in measured if e.get("state") in ("timeout", "refused")]
    owner, rest = _knock_ons(ctx, fails)
    for g in ports.group(ctx, rest, measured):
        finding = _finding(ctx, g)
        owner.update({f: finding for f in g.fails})
    for n in judged:
        _verdict(ctx, n, measured_index, owner)


def _failed(ctx: Context, e: dict[str, Any]) -> ports.Failed:
    return ports.Failed(str(e.get("src")), ports.peer_node(ctx, e), "tcp",
                        int(e.get("port") or 0), str(e.get("peer")), str(e.get("ip")),
                        "drop" if e.get("state") == "timeout" else "reject")


def _knock_ons(ctx: Context, fails: list[ports.Failed]
               ) -> tuple[dict[ports.Failed, Finding], list[ports.Failed]]:
    """A connect to or from a node the underlay already cuts off, or into a node whose
    own pods nothing reaches (a NodePort leads to the node's own probe pods, through
    its forwarding), is that finding's knock-on; the rest are for this test to locate."""
    owner: dict[ports.Failed, Finding] = {}
    rest = []
    # Node addresses inside the Pod CIDR: kube-proxy takes a NodePort connect from another
    # node for a pod's, sends it to any endpoint, and the reply comes back from the pod's
    # node, not the one connected to (a connect that times out now and then).
    overlap = ctx.findings.get("pod-cidr-overlap")
    for f in fails:
        roots = [located.cut_off(ctx, n, "host") for n in (f.src, f.dst) if n is not None]
        if overlap is not None and {f.src, f.dst} & set(overlap.nodes):
            roots.append(overlap)
        if f.dst is not None:
            roots.append(located.host_pair_cut(ctx, f.src, f.dst))
            roots.append(located.cut_off(ctx, f.dst, "pod"))
            # The NodePort leads to the node's own probe pod on TCP 8080: a rule on that
            # port into the pod takes the NodePort's connects with it.
            rule = faults.backend_root(ctx, f.dst, f.dst)
            if rule is not None and rule.direction in ("in", "both"):
                roots.append(rule)
        root = next((r for r in roots if r is not None), None)
        if root is None:
            rest.append(f)
            continue
        fid = f"nodeport-knock-on:{root.id}"
        owner[f] = ctx.findings.get(fid) or knock_ons.knock_on(
            ctx, fid, "knock-on", "NodePort connects to and from "
            f"{groups.names(root.nodes, ctx.node_order)} "
            "fail", root, NAME, nodes=root.nodes[:1])
    return owner, rest


def _finding(ctx: Context, g: ports.Group) -> Finding:
    n, mode = g.node, g.mode
    others = [m for m in ctx.nodes if m != n]
    port = g.port or "/".join(g.labels)
    parts = []
    if g.into:
        parts.append(f"into {n}: its NodePort tcp/{port} from " +
                     _who([f.src for f in g.into], others))
    if g.out:
        parts.append(f"from {n}: the NodePort tcp/{port} on " +
                     _who([str(f.dst) for f in g.out], others))
    how = located.SYMPTOMS[mode] if mode else "fail (some time out, some are refused)"
    found = ctx.add(Finding(
        f"nodeport:{n}", "nodeport-blocked",
        f"{n}: NodePort connects {how} " + "; ".join(parts) +
        f" (the NodePort range {RANGE})", (n,),
        evidence={n: {"dropped_into": sorted(f.src for f in g.into),
                      "dropped_from": sorted(str(f.dst) for f in g.out)}},
        would_contradict=("a NodePort connect that completes",),
        fix_args=(("node", n), ("way", located.WAYS[g.direction])),
        protocol="tcp", port=g.port, mode=mode, direction=g.direction))
    return ctx.extend(found.id, checks=[NAME])


def _who(nodes: list[str], others: list[str]) -> str:
    nodes = sorted(set(nodes))
    every = len(others) > 1 and set(others) <= set(nodes)
    return ", ".join(nodes) + (" (every other node)" if every else "")


def _verdict(ctx: Context, n: str, index: ports.Index,
             owner: dict[ports.Failed, Finding]) -> None:
    """n's NodePort as the others reach it; a finding located at n (its way out) fails
    it too, as test_control_plane_ports does."""
    own = [f for f in owner if f.dst == n or owner[f].nodes == (n,)]
    raw = "\n".join(f"{e.get('src')} -> {e.get('ip')}:{e.get('port')} ({e.get('peer')}): "
                    f"{e.get('state')}" for e in index.touching(n))
    roots = [owner[f] for f in own if owner[f].root is None]
    if roots:
        first = next((r for r in roots if r.nodes == (n,)), roots[0])
        into = [f for f in own if f.dst == n and owner[f].id == first.id]
        symptom = f"{n}: its NodePort " + "; ".join(
            f"{f.ip}:{f.port} from {f.src} " + ("times out" if f.mode == "drop"
                                                 else "is refused") for f in into)
        ctx.fail(NAME, n, symptom if into and first.nodes != (n,) else "", first, raw)
        return
    if own:
        k = owner[own[0]]
        ctx.set_verdict(NAME, n, SKIPPED, f"{n}: {k.summary}", k.id, raw)
        return
    bad = sorted(str(e.get("src")) for e in index.into_node(n) if e.get("state") == "error")
    if bad:
        # Connected, so no firewall: what broke the HTTP behind it is not located here.
        what = f"{n}: its NodePort connects but gives no HTTP answer to {', '.join(bad)}"
        ctx.fail(NAME, n, "", ctx.add(Finding(f"nodeport-no-http:{n}", "unknown", what, (n,),
                                              would_contradict=("an HTTP answer",))), raw)
        return
    ctx.set_verdict(NAME, n, PASSED, raw=raw)


CHECK = Check(NAME, "nodes", judge)
