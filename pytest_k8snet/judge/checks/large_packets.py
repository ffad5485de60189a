"""test_large_packets: 1 MiB over HTTP between the pods of every pair. A stall on a pair
the MTU finding covers is that finding's; anything else is inconclusive, with what
contradicts it."""

from __future__ import annotations

from .. import faults, knock_ons, sampled
from ..context import Check, Context, curl_error
from ..localize import DROP, HTTP, LOSS, http_mode
from ..model import PASSED, SKIPPED, Finding
from .nodes_ready import skip_unusable
from .pod_ping import skip_without_pod_connectivity

NAME = "test_large_packets"


def judge(ctx: Context) -> None:
    for pid, (a, _, b) in zip(ctx.pairs, ctx.pair_parts):  # ends(pid), made once
        if skip_unusable(ctx, NAME, pid, a, b) or skip_without_pod_connectivity(ctx, NAME, pid):
            continue
        h = ctx.http.get(pid)
        if h is None:
            ctx.set_verdict(NAME, pid, SKIPPED, sampled.not_measured(ctx, pid, "1 MiB transfer"))
            continue
        if h.get("ok"):
            ctx.set_verdict(NAME, pid, PASSED)
            continue
        raw = f"curl 1 MiB {pid}: {h.get('bytes')} bytes, {h.get('error')}"
        failure = ctx.probe_failure("http-1mib", pid)
        mtu = ctx.mtu_finding()
        if failure is not None:
            ctx.fail(NAME, pid, f"{pid}: 1 MiB transfer could not run",
                     ctx.probe_finding(failure, pid, NAME), raw)
        elif mtu is not None and pid in mtu.pairs:
            ctx.fail(NAME, pid, f"{pid}: 1 MiB HTTP transfer stalled ({curl_error(h)}) "
                     "while small packets cross", mtu, raw)
        elif (f := faults.located(ctx, HTTP, pid)) is not None:
            ctx.fail(NAME, pid, f"{pid}: 1 MiB HTTP transfer failed ({curl_error(h)})", f, raw)
        elif http_mode(h) in (LOSS, DROP) and (root := faults.lossy_root(ctx, a, b)) is not None:
            # Stalled part way, or its handshake lost (a connect that timed out), on a pair
            # through a node that loses packets on every probe: the loss, not a rule.
            knock_ons.skip_on(ctx, NAME, pid, f"{pid}: a 1 MiB HTTP transfer " + (
                f"stalled after {h.get('bytes')} bytes" if http_mode(h) == LOSS else
                f"could not connect ({curl_error(h)})"), root)
        else:
            pm = ctx.pmtu.get(pid)
            f = ctx.add(Finding(
                f"inconclusive-http:{pid}", "inconclusive",
                f"{pid}: a 1 MiB HTTP transfer fails ({curl_error(h)})", pairs=(pid,),
                evidence={pid: {"bytes": h.get("bytes"), "error": curl_error(h)}},
                contradicting=("small pings cross",) + (
                    (f"the path MTU {pm.get('bytes')} is at least the expected "
                     f"{ctx.expected}",) if pm is not None else ())))
            ctx.fail(NAME, pid, f"{pid}: 1 MiB HTTP transfer failed", f, raw)


CHECK = Check(NAME, "pairs", judge)
