"""test_udp_8472: UDP across the overlay between the pods of every pair (iperf3), and node
to node on the overlay's own port where no CNI holds it. Only loss in every sample fails,
and loss the receiving probe dropped at its own socket buffers is not the path's."""

from __future__ import annotations

from typing import Any

from .. import faults, knock_ons, sampled
from ..context import Check, Context, ends, listing, loss_text
from ..localize import IPERF_UDP, LOSS, iperf_channel, place
from ..model import PASSED, SKIPPED, Finding
from ...probes.iperf import NETWORK, TIMEOUT
from .node_sysctls import skip_no_forwarding
from .nodes_ready import skip_unusable
from .pod_ping import skip_without_pod_connectivity

NAME = "test_udp_8472"


def judge(ctx: Context) -> None:
    lossy: list[str] = []
    # Nodes whose links show an overlay without a UDP port, looked up once, not per pair.
    no_udp = {n for n, e in ctx.encap.items() if not e.get("udp_port")}
    for pid, (a, _, b) in zip(ctx.pairs, ctx.pair_parts):  # ends(pid), made once
        if skip_unusable(ctx, NAME, pid, a, b) or skip_no_forwarding(ctx, NAME, pid, a, b):
            continue
        if a in no_udp and b in no_udp:
            encaps = [ctx.encap.get(n) for n in (a, b)]
            ctx.set_verdict(NAME, pid, SKIPPED, f"{pid}: no UDP encapsulation detected ("
                            + "; ".join(f"{n}: {e.get('description')}" for n, e in
                                        zip((a, b), encaps) if e is not None)
                            + "), so the overlay has no UDP port to test")
            continue
        u = ctx.udp.get(pid)
        if u is None:
            ctx.set_verdict(NAME, pid, SKIPPED, sampled.not_measured(ctx, pid, "UDP"))
            continue
        raw = _raw(ctx, pid)
        np = u.get("node_port")
        if np is not None and not np.get("port_busy") and _node_port_failed(ctx, np):
            what = np.get("error") or f"{loss_text(np.get('loss_pct'))} of UDP datagrams lost"
            if np.get("failure") == TIMEOUT:
                what = ("no answer over UDP: iperf3 ran past its deadline, twice, while "
                        "other iperf3 runs on these machines finished in time")
            port = int(np.get("port") or 8472)
            name = ctx.overhead((a, b))[0]
            f = ctx.add(Finding(
                f"vxlan-blocked-node-port:{pid}", "vxlan-blocked",
                f"The overlay port (UDP {port}, {name}) is blocked between {a} and {b} "
                f"(port {port} is free, no CNI holds it, so it was tested node to node)",
                ends(pid), (pid,),
                evidence={pid: {f"node_port_{port}": what}},
                would_contradict=(f"UDP {port} crossing node to node",),
                fix_args=(("overlay", f"UDP {port} ({name})"),)))
            ctx.fail(NAME, pid, f"{pid}: node to node on UDP {port} itself fails ({what})",
                     f, raw)
            continue
        fid = ctx.pod_finding.get(pid)
        state = ctx.udp_state(pid)
        if fid is not None:
            f = ctx.findings[fid]
            if f.cause in ("vxlan-blocked", faults.CAUSE) and state == "blocked":
                ctx.fail(NAME, pid, f"{pid}: UDP across the overlay fails ({u.get('error')})",
                         f, raw)
            else:
                skip_without_pod_connectivity(ctx, NAME, pid)
            continue
        if state in ("probe", "blocked") and _located(ctx, pid, u, raw):
            continue
        if state == "probe":
            failure = {"tool": "iperf3", "failure": u.get("failure"), "node": a,
                       "detail": u.get("error")}
            f = ctx.probe_finding(failure, pid, NAME)
            ctx.fail(NAME, pid, f"{pid}: UDP through the overlay not measured", f, raw)
        elif state == "blocked":
            f = ctx.add(Finding(
                f"inconclusive-udp:{pid}", "inconclusive",
                f"{pid}: UDP to iperf3 through the overlay fails ({u.get('error')})",
                pairs=(pid,), evidence={pid: {"udp_overlay": u.get("error")}},
                contradicting=(f"pod-to-pod ping crosses the same overlay, so its port "
                               f"({ctx.overlay((a, b))}) is open; look for a policy on the "
                               "iperf3 port",)))
            ctx.fail(NAME, pid, f"{pid}: UDP through the overlay fails", f, raw)
        elif float(u.get("loss_pct") or 0) > ctx.threshold:
            note = _lost_in_receiver(ctx, b)
            root = faults.lossy_root(ctx, a, b)
            if root is not None and not note:
                knock_ons.skip_on(ctx, NAME, pid, f"{pid}: {loss_text(u.get('loss_pct'))} of "
                                  "UDP datagrams lost", root)
            elif note:
                ctx.set_verdict(NAME, pid, PASSED, f"{pid}: {loss_text(u.get('loss_pct'))} of "
                                f"UDP datagrams not received; {note}", raw=raw)
            else:
                lossy.append(pid)
        else:
            ctx.set_verdict(NAME, pid, PASSED)
    _lossy_group(ctx, lossy)


