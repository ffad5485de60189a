"""test_control_plane_ports: per node, its own kubelet and etcd ports as the other nodes
reach them, and its way to the API server and the cluster DNS. A connect that times out
is a dropped port; a refused one proves the path and means nothing listens (said, and
skipped)."""

from __future__ import annotations

from typing import Any

from ..context import Check, Context, pair_id
from ..model import PASSED, SKIPPED, Finding
from . import dns, pod_ping
from .nodes_ready import skip_unusable

NAME = "test_control_plane_ports"


def judge(ctx: Context) -> None:
    entries = list(ctx.doc.get("ports") or [])
    for n in ctx.nodes:
        # Unusable first: a node whose probes never started measured nothing, and why is
        # test_nodes_ready's failure, not "not measured".
        if skip_unusable(ctx, NAME, n, n) or ctx.skip_no_host_probe(NAME, n, n):
            continue
        if not entries:
            ctx.set_verdict(NAME, n, SKIPPED, f"{n}: control-plane ports not measured")
            continue
        _judge_node(ctx, n, entries)


def _judge_node(ctx: Context, n: str, entries: list[dict[str, Any]]) -> None:
    inbound = [e for e in entries if str(e.get("peer", "")).endswith(f" on {n}")]
    outbound = [e for e in entries if e.get("src") == n
                and not str(e.get("peer", "")).rpartition(" on ")[2] in ctx.nodes]
    mine = [e for e in entries if e.get("src") == n]
    failure = ctx.probe_failure("ports", n)
    if mine and all(e.get("state") == "error" for e in mine):
        if failure is not None:
            ctx.fail(NAME, n, f"{n}: the port probe could not run",
                     ctx.probe_finding(failure, n, NAME))
        else:
            ctx.set_verdict(NAME, n, SKIPPED, f"{n}: the port probe gave no result")
        return
    dropped: dict[str, list[str]] = {}  # "tcp/10250 (the kubelet on node-2)" -> sources
    outward: dict[str, list[str]] = {}  # the same, for n's own way to the API and DNS
    deferred: list[str] = []
    cut_dns = _dns_cut_off(ctx, n)
    for e in inbound + outbound:
        if e.get("state") != "timeout":
            continue
        label = (f"{'udp' if e.get('kind') == 'dns-udp' else 'tcp'}/{e.get('port')} "
                 f"({e.get('peer')} {e.get('ip')})")
        if str(e.get("kind", "")).startswith("dns") and e.get("src") == n:
            # The cluster DNS is pods behind a Service: a timeout to it from n is a
            # pod-network knock-on when an endpoint sits behind a failed pair, and
            # test_dns's to judge when the pods' own DNS already fails.
            dns_verdict = ctx.verdicts.get((dns.NAME, n))
            if cut_dns:
                deferred.append(f"{label}: {cut_dns}")
                continue
            if dns_verdict is not None and dns_verdict.outcome != PASSED:
                deferred.append(f"{label}: see {dns.NAME}[{n}]")
                continue
        (outward if e in outbound else dropped).setdefault(label, []).append(
            str(e.get("src")))
    no_listener = sorted({f"tcp/{e.get('port')} ({e.get('peer')})"
                          for e in inbound + outbound if e.get("state") == "refused"})
    raw = "\n".join(f"{e.get('src')} -> {e.get('kind')} {e.get('ip')}:{e.get('port')} "
                    f"({e.get('peer')}): {e.get('state')}" for e in inbound + outbound)
    if dropped or outward:
        parts = []
        if dropped:
            parts.append("into " + n + ": " + "; ".join(
                f"{label} from {', '.join(sorted(set(srcs)))}"
                for label, srcs in sorted(dropped.items())))
        if outward:
            parts.append(f"from {n}: " + "; ".join(sorted(outward)))
        # Dropped into the node: its own firewall; only outward: the way out or the peer.
        cause = "control-plane-ports" if dropped else "control-plane-unreachable"
        ports = sorted({label.split(" ")[0] for label in (dropped or outward)})
        f = ctx.add(Finding(
            f"control-plane-ports:{n}", cause,
            f"{n}: connects time out (dropped, no reset) " + "; ".join(parts), (n,),
            evidence={n: {"dropped_into": dropped, "dropped_from": outward,
                          "no_listener": no_listener, "deferred": deferred}},
            would_contradict=("a connect that completes or is refused",),
            fix_args=(("ports", ", ".join(ports)), ("node", n))))
        ctx.fail(NAME, n, "", f, raw)
    elif deferred and not any(e.get("state") == "open" for e in mine):
        ctx.set_verdict(NAME, n, SKIPPED, f"{n}: " + "; ".join(deferred))
    else:
        notes = []
        if not any(e.get("peer") == "the API server" for e in mine):
            notes.append("tcp/6443: no API server endpoint known here, skipped")
        if not any(str(e.get("kind", "")).startswith("dns") for e in mine):
            notes.append("53: no cluster DNS address known here, skipped")
        if no_listener:
            notes.append("no listener, skipped: " + ", ".join(no_listener))
        if deferred:
            notes.append("; ".join(deferred))
        ctx.set_verdict(NAME, n, PASSED, f"{n}: " + "; ".join(notes) if notes else "",
                        raw=raw)


def _dns_cut_off(ctx: Context, n: str) -> str:
    """Why some cluster DNS endpoint is out of ``n``'s reach because of a pair that
    already fails ("" when none is): those queries time out as a knock-on."""
    for m in sorted(set(ctx.dns_endpoints.values())):
        f = ctx.behind(n, m) if m != n else None
        if f is not None:
            return (f"the cluster DNS endpoint on {m} sits behind {pair_id(n, m)}, which "
                    f"already fails ({f.title}, see {pod_ping.NAME}[{pair_id(n, m)}])")
    return ""


CHECK = Check(NAME, "nodes", judge)
