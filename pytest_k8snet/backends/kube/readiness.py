"""Judging the started probes: an endpoint for each, a node problem for each that is not up,
and one exec per running probe for what its image and capabilities allow."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .. import Backend, Endpoint, ExecResult, Network, Node
from ...text import shorten
from .findings import ProbeFindings
from .manifests import EXIT_EXEC_FAILED, EXIT_TIMEOUT, readiness_script
from .settle import PROXY_SYNC_SECONDS, PROXY_SYNC_WAIT_S, proxy_sync_script
from .status import (ProbeCheck, cluster_domain_from_search, parse_probe_check, pod_is_ready,
                     pod_problems, pod_summary)

# Exec attempts that must all fail before the readiness check stops trying the other probes.
# Above a small cluster's probe count (2 per node): clusters of up to 8 nodes are always
# checked probe by probe.
EXEC_GIVE_UP_AFTER = 16


def evaluate(findings: ProbeFindings, backend: Backend,
             expected: Mapping[str, tuple[str, str]], nodes: list[Node],
             pods: Mapping[str, dict[str, Any]], events: list[dict[str, Any]],
             waited: float, record: bool) -> None:
    """Endpoints for every ``expected`` pod (name: (node, role)); the ones not ready become
    unusable, and with ``record`` their reasons become problems of their nodes."""
    node_ip = {n.name: n.ip for n in nodes}
    node_ips = {n.name: n.ips or (n.ip,) for n in nodes}
    for name, (node_name, role) in expected.items():
        network: Network = "host" if role == "host" else "pod"
        findings.pod_node[name] = node_name
        pod = pods.get(name)
        ip = str(((pod or {}).get("status") or {}).get("podIP") or "")
        if network == "host":
            ip = ip or node_ip.get(node_name, "")
        listed = [str(p.get("ip")) for p in ((pod or {}).get("status") or {}).get("podIPs")
                  or [] if isinstance(p, dict) and p.get("ip")]
        if network == "host" and not listed:
            listed = list(node_ips.get(node_name, ()))
        by_family: dict[str, str] = {}
        for address in listed or ([ip] if ip else []):  # the first of a family stands
            by_family.setdefault("ipv6" if ":" in address else "ipv4", address)
        findings.ips[(node_name, network)] = by_family
        findings.endpoints[(node_name, network)] = Endpoint(node_name, network, ip, name,
                                                            backend)
        if pod is not None and pod_is_ready(pod):
            if network == "pod":
                findings.ready_probe_pods.append(name)
            continue
        if pod is None:
            problems = [f"{network}-network probe {name} on {node_name}: pod missing"]
            short = f"probe pod {name} does not exist"
        else:
            problems = pod_problems(pod, events) or [
                f"{network}-network probe {name} on {node_name}: not ready after "
                f"{waited:.0f}s ({pod_summary(pod)}; no Warning events: is the kubelet "
                f"on {node_name} running?)"]
            short = f"probe pod {name} is not ready ({pod_summary(pod)})"
        findings.unusable[(node_name, network)] = short
        if record:
            findings.problems.setdefault(node_name, []).extend(problems)


def exec_error(res: ExecResult) -> str:
    """What a failed exec said (its stderr, else its stdout; that it timed out, when it
    said nothing)."""
    said = (res.stderr or res.stdout).strip()
    if res.timed_out or res.exit_code == EXIT_TIMEOUT:
        return f"timed out after {res.seconds:.0f} s" + (f": {said}" if said else "")
    return said or f"exit code {res.exit_code}, no output"


class ExecGate:
    """Stops exec attempts once the first :data:`EXEC_GIVE_UP_AFTER` all failed to reach a
    probe (exit 124/125: the API server or kubelet never ran them): then exec does not work
    in this cluster at all (no kubelet port, a webhook denying exec, kubelets unreachable
    from the API server), and 1,000 more attempts, each up to its timeout, would say
    nothing new. Thread-safe: the checks run concurrently."""

    def __init__(self, give_up_after: int) -> None:
        self.give_up_after = give_up_after
        self.tried = 0
        self.reached = 0  # attempts whose command ran (whatever its exit code)
        self.first_error = ""
        self._lock = threading.Lock()

    def hopeless(self) -> bool:
        with self._lock:
            return self.reached == 0 and self.tried >= self.give_up_after

    def record(self, res: ExecResult) -> None:
        with self._lock:
            self.tried += 1
            if res.exit_code in (EXIT_EXEC_FAILED, EXIT_TIMEOUT):
                self.first_error = self.first_error or exec_error(res)
            else:
                self.reached += 1

    def why(self) -> str:
        return (f"not tried: exec failed in all of the first {self.give_up_after} probes "
                f"tried, so exec into the probe pods does not work in this cluster "
                f"({shorten(self.first_error, 160)})")


def check_probes(findings: ProbeFindings, image: str, timeout: float,
                 give_up_after: int = EXEC_GIVE_UP_AFTER) -> None:
    """One exec per running probe: missing tools, ping, the cluster domain, the MTU.

    A missing tool becomes one ``probe image <ref> lacks ...`` problem of the node,
    never a network cause; ping that cannot open its socket (no NET_RAW) likewise. Once
    ``give_up_after`` execs all failed, the rest are not tried (:class:`ExecGate`): every
    probe becomes unusable (its later commands fail at once with the reason, with no
    request) and each node gets the problem.
    """
    targets = [ep for key, ep in findings.endpoints.items() if key not in findings.unusable]
    gate = ExecGate(give_up_after)

    def check(ep: Endpoint) -> tuple[Endpoint, ExecResult | None]:
        if gate.hopeless():
            return ep, None
        script = readiness_script(http_server=ep.network == "pod")
        if ep.network == "host":
            # the node's kube-proxy first: the Service is measured once this exec is back
            script = f"{proxy_sync_script()}\n{script}"
        seconds = max(timeout, 5.0) + (PROXY_SYNC_SECONDS if ep.network == "host" else 0.0)
        res = ep.run_patiently(["sh", "-c", script], seconds, lambda _: not gate.hopeless())
        gate.record(res)
        return ep, res

    if not targets:
        return
    with ThreadPoolExecutor(max_workers=min(16, len(targets)),
                            thread_name_prefix="k8snet-check") as pool:
        results = list(pool.map(check, targets))
    missing: dict[str, dict[str, list[str]]] = {}
    ping_errors: dict[str, list[str]] = {}
    for ep, res in sorted(results, key=lambda r: (r[0].node, r[0].network)):
        if res is None or (not res.ok and not (res.exit_code == 127 and not res.stdout)):
            why = gate.why() if res is None else shorten(exec_error(res), 200)
            findings.problem(ep.node, f"{ep.network}-network probe does not run commands: "
                                      f"{why}")
            if res is None or gate.hopeless():
                # exec works nowhere: later commands fail at once with the reason instead
                # of another exec each (a probe that alone failed is tried again later)
                findings.unusable[(ep.node, ep.network)] = \
                    gate.why() if res is None else exec_error(res)
            continue
        if res.exit_code == 127 and not res.stdout:
            found = ProbeCheck(missing=("sh",))  # not even a shell to run the check
        else:
            found = parse_probe_check(res.stdout)
        for tool in found.missing:
            missing.setdefault(ep.node, {}).setdefault(tool, []).append(ep.network)
        if found.ping_error:
            ping_errors.setdefault(ep.node, []).append(f"{ep.network}: {found.ping_error}")
        if found.proxy_sync == "pending":
            findings.note(ep.node, f"kube-proxy still had changes pending after "
                                   f"{PROXY_SYNC_WAIT_S:.0f} s (its metrics on 127.0.0.1:10249): "
                                   "the Service check may find a backend this node's rules "
                                   "do not list yet")
        if found.mtu:
            findings.mtu[(ep.node, ep.network)] = found.mtu
        domain = cluster_domain_from_search(found.search)
        # the pod-network probe's search list is the cluster's; a host's only a fallback
        if domain and (findings.cluster_domain is None or ep.network == "pod"):
            findings.cluster_domain = domain
    for node, tools in missing.items():
        findings.missing[node] = sorted(tools)
        where = sorted({net for nets in tools.values() for net in nets})
        findings.problem(node, f"probe image {image} lacks {', '.join(sorted(tools))} (in the "
                               f"{' and '.join(where)}-network probe"
                               f"{'s' if len(where) > 1 else ''}): the checks that run it "
                               "cannot run here; this is not a network fault")
    for node, errors in ping_errors.items():
        if "ping" in findings.missing.get(node, []):
            continue
        findings.problem(node, f"ping cannot run in the probe ({'; '.join(errors)}): it needs "
                               "the NET_RAW capability, which admission or the runtime took "
                               "away; not a network fault")
