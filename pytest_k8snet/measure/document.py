"""Measure first: one phase per run turns every probe into one plain, immutable document.

The document is what the judge (:mod:`pytest_k8snet.judge`) reads and what the results
file (``--k8s-results``) carries, so a finding can be recomputed from a results file
alone, and the unit tests judge documents captured from a lab under each fault.

Document (a JSON object; the results file has the same sections plus ``tests`` and more):

- ``nodes``; ``pairs`` (``"node-1->node-2"``, the pairs ``--k8s-pairs`` selected);
  ``pair_mode``; ``expensive`` ``{mode, pairs}``: ``mode`` ``all``, or ``cover:K`` with
  the pairs the expensive tier (1 MiB HTTP, UDP) measured (:mod:`.tiers`); ``expected_mtu``; ``expected_mtu_source`` (``flag``, ``pod interface`` or
  ``default 1500 (no pod MTU could be read)``); ``pod_mtu`` ``{node: probe pod eth0 MTU or
  null}``; ``thresholds`` ``{loss_pct}``
- ``encapsulation`` ``{node: {kind, udp_port, udp_ports, tunnels, bridged, bridges, cni,
  overhead, measured, description}}``: the node's overlay as its links show it
  (:func:`pytest_k8snet.probes.nodecheck.parse_links`)
- ``udp_receive_drops`` ``{node: datagrams or null}``: UDP datagrams the node's probe pod
  dropped at its own full socket buffers (``RcvbufErrors``) while UDP was measured: the
  path delivered them (a starved iperf3 server did not read them in time)
- ``readiness`` ``{node: [problem, ...]}``: when no node can run probes, nothing else is
  measured (every measurement section empty, ``expected_mtu`` null); ``service_backends`` ``{pod: node}``;
  ``dns_endpoints`` ``{ip: node}`` (only where the backend knows where DNS runs);
  ``targets`` ``{pod_cidrs, service_cidr, service_ip, egress_url}``
- ``ping``, ``path_mtu``, ``throughput``, ``http``, ``dns``, ``egress``, ``service``,
  ``node_checks``: one entry per probed subject (see :mod:`pytest_k8snet.report.results`)
- ``node_checks[].routes``: how the node's host network routes each peer's probe pod
  (``ip route get``, :mod:`pytest_k8snet.probes.routeget`); null where not looked up,
  absent in older documents (the judge then cannot tell a missing route from a firewall)
- ``ports``: the control-plane connects from every node's host network; ``nodeports``:
  the probe Service's NodePort on every other node, from every node's host network
  (``{src, kind: "nodeport", ip, port, peer: "the NodePort on node-2", state}``), absent
  in older documents
- ``node_checks[].kube_proxy`` ``{mode, source}``: kube-proxy's mode on the node
  (:mod:`pytest_k8snet.probes.proxymode`); null where not read, absent in older documents
- ``probe_failures``: probe runs that failed for a reason of their own, never evidence
  about the network: ``{measurement, key, failure, node, network, tool, exit_code,
  timed_out, detail}`` with ``failure`` one of :data:`pytest_k8snet.probes.iperf.FAILURE_KINDS`
- ``evidence`` ``{node: [{name, argv, exit_code, output}]}``: routes, neighbours, FDB,
  firewall rules with counters, links and MTUs, taken from the nodes a failing finding
  involves, after the probes and before anything was changed
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any

from .. import families
from .mtu import DEFAULT_MTU

if TYPE_CHECKING:
    from .cluster import Cluster

__all__ = ["document", "dumps", "expected_mtu_source", "sections"]

DEFAULT_MTU_SOURCE = f"default {DEFAULT_MTU} (no pod MTU could be read)"


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def _icmp_errors(r: Any) -> dict[str, Any]:
    """The ICMP errors that answered a ping's echoes (a REJECT rule, a router without a
    route), when any did: old cached results lack the fields."""
    kind = getattr(r, "error_kind", None)
    if kind is None:
        return {}
    return {"errors": int(getattr(r, "errors", 0) or 0), "error_kind": kind,
            "error_from": getattr(r, "error_from", None)}


def _udp(r: Any) -> dict[str, Any]:
    return {"mbps": round(r.mbps, 3), "loss_pct": r.loss_pct, "packets": r.packets,
            "error": r.error, "failure": r.failure}


def sections(m: dict[str, Any]) -> dict[str, Any]:
    """The measurement sections from a cluster's cache (``Cluster.measurements``)."""
    expected = m.get("expected-mtu")
    out: dict[str, Any] = {"ping": [], "path_mtu": [], "throughput": [], "http": [], "dns": [],
                           "egress": [], "service": [], "node_checks": [], "ports": [],
                           "encapsulation": {}}
    for network in ("pod", "host"):
        for (src, dst), r in m.get(f"ping-{network}-56", {}).items():
            out["ping"].append({"src": src, "dst": dst, "network": network,
                                "loss_pct": r.loss_pct, "rtt_ms": _round(r.rtt_avg_ms),
                                "transmitted": r.transmitted, "received": r.received,
                                "error": r.error, **_icmp_errors(r)})
        for (src, dst), r in m.get(f"pmtu-{network}", {}).items():
            out["path_mtu"].append({"src": src, "dst": dst, "network": network, "bytes": r.bytes,
                                    "expected": expected if network == "pod" else None,
                                    "first_lost": r.first_lost, "probes": r.probes,
                                    "seconds": r.seconds,
                                    "headers": r.headers,  # 28 IPv4, 48 IPv6
                                    # "udp": no DF ping crossed; DF UDP measured it
                                    "protocol": getattr(r, "protocol", "icmp")})
    # Pod to the other nodes' host network: the pod's own path out of its node and the
    # underlay, without the overlay. Not a test: what tells the overlay from the pod path.
    out["ping_pod_to_node"] = [
        {"src": src, "dst": dst, "loss_pct": r.loss_pct, "transmitted": r.transmitted,
         "received": r.received, "error": r.error, **_icmp_errors(r)}
        for (src, dst), r in m.get("ping-pod-host-56", {}).items()]
    for (src, dst), r in m.get("udp", {}).items():
        port = r.node_port
        out["throughput"].append({
            "src": src, "dst": dst, "network": "pod", **_udp(r.overlay),
            "attempts": [_udp(a) for a in r.attempts or (r.overlay,)],
            "node_port": None if port is None else {
                "port": port.port, **_udp(port), "port_busy": port.port_busy}})
    for (src, dst), r in m.get("http-1mib", {}).items():
        out["http"].append({"src": src, "dst": dst, "ok": r.ok, "mbps": round(r.mbps, 2),
                            **_plain(r)})
    for node, transfers in m.get("http-service", {}).items():
        # One 1 MiB transfer per Service backend (see service.service_http).
        for r in transfers:
            out["http"].append({"src": node, "dst": "service", "ok": r.ok,
                                "mbps": round(r.mbps, 2), **_plain(r)})
    for node, results in m.get("dns", {}).items():
        out["dns"] += [{"node": node, **_plain(r), "ok": r.ok} for r in results]
    for (node, network), r in m.get("egress", {}).items():
        out["egress"].append({"node": node, "network": network, "attempts": r.attempts,
                              "failures": r.failures, "failure_rate": round(r.failure_rate, 4),
                              "failed_ports": list(r.failed_ports),
                              "passed_ports": list(r.passed_ports),
                              "port_range": list(r.port_range), "errors": list(r.errors),
                              "url": r.url})
    for node, r in m.get("service", {}).items():
        rate = round(r.failures / r.attempts, 4) if r.attempts else 1.0
        out["service"].append({**_plain(r), "failure_rate": rate})
    for node, r in m.get("nodecheck", {}).items():
        out["node_checks"].append({k: v for k, v in _plain(r).items() if k != "encapsulation"})
        enc = r.encapsulation  # None: the links could not be read
        if enc is not None:
            out["encapsulation"][node] = enc.as_dict()
    out["nodeports"] = []
    for node, checks in m.get("ports", {}).items():
        for c in checks:
            # The NodePort connects run in the port probe's exec; test_nodeport reads them.
            out["nodeports" if c.kind == "nodeport" else "ports"].append(
                {"src": node, "kind": c.kind, "ip": c.ip, "port": c.port, "peer": c.peer,
                 "state": c.state})
    return out


