"""test_large_packets_to_service: 1 MiB over HTTP from every node's pod through the
Service, to every backend. Failures no more than the backends behind a failed pair (or
behind bridge netfilter off) are knock-ons and skip, naming the check that owns them."""

from __future__ import annotations

from math import comb

from .. import faults, knock_ons
from ..context import Check, Context, curl_error
from ..model import PASSED, SKIPPED, Finding
from . import pod_ping, service
from .node_sysctls import skip_no_forwarding
from .nodes_ready import skip_unusable

NAME = "test_large_packets_to_service"


def judge(ctx: Context) -> None:
    for n in ctx.nodes:
        if skip_unusable(ctx, NAME, n, n) or skip_no_forwarding(ctx, NAME, n, n):
            continue
        results = ctx.svc_http.get(n)
        if not results:
            ctx.set_verdict(NAME, n, SKIPPED, f"{n}: 1 MiB through the Service not measured")
            continue
        bad = [r for r in results if not r.get("ok")]
        if not bad:
            ctx.set_verdict(NAME, n, PASSED)
            continue
        raw = "\n".join(f"curl 1 MiB {n}->service: {r.get('bytes')} bytes, {r.get('error')}"
                        for r in bad)
        per_node = max(1, len(results) // max(1, len(ctx.nodes)))
        roots = {m: f for m in ctx.nodes for f in [faults.backend_root(ctx, n, m)] if f}
        if roots and (len(bad) <= per_node * len(roots)
                      or _by_chance(len(bad), len(results), len(roots) / len(ctx.nodes))):
            ctx.set_verdict(NAME, n, SKIPPED, f"{n}: {len(bad)} transfers through the Service "
                            f"failed, no more than its backends on nodes without pod "
                            f"connectivity ({', '.join(roots)}): "
                            + "; ".join(sorted({f"{f.title}, see {pod_ping.NAME}"
                                                for f in roots.values()})),
                            next(iter(roots.values())).id, raw)
            continue
        svc = ctx.service.get(n) or {}
        if f"bridge-nf:{n}" in ctx.findings and svc.get("failures") and len(bad) <= per_node:
            ctx.set_verdict(NAME, n, SKIPPED, f"{n}: the transfers that failed went to its own "
                            "node's backends, which fail for any request (Bridge netfilter "
                            f"off); see {service.NAME}[{n}]", f"bridge-nf:{n}", raw)
            continue
        what = (f"{n}->service: {len(bad)} of {len(results)} 1 MiB transfers failed "
                f"({curl_error(bad[0])})")
        mtu = ctx.mtu_finding()
        failure = ctx.probe_failure("http-service", n)
        if failure is not None:
            ctx.fail(NAME, n, what, ctx.probe_finding(failure, n, NAME), raw)
        elif (lossy := faults.lossy_root(ctx)) is not None and len(bad) < len(results) \
                and all(int(r.get("bytes") or 0) or "Timeout" in str(r.get("error"))
                        for r in bad):
            # Transfers that stalled or timed out while others crossed, where a path loses
            # packets: the loss, not the Service.
            knock_ons.skip_on(ctx, NAME, n, what, lossy)
        elif mtu is not None and (len(bad) < len(results) or n in mtu.nodes):
            # Some transfers crossed, or the client's own node is behind the small path MTU
            # (then every one of its transfers may stall, its own node's too where the
            # path MTU discovery that would shrink them is filtered).
            ctx.fail(NAME, n, what + " while small requests answer; backends behind a "
                     f"path MTU below {ctx.expected} stall", mtu, raw)
        else:
            f = ctx.add(Finding(
                f"inconclusive-service-http:{n}", "unknown", what, (n,),
                evidence={n: {"failed": len(bad), "transfers": len(results)}}))
            ctx.fail(NAME, n, what, f, raw)


def _by_chance(bad: int, total: int, cut: float) -> bool:
    """The Service picks a backend per transfer: ``bad`` or more of ``total`` landing on
    the backends behind failed pairs (a ``cut`` share of them) is not unlikely (at least
    test_service's CHANCE), so the failures need no other cause. Three transfers from a
    node whose own overlay is blocked all go to remote backends 30% of the time."""
    p = min(1.0, max(0.0, cut))
    at_least = sum(comb(total, k) * p ** k * (1 - p) ** (total - k) for k in range(bad, total + 1))
    return at_least >= service.CHANCE


CHECK = Check(NAME, "nodes", judge)
