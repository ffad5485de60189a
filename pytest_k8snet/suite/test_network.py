"""The built-in acceptance suite: ``pytest --pyargs pytest_k8snet.suite``.

Test names are part of the product (select them with ``-k``). Each check fails
only for the cause it owns; when a pair or node cannot be measured because of a
cause another test owns (no pod connectivity at all, forwarding off), it skips
and names that test, so one broken thing reads as one failure.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_k8snet import Cluster, Diagnosis, Node, Pair
from pytest_k8snet import diagnose as dx
from pytest_k8snet.report.junit import record


def fail(request: pytest.FixtureRequest, diagnosis: Diagnosis, raw: str | None = None,
         **evidence: Any) -> None:
    """Fail with the diagnosis message; record cause and evidence for the reports."""
    __tracebackhide__ = True
    extra = request.config.hook.pytest_k8snet_diagnose(
        config=request.config, test=request.node.originalname, subject=request.node.name,
        evidence={"diagnosis": diagnosis, **evidence})
    message = diagnosis.message + "".join(f"\nAlso: {d.message}" for d in extra if d)
    record(request, raw=raw, cause=diagnosis.cause)
    request.node.user_properties.append(("k8snet_diagnosis", json.dumps({
        "cause": diagnosis.cause, "nodes": list(diagnosis.nodes), "pairs": list(diagnosis.pairs),
        "message": diagnosis.message, "test": request.node.nodeid})))
    pytest.fail(message, pytrace=False)


def skip_if_probes_unusable(cluster: Cluster, *nodes: str) -> None:
    for node in nodes:
        why = cluster.unusable(node)
        if why:
            pytest.skip(f"{node}: probes cannot run ({why}); see test_nodes_ready[{node}]")


def skip_if_pod_network_broken(cluster: Cluster, pair: Pair) -> None:
    d = dx.pod_pair(cluster, *pair.key)
    if d is not None:
        pytest.skip(f"{pair.id}: no pod connectivity ({d.title}), see test_pod_ping[{pair.id}]")


def skip_if_node_cannot_forward(cluster: Cluster, node: str) -> None:
    check = cluster.node_checks()[node]
    if check.ip_forward is False:
        pytest.skip(f"{node}: net.ipv4.ip_forward=0, pod traffic cannot leave the node; "
                    f"see test_node_sysctls[{node}]")


def test_nodes_ready(request: pytest.FixtureRequest, k8s_cluster: Cluster, k8s_node: Node) -> None:
    """Every node Ready, its probe pods started; sandbox/CNI events surfaced."""
    problems = k8s_cluster.readiness()[k8s_node.name]
    if problems:
        fail(request, Diagnosis("node-not-ready", dx.explain(
            "node-not-ready", f"{k8s_node.name}: " + "; ".join(problems)), (k8s_node.name,)))


def test_pod_ping(request: pytest.FixtureRequest, k8s_cluster: Cluster, pod_pair: Pair) -> None:
    """Pod to pod, small packets, every pair."""
    skip_if_probes_unusable(k8s_cluster, *pod_pair.key)
    result = k8s_cluster.ping("pod")[pod_pair.key]
    k8s_cluster.ping("host")  # node to node as well, once, for the reports' host matrix
    record(request, src=pod_pair.src.node, dst=pod_pair.dst.node, network="pod",
           rtt_ms=result.rtt_avg_ms, loss_pct=result.loss_pct)
    diagnosis = dx.pod_pair(k8s_cluster, *pod_pair.key)
    if diagnosis is not None:
        fail(request, diagnosis, raw=f"ping {pod_pair.src.ip} -> {pod_pair.dst.ip}: "
             f"{dx.ping_summary(result)}")


def test_large_packets(request: pytest.FixtureRequest, k8s_cluster: Cluster,
                       pod_pair: Pair) -> None:
    """1 MiB over HTTP between the pods of every pair."""
    skip_if_probes_unusable(k8s_cluster, *pod_pair.key)
    skip_if_pod_network_broken(k8s_cluster, pod_pair)
    result = k8s_cluster.large_http()[pod_pair.key]
    record(request, src=pod_pair.src.node, dst=pod_pair.dst.node, network="pod",
           throughput_mbps=round(result.mbps, 1))
    if not result.ok:
        fail(request, dx.http_failure(k8s_cluster, pod_pair.id, *pod_pair.key, result.error,
                                      result.bytes), raw=json.dumps(result.__dict__))


def test_large_packets_to_service(request: pytest.FixtureRequest, k8s_cluster: Cluster,
                                  k8s_node: Node) -> None:
    """1 MiB over HTTP from every node's pod through the Service, to every backend."""
    skip_if_probes_unusable(k8s_cluster, k8s_node.name)
    skip_if_node_cannot_forward(k8s_cluster, k8s_node.name)
    results = k8s_cluster.service_http()[k8s_node.name]
    bad = [r for r in results if not r.ok]
    record(request, src=k8s_node.name, dst="service", network="pod",
           throughput_mbps=round(min(r.mbps for r in results), 1))
    if not bad:
        return
    unreachable = [n for n in k8s_cluster.node_names if n != k8s_node.name
                   and dx.pod_pair(k8s_cluster, k8s_node.name, n) is not None]
    per_node = len(results) // max(1, len(k8s_cluster.node_names))
    if unreachable and len(bad) <= per_node * len(unreachable):
        pytest.skip(f"{k8s_node.name}: {len(bad)} transfers through the Service failed, no more "
                    f"than its backends on nodes without pod connectivity "
                    f"({', '.join(unreachable)}); see test_pod_ping")
    svc = dx.service(k8s_cluster, k8s_cluster.service()[k8s_node.name])
    if svc is not None and svc.cause == "bridge-nf" and len(bad) <= per_node:
        pytest.skip(f"{k8s_node.name}: the transfers that failed went to its own node's backends, "
                    f"which fail for any request ({svc.title}); see test_service[{k8s_node.name}]")
    what = (f"{k8s_node.name}->service: {len(bad)} of {len(results)} 1 MiB transfers failed "
            f"({bad[0].error}, {bad[0].bytes} bytes)")
    expected = k8s_cluster.expected_mtu()
    small = {k: r for k, r in k8s_cluster.path_mtu("pod").items() if 0 < r.bytes < expected}
    if small and len(bad) < len(results):
        worst = min(r.bytes for r in small.values())
        culprits = sorted({n for k in small for n in k
                           if all(n in kk for kk in small)} or {n for k in small for n in k})
        fail(request, Diagnosis("mtu", dx.explain(
            "mtu", f"{what} while small requests answer; backends behind a path MTU of {worst} "
            f"< expected {expected} (pairs involving {', '.join(culprits)}) stall",
            limit=worst), tuple(culprits)),
            raw="\n".join(json.dumps(r.__dict__) for r in bad))
    fail(request, Diagnosis("unknown", dx.explain("unknown", what), (k8s_node.name,)),
         raw="\n".join(json.dumps(r.__dict__) for r in bad))


