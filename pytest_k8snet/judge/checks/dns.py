"""test_dns: cluster names (and an external one) resolve from every node's pod. Timeouts
towards DNS endpoints behind a failed pair are that pair's knock-on, not a DNS problem."""

from __future__ import annotations

from ..context import Check, Context, ends, pair_id
from ..model import PASSED, SKIPPED, Finding
from . import pod_ping
from .. import faults, knock_ons, located, outward as dns_outward
from .node_sysctls import skip_no_forwarding
from .nodes_ready import skip_unusable

NAME = "test_dns"


def judge(ctx: Context) -> None:
    timeouts: list[str] = []
    for n in ctx.nodes:
        if skip_unusable(ctx, NAME, n, n) or skip_no_forwarding(ctx, NAME, n, n):
            continue
        results = ctx.dns.get(n)
        if not results:
            ctx.set_verdict(NAME, n, SKIPPED, f"{n}: DNS not measured")
            continue
        bad = [r for r in results if not r.get("ok")]
        if not bad:
            # Cluster names only, when there is no external name: a pass that says so.
            skip = ctx.targets.get("external_skip")
            ctx.set_verdict(NAME, n, PASSED, f"{n}: external DNS not checked: {skip}"
                            if skip else "")
            continue
        failure = next((ctx.probe_failure("dns", f"{n}/{r.get('name')}") for r in bad
                        if ctx.probe_failure("dns", f"{n}/{r.get('name')}")), None)
        listing = ", ".join(f"{r.get('name')} {r.get('rcode')}" for r in bad)
        raw = "\n".join(f"{r.get('name')}: {r.get('rcode')} {r.get('answers')}"
                        for r in results)
        if failure is not None:
            ctx.fail(NAME, n, f"{n}: DNS probe could not run",
                     ctx.probe_finding(failure, n, NAME), raw)
            continue
        if not all(r.get("rcode") in dns_outward.NO_ANSWER for r in bad):
            f = ctx.add(Finding(f"dns-errors:{n}", "dns",
                                f"{n}: DNS answered with errors ({listing})", (n,)))
            ctx.fail(NAME, n, f"{n}: DNS answered with errors", f, raw)
            continue
        if _knock_on(ctx, n, listing, raw):
            continue
        timeouts.append(n)
    _timeouts(ctx, timeouts)


def _knock_on(ctx: Context, n: str, listing: str, raw: str) -> bool:
    """Queries are spread over the endpoints: those behind a failed pair time out (all of
    them when every endpoint is cut off, some when only one is). True when skipped so."""
    endpoint_nodes = sorted(set(ctx.dns_endpoints.values()))
    behind = {m: ctx.behind(n, m) for m in endpoint_nodes if m != n}
    cut = [m for m, f in behind.items() if f is not None]
    if not cut:
        return False
    found = {f.id: f for f in (behind[m] for m in cut) if f is not None}
    pairs = [pair_id(n, m) for m in cut]
    first = next(iter(found.values()))
    ips = sorted(ip for ip, m in ctx.dns_endpoints.items() if m in cut)
    every = len(cut) == len(endpoint_nodes)
    which = (("all DNS endpoints" if every else "the DNS endpoints") if len(ips) > 1 else
             "the only DNS endpoint" if every else "the DNS endpoint")
    others = [x.title for x in found.values() if x.id != first.id]
    f = knock_ons.knock_on(
        ctx, f"dns-knock-on:{n}", "dns", f"{n}: no answer from cluster DNS ({listing})", first,
        NAME, nodes=(n,), pairs=pairs,
        via=f"{which} {', '.join(ips)} on {', '.join(cut)} sit{'' if len(ips) > 1 else 's'} "
        f"behind {', '.join(pairs)}, which already fail{'s' if len(pairs) == 1 else ''}"
        + (f" (also {'; '.join(others)})" if others else ""),
        contradict=(f"an answer from every DNS endpoint reachable from {n}'s pod",))
    ctx.set_verdict(NAME, n, SKIPPED, f.summary, f.id, raw)
    return True


def _timeouts(ctx: Context, timeouts: list[str]) -> None:
    """No answer at all, with nothing upstream that explains it. Every node at once is
    the DNS service's own problem (one finding); some nodes only is the way out of each
    of them (one finding per node, with the port and how it fails)."""
    if not timeouts:
        return
    judged = [n for n in ctx.nodes if ctx.dns.get(n)]
    if len(timeouts) > 1 and len(timeouts) == len(judged):
        _everywhere(ctx, timeouts)
        return
    for n in timeouts:
        bad = [r for r in ctx.dns[n] if not r.get("ok")]
        cut = located.cut_off(ctx, n, "pod")
        if cut is None and len(bad) < len(ctx.dns[n]):
            cut = faults.lossy_root(ctx, n)  # some names answer: lost queries, not a block
        listing = ", ".join(f"{r.get('name')} {r.get('rcode')}" for r in bad)
        raw = "\n".join(f"{r.get('name')}: {r.get('rcode')}" for r in ctx.dns[n])
        if cut is not None:
            f = knock_ons.knock_on(ctx, f"dns-knock-on:{n}", "dns", f"{n}: no answer from "
                                   f"cluster DNS ({listing}) from a node whose traffic "
                                   + ("is lost in part" if "lossy" in cut.cause
                                      else "is already cut off"), cut, NAME, nodes=(n,))
            ctx.set_verdict(NAME, n, SKIPPED, f.summary, f.id, raw)
            continue
        f = dns_outward.finding(ctx, n, bad)
        ctx.fail(NAME, n, f"{n}: no answer from cluster DNS ({listing})", f, raw)


def _everywhere(ctx: Context, timeouts: list[str]) -> None:
    pod_ok = all(ctx.pod_ok(p) for p in ctx.pairs if ("pod", p) in ctx.ping)
    f = ctx.add(Finding(
        "dns:" + ",".join(timeouts), "dns",
        f"No answer from cluster DNS on any node ({', '.join(timeouts)})"
        + (" while the pod network works" if pod_ok else ""),
        tuple(timeouts), evidence={n: {"timeouts": [r.get("name") for r in ctx.dns[n]
                                                    if not r.get("ok")]}
                                   for n in timeouts},
        would_contradict=("an answer from the cluster DNS",)))
    for n in timeouts:
        bad = [r for r in ctx.dns[n] if not r.get("ok")]
        ctx.fail(NAME, n, f"{n}: no answer from cluster DNS (" + ", ".join(
            f"{r.get('name')} {r.get('rcode')}" for r in bad) + ")", f,
            "\n".join(f"{r.get('name')}: {r.get('rcode')}" for r in ctx.dns[n]))


CHECK = Check(NAME, "nodes", judge)
