"""Node checks: each node's sysctls, addresses and links, the overlay its links show, and
kube-proxy's mode."""

from __future__ import annotations

from ..probes import nodecheck, proxymode, routeget
from .engine import Engine
from .readiness import ROUTE_LOOKUP_S, Readings, route_peers

# The overlay's UDP port when its encapsulation could not be detected (flannel's VXLAN).
VXLAN_PORT = 8472


def node_checks(engine: Engine, readings: Readings) -> dict[str, nodecheck.NodeCheckResult]:
    def one(node: str) -> nodecheck.NodeCheckResult:
        read = readings.node_checks.get(node)
        if read is not None:  # taken by the readiness check moments ago
            return nodecheck.parse(node, *read)
        timeout = engine.settings.timeout
        runs = engine.batch(engine.endpoint(node, "host"), "nodecheck", [
            ("sysctls", nodecheck.sysctl_argv(), timeout),
            ("addrs", nodecheck.addr_argv(), timeout),
            ("links", nodecheck.links_argv(), timeout),
            ("routes", routeget.script(route_peers(engine, node)),
             timeout + ROUTE_LOOKUP_S * len(engine.node_names)),
            ("proxy", proxymode.COMMAND, timeout)])
        return nodecheck.parse(node, runs["sysctls"].stdout, runs["addrs"].stdout,
                               runs["links"].stdout, runs["routes"].stdout,
                               runs["proxy"].stdout)

    return engine.each("nodecheck", engine.node_names, one)


def overlay_port(engine: Engine, readings: Readings, node: str) -> int | None:
    """The UDP port ``node``'s overlay uses on the wire, as detected from its links
    (VXLAN 8472 or 4789, Geneve 6081, WireGuard); None when it has no UDP
    encapsulation (IPIP, routed); 8472 (flannel's) when nothing could be detected."""
    checks = node_checks(engine, readings).get(node)
    enc = checks.encapsulation if checks is not None else None
    if enc is None or not enc.measured:
        return VXLAN_PORT
    return enc.udp_port
