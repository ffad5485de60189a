"""test_control_plane_ports: per node, its own kubelet and etcd ports as the other nodes
reach them, and its way to the API server and the cluster DNS. A connect that times out
is a dropped port; one refused where other nodes connect is a rejected one; refused
everywhere means nothing listens (said, and skipped). The failures are grouped by the node
they have in common (:mod:`..ports`): one finding for one rule, with its direction."""

from __future__ import annotations

from typing import Any

from .. import groups, knock_ons, located, ports
from ..context import Check, Context, pair_id
from ..model import PASSED, SKIPPED, Finding
from . import dns, pod_ping
from .dependencies import dns_endpoint_behind
from .nodes_ready import skip_unusable

NAME = "test_control_plane_ports"


def judge(ctx: Context) -> None:
    entries = list(ctx.doc.get("ports") or [])
    index = ports.Index(ctx, entries)
    judged = []
    for n in ctx.nodes:
        # Unusable first: a node whose probes never started measured nothing, and why is
        # test_nodes_ready's failure, not "not measured".
        if skip_unusable(ctx, NAME, n, n) or ctx.skip_no_host_probe(NAME, n, n):
            continue
        if not entries:
            ctx.set_verdict(NAME, n, SKIPPED, f"{n}: control-plane ports not measured")
            continue
        mine = index.from_node(n)
        if mine and all(e.get("state") == "error" for e in mine):
            failure = ctx.probe_failure("ports", n)
            if failure is not None:
                ctx.fail(NAME, n, f"{n}: the port probe could not run",
                         ctx.probe_finding(failure, n, NAME))
            else:
                ctx.set_verdict(NAME, n, SKIPPED, f"{n}: the port probe gave no result")
            continue
        judged.append(n)
    chosen = set(judged)
    measured = [e for e in entries if e.get("src") in chosen]
    fails, no_listener = ports.failed(ctx, measured)
    deferred: dict[str, list[str]] = {}
    kept: list[ports.Failed] = []
    for f in fails:
        why = _dns_deferred(ctx, f)
        if why:
            deferred.setdefault(f.src, []).append(f"{f.label} ({f.peer} {f.ip}): {why}")
        else:
            kept.append(f)
    knocked, located_fails = _knock_ons(ctx, kept)
    owner: dict[ports.Failed, Finding] = dict(knocked)
    for g in ports.group(ctx, located_fails, measured):
        finding = _finding(ctx, g, no_listener, deferred.get(g.node, []))
        owner.update({f: finding for f in g.fails})
    # "tcp/2379 (etcd on node-2)" by the node it names, once: at 1,000 nodes every node
    # without etcd refuses 2 connects from each of the others.
    listeners: dict[str, list[str]] = {}
    for x in no_listener:
        listeners.setdefault(x.rpartition(" on ")[2].rstrip(")"), []).append(x)
    for n in judged:
        _verdict(ctx, n, index, owner, listeners.get(n, []), deferred.get(n, []))


def _dns_deferred(ctx: Context, f: ports.Failed) -> str:
    """Why a failed connect to the cluster DNS is test_dns's (or a failed pair's) to
    judge, "" when it is this test's: the cluster DNS is pods behind a Service."""
    if f.dst is not None or not f.peer.startswith("the cluster DNS"):
        return ""
    cut = _dns_cut_off(ctx, f.src)
    if cut:
        return cut
    v = ctx.verdicts.get((dns.NAME, f.src))
    return f"see {dns.NAME}[{f.src}]" if v is not None and v.outcome != PASSED else ""


def _knock_ons(ctx: Context, fails: list[ports.Failed]
               ) -> tuple[dict[ports.Failed, Finding], list[ports.Failed]]:
    """Connects to or from a node the underlay already cuts off are that finding's
    knock-ons (one per root); the rest are for this test to locate."""
    owner: dict[ports.Failed, Finding] = {}
    rest = []
    for f in fails:
        root = next((r for r in (located.cut_off(ctx, n, "host") for n in (f.src, f.dst)
                                 if n is not None) if r is not None), None) or (
            located.host_pair_cut(ctx, f.src, f.dst) if f.dst is not None else None)
        if root is None:
            rest.append(f)
            continue
        fid = f"control-plane-knock-on:{root.id}"
        k = ctx.findings.get(fid) or knock_ons.knock_on(
            ctx, fid, "control-plane-ports", f"control-plane ports to and from "
            f"{groups.names(root.nodes, ctx.node_order)} fail", root, NAME,
            nodes=root.nodes[:1])
        owner[f] = k
    return owner, rest