def test_path_mtu(request: pytest.FixtureRequest, k8s_cluster: Cluster, pod_pair: Pair) -> None:
    """Measured path MTU on every pair is at least the expected MTU."""
    skip_if_probes_unusable(k8s_cluster, *pod_pair.key)
    skip_if_pod_network_broken(k8s_cluster, pod_pair)
    result = k8s_cluster.path_mtu("pod")[pod_pair.key]
    expected = k8s_cluster.expected_mtu()
    record(request, src=pod_pair.src.node, dst=pod_pair.dst.node, network="pod",
           path_mtu=result.bytes)
    diagnosis = dx.mtu(result, expected, pod_pair.id)
    if diagnosis is not None:
        fail(request, diagnosis, raw=f"path MTU search {pod_pair.id}: largest {result.bytes}, "
             f"first lost {result.first_lost}, {result.probes} probes, {result.seconds}s")


def test_udp_8472(request: pytest.FixtureRequest, k8s_cluster: Cluster, pod_pair: Pair) -> None:
    """UDP throughput and loss across the overlay (VXLAN on UDP 8472 on the wire), iperf3."""
    skip_if_probes_unusable(k8s_cluster, *pod_pair.key)
    skip_if_node_cannot_forward(k8s_cluster, pod_pair.src.node)
    skip_if_node_cannot_forward(k8s_cluster, pod_pair.dst.node)
    check = k8s_cluster.udp()[pod_pair.key]
    r = check.overlay
    record(request, src=pod_pair.src.node, dst=pod_pair.dst.node, network="pod",
           throughput_mbps=round(r.mbps, 2), loss_pct=r.loss_pct)
    if check.node_port is not None and check.node_port.port_busy:
        request.node.user_properties.append(
            ("node_port_8472", "skipped: UDP 8472 is held by the CNI's VXLAN socket on "
                               f"{pod_pair.dst.node}; measured through the overlay instead"))
    node = check.node_port
    if node is not None and not node.port_busy and (not node.ok or node.loss_pct > 5.0):
        # The port is free (no CNI yet): node to node on 8472 itself is the decisive test.
        what = node.error or f"{node.loss_pct:g}% of UDP datagrams lost at {node.mbps:.1f} Mbit/s"
        fail(request, Diagnosis("vxlan-blocked", dx.explain(
            "vxlan-blocked", f"{pod_pair.id}: node to node on UDP 8472 itself fails ({what}): "
            "the VXLAN port is blocked between the nodes"), pod_pair.key, (pod_pair.id,)),
            raw=what)
    if r.ok and r.loss_pct <= 5.0:
        return
    host = k8s_cluster.ping("host").get(pod_pair.key)
    what = r.error or f"{r.loss_pct:g}% of UDP datagrams lost at {r.mbps:.1f} Mbit/s"
    if host is not None and host.ok:
        fail(request, Diagnosis("vxlan-blocked", dx.explain(
            "vxlan-blocked", f"{pod_pair.id}: UDP across the overlay fails ({what}) while "
            "node-to-node ping works: VXLAN (UDP 8472) is dropped between the nodes"),
            pod_pair.key, (pod_pair.id,)), raw=what)
    fail(request, Diagnosis("unknown", dx.explain("unknown", f"{pod_pair.id}: {what}"),
                            pod_pair.key, (pod_pair.id,)), raw=what)