def expected_mtu_source(flag: int | None, pod_mtus: dict[str, int | None]) -> str:
    """Where ``expected_mtu`` came from (mtu.expected_mtu): the flag, the smallest pod
    interface MTU, or a default that nobody measured, which the path-MTU verdicts say."""
    if flag:
        return "flag"
    if any(pod_mtus.values()):
        return "pod interface"
    return DEFAULT_MTU_SOURCE


def _backend_map(cluster: "Cluster") -> dict[str, str]:
    backend = cluster.backend
    return {b: backend.backend_node(b) for b in cluster.service_backends()}


def _dns_endpoints(cluster: "Cluster") -> dict[str, str]:
    # Where the cluster DNS endpoints run (pod IP -> node), for knock-on findings; a backend
    # that cannot tell (the lab's DNS is outside the cluster) gives nothing.
    return {str(ip): str(node) for ip, node in cluster.backend.dns_endpoints()}


def _expensive(tier: dict[str, Any] | None) -> dict[str, Any]:
    if not tier or tier.get("mode") == "all":
        return {"mode": "all"}
    return {"mode": tier["mode"], "pairs": [f"{a}->{b}" for a, b in tier["pairs"]]}


def _probes_run(cluster: "Cluster") -> bool:
    """Whether a probe runs on any selected node (readiness, measured once)."""
    return any(cluster.unusable(n) is None for n in cluster.node_names)


