"""The :class:`KubeBackend`: probe pods on a real cluster, driven through the Kubernetes API.

The backend answers the :class:`~pytest_k8snet.backends.Backend` interface and leaves the
work to its parts: :class:`~.api.KubeApi` (requests), :class:`~.startup.ProbeStartup`
(creating or adopting the probes, waiting, checking them), :class:`~.findings.ProbeFindings`
(what the start found), :class:`~.discovery.ClusterDiscovery` (what the cluster says about
itself) and :mod:`.lifecycle` (removal).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import (Backend, BackendError, ClusterTargets, ControlPlane, Endpoint, ExecResult,
                Network, Node)
from .api import KubeApi
from .client import connect, kubectl_flags
from .discovery import ClusterDiscovery
from .exec import exec_in_pod
from .findings import ProbeFindings
from .launch import ProbeLauncher
from .lifecycle import delete_run, keep_hint, report_leftovers
from .manifests import (ACTIVE_DEADLINE_SECONDS, CLUSTER_DOMAIN, EXIT_EXEC_FAILED, PROBE_PORT,
                        RunNames)
from .startup import ProbeStartup
from .status import node_from_api
from .targets import cluster_targets
from .wait import PodWatch, Progress, terminal_progress

if TYPE_CHECKING:
    import pytest

    from ...options import Settings


class KubeBackend(Backend):
    """Probe pods on a cluster reached through a kubeconfig or the pod's service account.

    Under xdist (``shared_dir`` set) the workers share one probe set (see :mod:`.startup`)
    and none of them deletes it: the controller calls :func:`~.lifecycle.cleanup_run`.
    """

    kind = "kube"
    probe_port = PROBE_PORT

    def __init__(self, client: Any, settings: Settings, config: pytest.Config | None,
                 server: str, context: str, kubeconfig: str,
                 shared_dir: Path | None = None) -> None:
        super().__init__(settings.timeout)
        self.api = KubeApi(client, server, settings.timeout)
        self.settings = settings
        self.context = context
        self.kubeconfig = kubeconfig
        self.shared_dir = shared_dir
        self.names = RunNames.of(settings.run_id, settings.namespace)
        self.setup_timeout = settings.setup_timeout or 10 * self.timeout
        # Lines saying how far the start got; tests and callers may redirect them.
        self.progress = Progress(terminal_progress(config) if config is not None else None)
        self.findings = ProbeFindings()
        self.discovery = ClusterDiscovery(self.api, self.names)
        self.launcher = ProbeLauncher(
            self.api, self.names, settings.probe_image,
            # Pods die on their own after this: the setup and a long run fit well inside it.
            max(ACTIVE_DEADLINE_SECONDS, int(2 * self.setup_timeout)), self.findings,
            _manifest_hook(config) if config is not None else None)
        self._startup = ProbeStartup(self, self.launcher, PodWatch(self.api, self.names,
                                                                   self.progress),
                                     self.discovery, self.findings, self.setup_timeout,
                                     shared_dir)
        self._node_list: list[Node] = []
        self._leftovers: list[str] = []
        self._started = False
        self._cleaned = False
        self._count_lock = threading.Lock()  # commands run from many threads at once

    @classmethod
    def from_settings(cls, settings: Settings, kubeconfig_path: str,
                      config: pytest.Config | None, shared_dir: Path | None = None
                      ) -> KubeBackend:
        """Connect (kubeconfig, or in-cluster when ``settings.in_cluster`` or the path is
        ``""``) and build the backend; no request is sent yet."""
        client, server, context = connect(kubeconfig_path, settings.context,
                                          in_cluster=settings.in_cluster)
        return cls(client, settings, config, server, context, kubeconfig_path, shared_dir)

    @property
    def namespace(self) -> str:
        return self.names.namespace

    @property
    def run_id(self) -> str:
        return self.names.run_id

    @property
    def cluster_domain(self) -> str:
        """The cluster's DNS domain as a probe pod's resolv.conf says (``cluster.local``
        until the probes are up, or when no probe could say)."""
        return self.findings.cluster_domain or CLUSTER_DOMAIN

    # -- required ----------------------------------------------------------------------

    def nodes(self) -> list[Node]:
        """Every node. The list is kept: :meth:`start` adds the problems it finds to it."""
        data = self.api.read("list nodes", self.api.core.list_node)
        self._node_list = [node_from_api(item) for item in data.get("items") or []]
        return self._node_list

    def start(self, nodes: Sequence[Node]) -> None:
        """Create (or, under xdist, find) the probes on ``nodes`` and wait for them.

        Waits at most ``settings.setup_timeout`` (image pulls included) for the probes on
        Ready nodes (those on NotReady nodes are not waited for), saying how far it got
        through :attr:`progress`; an image that cannot be pulled gives up at once. A probe
        that does not come up does not fail the run: its reasons are added to its node's
        ``problems`` -- in ``nodes`` and in the list :meth:`nodes` returned, whose items are
        replaced in place -- and commands in it fail at once with exit code 125. Each probe
        that runs is then checked with one exec (tools, ping, DNS search list).

        Admission (Pod Security, Kyverno, Gatekeeper...) denying the host-network probe
        leaves that probe out (:meth:`endpoint_unavailable`); denying the pod-network probe
        even without NET_RAW raises BackendError with the denial, as do API failures.
        """
        self._started = True
        chosen = nodes if isinstance(nodes, list) else list(nodes)
        self._startup.start(chosen)
        self.findings.record_into(chosen, self._node_list)

    @property
    def service_settled(self) -> bool | None:
        """Whether the probe Service's EndpointSlices listed every ready probe before the
        Service was measured (:mod:`.settle`); None when another xdist worker started them."""
        return self._startup.service_settled

    def endpoint(self, node: str, network: Network) -> Endpoint:
        try:
            return self.findings.endpoints[(node, network)]
        except KeyError:
            if self.findings.unavailable.get((node, network)):
                # callers that ask anyway get an endpoint whose commands say why
                ep = Endpoint(node, network, "", self.names.probe(node, network), self)
                self.findings.endpoints[(node, network)] = ep
                return ep
            raise BackendError(f"no {network} probe started on {node}") from None

    def run(self, endpoint: Endpoint, argv: Sequence[str], timeout: float) -> ExecResult:
        """Exec ``argv`` in the endpoint's pod through the API; never raises.

        A probe that never came up (or was denied) gives exit 125 at once with the reason;
        no answer within ``timeout`` gives ``timed_out=True``, exit 124.
        """
        why = self.findings.unusable.get((endpoint.node, endpoint.network))
        if why:
            return ExecResult(tuple(argv), EXIT_EXEC_FAILED, "", why, 0.0)
        with self._count_lock:
            self.exec_count += 1
        return exec_in_pod(self.api.client.configuration, self.names.namespace,
                           endpoint.name, argv, timeout)

    def cleanup(self) -> None:
        """Delete what the run created: its namespace, or its labelled objects in yours.

        Idempotent; does nothing under xdist (the controller calls ``cleanup_run``). Never
        raises and never stops at the first failure: what could not be removed is printed
        with the command that removes it, and kept in :meth:`cleanup_leftovers`.
        """
        if self._cleaned or self.shared_dir is not None:
            return
        self._cleaned = True
        try:
            if self._started:
                self._leftovers = delete_run(
                    self.api, self.names, kubectl_flags(self.kubeconfig, self.settings.context))
                report_leftovers(self._leftovers, self.names.run_id)
        except Exception as exc:  # noqa: BLE001 - cleanup never raises
            self._leftovers = [f"{exc}; {self.keep_hint()}"]
            sys.stderr.write(f"k8snet: cleanup failed: {exc}. {self.keep_hint()}\n")
        finally:
            self.api.close()

    def targets(self) -> ClusterTargets:
        """See :func:`~.targets.cluster_targets`."""
        return cluster_targets(self.names, self.discovery.service_ip,
                               self.discovery.service_cidr, self.cluster_domain,
                               self.discovery.pod_subnets(), self._node_list,
                               self.settings.egress_url, self.settings.external_name,
                               self.discovery.node_port)

    def endpoint_ips(self, endpoint: Endpoint) -> dict[str, str]:
        """status.podIPs of the probe (its node's addresses for the host network)."""
        return self.findings.ips.get((endpoint.node, endpoint.network)) \
            or super().endpoint_ips(endpoint)

    def family_targets(self, family: str) -> ClusterTargets:
        """:meth:`targets` with the probe Service's ClusterIP of ``family`` (its
        spec.clusterIPs under ipFamilyPolicy PreferDualStack) and that family's Pod CIDRs."""
        t = self.targets()
        ip = next((i for i in self.discovery.service_ips
                   if ("ipv6" if ":" in i else "ipv4") == family), None)
        cidrs = tuple(c for c in t.pod_cidrs if ("ipv6" if ":" in c else "ipv4") == family)
        return replace(t, service_ip=ip or t.service_ip, pod_cidrs=cidrs or t.pod_cidrs)

    def identity(self) -> dict[str, Any]:
        return {"kind": "kube", "server": self.api.server, "context": self.context,
                "version": self.discovery.version(), "nodes": len(self._node_list),
                "namespace": self.names.namespace, "cluster_domain": self.cluster_domain}

    # -- optional capabilities ---------------------------------------------------------

    def service_backends(self) -> list[str]:
        """The Service's backends: the probe pods that came up (they answer ``/`` by name)."""
        return list(self.findings.ready_probe_pods)

    def backend_node(self, backend_name: str) -> str:
        return self.findings.pod_node.get(backend_name, "")

    def node_problems(self) -> dict[str, list[str]]:
        """Problems found by :meth:`start`, per node (also merged into the node lists):
        probes that did not start, and ``probe image <ref> lacks <tools>``."""
        return {k: list(v) for k, v in self.findings.problems.items()}

    def endpoint_unavailable(self, node: str, network: Network) -> str | None:
        """Why this one probe of ``node`` is unavailable while the other runs (admission
        denied the host-network probe: the denial, quoted)."""
        return self.findings.unavailable.get((node, network))

    def dns_endpoints(self) -> list[tuple[str, str]]:
        return self.discovery.dns_endpoints()

    def control_plane(self) -> ControlPlane:
        return self.discovery.control_plane(self.cluster_domain)

    def interface_mtu(self, endpoint: Endpoint) -> int | None:
        """The probe's eth0 MTU as the readiness check read it (no exec), else read now."""
        cached = self.findings.mtu.get((endpoint.node, endpoint.network))
        return cached if cached is not None else super().interface_mtu(endpoint)

    def keep_hint(self) -> str:
        return keep_hint(self.names, kubectl_flags(self.kubeconfig, self.settings.context))

    # -- kube only -------------------------------------------------------------------

    def missing_tools(self) -> dict[str, list[str]]:
        """Per node, the probe tools missing in its pod or host probe (``http-server``:
        none of python3, busybox, httpd, socat), from the readiness check; the same text is
        in :meth:`node_problems` as ``probe image <ref> lacks <tools>``."""
        return {k: list(v) for k, v in self.findings.missing.items()}

    def cleanup_leftovers(self) -> list[str]:
        """After :meth:`cleanup`: what could not be removed, each with the command that
        removes it ([] when everything went)."""
        return list(self._leftovers)


def _manifest_hook(config: pytest.Config) -> Callable[[Node, dict[str, Any]], None]:
    """The ``pytest_k8snet_probe_pod_manifest`` hook as a manifest editor."""
    def edit(node: Node, manifest: dict[str, Any]) -> None:
        config.hook.pytest_k8snet_probe_pod_manifest(config=config, node=node, manifest=manifest)

    return edit
