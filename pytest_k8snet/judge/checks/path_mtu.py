"""test_path_mtu: the path MTU measured on every pair is at least the expected MTU. A path
limited by the pods' own interface MTU is the CNI's setting (``pod-mtu``); one below it is
an underlay link that drops big frames (``mtu``). A path MTU that DF UDP measured where
ICMP gets no reply (``protocol`` ``udp``) is judged like any other: the ICMP filter is
test_pod_ping's finding, and the pair still carries packets of its measured size."""

from __future__ import annotations

from typing import Any

from .. import faults, knock_ons
from ..context import Check, Context, ends, listing
from ..localize import ICMP
from ..model import PASSED, SKIPPED, Finding
from .nodes_ready import skip_unusable
from .pod_ping import skip_without_pod_connectivity

NAME = "test_path_mtu"


def judge(ctx: Context) -> None:
    small: list[str] = []
    own: list[str] = []  # limited by the pods' own interface MTU, not by the wire
    note = _default_note(ctx)
    for pid, (a, _, b) in zip(ctx.pairs, ctx.pair_parts):  # ends(pid), made once
        pm = ctx.pmtu.get(pid)
        got = int(pm.get("bytes") or 0) if pm is not None else 0
        udp = pm is not None and pm.get("protocol") == "udp"
        if skip_unusable(ctx, NAME, pid, a, b) or (
                not (udp and got) and skip_without_pod_connectivity(ctx, NAME, pid)):
            continue
        if pm is None or not ctx.expected:
            ctx.set_verdict(NAME, pid, SKIPPED, f"{pid}: path MTU not measured")
        elif got >= int(ctx.expected):
            said = "; ".join(w for w in (_by_udp(pm), note) if w) if note or udp else ""
            ctx.set_verdict(NAME, pid, PASSED, f"{pid}: {said}" if said else "")
        elif got == 0 and (icmp := _icmp_rule(ctx, pid)) is not None:
            # No DF ping crosses a rule on ICMP, and no UDP echo answered the fallback.
            knock_ons.skip_on(ctx, NAME, pid, f"{pid}: path MTU not measured: DF pings "
                              "get no reply" + (" and no DF UDP datagram came back" if udp
                                                else ""), icmp)
        elif got == 0:
            f = ctx.add(Finding(
                f"inconclusive-pmtu:{pid}", "inconclusive",
                f"{pid}: not even a {pm.get('first_lost')}-byte DF ping crosses"
                + (" (nor a DF UDP datagram)" if udp else ""),
                pairs=(pid,), evidence={pid: {"path_mtu": 0}},
                contradicting=("small pings (without DF) cross the same pair",)))
            ctx.fail(NAME, pid, f"{pid}: path MTU search found nothing that crosses", f,
                     _raw(ctx, pid))
        elif got == _pod_limit(ctx, pid):
            # A DF ping larger than the pod's eth0 never leaves the pod (the kernel
            # refuses it locally): no underlay link was ever asked to carry it.
            own.append(pid)
        elif (root := faults.lossy_root(ctx, a, b)) is not None:
            # The search takes one lost DF ping for "too big": on a path that loses
            # packets of every size (the lossy finding), that ping was lost, not refused.
            knock_ons.skip_on(ctx, NAME, pid, f"{pid}: the path MTU search lost a "
                              f"{pm.get('first_lost')}-byte DF ping while {got} crossed", root)
        else:
            small.append(pid)
    _pod_mtu_group(ctx, own, note)
    _underlay_group(ctx, small, note)


def _icmp_rule(ctx: Context, pid: str) -> Finding | None:
    """The located rule on ICMP alone that ``pid``'s pings fail on, if any."""
    f = faults.located(ctx, ICMP, pid, add=False)
    return f if f is not None and f.protocol == "icmp" and f.id in ctx.findings else None