def _located(ctx: Context, pid: str, u: dict[str, Any], raw: str) -> bool:
    """Fail (or skip as a knock-on) an iperf3 run that one located fault explains: a rule
    on iperf3's ports, else the loss at one of the pair's nodes (a lost handshake or
    every datagram of a short run); True when judged."""
    got = iperf_channel(u, ctx.threshold)
    f = faults.located(ctx, got[0], pid) if got is not None else None
    if f is not None:
        ctx.fail(NAME, pid, f"{pid}: UDP through the overlay fails ({u.get('error')})", f, raw)
        return True
    root = faults.lossy_root(ctx, *ends(pid))
    if root is not None:
        knock_ons.skip_on(ctx, NAME, pid, f"{pid}: iperf3 failed ({u.get('error')})", root)
        return True
    return False


def _lossy_group(ctx: Context, lossy: list[str]) -> None:
    if not lossy:
        return
    nodes, why = ctx.culprits(lossy)
    where = place(IPERF_UDP, LOSS, lossy, [p for p in ctx.pairs if p in ctx.udp], ctx.nodes)
    fields: dict[str, Any] = {"mode": "loss", "protocol": "udp", "port": "5201-5209"}
    node, every = faults.lossy_place(ctx)
    host = faults.host_loss(ctx, every) if node is not None else ""
    if node is not None and host and set(lossy) <= set(every):
        # Node-to-node ping loses at the same node: all its traffic, not iperf3's ports.
        nodes, fields = (node,), {"mode": "loss", "protocol": "all", "direction": "both"}
        why = (f"every pair that lost packets ({listing(every)}) touches {node}, and "
               f"node-to-node ping {host} there, so all traffic at {node} loses packets")
    elif where.node is not None:
        # Datagrams go one way only: the pairs that lose them tell the direction.
        nodes, fields["direction"] = (where.node,), where.direction
    f = ctx.add(Finding(
        "udp-lossy:" + ",".join(nodes), "udp-lossy",
        f"UDP through the overlay loses more than {ctx.threshold:g}% in every sample, "
        f"re-measured, on {listing(lossy)}" + (f"; {why}" if why else "")
        + ": datagrams cross, so the port is open, but the path drops some", nodes,
        tuple(lossy), evidence={p: {"loss_pct": [a.get("loss_pct") for a in
                                                 ctx.udp[p].get("attempts") or []],
                                    **_receiver_evidence(ctx, ends(p)[1])}
                                for p in lossy},
        would_contradict=(f"a sample with at most {ctx.threshold:g}% loss",), **fields))
    for pid in lossy:
        u = ctx.udp[pid]
        samples = [a for a in u.get("attempts") or [] if a.get("packets")]
        ctx.fail(NAME, pid, f"{pid}: {loss_text(u.get('loss_pct'))} of UDP datagrams lost "
                 f"in the best of {len(samples) or 1} samples", f, _raw(ctx, pid))


def _lost_in_receiver(ctx: Context, node: str) -> str:
    """Why the UDP loss into ``node`` is not the path's ('' when it may be): every
    datagram lost into it was dropped by its probe pod's own full socket buffers, which
    the path had delivered them to (a starved iperf3 server, not the network)."""
    drops, lost = ctx.receive_drops.get(node), ctx.udp_lost_into.get(node, 0)
    if drops is None or lost <= 0 or drops < lost:
        return ""
    return (f"the path delivered them: {node}'s probe pod dropped {drops} datagrams at "
            f"its own full socket buffers (UDP RcvbufErrors) while {lost} went missing into "
            "it, so its iperf3 servers did not read them in time (a busy machine)")


def _receiver_evidence(ctx: Context, node: str) -> dict[str, Any]:
    if node not in ctx.receive_drops:
        return {}
    return {f"{node}_socket_buffer_drops": ctx.receive_drops[node],
            f"datagrams_lost_into_{node}": ctx.udp_lost_into.get(node, 0)}


def _node_port_failed(ctx: Context, np: dict[str, Any]) -> bool:
    """Node to node on the overlay port (free: no CNI holds it) failed for the
    network's reasons.

    A client whose UDP handshake gets no answer waits past any deadline, so a timeout
    counts, but only when other iperf3 runs finished in time: then the machine was not
    too starved to run the probe, and the silence is the network's.
    """
    failure = np.get("failure")
    if failure == TIMEOUT:
        return any(a.get("failure") is None for t in ctx.udp.values()
                   for a in [*(t.get("attempts") or [t]), t.get("node_port") or {}]
                   if a)
    return failure in (None, NETWORK) and bool(
        np.get("error") or float(np.get("loss_pct") or 0) > ctx.threshold)


def _raw(ctx: Context, pid: str) -> str:
    u = ctx.udp.get(pid) or {}
    lines = [f"iperf3 {pid} attempt {i + 1}: " + (
        f"{a.get('failure')}: {a.get('error')}" if a.get("error") else
        f"{a.get('mbps')} Mbit/s, {loss_text(a.get('loss_pct'))} lost, {a.get('packets')} "
        "datagrams") for i, a in enumerate(u.get("attempts") or [u])]
    np = u.get("node_port")
    if np:
        lines.append(f"iperf3 {pid} node to node on UDP {np.get('port') or 8472}: " + (
            f"{np.get('error')}" if np.get("error") else f"{loss_text(np.get('loss_pct'))} lost"))
    return "\n".join(lines)


CHECK = Check(NAME, "pairs", judge)