def test_dns(request: pytest.FixtureRequest, k8s_cluster: Cluster, k8s_node: Node) -> None:
    """Cluster names and an external name resolve from every node's pod."""
    skip_if_probes_unusable(k8s_cluster, k8s_node.name)
    skip_if_node_cannot_forward(k8s_cluster, k8s_node.name)
    results = k8s_cluster.dns()[k8s_node.name]
    pod_ok = all(r.ok for k, r in k8s_cluster.ping("pod").items() if k8s_node.name in k)
    diagnosis = dx.dns_failure(k8s_node.name, results, pod_ok)
    if diagnosis is not None:
        fail(request, diagnosis, raw="\n".join(f"{r.name}: {r.rcode} {r.answers}" for r in results))


def test_service(request: pytest.FixtureRequest, k8s_cluster: Cluster, k8s_node: Node) -> None:
    """Pod to Service from every node, repeated, so both local and remote backends answer."""
    skip_if_probes_unusable(k8s_cluster, k8s_node.name)
    skip_if_node_cannot_forward(k8s_cluster, k8s_node.name)
    result = k8s_cluster.service()[k8s_node.name]
    record(request, src=k8s_node.name, dst="service", network="pod",
           loss_pct=round(100 * result.failures / result.attempts, 1))
    if result.ok:
        return
    where = k8s_cluster.backend.backend_node
    broken = [b for b in result.missing_backends if where(b) != k8s_node.name
              and dx.pod_pair(k8s_cluster, k8s_node.name, where(b)) is not None]
    if broken and len(broken) == len(result.missing_backends):
        pytest.skip(f"{k8s_node.name}: Service requests fail only towards backends without pod "
                    f"connectivity ({', '.join(broken)}); see test_pod_ping")
    diagnosis = dx.service(k8s_cluster, result)
    assert diagnosis is not None
    fail(request, diagnosis, raw=json.dumps(result.__dict__, default=str))


def test_egress(request: pytest.FixtureRequest, k8s_cluster: Cluster, k8s_node: Node) -> None:
    """Repeated egress connections: the failure rate from the pod versus the host network."""
    skip_if_probes_unusable(k8s_cluster, k8s_node.name)
    skip_if_node_cannot_forward(k8s_cluster, k8s_node.name)
    results = k8s_cluster.egress()
    pod, host = results[(k8s_node.name, "pod")], results[(k8s_node.name, "host")]
    record(request, src=k8s_node.name, dst="egress", network="pod",
           loss_pct=round(100 * pod.failure_rate, 1))
    diagnosis = dx.egress_failure(pod, host, k8s_node.name)
    if diagnosis is not None:
        fail(request, diagnosis, raw=f"pod failed ports: {list(pod.failed_ports)}\n"
             f"errors: {list(pod.errors)}")


def test_node_sysctls(request: pytest.FixtureRequest, k8s_cluster: Cluster,
                      k8s_node: Node) -> None:
    """net.ipv4.ip_forward and net.bridge.bridge-nf-call-iptables on every node."""
    skip_if_probes_unusable(k8s_cluster, k8s_node.name)
    check = k8s_cluster.node_checks()[k8s_node.name]
    problems = dx.sysctls(check)
    if problems:
        first = problems[0]
        if len(problems) > 1:
            first = Diagnosis(first.cause, " ".join(p.message for p in problems), first.nodes)
        fail(request, first, raw="\n".join(f"{k}={v}" for k, v in check.sysctls.items()))


def test_pod_cidr(request: pytest.FixtureRequest, k8s_cluster: Cluster, k8s_node: Node) -> None:
    """The Pod CIDR (and Service CIDR) do not overlap the node's addresses."""
    skip_if_probes_unusable(k8s_cluster, k8s_node.name)
    from pytest_k8snet.probes.nodecheck import cidr_overlaps

    check = k8s_cluster.node_checks()[k8s_node.name]
    t = k8s_cluster.targets
    addresses = [a for i in check.interfaces for a in i.addresses
                 if not i.name.startswith(("cni", "flannel", "veth", "cali", "cilium", "lo"))]
    diagnosis = dx.cidr(k8s_node.name, cidr_overlaps(addresses, list(t.pod_cidrs), t.service_cidr))
    if diagnosis is not None:
        fail(request, diagnosis, raw="\n".join(addresses))
