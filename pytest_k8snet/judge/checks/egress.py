"""test_egress: repeated egress connections from every node's pod, against the host
network's. Failures only from low source ports are a firewall past the node; failures that
are all name-resolution errors never left the node and rest on cluster DNS."""

from __future__ import annotations

from typing import Any

from ..context import Check, Context
from ..model import PASSED, SKIPPED, Finding
from ...probes.egress import EgressResult
from .dependencies import dns_dependency, dns_knock_on, resolution_only, resolution_text
from .node_sysctls import skip_no_forwarding
from .nodes_ready import skip_unusable

NAME = "test_egress"


def judge(ctx: Context) -> None:
    for n in ctx.nodes:
        if skip_unusable(ctx, NAME, n, n) or skip_no_forwarding(ctx, NAME, n, n):
            continue
        pe, he = ctx.egress.get((n, "pod")), ctx.egress.get((n, "host"))
        if pe is None and ctx.targets.get("egress_skip"):
            ctx.set_verdict(NAME, n, SKIPPED, f"{n}: {ctx.targets['egress_skip']}")
            continue
        if pe is None:
            ctx.set_verdict(NAME, n, SKIPPED, f"{n}: egress not measured")
            continue
        pod, host = _result(pe), (_result(he) if he is not None else None)
        if pod.failures == 0:
            ctx.set_verdict(NAME, n, PASSED)
            continue
        raw = f"pod failed ports: {list(pod.failed_ports)}\nerrors: {list(pod.errors)}"
        failure = ctx.probe_failure("egress", f"{n}/pod")
        symptom = (f"{n}: {pod.failures} of {pod.attempts} pod egress connections to "
                   f"{pod.url} failed ({pod.failure_rate:.0%})")
        if host is not None:
            symptom += (f", host network {host.failures} of {host.attempts}"
                        f" ({host.failure_rate:.0%})")
        if failure is not None:
            ctx.fail(NAME, n, symptom, ctx.probe_finding(failure, n, NAME), raw)
            continue
        if resolution_only(pod.errors):
            _unresolved(ctx, n, pod, host, symptom, raw)
            continue
        split = pod.low_port_pattern
        if host is not None and host.failure_rate < pod.failure_rate and split:
            f = ctx.add(Finding(
                f"egress-port-range:{n}", "egress-port-range",
                f"{n}: the failures came from source ports below {split} and the successes "
                f"from above it ({pod.fits(split)} of {pod.attempts} attempts fit; failed "
                f"ports {min(pod.failed_ports)}-{max(pod.failed_ports)}, pod range "
                f"{pod.port_range[0]}-{pod.port_range[1]}): a firewall past the node passes "
                "only high source ports", (n,),
                evidence={n: {"pod_failures": pod.failures, "attempts": pod.attempts,
                              "host_failures": host.failures, "split_port": split}},
                would_contradict=("failures from high source ports",
                                  "host-network egress failing as often")))
            ctx.fail(NAME, n, symptom, f, raw)
            continue
        contra: tuple[str, ...] = ()
        if host is not None and host.failures:
            contra = (f"host-network egress fails too ({host.failures} of {host.attempts}):"
                      " not specific to pods",)
        what = symptom + (": no pod egress at all (SNAT/masquerade or routing)"
                          if host is not None and host.failures == 0
                          and pod.failures == pod.attempts else "")
        f = ctx.add(Finding(f"egress:{n}", "unknown", what, (n,),
                            evidence={n: {"pod_failures": pod.failures,
                                          "attempts": pod.attempts}},
                            contradicting=contra))
        ctx.fail(NAME, n, f"{n}: pod egress fails", f, raw)


def _unresolved(ctx: Context, n: str, pod: EgressResult, host: EgressResult | None,
                symptom: str, raw: str) -> None:
    """Every attempt failed before it connected: the source ports say nothing (no packet
    left from them), and a failed cluster DNS from ``n`` explains it as a knock-on."""
    how = resolution_text(pod.errors)
    name = pod.url.split("//", 1)[-1].split("/", 1)[0]
    what = (f"egress from {n} fails: every attempt {how} {name} ({pod.failures} of "
            f"{pod.attempts})")
    if host is not None and host.failures and resolution_only(host.errors):
        what += f", the host network's too ({host.failures} of {host.attempts})"
    dep = dns_dependency(ctx, n)
    if dep is not None:
        f = dns_knock_on(ctx, NAME, n, "egress", what, dep)
        ctx.set_verdict(NAME, n, SKIPPED, f.summary, f.id, raw)
        return
    f = ctx.add(Finding(f"egress:{n}", "unknown", f"{what}, while {n}'s cluster DNS "
                        "check did not fail", (n,),
                        evidence={n: {"pod_failures": pod.failures, "attempts": pod.attempts,
                                      "errors": list(pod.errors)}}))
    ctx.fail(NAME, n, symptom, f, raw)


def _result(e: dict[str, Any]) -> EgressResult:
    return EgressResult(url=str(e.get("url") or ""), attempts=int(e.get("attempts") or 0),
                        failures=int(e.get("failures") or 0),
                        failed_ports=tuple(e.get("failed_ports") or ()),
                        passed_ports=tuple(e.get("passed_ports") or ()),
                        port_range=tuple(e.get("port_range") or (0, 0)),
                        errors=tuple(e.get("errors") or ()))


CHECK = Check(NAME, "nodes", judge)
