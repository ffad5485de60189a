"""The cluster under test: endpoints, pairs, and every measurement, taken concurrently once.

Tests ask for a measurement of one pair; the first ask measures *all* pairs at
once on a thread pool and caches the lot, so a suite of N parametrized tests
waits on the network once per kind of probe, not once per test. Under xdist the
cache is a file shared by the workers (first one measures, under a file lock).
"""

from __future__ import annotations

import json
import pickle
import random
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock, local
from typing import TYPE_CHECKING, Any, TypeVar

from filelock import FileLock

from .backends import Backend, ClusterTargets, Endpoint, ExecResult, Network, Node
from .probes import dns, egress, http, iperf, nodecheck, pathmtu, ping, ports
from .settings import Settings

if TYPE_CHECKING:
    from .findings import Judgement

T = TypeVar("T")
K = TypeVar("K")
PairKey = tuple[str, str]
ONE_MIB = 1024 * 1024
IPERF_BASE_PORT = 5201
EGRESS_PORT_SLACK = 15


@dataclass(frozen=True)
class Pair:
    """Two endpoints on one network; ``id`` reads like ``node-1->node-2``."""

    src: Endpoint
    dst: Endpoint

    @property
    def network(self) -> Network:
        return self.src.network

    @property
    def id(self) -> str:
        return f"{self.src.node}->{self.dst.node}"

    @property
    def key(self) -> PairKey:
        return (self.src.node, self.dst.node)

    def __str__(self) -> str:
        return f"{self.id} ({self.network})"


@dataclass(frozen=True)
class ServiceResult:
    """Repeated requests from one node's pod to the Service VIP."""

    node: str
    attempts: int
    failures: int
    answered_by: dict[str, int]
    missing_backends: tuple[str, ...]
    errors: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.failures == 0


@dataclass(frozen=True)
class UdpCheck:
    """UDP 8472 across a pair: through the overlay (pod) and node to node on the port itself.

    ``overlay`` is the decisive measurement; ``attempts`` every overlay run in order (a
    suspect first run is measured again, longer, before anyone calls the pair lossy).
    """

    overlay: iperf.UdpResult
    node_port: iperf.UdpResult | None
    attempts: tuple[iperf.UdpResult, ...] = ()


# A first sample above this loss (percent) or cut short by the probe itself is measured
# again; the threshold that fails a pair is the ``loss_threshold`` setting (see measure.py).
SUSPECT_LOSS_PCT = 1.0
UDP_REMEASURE_SECONDS = 3.0


def select_pairs(names: Sequence[str], mode: str) -> list[PairKey]:
    """Ordered pairs for ``all``, ``ring`` or ``sample:K`` (deterministic for a node set)."""
    names = list(names)
    if len(names) < 2:
        return []
    if mode == "ring":
        return [(names[i], names[(i + 1) % len(names)]) for i in range(len(names))]
    every = [(a, b) for a in names for b in names if a != b]
    if mode.startswith("sample:"):
        k = min(int(mode.split(":", 1)[1]), len(every))
        rng = random.Random(",".join(names))  # same sample in every xdist worker
        chosen = set(rng.sample(every, k))
        return [p for p in every if p in chosen]
    return every


def node_matches(node: Node, selector: str | None) -> bool:
    if not selector:
        return True
    key, _, value = selector.partition("=")
    return node.labels.get(key) == value