def _underlay_group(ctx: Context, small: list[str], note: str) -> None:
    if not small:
        return
    worst = min(int(ctx.pmtu[p]["bytes"]) for p in small)
    nodes, why = ctx.culprits(small)
    name, overhead = ctx.overhead(n for p in small for n in ends(p))
    needs = (f"{name} adds {overhead} bytes, so the underlay carries {worst + overhead} here"
             if overhead else f"{name}: pod packets cross as they are")
    if overhead and name == "WireGuard":
        # WireGuard pads what it encrypts to 16 bytes: the wire packet is 0-15 bytes bigger.
        needs = (f"WireGuard adds {overhead} bytes and pads to 16, so the underlay carries "
                 f"{worst + overhead}-{worst + overhead + 15} here")
    f = ctx.add(Finding(
        "mtu:" + ",".join(nodes), "mtu",
        f"An underlay link drops frames larger than the overlay needs ({needs}) on "
        f"{len(small)} pair{'s' if len(small) != 1 else ''} ({listing(small)})"
        + (f"; {why}" if why else "") + (f"; {note}" if note else ""), nodes, tuple(small),
        evidence={p: {"path_mtu": ctx.pmtu[p]["bytes"], "expected": ctx.expected,
                      "first_lost": ctx.pmtu[p].get("first_lost")} for p in small},
        would_contradict=("a DF ping of the expected size crossing",
                          "small pings failing too"), fix_args=(("limit", worst),)))
    for pid in small:
        got = int(ctx.pmtu[pid]["bytes"])
        hdr = int(ctx.pmtu[pid].get("headers") or 28)  # ping payload = packet - headers
        what = "UDP payload" if ctx.pmtu[pid].get("protocol") == "udp" else "ping"
        ctx.fail(NAME, pid, f"{pid}: {int(ctx.expected or 0) - hdr}-byte DF {what} lost, "
                 f"{got - hdr} passes; path MTU {got} < expected {ctx.expected}"
                 + "".join(f" ({w})" for w in (_by_udp(ctx.pmtu[pid]), note) if w),
                 f, _raw(ctx, pid))


def _pod_mtu_group(ctx: Context, own: list[str], note: str) -> None:
    """Pairs whose path MTU is exactly the pods' own interface MTU, below the expected:
    the CNI's MTU setting (or the expectation) is the limit, never the underlay."""
    if not own:
        return
    mtu = min(_pod_limit(ctx, p) or 0 for p in own)
    both = {n for p in own for n in ends(p)}
    nodes = tuple(n for n in [*ctx.nodes, *sorted(both - set(ctx.nodes))]
                  if n in both and ctx.pod_mtu.get(n) == mtu)
    overhead = ctx.overhead(both)[1]
    source = ("--k8s-expect-mtu" if ctx.mtu_source == "flag" else
              ctx.mtu_source or "expected")
    f = ctx.add(Finding(
        "pod-mtu:" + ",".join(nodes), "pod-mtu",
        f"The probe pods' eth0 MTU is {mtu} on {listing(nodes)} (the CNI's MTU setting), "
        f"below the expected {ctx.expected} ({source}), on {len(own)} "
        f"pair{'s' if len(own) != 1 else ''} ({listing(own)}): the limit is the pod "
        "interface, not the underlay (a larger packet never leaves the pod)"
        + (f"; {note}" if note else ""), nodes, tuple(own),
        evidence={p: {"path_mtu": ctx.pmtu[p]["bytes"], "expected": ctx.expected,
                      "pod_mtu": {n: ctx.pod_mtu.get(n) for n in ends(p)}} for p in own},
        would_contradict=("a DF ping larger than the pod's interface MTU crossing",
                          "a path MTU below the pod's interface MTU"),
        fix_args=(("mtu", mtu), ("expected", ctx.expected), ("overhead", overhead))))
    for pid in own:
        got = int(ctx.pmtu[pid]["bytes"])
        ctx.fail(NAME, pid, f"{pid}: path MTU {got} < expected {ctx.expected}; {got} is "
                 "the pods' own interface MTU", f, _raw(ctx, pid))


def _pod_limit(ctx: Context, pid: str) -> int | None:
    """The smaller pod interface MTU of the pair's two ends (None when unknown)."""
    known = [ctx.pod_mtu[n] for n in ends(pid) if n in ctx.pod_mtu]
    return min(known) if known else None


def _by_udp(pm: dict[str, Any]) -> str:
    if pm.get("protocol") != "udp":
        return ""
    return "measured with DF UDP datagrams: no DF ping got a reply (ICMP filtered)"


def _default_note(ctx: Context) -> str:
    """Said with every path-MTU verdict when the expected MTU was nobody's number."""
    if not ctx.mtu_source.startswith("default"):
        return ""
    return (f"the expected MTU {ctx.expected} is a default: no pod interface MTU could "
            "be read (set --k8s-expect-mtu)")


def _raw(ctx: Context, pid: str) -> str:
    pm = ctx.pmtu.get(pid) or {}
    return (f"path MTU search {pid}: largest {pm.get('bytes')}, first lost "
            f"{pm.get('first_lost')}, {pm.get('probes')} probes"
            + (" (DF UDP after no DF ping got a reply)" if pm.get("protocol") == "udp" else ""))


CHECK = Check(NAME, "pairs", judge)
