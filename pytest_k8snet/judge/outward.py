"""Cluster DNS that gets no answer from one node, located: the port (udp/53 out of that
node), how it fails (dig's timeouts and the host-network port probe's refusals tell a
drop from a reject) and whether it is DNS alone or every connection out of the node (the
egress probe fails the same way to its own port: then one finding for all traffic, and
test_egress's failure is its knock-on)."""

from __future__ import annotations

from typing import Any

from . import located
from .context import Context
from .model import Finding

# dig's rcodes for "no server answered": TIMEOUT (silence), UNREACHABLE (an ICMP port
# unreachable or a refused TCP connect: ``probes.dns``).
NO_ANSWER = ("TIMEOUT", "UNREACHABLE")


def _host_probe(ctx: Context, n: str, kind: str) -> dict[str, Any] | None:
    return next((e for e in ctx.doc.get("ports") or []
                 if e.get("src") == n and e.get("kind") == kind), None)


def host_state(ctx: Context, n: str, kind: str) -> str | None:
    """What ``n``'s host network got from the cluster DNS over ``kind`` (dns-udp,
    dns-tcp): ``refused`` counts as a firewall's reject only when another node's host
    reached the same address (so something does listen there)."""
    e = _host_probe(ctx, n, kind)
    if e is None:
        return None
    state = str(e.get("state"))
    if state == "refused":
        others = [o for o in ctx.doc.get("ports") or [] if o.get("kind") == kind
                  and o.get("ip") == e.get("ip") and o.get("src") != n]
        return "refused" if any(o.get("state") == "open" for o in others) else "no-listener"
    return state


def dns_mode(ctx: Context, n: str, bad: list[dict[str, Any]]) -> str:
    """Drop or reject: an UNREACHABLE from dig, or the host's query refused where other
    nodes get answers, is a reject; silence everywhere is a drop."""
    if all(r.get("rcode") == "UNREACHABLE" for r in bad):
        return "reject"
    if len(bad) < len(ctx.dns.get(n) or []) and host_state(ctx, n, "dns-udp") == "open":
        return "loss"  # some names answered, the host's query too: lost, not blocked
    if host_state(ctx, n, "dns-udp") == "refused":
        # Older dig parsing recorded a refused query as TIMEOUT: the host probe is exact.
        return "reject"
    return "drop"


def egress_failing(ctx: Context, n: str) -> list[tuple[str, str]]:
    """The egress measurements of ``n`` that fail entirely, each with how its connects
    fail (drop or reject): with DNS failing too, one rule on the node's way out."""
    out = []
    for network in ("pod", "host"):
        e = ctx.egress.get((n, network))
        mode = located.curl_mode(e.get("errors")) if e is not None else None
        if (e is not None and int(e.get("attempts") or 0) > 0 and mode in ("drop", "reject")
                and int(e.get("failures") or 0) == int(e.get("attempts") or 0)):
            out.append((f"{network} {e.get('failures')} of {e.get('attempts')}", str(mode)))
    return out


def url_port(url: str) -> str:
    """The TCP port of an http(s) URL, written or implied."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if host.rpartition(":")[2].isdigit() and not host.endswith("]"):
        return host.rpartition(":")[2]
    return "443" if scheme == "https" else "80"


def finding(ctx: Context, n: str, bad: list[dict[str, Any]]) -> Finding:
    """The root for cluster DNS failing from ``n`` with nothing upstream to blame."""
    mode = dns_mode(ctx, n, bad)
    names = ", ".join(str(r.get("name")) for r in bad)
    probe = _host_probe(ctx, n, "dns-udp")
    server = str((probe or {}).get("ip") or "the cluster DNS")
    pod_ok = all(ctx.pod_ok(p) for p in ctx.pairs if n in p.split("->")
                 and ("pod", p) in ctx.ping)
    evidence = {n: {"timeouts" if mode == "drop" else "refused":
                    [r.get("name") for r in bad],
                    "host_dns_udp": host_state(ctx, n, "dns-udp"),
                    "host_dns_tcp": host_state(ctx, n, "dns-tcp")}}
    egress = egress_failing(ctx, n)
    url = str((ctx.egress.get((n, "pod")) or ctx.egress.get((n, "host")) or {}).get("url"))
    if mode in ("drop", "reject") and egress:
        port = url_port(url)
        egress_modes = {m for _, m in egress}
        # One rule on the way out: where any protocol is refused the rule rejects; a
        # protocol whose refusal does not come back (ICMP errors dropped too) times out.
        rule = "reject" if "reject" in egress_modes | {mode} else "drop"
        how = (f"connections {located.SYMPTOMS[mode]}" if egress_modes == {mode} else
               f"DNS queries {located.SYMPTOMS[mode]}, egress connections "
               + " and ".join(located.SYMPTOMS[m] for m in sorted(egress_modes)))
        return ctx.add(Finding(
            f"outward:{n}", "firewall",
            f"{n}: all traffic out of the cluster from {n} fails, {how}: cluster "
            f"DNS {server} on udp/53 ({names}) and egress on tcp/{port} to {url} "
            f"({', '.join(label for label, _ in egress)} failed)"
            + (", while the pod network inside the cluster works" if pod_ok else ""),
            (n,), evidence=evidence,
            would_contradict=("any connection from the node out of the cluster completing",),
            fix_args=(("verb", located.VERBS[rule]), ("what", "every connection"),
                      ("way", "leaving the cluster from"), ("node", n)),
            protocol="all", mode=rule, direction="out"))
    return ctx.add(Finding(
        f"dns:{n}", "dns",
        f"No answer from cluster DNS on {n}: queries to {server} on udp/53 "
        f"{located.SYMPTOMS[mode]} ({names})"
        + (" while the pod network works" if pod_ok else ""),
        (n,), evidence=evidence,
        would_contradict=("an answer from the cluster DNS",),
        protocol="udp", port="53", mode=mode, direction="out"))
