"""A generated measurement document of any size, with faults injected where asked.

No lab can hold 1,000 nodes on one machine, and the judge and the reports are pure
functions of the document: a document shaped like the measurement phase's
(:mod:`pytest_k8snet.measure.document`) is what they need to be measured and tested at
that size. ``benchmarks/big_document.py`` writes one and times the judge and the reports
on it; the tests judge a small one (60 nodes).

What is in it, per ordered pair: the cheap probes the measurement runs on every pair
(pod and node ping, pod to the peer's host network, the path-MTU search). The expensive
ones (1 MiB over HTTP, iperf3, a connect to the peer's kubelet and NodePort) run on the
ring pairs (each node to the next), as ``--k8s-pairs ring`` would have them: at 1,000
nodes their million pairs would take the cluster hours. Per node: readiness, sysctls and
links, DNS, egress, the Service.

Faults (:class:`Faults`): a rack cut (every pair between two groups of nodes gets no
reply, pod or host: their switches no longer route to each other), a lossy node (20% of
every pod ping through it lost, the host network clean), a node behind an underlay link
with a smaller MTU (path MTU 1350 on every pair through it).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

EXPECTED_MTU = 1450
SMALL_MTU = 1350
LOSS_PCT = 20.0


@dataclass(frozen=True)
class Faults:
    """Which faults to inject: node numbers are 1-based, racks are ``rack`` nodes each."""

    cut: tuple[int, int] | None = (1, 3)  # rack 1 cannot reach rack 3, both ways
    lossy: int | None = None  # node number (default: the middle one)
    mtu: int | None = None  # node number (default: three quarters in)
    extra: dict[str, Any] = field(default_factory=dict)


def node_name(i: int) -> str:
    return f"node-{i}"


def node_ip(i: int) -> str:
    return f"10.0.{i // 250}.{i % 250 + 1}"


def pod_cidr(i: int) -> str:
    return f"10.{64 + i // 256}.{i % 256}.0/24"


def pod_ip(i: int) -> str:
    return f"10.{64 + i // 256}.{i % 256}.2"


def racks(n: int, rack: int) -> list[list[str]]:
    """The nodes in racks of ``rack`` (the last one shorter when ``n`` does not divide)."""
    names = [node_name(i) for i in range(1, n + 1)]
    return [names[i:i + rack] for i in range(0, n, rack)]


def fault_nodes(n: int, rack: int, faults: Faults) -> dict[str, Any]:
    """Where each injected fault sits: ``cut`` (group A, group B), ``lossy``, ``mtu``."""
    groups = racks(n, rack)
    cut = None
    if faults.cut is not None:
        a, b = faults.cut
        if max(a, b) > len(groups) or a == b:
            raise ValueError(f"racks {a} and {b}: {n} nodes in racks of {rack} make "
                             f"{len(groups)} racks")
        cut = (groups[a - 1], groups[b - 1])
    lossy = faults.lossy if faults.lossy is not None else n // 2 + 1
    mtu = faults.mtu if faults.mtu is not None else (3 * n) // 4 + 1
    return {"cut": cut, "lossy": node_name(lossy) if lossy else None,
            "mtu": node_name(mtu) if mtu else None}


def _ping(src: str, dst: str, network: str, received: int, sent: int) -> dict[str, Any]:
    loss = round(100.0 * (sent - received) / sent, 1)
    return {"src": src, "dst": dst, "network": network, "loss_pct": loss,
            "rtt_ms": 0.31 if received else None, "transmitted": sent, "received": received,
            "error": None}


def _pmtu(src: str, dst: str, got: int) -> dict[str, Any]:
    # A dead path: not even the smallest DF ping crosses (the search's first probe lost).
    first_lost = None if got >= EXPECTED_MTU else (got + 1 if got else 68)
    return {"src": src, "dst": dst, "network": "pod", "bytes": got, "expected": EXPECTED_MTU,
            "first_lost": first_lost, "probes": 1 if got >= EXPECTED_MTU else 12,
            "seconds": 0.09, "headers": 28, "protocol": "icmp"}


def _pairs(names: Sequence[str]) -> Iterator[tuple[str, str]]:
    for a in names:
        for b in names:
            if a != b:
                yield a, b


def _node_entries(i: int, n: int) -> dict[str, Any]:
    name = node_name(i)
    return {
        "node_checks": {
            "node": name, "routes": None,
            "sysctls": {"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1",
                        "net.ipv4.ip_local_port_range": "32768 60999"},
            "interfaces": [
                {"name": "lo", "mtu": 65536, "addresses": ["127.0.0.1/8"]},
                {"name": "eth0", "mtu": 1500, "addresses": [f"{node_ip(i)}/16"]},
                {"name": "cni0", "mtu": EXPECTED_MTU, "addresses": [
                    pod_cidr(i).replace(".0/24", ".1/24")]},
                {"name": "flannel.1", "mtu": EXPECTED_MTU, "addresses": [
                    pod_cidr(i).replace("/24", "/32")]}],
            "kube_proxy": {"mode": "iptables", "source": "kube-proxy's /proxyMode"}},
        "encapsulation": {
            "kind": "vxlan", "udp_port": 8472, "udp_ports": [8472],
            "tunnels": [{"name": "flannel.1", "kind": "vxlan", "port": 8472,
                         "mtu": EXPECTED_MTU}], "bridged": True, "bridges": ["cni0"],
            "cni": "flannel", "overhead": 50, "measured": True,
            "description": "flannel: vxlan flannel.1 UDP 8472, bridged (cni0)"},
        "dns": [{"node": name, "name": q, "rcode": "NOERROR", "answers": [a], "query_ms": 1,
                 "server": "10.96.0.10", "rtype": "A", "ok": True}
                for q, a in (("kubernetes.default.svc.cluster.local", "10.96.0.1"),
                             ("k8snet-probe.default.svc.cluster.local", "10.96.100.1"),
                             ("world.example.com", "198.18.0.10"))],
        "egress": [{"node": name, "network": net, "attempts": 50, "failures": 0,
                    "failure_rate": 0.0, "failed_ports": [], "passed_ports": [],
                    "port_range": [32768, 60999], "errors": [],
                    "url": "http://198.18.0.10:80/"} for net in ("pod", "host")],
        "service": {"node": name, "attempts": 12, "failures": 0,
                    "answered_by": {f"k8snet-probe-{node_name((i + k) % n + 1)}": 1
                                    for k in range(12)},
                    "missing_backends": [], "errors": [], "failure_rate": 0.0},
        "service_http": {"src": name, "dst": "service", "ok": True, "mbps": 700.0,
                         "url": "http://10.96.100.1:80/1mib", "exit_code": 0,
                         "http_code": 200, "bytes": 1048576, "expected_bytes": 1048576,
                         "seconds": 0.012, "remote_ip": "10.96.100.1", "error": None},
    }


def _ring_entries(i: int, j: int, dead: bool, lossy: bool) -> dict[str, Any]:
    """HTTP, iperf3 and the kubelet and NodePort connects from node i to node j."""
    src, dst = node_name(i), node_name(j)
    http: dict[str, Any] = {"src": src, "dst": dst, "ok": not dead, "mbps": 0.0 if dead else
                            90.0, "url": f"http://{pod_ip(j)}:8080/1mib",
                            "exit_code": 28 if dead else 0, "http_code": 0 if dead else 200,
                            "bytes": 0 if dead else 1048576, "expected_bytes": 1048576,
                            "seconds": 5.0 if dead else 0.09, "remote_ip": pod_ip(j),
                            "error": "Connection timed out after 5001 milliseconds" if dead
                            else None}
    loss = 0.0 if dead else 18.0 if lossy else 0.0
    sample = {"mbps": 0.0 if dead else 9.9, "loss_pct": 100.0 if dead else loss,
              "packets": 0 if dead else 1238,
              "error": "unable to connect to server - server may have stopped running "
                       "or use a different port, firewall issue, etc.: Connection timed out"
              if dead else None, "failure": "network" if dead else None}
    udp = {"src": src, "dst": dst, "network": "pod", **sample, "attempts": [sample],
           "node_port": None}
    state = "timeout" if dead else "open"
    ports = [{"src": src, "kind": "tcp", "ip": node_ip(j), "port": 10250,
              "peer": f"the kubelet on {dst}", "state": state}]
    nodeport = {"src": src, "kind": "nodeport", "ip": node_ip(j), "port": 31535,
                "peer": f"the NodePort on {dst}", "state": state}
    return {"http": http, "throughput": udp, "ports": ports, "nodeport": nodeport}


def generate(n: int = 1000, rack: int = 20, faults: Faults | None = None) -> dict[str, Any]:
    """The measurement document of an ``n``-node cluster in racks of ``rack`` nodes."""
    faults = faults if faults is not None else Faults()
    where = fault_nodes(n, rack, faults)
    names = [node_name(i) for i in range(1, n + 1)]
    cut: set[tuple[str, str]] = set()
    if where["cut"] is not None:
        a, b = where["cut"]
        cut = {(x, y) for x in a for y in b} | {(y, x) for x in a for y in b}
    lossy, small = where["lossy"], where["mtu"]
    doc: dict[str, Any] = {
        "schema": "pytest-k8snet/results", "version": 1, "plugin_version": "0.1.0",
        "note": f"generated by tests/bigdoc.py: {n} nodes in racks of {rack}; faults: "
                + json.dumps({k: v for k, v in where.items()}),
        "nodes": names, "pairs": [f"{a}->{b}" for a, b in _pairs(names)],
        "pair_mode": "all", "expected_mtu": EXPECTED_MTU,
        "expected_mtu_source": "pod interface",
        "pod_mtu": {x: EXPECTED_MTU for x in names},
        "udp_receive_drops": {x: 0 for x in names}, "thresholds": {"loss_pct": 5.0},
        "readiness": {x: [] for x in names}, "host_unavailable": {},
        "service_backends": {f"k8snet-probe-{x}": x for x in names},
        "dns_endpoints": {"10.64.0.10": names[0], "10.64.1.10": names[1 % n]},
        "targets": {"pod_cidrs": ["10.64.0.0/10"], "service_cidr": "10.96.0.0/12",
                    "service_ip": "10.96.100.1", "egress_url": "http://198.18.0.10:80/",
                    "external_name": "world.example.com", "external_skip": "",
                    "egress_skip": ""},
        "ping": [], "path_mtu": [], "ping_pod_to_node": [], "http": [], "throughput": [],
        "dns": [], "egress": [], "service": [], "node_checks": [], "ports": [],
        "nodeports": [], "encapsulation": {}, "probe_failures": [], "evidence": {},
    }
    for net in ("pod", "host"):
        for a, b in _pairs(names):
            if (a, b) in cut:
                doc["ping"].append(_ping(a, b, net, 0, 3))
            elif net == "pod" and lossy in (a, b):
                # Re-measured with a bigger sample, as the probes do on a lossy pair.
                doc["ping"].append(_ping(a, b, net, 8, 10))
            else:
                doc["ping"].append(_ping(a, b, net, 3, 3))
    for a, b in _pairs(names):
        dead = (a, b) in cut
        doc["ping_pod_to_node"].append(
            {k: v for k, v in _ping(a, b, "pod", 0 if dead else 3, 3).items()
             if k not in ("network", "rtt_ms")})
        doc["path_mtu"].append(_pmtu(a, b, 0 if dead else SMALL_MTU if small in (a, b)
                                     else EXPECTED_MTU))
    for i in range(1, n + 1):
        name = node_name(i)
        e = _node_entries(i, n)
        doc["node_checks"].append(e["node_checks"])
        doc["encapsulation"][name] = e["encapsulation"]
        doc["dns"] += e["dns"]
        doc["egress"] += e["egress"]
        doc["service"].append(e["service"])
        doc["ports"].append({"src": name, "kind": "tcp", "ip": "10.0.0.1", "port": 6443,
                             "peer": "the API server", "state": "open"})
        j = i % n + 1
        if j != i:
            r = _ring_entries(i, j, (name, node_name(j)) in cut, lossy in (name, node_name(j)))
            doc["http"].append(r["http"])
            doc["throughput"].append(r["throughput"])
            doc["ports"] += r["ports"]
            doc["nodeports"].append(r["nodeport"])
        doc["http"].append(e["service_http"])
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=60)
    parser.add_argument("--rack", type=int, default=20)
    parser.add_argument("out")
    args = parser.parse_args(argv)
    with open(args.out, "w") as fh:
        json.dump(generate(args.nodes, args.rack), fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
