"""Readiness: can probes run on each node, and what the first exec there already read.

Any command proves a probe runs, so the readiness exec of each endpoint also reads what
later measurements need (an exec fewer per endpoint each): the local port range (egress),
the pod's MTU (expected MTU), its UDP receive-buffer drops so far (the UDP check's
"before"), and on the host the node checks' sysctls, addresses and links, and the UDP
ports something already holds there, and how it routes each peer's probe pod
(``ip route get``: a missing route versus a firewall). They are kept in :class:`Readings`.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from threading import Lock

from ..backends import BackendError, Network
from ..probes import iperf, nodecheck, proxymode, routeget
from ..text import shorten
from .engine import Engine

PORT_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"
READY_POD = (f"cat {PORT_RANGE}; cat /sys/class/net/eth0/mtu 2>/dev/null || true; "
             f"cat {iperf.SNMP} 2>/dev/null || true")
READY_SEP = "==k8snet-ready=="
READY_HOST = (f"cat {PORT_RANGE}; echo {READY_SEP}; {nodecheck.sysctl_argv()[2]}; "
              f"echo {READY_SEP}; {shlex.join(nodecheck.addr_argv())} 2>/dev/null; "
              f"echo {READY_SEP}; {shlex.join(nodecheck.links_argv())} 2>/dev/null; "
              f"echo {READY_SEP}; {nodecheck.UDP_SOCKETS_COMMAND} 2>/dev/null; "
              f"echo {READY_SEP}; {proxymode.COMMAND}")
NOT_READY = "node is NotReady"
# The host readiness exec looks up a route per peer, one after another (``ip route get``,
# a process each): its bound grows with the peers, or a 128-node lab on a busy 2-core
# machine reads a node whose exec was only slow as one that "does not run commands".
ROUTE_LOOKUP_S = 0.2


@dataclass
class Readings:
    """What the readiness execs read, by node; missing where that exec did not run or fail."""

    # (node, network) -> the first line of ip_local_port_range.
    port_ranges: dict[tuple[str, str], str] = field(default_factory=dict)
    # node -> its probe pod's eth0 MTU.
    pod_mtus: dict[str, int] = field(default_factory=dict)
    # node -> (sysctls, addresses, links, route lookups, kube-proxy mode) output for
    # nodecheck.parse.
    node_checks: dict[str, tuple[str, str, str, str, str]] = field(default_factory=dict)
    # node -> the UDP ports something holds in its host network (from /proc/net/udp).
    udp_bound: dict[str, frozenset[int]] = field(default_factory=dict)
    # node -> its probe pod's UDP RcvbufErrors.
    rcvbuf_errors: dict[str, int] = field(default_factory=dict)
    lock: Lock = field(default_factory=Lock)


def readiness(engine: Engine, readings: Readings) -> dict[str, list[str]]:
    """Per node: what keeps it from being a healthy, probeable node (empty when fine)."""
    def one(node: str) -> list[str]:
        problems = list(engine.node(node).problems)
        if not engine.node(node).ready:
            problems.insert(0, NOT_READY)
        networks: tuple[Network, ...] = ("pod", "host")
        if engine.backend.endpoint_unavailable(node, "host"):
            # Not admitted: the pod checks run; host checks skip quoting the denial.
            networks = ("pod",)
        for net in networks:
            argv = ["sh", "-c", ready_host(engine, node) if net == "host" else READY_POD]
            timeout = engine.settings.timeout + (
                ROUTE_LOOKUP_S * len(engine.node_names) if net == "host" else 0.0)
            res = engine.endpoint(node, net).run_patiently(argv, timeout)
            if res.ok or (res.timed_out and res.stdout.strip()):
                # Cut off by its bound after it printed: the probe runs commands (slowly,
                # on a starved machine); what it did not read, node_checks reads again.
                _keep(readings, node, net, res.stdout)
            elif res.timed_out:
                problems.append(f"{net}-network probe does not run commands: the readiness "
                                f"command did not finish in {res.seconds:.0f} s (twice)")
            else:
                problems.append(f"{net}-network probe does not run commands: "
                                f"{shorten((res.stderr or res.stdout).strip(), 200)}")
        return problems

    return engine.each("ready", engine.node_names, one)


def route_peers(engine: Engine, node: str) -> list[routeget.Peer]:
    """The peers whose probe pod ``node`` looks a route up for: every other selected node
    with a started pod probe."""
    peers = []
    for peer in engine.node_names:
        try:
            ip = engine.endpoint(peer, "pod").ip if peer != node else ""
        except BackendError:
            continue  # no pod probe there: nothing to route to
        if ip:
            n = engine.node(peer)
            peers.append(routeget.Peer(peer, ip, n.ip, tuple(n.pod_cidrs)))
    return peers


def ready_host(engine: Engine, node: str) -> str:
    """The host readiness exec: the node checks' reads and the peers' route lookups."""
    return (f"{READY_HOST}; echo {READY_SEP}; "
            f"{routeget.script(route_peers(engine, node))}; true")


def _keep(readings: Readings, node: str, net: Network, stdout: str) -> None:
    lines = stdout.splitlines()
    parts = stdout.split(READY_SEP + "\n")
    with readings.lock:
        readings.port_ranges[(node, net)] = lines[0] if lines else ""
        if net == "host" and len(parts) == 7:
            readings.node_checks[node] = (parts[1], parts[2], parts[3], parts[6], parts[5])
            readings.udp_bound[node] = nodecheck.bound_udp_ports(parts[4])
        if net == "pod" and len(lines) > 1 and lines[1].strip().isdigit():
            readings.pod_mtus[node] = int(lines[1])
        errors = iperf.receive_buffer_errors(stdout) if net == "pod" else None
        if errors is not None:
            readings.rcvbuf_errors[node] = errors


def unusable(engine: Engine, readings: Readings, node: str) -> str | None:
    """Why probes cannot run on ``node`` (None when they can). NotReady alone is fine:
    the host-network probe still runs there."""
    problems = [p for p in readiness(engine, readings)[node] if p != NOT_READY]
    return problems[0] if problems else None
