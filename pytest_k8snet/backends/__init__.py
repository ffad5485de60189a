"""Every cluster behind one small interface: list nodes, start probes, run argv, clean up.

A backend knows nothing about tests. Probes build argv lists and parse output;
the backend only runs them in an :class:`Endpoint`, a probe pod (``network="pod"``)
or its host-network twin (``network="host"``) on one node.
"""

from __future__ import annotations

import abc
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Network = Literal["pod", "host"]
# A Node's ``notes`` start with this when it is not Ready (the suite's NotReady wording).
NOT_READY = "node is NotReady"


def host_port(ip: str, port: int) -> str:
    """``ip:port`` for a URL, ``[ip]:port`` for an IPv6 address (curl exits 3 without)."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


class BackendError(RuntimeError):
    """A cluster-level problem with a message fit for a person (no traceback needed)."""


@dataclass(frozen=True)
class ExecResult:
    """What running an argv in an endpoint gave: exit code, output and time taken."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def transcript(self) -> str:
        """The command and its raw output, for reports and failure messages."""
        head = f"$ {' '.join(self.argv)}  # exit {self.exit_code}" + (
            " (timed out)" if self.timed_out else "") + f", {self.seconds:.2f}s"
        return "\n".join(part for part in (head, self.stdout.rstrip(), self.stderr.rstrip()) if part)


@dataclass(frozen=True)
class Node:
    """A cluster node as the probes see it."""

    name: str
    ip: str
    pod_cidrs: tuple[str, ...]
    ready: bool = True
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    problems: tuple[str, ...] = ()  # what keeps probes off the node (FailedCreatePodSandBox...)
    # Informative, never a reason to skip: NotReady detail, cordoned, pressure, taints.
    notes: tuple[str, ...] = field(default=(), compare=False, hash=False)
    # One address per family, primary (``ip``) first; () when the backend does not know.
    ips: tuple[str, ...] = field(default=(), compare=False, hash=False)


# A readiness exec that timed out gets one more try with this many times the time.
RETRY_FACTOR = 3


@dataclass(frozen=True)
class Endpoint:
    """A place to run probes: the probe pod on ``node`` or that node's host network."""

    node: str
    network: Network
    ip: str
    name: str
    backend: Backend = field(repr=False, compare=False, hash=False)

    def run(self, argv: Sequence[str], timeout: float | None = None) -> ExecResult:
        """Run ``argv`` here and return its exit code and output; never raises on failure."""
        return self.backend.run(self, argv, self.backend.timeout if timeout is None else timeout)

    def run_patiently(self, argv: Sequence[str], timeout: float,
                      again: Callable[[ExecResult], bool] = lambda r: not r.stdout.strip()
                      ) -> ExecResult:
        """:meth:`run`, once more with :data:`RETRY_FACTOR` times the time when it timed out
        and ``again(result)`` (by default: it printed nothing): slow is not broken, and a
        node or API server under load can take longer than the bound. The readiness checks
        use it, so a starved node does not read as one whose probes cannot run commands."""
        res = self.run(argv, timeout)
        if res.timed_out and again(res):
            res = self.run(argv, timeout * RETRY_FACTOR)
        return res

    def __str__(self) -> str:
        return f"{self.node}/{self.network}"


@dataclass(frozen=True)
class ClusterTargets:
    """The well-known destinations the suite probes besides the pods themselves."""

    service_ip: str
    service_port: int
    service_name: str
    dns_names: tuple[str, ...]
    external_name: str
    egress_url: str
    pod_cidrs: tuple[str, ...]
    service_cidr: str | None = None
    cluster_domain: str = "cluster.local"
    # Why a check has no target ("" when it has one): external DNS when the egress target is
    # an IP address or absent, egress when absent. Callers skip with this text.
    external_skip: str = ""
    egress_skip: str = ""
    # The probe Service's NodePort on every node's address (to that node's own probe pods);
    # None when the backend has none: test_nodeport then skips as not measured.
    node_port: int | None = None


@dataclass(frozen=True)
class ControlPlane:
    """What ``test_control_plane_ports`` dials from every node's host network besides the
    other nodes' kubelet (10250) and etcd (2379-2380) ports."""

    api_servers: tuple[tuple[str, int], ...] = ()  # (address, port): kubernetes' endpoints
    cluster_dns: str | None = None
    cluster_domain: str = "cluster.local"


