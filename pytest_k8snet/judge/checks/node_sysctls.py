"""test_node_sysctls: net.ipv4.ip_forward and bridge netfilter on every node; a node that
does not forward is what the pod checks skip behind (:func:`skip_no_forwarding`)."""

from __future__ import annotations

from ..context import Check, Context
from ..model import FAILED, PASSED, SKIPPED, Finding
from .nodes_ready import host_checks

NAME = "test_node_sysctls"


def skip_no_forwarding(ctx: Context, test: str, subject: str, *nodes: str) -> bool:
    """Skip ``test`` for ``subject`` when one of ``nodes`` has ip_forward=0; True when
    skipped (the failure is this check's)."""
    if not ctx.any_forwarding_off:  # asked for every pair by the pair checks
        return False
    for n in nodes:
        if ctx.forwarding_off(n):
            ctx.set_verdict(test, subject, SKIPPED, f"{n}: net.ipv4.ip_forward=0, pod traffic "
                            f"cannot leave the node; see {NAME}[{n}]", f"ip-forward:{n}")
            return True
    return False


def judge(ctx: Context) -> None:
    for n in ctx.nodes:
        c = host_checks(ctx, NAME, n)
        if c is None:
            continue
        sysctls = c.get("sysctls") or {}
        raw = "\n".join(f"{k}={v}" for k, v in sysctls.items())
        found = []
        if str(sysctls.get("net.ipv4.ip_forward", "1")).strip() == "0":
            found.append(ctx.add(Finding(
                f"ip-forward:{n}", "ip-forward", f"{n}: net.ipv4.ip_forward=0, so it cannot "
                "route pod traffic", (n,), evidence={n: {"net.ipv4.ip_forward": 0}},
                would_contradict=(f"net.ipv4.ip_forward=1 on {n}",))))
        bnf = sysctls.get("net.bridge.bridge-nf-call-iptables")
        enc = ctx.encap.get(n)
        # Bridge netfilter matters only where pods sit on a Linux bridge (flannel's cni0,
        # bridge plugin, weave): routed veths (Calico, Cilium) never pass a bridge.
        routed = enc is not None and enc.get("bridged") is False
        note = (f"{n}: bridge netfilter not required: pod traffic is not bridged "
                f"({enc.get('description')})" if routed and enc is not None else "")
        if not routed and (bnf is None or str(bnf).strip() != "1"):
            state = "0" if bnf is not None else "absent (br_netfilter not loaded)"
            found.append(ctx.add(Finding(
                f"bridge-nf:{n}", "bridge-nf", f"{n}: net.bridge.bridge-nf-call-iptables is "
                f"{state}", (n,), evidence={n: {"net.bridge.bridge-nf-call-iptables": bnf}},
                would_contradict=(f"net.bridge.bridge-nf-call-iptables=1 on {n}",))))
        if not found:
            ctx.set_verdict(NAME, n, PASSED, note)
            continue
        for f in found:
            ctx.extend(f.id, checks=[NAME])
        ctx.set_verdict(NAME, n, FAILED, " ".join(
            ctx.findings[f.id].message for f in found), found[0].id, raw)


CHECK = Check(NAME, "nodes", judge)