def _finding(ctx: Context, g: ports.Group, no_listener: list[str],
             deferred: list[str]) -> Finding:
    n, mode = g.node, g.mode
    others = [m for m in ctx.nodes if m != n]
    parts = []
    if g.into:
        by: dict[str, list[str]] = {}
        for f in g.into:
            by.setdefault(f"{f.label} ({f.peer} {f.ip})", []).append(f.src)
        parts.append(f"into {n}: " + "; ".join(
            f"{label} from " + _who(srcs, others) for label, srcs in sorted(by.items())))
    if g.out:
        to: dict[str, list[str]] = {}
        for f in g.out:
            key = f"{f.label} ({f.peer} {f.ip})" if f.dst is None else f.what
            to.setdefault(key, []).append(f.dst or "")
        parts.append(f"from {n}: " + "; ".join(
            label + (f" on {_who(dsts, others)}" if any(dsts) else "")
            for label, dsts in sorted(to.items())))
    how = located.SYMPTOMS[mode] if mode else "fail (some time out, some are refused)"
    cause = {"in": "control-plane-ports", "out": "control-plane-unreachable",
             "both": "firewall"}[g.direction]
    labels = ", ".join(g.labels)
    found = ctx.add(Finding(
        f"control-plane-ports:{n}", cause, f"{n}: connects {how} " + "; ".join(parts),
        (n,), evidence={n: {
            "dropped_into": _srcs(g.into), "dropped_from": _srcs(g.out, dst=True),
            "no_listener": no_listener, "deferred": deferred}},
        would_contradict=("a connect that completes",),
        fix_args=(("ports", labels), ("node", n), ("what", labels),
                  ("verb", located.VERBS.get(mode or "drop", "drops")),
                  ("way", located.WAYS[g.direction])),
        protocol=g.protocol, port=g.port, mode=mode, direction=g.direction))
    return ctx.extend(found.id, checks=[NAME])


def _who(nodes: list[str], others: list[str]) -> str:
    nodes = sorted(set(nodes))
    every = len(others) > 1 and set(others) <= set(nodes)
    return ", ".join(nodes) + (" (every other node)" if every else "")


def _srcs(fails: list[ports.Failed], dst: bool = False) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in fails:
        out.setdefault(f.label, []).append(str(f.dst if dst else f.src))
    return out


def _verdict(ctx: Context, n: str, index: ports.Index,
             owner: dict[ports.Failed, Finding], no_listener: list[str],
             deferred: list[str]) -> None:
    """n's own ports as the others reach them, and n's own way to the API and DNS."""
    own = [f for f in owner if f.dst == n or (f.dst is None and f.src == n)]
    mine = index.from_node(n)
    raw = "\n".join(f"{e.get('src')} -> {e.get('kind')} {e.get('ip')}:{e.get('port')} "
                     f"({e.get('peer')}): {e.get('state')}" for e in index.touching(n))
    roots = [owner[f] for f in own if owner[f].root is None]
    if roots:
        first = next((r for r in roots if r.nodes == (n,)), roots[0])
        symptom = "" if first.nodes == (n,) else f"{n}: " + "; ".join(
            f"{f.label} ({f.peer}) from {f.src} " + ("times out" if f.mode == "drop"
                                                     else "is refused")
            for f in own if owner[f].id == first.id)
        ctx.fail(NAME, n, symptom, first, raw)
    elif own:
        k = owner[own[0]]
        ctx.set_verdict(NAME, n, SKIPPED, f"{n}: {k.summary}", k.id, raw)
    elif deferred and not any(e.get("state") == "open" for e in mine):
        ctx.set_verdict(NAME, n, SKIPPED, f"{n}: " + "; ".join(deferred))
    else:
        notes = []
        if not any(e.get("peer") == "the API server" for e in mine):
            notes.append("tcp/6443: no API server endpoint known here, skipped")
        if not any(str(e.get("kind", "")).startswith("dns") for e in mine):
            notes.append("53: no cluster DNS address known here, skipped")
        here = [x for x in no_listener if x.endswith(f" on {n})")]
        if here:
            notes.append("no listener, skipped: " + ", ".join(here))
        if deferred:
            notes.append("; ".join(deferred))
        ctx.set_verdict(NAME, n, PASSED, f"{n}: " + "; ".join(notes) if notes else "",
                        raw=raw)


def _dns_cut_off(ctx: Context, n: str) -> str:
    """Why some cluster DNS endpoint is out of ``n``'s reach because of a pair that
    already fails ("" when none is): those queries time out as a knock-on."""
    behind = dns_endpoint_behind(ctx, n)
    if behind is None:
        return ""
    m, f = behind
    return (f"the cluster DNS endpoint on {m} sits behind {pair_id(n, m)}, which "
            f"already fails ({f.title}, see {pod_ping.NAME}[{pair_id(n, m)}])")


CHECK = Check(NAME, "nodes", judge)