class Backend(abc.ABC):
    """The interface the plugin drives. Implementations: ``lab`` and ``kube``.

    Seven methods are required: list the nodes, start probes on some, find and run in an
    endpoint, say what the probes aim at and who the cluster is, clean up. Everything else
    is an optional capability with a default that says "this backend cannot tell"; the
    callers treat that answer as unknown, never as a finding.
    """

    kind: str = "?"
    probe_port: int = 8080  # where probe pods serve HTTP (/, /1mib, /healthz)

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.exec_count = 0  # commands run in endpoints (benchmarks); kept by backends that count

    # -- required ----------------------------------------------------------------------

    @abc.abstractmethod
    def nodes(self) -> list[Node]:
        """All nodes, probeable or not."""

    @abc.abstractmethod
    def start(self, nodes: Sequence[Node]) -> None:
        """Start a probe endpoint (pod and host network) on each of ``nodes``."""

    @abc.abstractmethod
    def endpoint(self, node: str, network: Network) -> Endpoint:
        """The endpoint started on ``node`` for ``network``."""

    @abc.abstractmethod
    def run(self, endpoint: Endpoint, argv: Sequence[str], timeout: float) -> ExecResult:
        """Run ``argv`` in ``endpoint``; a timeout gives ``timed_out=True``, not an exception."""

    @abc.abstractmethod
    def cleanup(self) -> None:
        """Remove everything ``start`` created. Safe to call twice."""

    @abc.abstractmethod
    def targets(self) -> ClusterTargets:
        """Service, DNS and egress destinations."""

    @abc.abstractmethod
    def identity(self) -> dict[str, Any]:
        """Who this cluster is, for results files: kind, name, server or lab, versions."""

    # -- optional capabilities: the defaults are what a backend that cannot tell gives --

    def service_backends(self) -> list[str]:
        """Names of the pods behind the probe Service. Default []: no Service checks."""
        return []

    def backend_node(self, backend_name: str) -> str:
        """The node a Service backend pod runs on. Default "": unknown."""
        return ""

    def node_problems(self) -> dict[str, list[str]]:
        """Problems :meth:`start` found per node (probes that did not start). Default {}:
        every probe started."""
        return {}

    def endpoint_unavailable(self, node: str, network: Network) -> str | None:
        """Why the ``network`` probe on ``node`` cannot be used while the node's other one
        can (e.g. admission denied the host-network probe: the denial, quoted); None when
        it is usable or the whole node is unusable (then see :meth:`node_problems`).
        Default None: both probes of a node stand or fall together."""
        return None

    def dns_endpoints(self) -> list[tuple[str, str]]:
        """(IP, node) of each ready cluster DNS endpoint (``kube-dns``). Default []:
        unknown (the DNS diagnoses then do not blame a node)."""
        return []

    def control_plane(self) -> ControlPlane:
        """Where the nodes' control-plane traffic goes: the API server endpoints and the
        cluster DNS address. Default empty: those port checks say so and skip."""
        return ControlPlane()

    def keep_hint(self) -> str:
        """How to remove what a ``--k8s-keep`` run left behind. Default "": nothing said."""
        return ""

    def endpoint_ips(self, endpoint: Endpoint) -> dict[str, str]:
        """The endpoint's address per IP family (``ipv4``, ``ipv6``), for dual-stack
        clusters (backends.family). Default: its one address."""
        return {"ipv6" if ":" in endpoint.ip else "ipv4": endpoint.ip}

    def family_targets(self, family: str) -> ClusterTargets:
        """:meth:`targets` with the Service address and Pod CIDRs of ``family``. Default:
        :meth:`targets` (a backend that knows one family)."""
        return self.targets()

    def interface_mtu(self, endpoint: Endpoint) -> int | None:
        """MTU of the endpoint's primary interface (the default expected path MTU).
        Default: read from ``/sys/class/net/eth0/mtu`` with one command; None if unreadable."""
        res = endpoint.run(["cat", "/sys/class/net/eth0/mtu"], timeout=self.timeout)
        return int(res.stdout.strip()) if res.ok and res.stdout.strip().isdigit() else None


def run_subprocess(argv: Sequence[str], prefix: Sequence[str], timeout: float) -> ExecResult:
    """Run ``prefix + argv`` locally with a hard timeout (for backends whose endpoints are
    local namespaces: the lab)."""
    start = time.monotonic()
    try:
        proc = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=timeout,
                              check=False, errors="replace")
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        return ExecResult(tuple(argv), 124, out or "", err or "", time.monotonic() - start, True)
    return ExecResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr,
                      time.monotonic() - start)