def document(cluster: "Cluster") -> dict[str, Any]:
    """Measure everything once per IP family the cluster has and return the document (see
    the module docstring and :mod:`pytest_k8snet.families`)."""
    fams = cluster.families
    primary = one_family(cluster)
    others = {}
    for fam in fams[1:]:
        other = cluster.for_family(fam)
        try:
            others[fam] = one_family(other)
        finally:
            other.close()
    return families.merge(primary, fams[0], others)


def one_family(cluster: "Cluster") -> dict[str, Any]:
    """Measure everything once, in the addresses ``cluster``'s backend gives."""
    started = time.monotonic()
    timings: dict[str, float] = {}
    steps: tuple[tuple[str, Callable[[], object]], ...] = (
        ("readiness", cluster.readiness), ("node_checks", cluster.node_checks),
        ("expected_mtu", cluster.expected_mtu), ("pod_mtu", cluster.pod_mtus),
        ("ping_pod", lambda: cluster.ping("pod")),
        ("ping_host", lambda: cluster.ping("host")),
        ("ping_pod_to_node", lambda: cluster.ping("pod", to="host")),
        ("path_mtu", lambda: cluster.path_mtu("pod")),
        ("http", cluster.large_http), ("service_http", cluster.service_http),
        ("service", cluster.service), ("udp", cluster.udp),
        ("udp_receive_drops", cluster.udp_receive_drops), ("dns", cluster.dns),
        ("egress", cluster.egress), ("ports", cluster.control_plane_ports))
    for name, step in steps:
        if name != "readiness" and not _probes_run(cluster):
            # No probe started on any node (an image no node could pull, say): every probe
            # would only fail on its own and read as 100% loss. Nothing is measured, and the
            # document says so by holding no measurement; readiness says why.
            break
        t0 = time.monotonic()
        step()
        timings[name] = round(time.monotonic() - t0, 2)
    readiness = cluster.readiness()
    expected = cluster.measurements.get("expected-mtu")
    t = cluster.targets
    doc: dict[str, Any] = {
        "nodes": list(cluster.node_names),
        "pairs": [f"{a}->{b}" for a, b in cluster.pairs()],
        "pair_mode": cluster.settings.pairs,
        # The expensive tier (measure/tiers.py): "all", or "cover:K" and the pairs sampled.
        "expensive": _expensive(cluster.measurements.get("expensive-pairs")),
        "expected_mtu": expected,
        "expected_mtu_source": None if expected is None else expected_mtu_source(
            cluster.settings.expect_mtu, cluster.measurements.get("pod-mtu") or {}),
        "pod_mtu": dict(cluster.measurements.get("pod-mtu") or {}),
        "udp_receive_drops": dict(cluster.measurements.get("udp-receive-drops") or {}),
        "thresholds": {"loss_pct": cluster.settings.loss_threshold},
        "readiness": {n: list(p) for n, p in readiness.items()},
        "host_unavailable": {n: why for n in cluster.node_names
                             if (why := cluster.backend.endpoint_unavailable(n, "host"))},
        "service_backends": _backend_map(cluster),
        "dns_endpoints": _dns_endpoints(cluster),
        "targets": {"pod_cidrs": list(t.pod_cidrs), "service_cidr": t.service_cidr,
                    "service_ip": t.service_ip, "egress_url": t.egress_url,
                    "external_name": t.external_name, "external_skip": t.external_skip,
                    "egress_skip": t.egress_skip},
        **sections(cluster.measurements),
        "probe_failures": cluster.noted_failures(),
        "evidence": {},  # filled by measure.evidence for the nodes the judgement names
    }
    doc["timings_s"] = timings
    doc["measured_s"] = round(time.monotonic() - started, 2)
    return doc


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, default=str)
