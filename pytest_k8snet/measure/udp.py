"""UDP: iperf3 across every pair through the overlay, and node to node on the overlay's port.

Batched: per round, one exec per destination starts the servers for all its sources (a
port per source) and one exec per source runs its clients, UDP_CLIENT_PARALLEL at a time,
each retrying a refused connect while its server comes up. Node to node all sources share
the overlay port on a destination, so there a loop of one-shot servers takes the clients
one after another (a client told "busy" or refused tries again).

A suspect first sample (loss, or cut short by the probe itself) is measured again, longer,
before anyone calls the pair lossy; the threshold that fails a pair is the judge's
(``--k8s-loss-threshold``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..backends import Network
from ..backends.family import FamilyBackend
from ..probes import batch, iperf
from . import tiers
from .engine import BatchItem, Engine, PairKey
from .node_checks import VXLAN_PORT, overlay_port
from .readiness import Readings

IPERF_BASE_PORT = 5201
# Rounds of the overlay measurement at most (see _again): a dual-stack cluster's second
# family takes the ports after them, so that a one-shot server the first family's round
# left idling (its client failed) never answers the other family's client.
MAX_ROUNDS = 3
# Every UDP client sends at its rate, so fewer of them run at a time than other probes.
UDP_CLIENT_PARALLEL = 8
# What all sources offer at once stays bounded whatever N, or a big cluster (and the 2-core
# lab) drops datagrams because of the probes themselves: at most UDP_TOTAL_MBPS across the
# cluster, so each flow gets 10 Mbit/s on small clusters and less on big ones (loss and
# reachability need few datagrams; at least UDP_MIN_KBPS, ~125 datagrams a second).
UDP_TOTAL_MBPS = 240.0
UDP_MIN_KBPS = 1000
# A sample above this loss (percent) is measured again, longer: it tells loss from noise.
SUSPECT_LOSS_PCT = 1.0
UDP_REMEASURE_SECONDS = 3.0


@dataclass(frozen=True)
class UdpCheck:
    """UDP 8472 across a pair: through the overlay (pod) and node to node on the port itself.

    ``overlay`` is the decisive measurement; ``attempts`` every overlay run in order (a
    suspect first run is measured again, longer, before anyone calls the pair lossy).
    """

    overlay: iperf.UdpResult
    node_port: iperf.UdpResult | None
    attempts: tuple[iperf.UdpResult, ...] = ()


class _Sampler:
    """One round of iperf3 runs at a time over chosen pairs, pod to pod or node to node."""

    def __init__(self, engine: Engine, wire: dict[str, int | None]) -> None:
        self.engine = engine
        self.wire = wire  # node -> its overlay's UDP port (node to node runs only there)
        self.index = {n: i for i, n in enumerate(engine.node_names)}
        self.first_round = MAX_ROUNDS if isinstance(engine.backend, FamilyBackend) else 0

    def sample(self, pairs: dict[PairKey, float], network: Network, attempt: int
               ) -> dict[PairKey, iperf.UdpResult]:
        """Every pair of ``pairs`` for its seconds, all at once; ``attempt`` picks the ports
        so that a server left over from the round before is never in the way."""
        engine, wire, index = self.engine, self.wire, self.index
        timeout = engine.settings.timeout
        node_port = network == "host"
        by_dst: dict[str, list[PairKey]] = {}
        by_src: dict[str, list[PairKey]] = {}
        for key in pairs:
            by_dst.setdefault(key[1], []).append(key)
            by_src.setdefault(key[0], []).append(key)
        longest = max(pairs.values())
        step = longest + 2.0  # one client run, start-up and report included
        lane = max(batch.lane_length(len(v), UDP_CLIENT_PARALLEL) for v in by_src.values())
        serial = max(len(v) for v in by_dst.values()) if node_port else 1
        # Servers wait for the last client of the slowest source (node to node: for
        # every client in turn); one that never hears from its client ends idle. 10 s of
        # slack either way: on a starved machine an exec can start seconds late.
        idle = int(10 + step * (serial if node_port else lane))
        retry_for = 10.0 + (step * serial if node_port else 0.0)

        def port(key: PairKey) -> int:
            if node_port:
                return wire.get(key[1]) or VXLAN_PORT
            return IPERF_BASE_PORT + (self.first_round + attempt) * len(index) + index[key[0]]

        def servers(node: str) -> str:
            """Shell that starts, in the background, the servers for every client
            coming to ``node``; they end after their test or when idle."""
            group = by_dst.get(node, [])
            if not group:
                return ""
            if node_port:
                one = " ".join(iperf.server_argv(wire.get(node) or VXLAN_PORT,
                                                 idle_timeout=idle))
                return (f"( k8snet_i=0; while [ $k8snet_i -lt {len(group)} ]; do {one}; "
                        "k8snet_i=$((k8snet_i + 1)); done ) >/dev/null 2>&1 </dev/null &")
            return "\n".join(" ".join(iperf.server_argv(port(k), idle_timeout=idle))
                             + " >/dev/null 2>&1 </dev/null &" for k in group)

        flows = sum(min(UDP_CLIENT_PARALLEL, len(v)) for v in by_src.values())
        kbps = max(UDP_MIN_KBPS, min(10_000, int(UDP_TOTAL_MBPS * 1000 / max(1, flows))))
        rate = "10M" if kbps >= 10_000 else f"{kbps}K"

        def endpoint(node: str) -> dict[PairKey, iperf.UdpResult]:
            """One exec in ``node``: its servers for the others, then its clients."""
            ips = {k: engine.endpoint(k[1], network).ip for k in by_src.get(node, [])}
            items: list[BatchItem] = []
            for k in by_src.get(node, []):
                argv = iperf.client_argv(ips[k], port(k), seconds=pairs[k], bandwidth=rate)
                job = batch.Job(str(k[1]), iperf.retry_command(argv, retry_for), tuple(argv))
                items.append((k, job, retry_for + timeout + 3 + pairs[k]))
            runs = engine.batch(engine.endpoint(node, network), "udp", items,
                                parallel=UDP_CLIENT_PARALLEL, setup=servers(node))
            return {k: iperf.parse(ips[k], port(k), r.stdout, r.stderr, r.exit_code,
                                   r.timed_out) for k, r in runs.items()}

        out: dict[PairKey, iperf.UdpResult] = {}
        nodes = [n for n in index if n in by_src or n in by_dst]
        # A pool of its own, one thread per endpoint: every exec of a round must run at
        # once (its servers wait for the others' clients), never queue behind another.
        for part in engine.map(endpoint, nodes, workers=max(1, len(nodes))):
            out.update(part)
        return out


def _again(attempts: list[iperf.UdpResult]) -> float | None:
    """Seconds for one more sample of a suspect pair, None when it is decided."""
    last = attempts[-1]
    if len(attempts) >= MAX_ROUNDS:
        return None
    if last.ok and last.loss_pct > SUSPECT_LOSS_PCT:
        return UDP_REMEASURE_SECONDS  # loss: a longer sample tells it from noise
    if last.failure in (iperf.INTERRUPTED, iperf.TIMEOUT, iperf.EXEC_ERROR):
        return 1.0  # the probe's own trouble says nothing yet: run it again
    if last.failure == iperf.NETWORK and len(attempts) < 2:
        return 1.0  # nothing crossed: once more, so a starved connect is not "blocked"
    return None


def _decisive(attempts: list[iperf.UdpResult]) -> iperf.UdpResult:
    """The decisive run: the least lossy that crossed. Loss that is real shows in every
    sample; a burst of noise (a starved CPU, a neighbour's build) does not."""
    crossed = [r for r in attempts if r.ok]
    if crossed:
        return min(crossed, key=lambda r: r.loss_pct)
    network = [r for r in attempts if r.failure == iperf.NETWORK]
    return network[-1] if network else attempts[-1]


def _held(engine: Engine, node: str, port: int) -> iperf.UdpResult:
    """The node-to-node result towards ``node`` when a socket there holds ``port``."""
    return iperf.UdpResult(
        engine.endpoint(node, "host").ip, port, 0.0, 100.0, None, 0,
        f"not tested node to node: a socket on {node} holds UDP {port} (listed in "
        f"/proc/net/udp), so a test server cannot bind it ({iperf.PORT_BUSY})",
        iperf.NETWORK)


def _rcvbuf_errors(engine: Engine, nodes: list[str]) -> dict[str, int | None]:
    def one(node: str) -> int | None:
        res = engine.endpoint(node).run(["cat", iperf.SNMP], engine.settings.timeout)
        return iperf.receive_buffer_errors(res.stdout) if res.ok else None
    return dict(zip(nodes, engine.map(one, nodes)))


def udp(engine: Engine, readings: Readings) -> dict[PairKey, UdpCheck]:
    """iperf3 UDP across every pair through the overlay, and node to node on the UDP port
    the destination's overlay uses (node_checks.overlay_port; none: not measured)."""
    keys = tiers.expensive(engine, readings)
    wire: dict[str, int | None] = {}  # filled by compute, read by the sampler
    sampler = _Sampler(engine, wire)
    index = sampler.index

    def compute() -> dict[PairKey, UdpCheck]:
        if not keys:
            engine.cache.once("udp-receive-drops", dict)
            return {}
        # The receivers' own socket-buffer drops, before (readiness read them, no UDP
        # has reached the probe pods since) and after every round: the judge does not
        # call datagrams lost that the path delivered to a pod too starved to read them.
        receivers = sorted({k[1] for k in keys}, key=lambda n: index.get(n, 0))
        before: dict[str, int | None] = {n: readings.rcvbuf_errors.get(n) for n in receivers}
        unread = [n for n, v in before.items() if v is None]
        if unread:
            before.update(_rcvbuf_errors(engine, unread))
        # Node to node only towards nodes whose overlay has a UDP port (IPIP and routed
        # pod networks have none to test); the judge says what was detected.
        wire.update({n: overlay_port(engine, readings, n) for n in engine.node_names})
        on_wire = {k: 1.0 for k in keys if wire.get(k[1])}
        # Where a socket already holds the port (the overlay's own VXLAN socket, on
        # nearly every node), no test server can bind it: said from the readiness
        # reading of /proc/net/udp instead of 31 clients queueing for a server that
        # cannot start (that queue cost more than the overlay measurement itself).
        held = {k: _held(engine, k[1], wire.get(k[1]) or VXLAN_PORT) for k in on_wire
                if wire.get(k[1]) in readings.udp_bound.get(k[1], ())}
        on_wire = {k: v for k, v in on_wire.items() if k not in held}

        def node_to_node() -> dict[PairKey, iperf.UdpResult]:
            found = sampler.sample(on_wire, "host", 0) if on_wire else {}
            found.update(held)
            redo = {k: 1.0 for k, r in found.items()
                    if r.failure not in (None, iperf.NETWORK, iperf.TOOL_MISSING)}
            if redo:
                found.update(sampler.sample(redo, "host", 1))
            return found

        # Node to node (host endpoints, the overlay's own port) runs alongside the
        # overlay rounds (pod endpoints, other ports): neither waits for the other.
        with ThreadPoolExecutor(max_workers=1) as side:
            later = side.submit(node_to_node)
            attempts: dict[PairKey, list[iperf.UdpResult]] = {k: [] for k in keys}
            pending: dict[PairKey, float] = {k: 1.0 for k in keys}
            round_ = 0
            while pending:
                for k, r in sampler.sample(pending, "pod", round_).items():
                    attempts[k].append(r)
                round_ += 1
                pending = {k: sec for k in pending for sec in [_again(attempts[k])]
                           if sec is not None}
            node_port = later.result()
        after = _rcvbuf_errors(engine, receivers)
        drops = {n: (a - b if a is not None and b is not None and a >= b else None)
                 for n in receivers for a, b in [(after.get(n), before.get(n))]}
        engine.cache.once("udp-receive-drops", lambda: drops)
        return {k: UdpCheck(_decisive(attempts[k]), node_port.get(k), tuple(attempts[k]))
                for k in keys}

    return engine.cache.once("udp", compute)


def udp_receive_drops(engine: Engine, readings: Readings) -> dict[str, int | None]:
    """Per receiving node: datagrams its probe pod's own sockets dropped (UDP
    RcvbufErrors) while :func:`udp` measured; None where they could not be read."""
    udp(engine, readings)
    return engine.cache.once("udp-receive-drops", dict)
