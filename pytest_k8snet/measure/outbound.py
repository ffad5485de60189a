"""Outbound: names resolved from every pod, and connections out of the cluster (egress)."""

from __future__ import annotations

import zlib

from ..backends import Network
from ..probes import dns, egress
from .engine import Engine
from .readiness import PORT_RANGE, Readings

# Ports above each one asked for that curl may take instead (see egress()).
EGRESS_PORT_SLACK = 15
# When the endpoint's ip_local_port_range cannot be read: Linux's default.
DEFAULT_PORT_RANGE = (32768, 60999)


def dns_lookups(engine: Engine) -> dict[str, list[dns.DnsResult]]:
    """Every name from every node's pod: one exec per node, the names at once."""
    t = engine.backend.targets()
    # No external name (the egress target is an IP, or none): the judge says why.
    names = [*t.dns_names, *([t.external_name] if t.external_name else [])]
    # IPv6 or dual-stack: AAAA too, one result per name (resolved when either answers).
    rtypes = dns.record_types([t.service_ip, *t.pod_cidrs, *(n.ip for n in engine.nodes)])

    def key(node: str, name: str, rtype: str) -> tuple[str, ...]:
        return (node, name) if rtype == "A" else (node, name, rtype)

    def one(node: str) -> list[dns.DnsResult]:
        runs = engine.batch(engine.endpoint(node), "dns", [
            (key(node, name, rt), dns.argv(name, timeout=1, tries=2, rtype=rt), 6.0)
            for name in names for rt in rtypes])
        return [dns.merge([dns.parse(name, runs[key(node, name, rt)].stdout, rt)
                           for rt in rtypes]) for name in names]

    nodes = engine.node_names
    return engine.cache.once("dns", lambda: dict(zip(nodes, engine.map(one, nodes))))


def egress_checks(engine: Engine, readings: Readings
                  ) -> dict[tuple[str, Network], egress.EgressResult]:
    """Connections to the egress target from every node's pod and host, from chosen ports."""
    t = engine.backend.targets()
    url = t.egress_url
    attempts = engine.settings.egress_attempts
    if t.egress_skip:  # no egress target: nothing to measure, the judge says why
        return engine.cache.once("egress", dict)

    def one(key: tuple[str, Network]) -> egress.EgressResult:
        ep = engine.endpoint(key[0], key[1])
        # Read by the readiness check already (one exec fewer per endpoint).
        rng = readings.port_ranges.get((key[0], key[1]), "")
        if not rng.strip():
            _, rng, _ = engine.run(ep, ["cat", PORT_RANGE])
        port_range = egress.parse_port_range(rng) if rng.strip() else DEFAULT_PORT_RANGE
        # Seeded by endpoint: every run tries the same ports, so the same firewall
        # gives the same numbers and the same finding text.
        ports = egress.pick_ports(port_range, attempts,
                                  seed=zlib.crc32(f"{key[0]}/{key[1]}".encode()))
        # 3 s: one lost SYN is retransmitted after 1 s; a loaded 2-core machine (or a
        # busy NAT) must not look like a firewall. A filtered port still fails for sure.
        argv = egress.argv(url, ports, connect_timeout=3.0)
        # The same ports every run, so a port still in TIME_WAIT from the last run must not
        # drop an attempt (curl exit 45) and change the counts: let curl take the next free
        # port of a small range. Results stay keyed by the port asked for.
        for i, arg in enumerate(argv[:-1]):
            if arg == "--local-port":
                want = int(argv[i + 1])
                argv[i + 1] = f"{want}-{min(want + EGRESS_PORT_SLACK, port_range[1])}"
        _, out, _ = engine.run(ep, argv, 15)
        return egress.parse(url, port_range, out)

    networks: tuple[Network, ...] = ("pod", "host")
    keys = [(n, net) for n in engine.node_names for net in networks]
    return engine.each("egress", keys, one)