@dataclass
class Cluster:
    """What ``k8s_cluster`` gives: the backend with probes up, plus cached measurements."""

    backend: Backend
    settings: Settings
    nodes: list[Node]
    all_nodes: list[Node]
    shared_dir: Path | None = None
    measurements: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    probe_count: int = 0
    _lock: Lock = field(default_factory=Lock)
    _kind_locks: dict[str, Lock] = field(default_factory=dict)
    _pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=48))
    # Probe runs that failed for a reason of their own (tool missing, exec error, timeout):
    # kind -> key -> failures. Filled while measuring, read into the measurement document.
    probe_failures: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    _tag: Any = field(default_factory=local)
    _judgement: "Judgement | None" = None

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]

    @property
    def targets(self) -> ClusterTargets:
        return self.backend.targets()

    def endpoint(self, node: str, network: Network = "pod") -> Endpoint:
        return self.backend.endpoint(node, network)

    def pair(self, src: str, dst: str, network: Network = "pod") -> Pair:
        return Pair(self.endpoint(src, network), self.endpoint(dst, network))

    def pairs(self, mode: str | None = None) -> list[PairKey]:
        return select_pairs(self.node_names, mode or self.settings.pairs)

    def node(self, name: str) -> Node:
        for n in self.all_nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- plumbing -------------------------------------------------------------------------

    def run(self, ep: Endpoint, argv: Sequence[str], timeout: float | None = None
            ) -> tuple[int, str, str]:
        res = self.exec(ep, argv, timeout)
        return res.exit_code, res.stdout, res.stderr

    def exec(self, ep: Endpoint, argv: Sequence[str], timeout: float | None = None
             ) -> ExecResult:
        """Run a probe; a failure of the probe itself is noted against the measurement
        (kind and key) the calling thread is taking, so nobody reads it as the network's."""
        from .measure import exec_failure

        with self._lock:
            self.probe_count += 1
        res = ep.run(argv, timeout)
        kind = exec_failure(res)
        tag = getattr(self._tag, "value", None)
        if kind is not None and tag is not None:
            entry = {"failure": kind, "node": ep.node, "network": ep.network,
                     "tool": argv[0] if argv else "", "exit_code": res.exit_code,
                     "timed_out": res.timed_out, "seconds": round(res.seconds, 2),
                     "detail": (res.stderr.strip() or res.stdout.strip())[-300:]}
            with self._lock:
                self.probe_failures.setdefault(tag[0], {}).setdefault(tag[1], []).append(entry)
        return res

    def _tagged(self, kind: str, one: Callable[[K], T]) -> Callable[[K], T]:
        """``one`` with the calling thread tagged by (kind, key) for :meth:`exec`."""
        from .measure import key_id

        def run(key: K) -> T:
            self._tag.value = (kind, key_id(kind, key))
            try:
                return one(key)
            finally:
                self._tag.value = None

        return run

    def _map(self, fn: Callable[[Any], T], items: Sequence[Any], workers: int | None = None
             ) -> list[T]:
        if workers is None:
            return list(self._pool.map(fn, items))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fn, items))

    def _each(self, kind: str, keys: Sequence[K], one: Callable[[K], T]) -> dict[K, T]:
        """Measure ``one(key)`` for every key at once on the pool, once per run."""
        tagged = self._tagged(kind, one)
        return self._cached(kind, lambda: dict(zip(keys, self._map(tagged, keys))))

    def _cached(self, kind: str, compute: Callable[[], T]) -> T:
        """Measure once per run: in-process cache, and a locked file shared across xdist workers."""
        with self._lock:
            kind_lock = self._kind_locks.setdefault(kind, Lock())
        with kind_lock:  # two tests asking at once must not measure twice
            return self._cached_locked(kind, compute)

    def _cached_locked(self, kind: str, compute: Callable[[], T]) -> T:
        if kind in self.measurements:
            return self.measurements[kind]  # type: ignore[no-any-return]
        if self.shared_dir is None:
            value = compute()
        else:
            path = self.shared_dir / f"{kind}.pickle"
            with FileLock(str(path) + ".lock"):
                if path.exists():
                    value = pickle.loads(path.read_bytes())
                else:
                    value = compute()
                    path.write_bytes(pickle.dumps(value))
        self.measurements[kind] = value
        return value

    # -- measurements ---------------------------------------------------------------------

    def ping(self, network: Network = "pod", payload: int = 56) -> dict[PairKey, ping.PingResult]:
        """Small (or ``payload``-sized) pings over every selected pair."""
        def one(key: PairKey) -> ping.PingResult:
            src, dst = self.endpoint(key[0], network), self.endpoint(key[1], network)
            argv = ping.argv(dst.ip, count=3, payload=payload, wait=1.0, interval=0.2)
            _, out, err = self.run(src, argv)
            first = ping.parse(dst.ip, payload, False, out, err)
            if first.ok:
                return first
            # A lost echo on a busy machine is not a broken path: measure a suspect pair
            # again with a bigger sample, which decides (3 pings cannot tell 5% from 33%).
            argv = ping.argv(dst.ip, count=10, payload=payload, wait=1.0, interval=0.1)
            _, out, err = self.run(src, argv)
            return ping.parse(dst.ip, payload, False, out, err)

        keys = self.pairs()
        return self._each(f"ping-{network}-{payload}", keys, one)

    def expected_mtu(self) -> int:
        """``--k8s-expect-mtu``, else the smallest probe-pod interface MTU."""
        if self.settings.expect_mtu:
            return self.settings.expect_mtu

        def compute() -> int:
            mtus = self._map(lambda n: self.backend.interface_mtu(self.endpoint(n, "pod")),
                             self.node_names)
            known = [m for m in mtus if m]
            return min(known) if known else 1500

        return self._cached("expected-mtu", compute)

    def measure_path_mtu(self, src: Endpoint, dst: Endpoint, ceiling: int | None = None
                         ) -> pathmtu.PathMtuResult:
        return pathmtu.measure(lambda argv: self.run(src, argv), src.node, dst.node, dst.ip,
                               ceiling or self.expected_mtu(), wait=min(0.5, self.settings.timeout))

    def path_mtu(self, network: Network = "pod") -> dict[PairKey, pathmtu.PathMtuResult]:
        # Resolved here, not inside the workers: a pool task that waits on the same pool
        # deadlocks once every worker does it (56 pairs > 48 workers).
        ceiling = self.expected_mtu()

        def one(key: PairKey) -> pathmtu.PathMtuResult:
            return self.measure_path_mtu(self.endpoint(key[0], network),
                                         self.endpoint(key[1], network), ceiling)

        keys = self.pairs()
        return self._each(f"pmtu-{network}", keys, one)

    def large_http(self) -> dict[PairKey, http.HttpResult]:
        """A 1 MiB transfer from every pair's source pod to its destination pod."""
        port = self.backend.probe_port

        def one(key: PairKey) -> http.HttpResult:
            src, dst = self.endpoint(key[0]), self.endpoint(key[1])
            url = f"http://{dst.ip}:{port}/1mib"
            argv = http.argv(url, connect_timeout=min(2.0, self.settings.timeout),
                             max_time=self.settings.timeout)
            code, out, err = self.run(src, argv, self.settings.timeout + 2)
            return http.parse(url, out, err, code, expected_bytes=ONE_MIB)

        keys = self.pairs()
        return self._each("http-1mib", keys, one)

    def service_http(self) -> dict[str, list[http.HttpResult]]:
        """1 MiB from every node's pod through the Service, once per backend, in parallel.

        One transfer could land on any backend; one per backend (new connections, so the
        Service picks again each time) covers the paths to every node.
        """
        t = self.targets
        count = max(1, len(self.service_backends()))

        def one(node: str) -> list[http.HttpResult]:
            url = f"http://{t.service_ip}:{t.service_port}/1mib"
            argv = ["curl", "--parallel", "--parallel-immediate", "--no-progress-meter"]
            for i in range(count):
                argv += (["--next"] if i else []) + http.argv(
                    f"{url}?k8snet={i}", connect_timeout=min(2.0, self.settings.timeout),
                    max_time=self.settings.timeout)[1:-1] + ["-H", "Connection: close",
                                                             f"{url}?k8snet={i}"]
            code, out, err = self.run(self.endpoint(node), argv, self.settings.timeout + 5)
            lines = [line for line in out.replace("}{", "}\n{").splitlines() if line.strip()]
            return [http.parse(url, line, err, code, expected_bytes=ONE_MIB) for line in lines] \
                or [http.parse(url, "", err, code, expected_bytes=ONE_MIB)]

        names = self.node_names
        return self._each("http-service", names, one)

    def service(self, rounds: int = 3) -> dict[str, ServiceResult]:
        """Repeated new connections from each node's pod to the Service, which backends answer."""
        t = self.targets
        backends = self.service_backends()
        count = max(rounds * len(backends), 12)

        def requests(node: str, first: int, last: int) -> tuple[dict[str, int], int, list[str]]:
            url = f"http://{t.service_ip}:{t.service_port}/?k8snet=[{first}-{last}]"
            argv = ["curl", "-s", "-H", "Connection: close", "--connect-timeout", "1", "-m", "2",
                    "-w", "\\n%{json}\\n", url]
            _, out, _ = self.run(self.endpoint(node), argv, (last - first + 1) * 2.5 + 5)
            answered: dict[str, int] = {}
            failures, errors, body = 0, [], ""
            for line in out.splitlines():
                if line.startswith("{"):
                    data = json.loads(line)
                    if int(data.get("exitcode") or 0) == 0 and body.strip():
                        answered[body.strip()] = answered.get(body.strip(), 0) + 1
                    else:
                        failures += 1
                        if data.get("errormsg"):
                            errors.append(str(data["errormsg"]))
                    body = ""
                elif line.strip():
                    body = line
            return answered, failures, errors

        def one(node: str) -> ServiceResult:
            # One round first: if no backend answers at all, more rounds only add timeouts.
            first = max(1, len(backends))
            answered, failures, errors = requests(node, 1, first)
            attempts = first
            if answered and count > first:
                more, more_failures, more_errors = requests(node, first + 1, count)
                for name, n in more.items():
                    answered[name] = answered.get(name, 0) + n
                failures += more_failures
                errors += more_errors
                attempts = count
            missing = tuple(b for b in backends if b not in answered) if failures else ()
            return ServiceResult(node, attempts, failures, answered, missing,
                                 tuple(dict.fromkeys(errors))[:3])

        names = self.node_names
        return self._each("service", names, one)

    def service_backends(self) -> list[str]:
        return self.backend.service_backends()

    def udp(self) -> dict[PairKey, UdpCheck]:
        """iperf3 UDP across every pair through the overlay, and node to node on 8472."""
        index = {n: i for i, n in enumerate(self.node_names)}
        timeout = self.settings.timeout

        def iperf_once(src: Endpoint, dst: Endpoint, port: int, seconds: float = 1.0
                       ) -> iperf.UdpResult:
            server = self._pool.submit(self.exec, dst, iperf.server_argv(
                port, idle_timeout=2 + int(seconds)), 8 + seconds)
            time.sleep(0.2)  # let the server bind; a refused connect is retried below
            # (idle timeout 2 s: when the client never gets through, the server is not
            # waited on for long; a running test is not idle)
            result = iperf.UdpResult(dst.ip, port, 0.0, 100.0, None, 0, "not run",
                                     iperf.INTERRUPTED)
            for _ in range(3):
                res = self.exec(src, iperf.client_argv(dst.ip, port, seconds=seconds),
                                timeout + 3 + seconds)
                result = iperf.parse(dst.ip, port, res.stdout, res.stderr, res.exit_code,
                                     res.timed_out)
                if not result.error or "refused" not in result.error:
                    break
                time.sleep(0.2)
            try:
                server.result(timeout=timeout + 5 + seconds)
            except Exception:  # noqa: BLE001 - a stuck server is reaped by its idle timeout
                pass
            return result

        def again(attempts: list[iperf.UdpResult]) -> float | None:
            """Seconds for one more sample of a suspect pair, None when it is decided."""
            last = attempts[-1]
            if len(attempts) >= 3:
                return None
            if last.ok and last.loss_pct > SUSPECT_LOSS_PCT:
                return UDP_REMEASURE_SECONDS  # loss: a longer sample tells it from noise
            if last.failure in (iperf.INTERRUPTED, iperf.TIMEOUT, iperf.EXEC_ERROR):
                return 1.0  # the probe's own trouble says nothing yet: run it again
            if last.failure == iperf.NETWORK and len(attempts) < 2:
                return 1.0  # nothing crossed: once more, so a starved connect is not "blocked"
            return None

        def measured(attempts: list[iperf.UdpResult]) -> iperf.UdpResult:
            """The decisive run: the least lossy that crossed. Loss that is real shows in
            every sample; a burst of noise (a starved CPU, a neighbour's build) does not."""
            crossed = [r for r in attempts if r.ok]
            if crossed:
                return min(crossed, key=lambda r: r.loss_pct)
            network = [r for r in attempts if r.failure == iperf.NETWORK]
            return network[-1] if network else attempts[-1]

        def one(key: PairKey) -> UdpCheck:
            src, dst = self.endpoint(key[0]), self.endpoint(key[1])
            port = IPERF_BASE_PORT + index[key[0]]
            attempts = [iperf_once(src, dst, port)]
            seconds = again(attempts)
            while seconds is not None:
                attempts.append(iperf_once(src, dst, port, seconds))
                seconds = again(attempts)
            host_src, host_dst = self.endpoint(key[0], "host"), self.endpoint(key[1], "host")
            node_port = iperf_once(host_src, host_dst, 8472)
            if node_port.failure not in (None, iperf.NETWORK, iperf.TOOL_MISSING):
                node_port = iperf_once(host_src, host_dst, 8472)
            return UdpCheck(measured(attempts), node_port, tuple(attempts))

        keys = self.pairs()
        # Node-to-node tests share port 8472 on each destination: one test per node at a time.
        def compute() -> dict[PairKey, UdpCheck]:
            out: dict[PairKey, UdpCheck] = {}
            by_round: dict[int, list[PairKey]] = {}
            for a, b in keys:
                by_round.setdefault((index[b] - index[a]) % len(index), []).append((a, b))
            tagged = self._tagged("udp", one)
            for batch in by_round.values():
                out.update(zip(batch, self._map(tagged, batch, workers=max(2, len(batch)))))
            return out

        return self._cached("udp", compute)

    def dns(self) -> dict[str, list[dns.DnsResult]]:
        t = self.targets
        names = [*t.dns_names, t.external_name]

        def one(key: tuple[str, str]) -> dns.DnsResult:
            _, out, _ = self.run(self.endpoint(key[0]), dns.argv(key[1], timeout=1, tries=2), 6)
            return dns.parse(key[1], out)

        def compute() -> dict[str, list[dns.DnsResult]]:
            keys = [(node, name) for node in self.node_names for name in names]
            results = dict(zip(keys, self._map(self._tagged("dns", one), keys)))  # all at once
            return {node: [results[(node, name)] for name in names] for node in self.node_names}

        return self._cached("dns", compute)

    def egress(self) -> dict[tuple[str, str], egress.EgressResult]:
        url = self.targets.egress_url
        attempts = self.settings.egress_attempts

        def one(key: tuple[str, str]) -> egress.EgressResult:
            ep = self.endpoint(key[0], key[1])  # type: ignore[arg-type]
            _, rng, _ = self.run(ep, ["cat", "/proc/sys/net/ipv4/ip_local_port_range"])
            port_range = egress.parse_port_range(rng) if rng.strip() else (32768, 60999)
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
            _, out, _ = self.run(ep, argv, 15)
            return egress.parse(url, port_range, out)

        keys = [(n, net) for n in self.node_names for net in ("pod", "host")]
        return self._each("egress", keys, one)

    def node_checks(self) -> dict[str, nodecheck.NodeCheckResult]:
        def one(node: str) -> nodecheck.NodeCheckResult:
            ep = self.endpoint(node, "host")
            _, sysctls, _ = self.run(ep, nodecheck.sysctl_argv())
            _, addrs, _ = self.run(ep, nodecheck.addr_argv())
            return nodecheck.parse(node, sysctls, addrs)

        nodes = self.node_names
        return self._each("nodecheck", nodes, one)

    def control_plane_ports(self) -> dict[str, list[ports.PortCheck]]:
        """From every node's host network, at once: the API server, every other node's
        kubelet (10250) and etcd (2379, 2380), the cluster DNS over UDP and TCP. One exec
        per node; a refused connect means no listener there, not a dropped port."""
        cp = self.backend.control_plane()
        dns_name = f"kubernetes.default.svc.{cp.cluster_domain}"
        timeout = max(2.0, min(self.settings.timeout, 5.0))

        def checks(src: str) -> list[ports.PortCheck]:
            out = [ports.PortCheck("tcp", ip, port, "the API server") for ip, port in
                   cp.api_servers]
            for node in self.nodes:
                if node.name != src:
                    out += [ports.PortCheck("tcp", node.ip, port, f"{what} on {node.name}")
                            for port, what in ((10250, "the kubelet"), (2379, "etcd"),
                                               (2380, "etcd (peers)"))]
            if cp.cluster_dns:
                out += [ports.PortCheck(kind, cp.cluster_dns, 53, "the cluster DNS")
                        for kind in ("dns-udp", "dns-tcp")]
            return out

        def one(src: str) -> list[ports.PortCheck]:
            wanted = checks(src)
            res = self.exec(self.endpoint(src, "host"), ports.argv(wanted, timeout, dns_name),
                            timeout=timeout + 10)
            return ports.parse(wanted, res.stdout)

        return self._each("ports", self.node_names, one)

    def document(self) -> dict[str, Any]:
        """The run's measurement document: everything measured once, shared under xdist.

        Tests and reports judge this (``findings.judge``), never live measurements, so a
        finding does not depend on which tests ran, in which order or in which worker.
        """
        from .measure import document

        return self._cached("document", lambda: document(self))

    def judgement(self) -> "Judgement":
        """The findings judged from :meth:`document` (pure, so cached per process)."""
        from .findings import judge

        with self._lock:
            cached = self._judgement
        if cached is None:
            cached = judge(self.document())
            with self._lock:
                self._judgement = cached
        return cached

    def unusable(self, node: str) -> str | None:
        """Why probes cannot run on ``node`` (None when they can). NotReady alone is fine:
        the host-network probe still runs there."""
        problems = [p for p in self.readiness()[node] if p != "node is NotReady"]
        return problems[0] if problems else None

    def readiness(self) -> dict[str, list[str]]:
        """Per node: what keeps it from being a healthy, probeable node (empty when fine)."""
        def one(node: str) -> list[str]:
            problems = list(self.node(node).problems)
            if not self.node(node).ready:
                problems.insert(0, "node is NotReady")
            networks: tuple[Network, ...] = ("pod", "host")
            for net in networks:
                res = self.endpoint(node, net).run(["true"], self.settings.timeout)
                if not res.ok:
                    problems.append(f"{net}-network probe does not run commands: "
                                    f"{(res.stderr or res.stdout).strip()[:200]}")
            return problems

        nodes = self.node_names
        return self._each("ready", nodes, one)
