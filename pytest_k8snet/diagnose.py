"""From symptoms to one likely cause and its fix, with the incidents' knowledge.

The rules tell causes apart rather than listing them all:
- pod-to-pod fails, node-to-node works, a node has ip_forward=0      -> forwarding (5)
- pod-to-pod fails, node-to-node works, the overlay's UDP fails      -> VXLAN port blocked (1, 5)
- small packets cross, big DF packets vanish                          -> MTU black hole (1, 3, 4)
- Service fails only towards backends on the client's own node       -> bridge netfilter off (5)
- pod egress fails, host egress works, only from low source ports    -> egress firewall (2)
- node addresses inside the Pod/Service CIDR                          -> CIDR overlap (1, 5)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .probes import DnsResult, EgressResult, NodeCheckResult, PathMtuResult, PingResult

if TYPE_CHECKING:
    from .cluster import Cluster, ServiceResult

VXLAN_OVERHEAD = 50

# cause -> (short title, fix, incidents)
CAUSES: dict[str, tuple[str, str, str]] = {
    "mtu": ("MTU", "set the CNI MTU to at most {limit} or raise the underlay MTU", "1, 3, 4"),
    "vxlan-blocked": ("Overlay port blocked", "allow UDP 8472 (VXLAN) between all nodes in the "
                      "datacenter ACLs, security groups and host firewalls (ufw)", "1, 5"),
    "ip-forward": ("IP forwarding off", "run `sysctl -w net.ipv4.ip_forward=1` and persist it in "
                   "/etc/sysctl.d (security scans reset it)", "5"),
    "bridge-nf": ("Bridge netfilter off", "run `modprobe br_netfilter` and `sysctl -w "
                  "net.bridge.bridge-nf-call-iptables=1`, persisted in /etc/modules-load.d and "
                  "/etc/sysctl.d", "5"),
    "egress-port-range": ("Egress firewall by source port", "open outbound source ports "
                          "1024-65535 in the firewall, or pin the SNAT port range and "
                          "net.ipv4.ip_local_port_range to 32768-60999", "2"),
    "pod-cidr-overlap": ("Pod CIDR overlaps nodes", "choose a Pod CIDR (kubeadm --pod-network-"
                         "cidr, the CNI's IP pool) that does not overlap any node network", "1, 5"),
    "dns": ("Cluster DNS unreachable", "check the DNS pods and Service, and that UDP/TCP 53 is "
            "allowed from pods to them", "1"),
    "underlay": ("Nodes cannot reach each other", "fix node-to-node routing or firewalls first: "
                 "the underlay itself is broken", "1"),
    "node-not-ready": ("Node not ready", "read the node's kubelet and CNI logs: a failed network "
                       "plugin shows as FailedCreatePodSandBox", "1"),
    "unknown": ("Unexplained failure", "read the raw probe output attached to the test", ""),
}


@dataclass(frozen=True)
class Diagnosis:
    """One likely cause for one failure; ``message`` is what a person reads."""

    cause: str
    message: str
    nodes: tuple[str, ...] = ()
    pairs: tuple[str, ...] = ()
    evidence: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def title(self) -> str:
        return CAUSES.get(self.cause, CAUSES["unknown"])[0]


def explain(cause: str, symptom: str, **fmt: object) -> str:
    """``symptom. fix (incidents N).``"""
    _, fix, incidents = CAUSES.get(cause, CAUSES["unknown"])
    text = f"{symptom}. {fix.format(**fmt)[0].upper()}{fix.format(**fmt)[1:]}"
    return text + (f" (incidents {incidents})." if "," in incidents else
                   f" (incident {incidents})." if incidents else ".")


def _forwarding_off(checks: dict[str, NodeCheckResult], nodes: tuple[str, ...]) -> list[str]:
    return [n for n in nodes if n in checks and checks[n].ip_forward is False]


def pod_pair(cluster: "Cluster", src: str, dst: str) -> Diagnosis | None:
    """Why pod-to-pod small pings fail between ``src`` and ``dst`` (None when they pass)."""
    pod = cluster.ping("pod")[(src, dst)]
    if pod.ok:
        return None
    pid = f"{src}->{dst}"
    host = cluster.ping("host").get((src, dst))
    checks = cluster.node_checks()
    symptom = f"{pid}: pod-to-pod ping lost {pod.loss_pct:g}%"
    off = _forwarding_off(checks, (src, dst))
    if off:
        return Diagnosis("ip-forward", explain(
            "ip-forward", f"{symptom}; net.ipv4.ip_forward=0 on {', '.join(off)}, so it cannot "
            "route pod traffic"), tuple(off), (pid,), {"loss_pct": pod.loss_pct})
    if host is not None and not host.any_reply:
        return Diagnosis("underlay", explain(
            "underlay", f"{symptom} and node-to-node ping fails too ({host.loss_pct:g}% lost)"),
            (src, dst), (pid,), {"loss_pct": pod.loss_pct})
    udp = cluster.measurements.get("udp", {}).get((src, dst))
    udp_note = ""
    if udp is not None and not udp.overlay.ok:
        udp_note = f"; UDP through the overlay fails too ({udp.overlay.error})"
    if host is not None and host.ok:
        suspects = _suspect_nodes(cluster, src, dst)
        return Diagnosis("vxlan-blocked", explain(
            "vxlan-blocked", f"{symptom} while node-to-node ping works{udp_note}: the overlay "
            f"(VXLAN, UDP 8472) is dropped between the nodes"
            + (f", involving {', '.join(suspects)}" if suspects else "")),
            tuple(suspects or (src, dst)), (pid,), {"loss_pct": pod.loss_pct})
    return Diagnosis("unknown", explain("unknown", symptom), (src, dst), (pid,))


def _suspect_nodes(cluster: "Cluster", src: str, dst: str) -> list[str]:
    """Nodes every failing pod pair involves: the likely culprits."""
    failing = [k for k, r in cluster.ping("pod").items() if not r.ok]
    counts: dict[str, int] = {}
    for a, b in failing:
        for n in (a, b):
            counts[n] = counts.get(n, 0) + 1
    top = max(counts.values(), default=0)
    # A node in (nearly) every failing pair is the one cut off.
    return sorted(n for n, c in counts.items() if c == top and c >= len(failing) and c > 1) or []


def mtu(result: PathMtuResult, expected: int, pid: str) -> Diagnosis | None:
    if result.bytes >= expected:
        return None
    if result.bytes == 0:
        return Diagnosis("unknown", explain("unknown", f"{pid}: not even a {result.first_lost}"
                                            "-byte DF ping crosses"), pairs=(pid,))
    lost_payload = expected - 28
    symptom = (f"{pid}: {lost_payload}-byte DF ping lost, {result.bytes - 28} passes; path MTU "
               f"{result.bytes} < expected {expected}. An underlay link drops frames larger than "
               f"the overlay needs (VXLAN adds {VXLAN_OVERHEAD} bytes, so the underlay carries "
               f"{result.bytes + VXLAN_OVERHEAD} here)")
    return Diagnosis("mtu", explain("mtu", symptom, limit=result.bytes), pairs=(pid,),
                     evidence={"path_mtu": result.bytes, "expected": expected})


def http_failure(cluster: "Cluster", pid: str, src: str, dst: str, error: str | None,
                 got: int) -> Diagnosis:
    small = cluster.ping("pod")[(src, dst)]
    pmtu = cluster.path_mtu("pod").get((src, dst))
    expected = cluster.expected_mtu()
    if small.ok and pmtu is not None and pmtu.bytes < expected:
        d = mtu(pmtu, expected, pid)
        assert d is not None
        return Diagnosis("mtu", f"{pid}: 1 MiB HTTP transfer stalled after {got} bytes ({error}) "
                         f"while small packets cross. " + d.message.split(": ", 1)[1],
                         pairs=(pid,), evidence=d.evidence)
    return Diagnosis("unknown", explain("unknown", f"{pid}: 1 MiB HTTP got {got} bytes ({error})"),
                     pairs=(pid,))


def service(cluster: "Cluster", result: "ServiceResult") -> Diagnosis | None:
    if result.ok:
        return None
    node = result.node
    backend_node = cluster.backend.backend_node
    local = [b for b in result.missing_backends if backend_node(b) == node]
    remote = [b for b in result.missing_backends if backend_node(b) != node]
    checks = cluster.node_checks()
    symptom = (f"{node}: {result.failures} of {result.attempts} requests to the Service failed"
               + (f"; unanswered backends: {', '.join(result.missing_backends)}"
                  if result.missing_backends else ""))
    bnf = checks.get(node)
    if local and not remote:
        why = ("net.bridge.bridge-nf-call-iptables="
               + ("0" if bnf and bnf.bridge_nf_call_iptables is False else "missing")
               if bnf and bnf.bridge_nf_call_iptables is not True else "")
        return Diagnosis("bridge-nf", explain(
            "bridge-nf", f"{symptom}. Only backends on {node} itself fail while remote ones "
            f"answer: replies bridged inside the node skip the Service NAT"
            + (f" ({why})" if why else "")), (node,), (), {"failures": result.failures})
    return Diagnosis("unknown", explain("unknown", symptom), (node,))


def egress_failure(pod: EgressResult, host: EgressResult | None, node: str) -> Diagnosis | None:
    if pod.failures == 0:
        return None
    rate = f"{pod.failure_rate:.0%}"
    symptom = (f"{node}: {pod.failures} of {pod.attempts} pod egress connections to {pod.url} "
               f"failed ({rate})")
    if host is not None:
        symptom += (f", host network {host.failures} of {host.attempts}"
                    f" ({host.failure_rate:.0%})")
    threshold = pod.low_port_pattern
    if host is not None and host.failure_rate < pod.failure_rate and threshold:
        return Diagnosis("egress-port-range", explain(
            "egress-port-range", f"{symptom}. The failures came from source ports below "
            f"{threshold} and the successes from above it ({pod.fits(threshold)} of "
            f"{pod.attempts} attempts fit; failed ports {min(pod.failed_ports)}-"
            f"{max(pod.failed_ports)}, pod range {pod.port_range[0]}-{pod.port_range[1]}): a "
            f"firewall past the node passes only high source ports"), (node,),
            evidence={"failure_rate": pod.failure_rate})
    if host is not None and host.failures == 0 and pod.failures == pod.attempts:
        return Diagnosis("unknown", explain("unknown", f"{symptom}: no pod egress at all "
                                            "(SNAT/masquerade or routing)"), (node,))
    return Diagnosis("unknown", explain("unknown", symptom), (node,))


def dns_failure(node: str, results: list[DnsResult], pod_ok: bool) -> Diagnosis | None:
    bad = [r for r in results if not r.ok]
    if not bad:
        return None
    listing = ", ".join(f"{r.name} {r.rcode}" for r in bad)
    if all(r.rcode == "TIMEOUT" for r in bad):
        return Diagnosis("dns", explain("dns", f"{node}: no answer from cluster DNS ({listing})"
                                        + ("" if not pod_ok else " while the pod network works")),
                         (node,))
    return Diagnosis("dns", explain("dns", f"{node}: DNS answered with errors ({listing})"), (node,))


def sysctls(check: NodeCheckResult) -> list[Diagnosis]:
    out = []
    if check.ip_forward is False:
        out.append(Diagnosis("ip-forward", explain(
            "ip-forward", f"{check.node}: net.ipv4.ip_forward=0"), (check.node,)))
    if check.bridge_nf_call_iptables is not True:
        state = "0" if check.bridge_nf_call_iptables is False else "absent (br_netfilter not loaded)"
        out.append(Diagnosis("bridge-nf", explain(
            "bridge-nf", f"{check.node}: net.bridge.bridge-nf-call-iptables is {state}"),
            (check.node,)))
    return out


def cidr(node: str, overlaps: list[str]) -> Diagnosis | None:
    if not overlaps:
        return None
    return Diagnosis("pod-cidr-overlap", explain(
        "pod-cidr-overlap", f"{node}: " + "; ".join(overlaps)), (node,))


def ping_summary(result: PingResult) -> str:
    rtt = f", rtt {result.rtt_avg_ms:.2f} ms" if result.rtt_avg_ms is not None else ""
    return f"{result.received}/{result.transmitted} replies, {result.loss_pct:g}% lost{rtt}"
