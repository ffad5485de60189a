"""test_egress: repeated egress connections from every node's pod, against the host
network's. Failures only from low source ports are a firewall past the node; failures that
are all name-resolution errors never left the node and rest on cluster DNS."""

from __future__ import annotations

from typing import Any

from ..context import Check, Context, pair_id
from ..model import PASSED, SKIPPED, Finding
from ...probes.egress import EgressResult
from .. import faults, knock_ons, located
from ..outward import url_port
from .dependencies import (dns_dependency, dns_endpoint_behind, dns_knock_on,
                           resolution_only, resolution_text)
from .dns import NAME as DNS_TEST
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
        if split and pod.fits(split) < pod.attempts and faults.lossy_root(ctx, n) is not None:
            # On a node found lossy, random losses make a near-fit by chance: only a split
            # that every attempt fits still says "source ports".
            split = None
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
        _blocked(ctx, n, pod, host, symptom, raw)


def _blocked(ctx: Context, n: str, pod: EgressResult, host: EgressResult | None,
             symptom: str, raw: str) -> None:
    """Connects that fail from every source port: a rule on the way out, located by the
    port of the URL and told drop from reject by curl's own errors. A node already cut
    off, or every connection out of it failing (test_dns found that), explains it."""
    root = located.cut_off(ctx, n, "pod" if host is None or not host.failures else "host")
    # test_dns's finding on n, whatever its cause: all traffic out of n is one fault.
    v = ctx.verdicts.get((DNS_TEST, n))
    dep = ctx.findings.get(v.finding) if v is not None and v.finding else None
    if root is None and dep is not None:
        top = knock_ons.root_of(ctx, dep)
        root = top if top.protocol == "all" and n in top.nodes else None
    if root is None and pod.failures < pod.attempts:
        root = faults.lossy_root(ctx, n)  # some connects fail on a node found lossy
    if root is not None:
        f = knock_ons.knock_on(ctx, f"egress-knock-on:{n}", "egress", symptom, root, NAME,
                               nodes=(n,))
        ctx.set_verdict(NAME, n, SKIPPED, f.summary, f.id, raw)
        return
    mode = located.curl_mode(pod.errors)
    if mode == "drop" and pod.failures < pod.attempts:
        mode = "loss"
    port = url_port(pod.url)
    if mode is None:
        contra: tuple[str, ...] = ()
        if host is not None and host.failures:
            contra = (f"host-network egress fails too ({host.failures} of "
                      f"{host.attempts}): not specific to pods",)
        f = ctx.add(Finding(f"egress:{n}", "unknown", symptom, (n,),
                            evidence={n: {"pod_failures": pod.failures,
                                          "attempts": pod.attempts,
                                          "errors": list(pod.errors)}},
                            contradicting=contra))
        ctx.fail(NAME, n, f"{n}: pod egress fails", f, raw)
        return
    if host is not None and host.failures:
        where = (f"from the pods and from the host network ({host.failures} of "
                 f"{host.attempts}): a rule on the node's way out (OUTPUT and FORWARD), "
                 "the network or the gateway")
    elif host is not None:
        where = ("from the pods only (the host network's all pass): the pods' way out "
                 "through the node (FORWARD, SNAT/masquerade)")
    else:
        where = "from the pods"
    f = ctx.add(Finding(
        f"egress:{n}", "firewall",
        f"{n}: egress connections on tcp/{port} to {pod.url} {located.SYMPTOMS[mode]}, {pod.failures} "
        f"of {pod.attempts} {where}", (n,),
        evidence={n: {"pod_failures": pod.failures, "attempts": pod.attempts,
                      "host_failures": host.failures if host is not None else None,
                      "errors": list(pod.errors)}},
        would_contradict=(f"a connect to tcp/{port} from {n} that completes",),
        fix_args=(("verb", located.VERBS[mode]), ("what", f"tcp/{port}"),
                  ("way", "leaving"), ("node", n)),
        protocol="tcp", port=port, mode=mode, direction="out"))
    ctx.fail(NAME, n, symptom, f, raw)


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
    behind = dns_endpoint_behind(ctx, n)
    if behind is not None and pod.failures < pod.attempts:
        # Some lookups went to a cluster DNS endpoint that n cannot reach (its node sits
        # behind a failed pair), the rest to one it can: a few fail, test_dns may pass.
        m, root = behind
        f = knock_ons.knock_on(
            ctx, f"egress-knock-on:{n}", "egress", what, root, NAME, nodes=(n,),
            pairs=[pair_id(n, m)], via=f"some of its lookups went to the cluster DNS "
            f"endpoint on {m}, behind {pair_id(n, m)}")
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
