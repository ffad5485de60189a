"""test_pod_ping: pod to pod, small packets, every pair. Tells a blocked overlay port
(node-to-node ping works) from a broken underlay (it fails too), loss from a block, and
records which finding owns each failing pair's connectivity (``ctx.pod_finding``): the
later pair checks skip behind it (:func:`skip_without_pod_connectivity`)."""

from __future__ import annotations

from typing import Any

from ..context import Check, Context, ends, listing, loss_text
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
    for pid in ctx.pairs:
        a, b = ends(pid)
        if skip_unusable(ctx, NAME, pid, a, b):
            continue
        p = ctx.ping.get(("pod", pid))
        if p is None:
            ctx.set_verdict(NAME, pid, SKIPPED, f"{pid}: pod-to-pod ping not measured")
            continue
        if ctx.pod_ok(pid):
            ctx.set_verdict(NAME, pid, PASSED)
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
    _overlay_group(ctx, groups["overlay"])
    _underlay_group(ctx, groups["underlay"])
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
            fix_args=(("overlay", overlay),)))
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


def _underlay_group(ctx: Context, pairs: list[str]) -> None:
    """Pod ping and node ping both dead: the underlay itself."""
    if not pairs:
        return
    nodes, why = ctx.culprits(pairs)
    f = ctx.add(Finding(
        "underlay:" + ",".join(nodes), "underlay",
        f"Pod-to-pod and node-to-node ping both get no reply on {len(pairs)} pair"
        f"{'s' if len(pairs) != 1 else ''} ({listing(pairs)})"
        + (f"; {why}" if why else ""), nodes, tuple(pairs),
        evidence={p: _numbers(ctx, p) for p in pairs},
        would_contradict=("node-to-node ping working on these pairs",)))
    for pid in pairs:
        ctx.pod_finding[pid] = f.id
        ctx.fail(NAME, pid, _symptom(ctx, pid) + " and node-to-node ping fails too",
                 f, _raw(ctx, pid))


def _lossy_group(ctx: Context, pairs: list[str]) -> None:
    """Some replies, but more loss than the threshold after re-measuring: lossy, not blocked."""
    if not pairs:
        return
    nodes, why = ctx.culprits(pairs)
    f = ctx.add(Finding(
        "pod-lossy:" + ",".join(nodes), "pod-lossy",
        f"Pod-to-pod ping loses more than {ctx.threshold:g}% but not everything, "
        f"re-measured with a bigger sample, on {listing(pairs)}"
        + (f"; {why}" if why else "") + ": some packets cross, so no port is blocked",
        nodes, tuple(pairs), evidence={p: _numbers(ctx, p) for p in pairs},
        would_contradict=("a loss-free re-measurement",)))
    for pid in pairs:
        ctx.pod_finding[pid] = f.id
        ctx.fail(NAME, pid, _symptom(ctx, pid), f, _raw(ctx, pid))


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
            f"{loss_text(p.get('loss_pct'))} lost" + (f", {p['error']}" if p.get("error") else ""))


CHECK = Check(NAME, "pairs", judge)
