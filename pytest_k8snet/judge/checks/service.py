"""test_service: pod to Service from every node, repeated so that local and remote
backends both answer. Only local backends failing is bridge netfilter off; only backends
behind a failed pair is a knock-on of that pair's finding."""

from __future__ import annotations

from typing import Any

from .. import faults, knock_ons
from ..context import Check, Context, pair_id
from ..model import PASSED, SKIPPED, Finding
from . import pod_ping
from .dependencies import dns_dependency, dns_knock_on, resolution_only, resolution_text
from .node_sysctls import skip_no_forwarding
from .nodes_ready import skip_unusable

NAME = "test_service"
# Below this chance of never picking a given backend, its silence is evidence against it.
# It is also the rate of false "unknown" findings per healthy backend in a run where another
# backend is cut off, so it is small: CI alone judges dozens of such runs (at 5%, 12
# requests over 3 backends, 0.8% each, read as evidence and failed CI now and then).
CHANCE = 0.001


def judge(ctx: Context) -> None:
    for n in ctx.nodes:
        if skip_unusable(ctx, NAME, n, n) or skip_no_forwarding(ctx, NAME, n, n):
            continue
        s = ctx.service.get(n)
        if s is None:
            ctx.set_verdict(NAME, n, SKIPPED, f"{n}: Service not measured")
            continue
        if not int(s.get("failures") or 0):
            ctx.set_verdict(NAME, n, PASSED)
            continue
        missing = [str(b) for b in s.get("missing_backends") or []]
        raw = (f"{n}: {s.get('failures')} of {s.get('attempts')} failed; answered by "
               f"{s.get('answered_by')}; errors {s.get('errors')}")
        symptom = (f"{n}: {s.get('failures')} of {s.get('attempts')} requests to the Service "
                   "failed" + (f"; unanswered backends: {', '.join(missing)}"
                               if missing else ""))
        failure = ctx.probe_failure("service", n)
        if failure is not None:
            ctx.fail(NAME, n, symptom, ctx.probe_finding(failure, n, NAME), raw)
            continue
        dep = dns_dependency(ctx, n)
        if resolution_only(s.get("errors") or ()) and dep is not None:
            # By name: the requests never left the node, whichever backend they were for.
            f = dns_knock_on(ctx, NAME, n, "service", f"{n}: every request to the Service "
                             f"{resolution_text(s.get('errors') or ())}", dep)
            ctx.set_verdict(NAME, n, SKIPPED, f.summary, f.id, raw)
            continue
        where = {b: ctx.backends.get(b, "") for b in missing}
        roots = {b: faults.backend_root(ctx, n, m) for b, m in where.items() if m}
        cut = [b for b in missing if roots.get(b) is not None]
        chance = _missed_by_chance(ctx, s)
        unreached = [b for b in missing if b not in cut and chance >= CHANCE]
        if cut and len(cut) + len(unreached) == len(missing):
            found = {f.id: f for f in (roots[b] for b in cut) if f is not None}
            pairs = sorted({pair_id(n, where[b]) for b in cut})
            ctx.set_verdict(NAME, n, SKIPPED, f"{n}: Service requests fail only towards "
                            f"backends without pod connectivity ({', '.join(cut)}, behind "
                            f"{', '.join(pairs)}): " + "; ".join(
                                f"{f.title}, see {pod_ping.NAME}" for f in found.values())
                            + _unreached_text(s, unreached, chance),
                            next(iter(found)), raw)
            continue
        near = faults.lossy_root(ctx, n, *(where[b] for b in missing if where[b]))
        some_through = int(s.get("failures") or 0) < int(s.get("attempts") or 0)
        lossy = faults.lossy_root(ctx) if not missing else near if some_through else None
        if lossy is not None:
            # Every backend answered some requests, or the client or the unanswered
            # backends sit on the lossy node and some requests got through: the ones that
            # failed were lost on the way (a few requests to one backend can all be lost).
            knock_ons.skip_on(ctx, NAME, n, symptom, lossy)
            continue
        local = [b for b in missing if where[b] == n]
        remote = [b for b in missing if where[b] != n]
        if local and not remote:
            symptom += (f". Only backends on {n} itself fail while remote ones answer: "
                        "replies bridged inside the node skip the Service NAT")
            fid = f"bridge-nf:{n}"
            if fid in ctx.findings:
                f = ctx.extend(fid, evidence={f"{n} Service": {
                    "failures": s.get("failures"), "attempts": s.get("attempts"),
                    "unanswered": missing}})
                ctx.fail(NAME, n, symptom, f, raw)
                continue
            enc = ctx.encap.get(n)
            against = (f"pod traffic on {n} is not bridged ({enc.get('description')}), so "
                       "bridge netfilter does not apply" if enc is not None
                       and enc.get("bridged") is False
                       else f"net.bridge.bridge-nf-call-iptables=1 on {n}")
            f = ctx.add(Finding(
                f"inconclusive-service:{n}", "inconclusive", symptom, (n,),
                evidence={n: {"failures": s.get("failures"), "unanswered": missing}},
                contradicting=(against,)))
            ctx.fail(NAME, n, f"{n}: Service requests to local backends fail", f, raw)
            continue
        unmeasured = sorted({pair_id(n, m) for m in where.values() if m and m != n
                             and pair_id(n, m) not in ctx.pairs})
        if unmeasured:
            symptom += (f"; pod connectivity {', '.join(unmeasured)} was not measured "
                        f"(--k8s-pairs {ctx.doc.get('pair_mode', 'all')})")
        symptom += _proxy_text(ctx, n)
        f = ctx.add(Finding(f"service:{n}", "unknown", symptom, (n,),
                            evidence={n: {"failures": s.get("failures"),
                                          "unanswered": missing}}))
        ctx.fail(NAME, n, symptom, f, raw)


def _missed_by_chance(ctx: Context, s: dict[str, Any]) -> float:
    """The chance that the node's requests never picked one given backend, the Service
    picking uniformly (kube-proxy's random choice): (1 - 1/backends) ** attempts. The probe
    stops after one round when nothing answers, so a backend missing from a few requests
    was perhaps never asked."""
    count = len(ctx.backends) or len({*s.get("answered_by", {}), *s.get("missing_backends", [])})
    attempts = int(s.get("attempts") or 0)
    return (1 - 1 / count) ** attempts if count > 1 else 0.0


def _unreached_text(s: dict[str, Any], unreached: list[str], chance: float) -> str:
    if not unreached:
        return ""
    return (f"; {', '.join(unreached)} did not answer either, but {s.get('attempts')} requests "
            f"miss a given backend {chance:.0%} of the time, so that says nothing against "
            f"{'them' if len(unreached) > 1 else 'it'}")


CHECK = Check(NAME, "nodes", judge)


# Where each kube-proxy mode keeps the rules that turn the Service address into a backend:
# an unexplained Service failure is read there next.
PROXY_RULES = {"iptables": "iptables-save -t nat | grep KUBE-SVC", "ipvs": "ipvsadm -Ln",
               "nftables": "nft list table ip kube-proxy"}


def _proxy_text(ctx: Context, node: str) -> str:
    """``; kube-proxy on node-2 runs in nftables mode ...`` where the node check read it
    (documents from before it was read say nothing)."""
    mode = str(((ctx.checks.get(node) or {}).get("kube_proxy") or {}).get("mode") or "")
    if mode not in PROXY_RULES:
        return ""
    return (f"; kube-proxy on {node} runs in {mode} mode: its Service rules are in "
            f"`{PROXY_RULES[mode]}`")
