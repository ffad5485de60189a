"""The :class:`KubeBackend`: probe pods on a real cluster, driven through the Kubernetes API.

Objects are read as plain JSON dicts (``_preload_content=False``) and interpreted by the
pure functions of :mod:`.status`. Every API failure becomes a :class:`BackendError` with
one line fit for a person; transient ones (429, 5xx, a reset connection) are retried first.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from filelock import FileLock

from .. import (Backend, BackendError, ClusterTargets, ControlPlane, Endpoint, ExecResult,
               Network, Node)
from .client import (_done, _kubectl_flags, api_failure, call_with_retries, connect, kube)
from .exec import exec_in_pod
from .lifecycle import delete_run, report_leftovers
from .manifests import (ACTIVE_DEADLINE_SECONDS, CLUSTER_DOMAIN, EXIT_EXEC_FAILED,
                        NODE_ANNOTATION, PROBE_PORT, ROLE_LABEL, RUN_LABEL, SERVICE_PORT,
                        adds_capabilities, host_probe_manifest, namespace_manifest,
                        probe_pod_manifest, probe_pod_name, readiness_script, run_labels,
                        service_manifest, without_added_capabilities)
from .status import (ProbeCheck, admission_denial, api_endpoints_from_slices,
                     pod_subnets_from_kubeadm,
                     cluster_domain_from_search,
                     dns_endpoints_from_slices, node_from_api, parse_probe_check, pod_gave_up, pod_is_ready,
                     pod_problems, pod_summary, progress_line, service_cidr_from_message)

if TYPE_CHECKING:
    import pytest

    from ...options import Settings

DNS_NAMESPACE = "kube-system"
DNS_SLICE_SELECTOR = "kubernetes.io/service-name=kube-dns"
PROGRESS_EVERY_S = 5.0


def _terminal_progress(config: pytest.Config) -> Callable[[str], None] | None:
    """Progress lines through pytest's terminal reporter (public API), if there is one."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not hasattr(reporter, "write_line"):
        return None

    # Setup runs inside a fixture, whose output pytest captures: lift the capture for the
    # line, as pytest's own live logging does, or nobody sees the progress of a slow pull.
    capman = config.pluginmanager.get_plugin("capturemanager")

    def write(line: str) -> None:
        lifted = (capman.global_and_fixture_disabled() if capman is not None
                  else contextlib.nullcontext())
        with lifted:
            reporter.write_line(f"k8snet: {line}")

    return write


class KubeBackend(Backend):
    """Probe pods on a cluster reached through a kubeconfig or the pod's service account.

    Under xdist (``shared_dir`` set) the workers share one probe set: the first one (under
    ``shared_dir/kube.lock``) creates it and waits for it, the others find it by the run
    label and take its findings from ``kube-start.json``; none of them deletes it, the
    controller calls :func:`~.lifecycle.cleanup_run`.
    """

    kind = "kube"
    probe_port = PROBE_PORT

    def __init__(self, api: Any, settings: Settings, config: pytest.Config | None,
                 server: str, context: str, kubeconfig: str,
                 shared_dir: Path | None = None) -> None:
        super().__init__(settings.timeout)
        self.api = api
        self.core: Any = kube().client.CoreV1Api(api)
        self.settings = settings
        self.config = config
        self.server = server
        self.context = context
        self.kubeconfig = kubeconfig
        self.shared_dir = shared_dir
        self.run_id = settings.run_id
        self.owns_namespace = settings.namespace is None
        self.namespace = settings.namespace or f"k8snet-{settings.run_id}"
        self.prefix = "k8snet" if self.owns_namespace else f"k8snet-{settings.run_id}"
        self.service_name = f"{self.prefix}-probe"
        self.setup_timeout = float(getattr(settings, "setup_timeout", 0) or 10 * self.timeout)
        # Pods die on their own after this: the setup and a long run fit well inside it.
        self.active_deadline = max(ACTIVE_DEADLINE_SECONDS, int(2 * self.setup_timeout))
        # Called with one line now and then while the probes start ("waiting for probes:
        # 4/6 running, 2 pulling image"); callers may replace it, None is silent.
        self.progress: Callable[[str], None] | None = (
            _terminal_progress(config) if config is not None else None)
        self.progress_every = PROGRESS_EVERY_S  # seconds between two progress lines
        # Every progress line said, also with no callback: for reports of a slow setup.
        self.progress_log: list[str] = []
        self.retries = 0  # transient API failures retried (for reports and tests)
        self._node_list: list[Node] = []
        self._endpoints: dict[tuple[str, str], Endpoint] = {}
        self._unusable: dict[tuple[str, str], str] = {}
        self._unavailable: dict[tuple[str, str], str] = {}  # one probe of a node, e.g. denied
        self._missing: dict[str, list[str]] = {}
        self._pod_node: dict[str, str] = {}
        self._ready_probe_pods: list[str] = []
        self._problems: dict[str, list[str]] = {}
        self._notes: dict[str, list[str]] = {}  # informative lines for the nodes' notes
        self._cluster_domain: str | None = None
        self._pod_subnets: list[str] | None = None
        self._mtu: dict[tuple[str, str], int] = {}  # eth0 MTU per probe, from the check
        self._dns_endpoints: list[tuple[str, str]] | None = None
        self._leftovers: list[str] = []
        self._pods_rv = ""
        self._service_ip: str | None = None
        self._service_cidr: str | None = None
        self._version: str | None = None
        self._started = False
        self._cleaned = False
        self._count_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, kubeconfig_path: str,
                      config: pytest.Config | None, shared_dir: Path | None = None
                      ) -> KubeBackend:
        """Connect (kubeconfig, or in-cluster when ``settings.in_cluster`` or the path is
        ``""``) and build the backend; no request is sent yet."""
        api, server, context = connect(kubeconfig_path, settings.context,
                                       in_cluster=getattr(settings, "in_cluster", False))
        return cls(api, settings, config, server, context, kubeconfig_path, shared_dir)

    # -- API plumbing -------------------------------------------------------------------

    @property
    def request_timeout(self) -> tuple[float, float]:
        """(connect incl. TLS handshake, read): an unreachable API fails within timeout; a
        slow answer (a big node list) gets a little longer."""
        return (self.timeout, max(2 * self.timeout, 10.0))

    def _error(self, exc: BaseException, what: str) -> BackendError:
        return api_failure(exc, what, self.server, self.timeout)

    def _count_retry(self, exc: BaseException, delay: float) -> None:
        with self._count_lock:
            self.retries += 1

    def _retrying(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` with the request timeout, retried when transient; API
        exceptions pass through for the caller to read."""
        return call_with_retries(
            lambda: fn(*args, _request_timeout=kwargs.pop("_request_timeout", None)
                       or self.request_timeout, **kwargs),
            on_retry=self._count_retry)

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return self._retrying(fn, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line
            raise self._error(exc, what) from None

    def _json(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any
              ) -> dict[str, Any]:
        resp = self._call(what, fn, *args, _preload_content=False, **kwargs)
        try:
            data = json.loads(resp.data)
        finally:
            resp.release_conn()
        return data if isinstance(data, dict) else {}

    def _create(self, what: str, fn: Callable[..., Any], *args: Any) -> bool:
        """Create an object; False if it already exists."""
        from kubernetes.client.exceptions import ApiException

        try:
            _done(self._retrying(fn, *args, _preload_content=False))
            return True
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise self._error(exc, what) from None
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, what) from None

    def _say(self, line: str) -> None:
        self.progress_log.append(line)
        if self.progress is not None:
            try:
                self.progress(line)
            except Exception:  # noqa: BLE001 - progress is informative only
                pass

    # -- discovery ----------------------------------------------------------------------

    def nodes(self) -> list[Node]:
        """Every node. The list is kept: :meth:`start` adds the problems it finds to it."""
        data = self._json("list nodes", self.core.list_node)
        self._node_list = [node_from_api(item) for item in data.get("items") or []]
        return self._node_list

    def node_problems(self) -> dict[str, list[str]]:
        """Problems found by :meth:`start`, per node (also merged into the node lists):
        probes that did not start, and ``probe image <ref> lacks <tools>``."""
        return {k: list(v) for k, v in self._problems.items()}

    def missing_tools(self) -> dict[str, list[str]]:
        """Per node, the probe tools missing in its pod or host probe (``http-server``:
        none of python3, busybox, httpd, socat), from the readiness check."""
        return {k: list(v) for k, v in self._missing.items()}

    def endpoint_unavailable(self, node: str, network: Network) -> str | None:
        """Why this one probe of ``node`` is unavailable while the other runs (admission
        denied the host-network probe: the denial, quoted)."""
        return self._unavailable.get((node, network))

    def node_notes(self) -> dict[str, list[str]]:
        """Per node, what is worth knowing but blocks nothing (NotReady detail, cordoned,
        conditions, taints)."""
        return {n.name: list(n.notes) for n in self._node_list if n.notes}

    @property
    def cluster_domain(self) -> str:
        """The cluster's DNS domain as a probe pod's resolv.conf says (``cluster.local``
        until the probes are up, or when no probe could say)."""
        return self._cluster_domain or CLUSTER_DOMAIN

    def dns_endpoints(self) -> list[tuple[str, str]]:
        """(IP, node) of every ready cluster DNS endpoint, from the ``kube-dns``
        EndpointSlices in kube-system (read once); [] when not allowed or not there."""
        if self._dns_endpoints is None:
            try:
                discovery = kube().client.DiscoveryV1Api(self.api)
                data = self._json(f"list endpointslices in {DNS_NAMESPACE}",
                                  discovery.list_namespaced_endpoint_slice, DNS_NAMESPACE,
                                  label_selector=DNS_SLICE_SELECTOR)
                self._dns_endpoints = dns_endpoints_from_slices(data.get("items") or [])
            except BackendError:
                self._dns_endpoints = []
        return list(self._dns_endpoints)

    def _cluster_pod_subnets(self) -> list[str]:
        """The cluster's Pod CIDR as kubeadm records it (``kube-system/kubeadm-config``,
        ``networking.podSubnet``); [] on clusters without it or without the right to read it.
        Each node's own /24 can miss the hosts while the cluster's CIDR overlaps them."""
        if self._pod_subnets is None:
            self._pod_subnets = []
            try:
                cm = self._json("get configmap kube-system/kubeadm-config",
                                kube().client.CoreV1Api(self.api).read_namespaced_config_map,
                                "kubeadm-config", DNS_NAMESPACE)
                text = str((cm.get("data") or {}).get("ClusterConfiguration") or "")
                self._pod_subnets = pod_subnets_from_kubeadm(text)
            except BackendError:
                pass
        return list(self._pod_subnets)

    def control_plane(self) -> ControlPlane:
        """The API server as the ``kubernetes`` EndpointSlices list it (what kubelets dial;
        the Service's ClusterIP when those cannot be read), and the ``kube-dns`` Service."""
        core = kube().client.CoreV1Api(self.api)
        apis: list[tuple[str, int]] = []
        try:
            discovery = kube().client.DiscoveryV1Api(self.api)
            data = self._json("list endpointslices in default",
                              discovery.list_namespaced_endpoint_slice, "default",
                              label_selector="kubernetes.io/service-name=kubernetes")
            apis = api_endpoints_from_slices(data.get("items") or [])
        except BackendError:
            pass
        dns: str | None = None
        for ns, name in (("default", "kubernetes"), (DNS_NAMESPACE, "kube-dns")):
            try:
                svc = self._json(f"get service {ns}/{name}", core.read_namespaced_service,
                                 name, ns)
            except BackendError:
                continue
            ip = str((svc.get("spec") or {}).get("clusterIP") or "")
            if name == "kube-dns":
                dns = ip or None
            elif not apis and ip:
                ports = (svc.get("spec") or {}).get("ports") or [{}]
                apis = [(ip, int(ports[0].get("port") or 443))]
        return ControlPlane(tuple(apis), dns, self.cluster_domain)

    # -- start --------------------------------------------------------------------------

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
        chosen = list(nodes)
        if self.shared_dir is None:
            self._start_here(chosen)
        else:
            marker = self.shared_dir / "kube-start.json"
            with FileLock(str(self.shared_dir / "kube.lock")):
                pods = self._list_pods() if self._namespace_exists() else []
                if pods and marker.exists():
                    self._reuse(chosen, pods, json.loads(marker.read_text()))
                else:
                    self._start_here(chosen)
                    marker.write_text(json.dumps(self._findings()))
        self._record_problems(nodes if isinstance(nodes, list) else chosen)

    def _findings(self) -> dict[str, Any]:
        """What this process learnt at start, for the other xdist workers."""
        return {"problems": self._problems, "missing": self._missing,
                "unavailable": [[n, net, why] for (n, net), why in self._unavailable.items()],
                "cluster_domain": self._cluster_domain, "notes": self._notes}

    def _namespace_exists(self) -> bool:
        from kubernetes.client.exceptions import ApiException

        what = f"get namespace {self.namespace}"
        try:
            _done(self._retrying(self.core.read_namespace, self.namespace,
                                 _preload_content=False))
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise self._error(exc, what) from None
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, what) from None

    def _manifests(self, nodes: Sequence[Node]) -> list[tuple[Node, str, dict[str, Any]]]:
        """Both probe manifests per node, after ``pytest_k8snet_probe_pod_manifest``."""
        out = []
        for node in nodes:
            for role, build in (("pod", probe_pod_manifest), ("host", host_probe_manifest)):
                name = probe_pod_name("probe" if role == "pod" else "host", node.name,
                                      self.prefix)
                manifest = build(name, node.name, self.run_id, self.settings.probe_image,
                                 self.active_deadline)
                if self.config is not None:
                    self.config.hook.pytest_k8snet_probe_pod_manifest(
                        config=self.config, node=node, manifest=manifest)
                # whatever the hook did, the run must still find and remove its pods
                meta = manifest.setdefault("metadata", {})
                meta.setdefault("labels", {}).update({**run_labels(self.run_id), ROLE_LABEL: role})
                meta.setdefault("annotations", {})[NODE_ANNOTATION] = node.name
                out.append((node, role, manifest))
        return out

    def _start_here(self, nodes: list[Node]) -> None:
        started = time.monotonic()
        deadline = started + self.setup_timeout
        manifests = self._manifests(nodes)
        self._create_all(manifests, deadline)
        expected = {str(m["metadata"]["name"]): (node.name, role) for node, role, m in manifests
                    if (node.name, role) not in self._unavailable}
        self._read_service()
        ready_nodes = {n.name for n in nodes if n.ready}
        wait_for = {name for name, (node, _) in expected.items() if node in ready_nodes}
        pods, events = self._wait(wait_for, set(expected), deadline)
        self._problems = {}
        self._evaluate(expected, nodes, pods, events, time.monotonic() - started, record=True)
        self._check_probes()

    def _reuse(self, nodes: list[Node], pods: list[dict[str, Any]],
               known: Mapping[str, Any]) -> None:
        """Another xdist worker made the probes: find them by label, take its findings."""
        if "problems" not in known:  # an older marker: problems only
            known = {"problems": known}
        chosen = {n.name for n in nodes}
        for node, net, why in known.get("unavailable") or []:
            self._unavailable[(str(node), "host" if net == "host" else "pod")] = str(why)
        expected: dict[str, tuple[str, str]] = {}
        for pod in pods:
            meta = pod.get("metadata") or {}
            node = (meta.get("annotations") or {}).get(NODE_ANNOTATION)
            role = (meta.get("labels") or {}).get(ROLE_LABEL)
            if node in chosen and role in ("pod", "host"):
                expected[str(meta["name"])] = (str(node), str(role))
        self._read_service()
        by_name = {str(p["metadata"]["name"]): p for p in pods}
        events = [] if all(pod_is_ready(p) for p in pods) else self._events()
        self._problems = {k: list(v) for k, v in (known.get("problems") or {}).items()}
        self._missing = {k: list(v) for k, v in (known.get("missing") or {}).items()}
        self._cluster_domain = known.get("cluster_domain") or None
        self._notes = {k: list(v) for k, v in (known.get("notes") or {}).items()}
        self._evaluate(expected, nodes, by_name, events, 0.0, record=False)
        for (node, net), why in self._unavailable.items():
            self._unusable[(node, net)] = why

    def _evaluate(self, expected: Mapping[str, tuple[str, str]], nodes: list[Node],
                  pods: Mapping[str, dict[str, Any]], events: list[dict[str, Any]],
                  waited: float, record: bool) -> None:
        """Endpoints for every expected pod; problems for those that are not ready."""
        node_ip = {n.name: n.ip for n in nodes}
        for name, (node_name, role) in expected.items():
            network: Network = "host" if role == "host" else "pod"
            self._pod_node[name] = node_name
            pod = pods.get(name)
            ip = str(((pod or {}).get("status") or {}).get("podIP") or "")
            if network == "host":
                ip = ip or node_ip.get(node_name, "")
            self._endpoints[(node_name, network)] = Endpoint(node_name, network, ip, name, self)
            if pod is not None and pod_is_ready(pod):
                if network == "pod":
                    self._ready_probe_pods.append(name)
                continue
            if pod is None:
                problems = [f"{network}-network probe {name} on {node_name}: pod missing"]
                short = f"probe pod {name} does not exist"
            else:
                problems = pod_problems(pod, events) or [
                    f"{network}-network probe {name} on {node_name}: not ready after "
                    f"{waited:.0f}s ({pod_summary(pod)}; no Warning events: is the kubelet "
                    f"on {node_name} running?)"]
                short = f"probe pod {name} is not ready ({pod_summary(pod)})"
            self._unusable[(node_name, network)] = short
            if record:
                self._problems.setdefault(node_name, []).extend(problems)

    def _create_all(self, manifests: list[tuple[Node, str, dict[str, Any]]],
                    deadline: float) -> None:
        """The namespace, the Service and every probe pod, concurrently. An admission
        denial of a host-network probe marks it unavailable; of a pod-network probe, the
        pod is tried once more without added capabilities (``baseline`` admits that), and a
        second denial raises."""
        if self.owns_namespace:
            self._create(f"create namespace {self.namespace}", self.core.create_namespace,
                         namespace_manifest(self.namespace, self.run_id))
        elif not self._namespace_exists():
            raise BackendError(f"namespace {self.namespace} (--k8s-namespace) does not exist; "
                               "create it, or leave the option out for a fresh namespace")
        self._create(f"create service {self.service_name} in {self.namespace}",
                     self.core.create_namespaced_service, self.namespace,
                     service_manifest(self.service_name, self.run_id))
        denied_pod: list[str] = []

        def create(item: tuple[Node, str, dict[str, Any]]) -> None:
            node, role, manifest = item
            name = manifest["metadata"]["name"]
            denial = self._create_pod(manifest, deadline)
            if denial and role == "pod" and adds_capabilities(manifest):
                retry = without_added_capabilities(manifest)
                second = self._create_pod(retry, deadline)
                if second is not None:
                    denial = second  # quote what is still wrong without NET_RAW
                else:
                    # admitted with the runtime's default capabilities: ping may still
                    # work (containerd's defaults include NET_RAW); the readiness check says
                    self._problems_note(node.name, f"pod-network probe {name}: admission "
                                        f"denied NET_RAW ({denial}); running with the "
                                        "runtime's default capabilities")
                    return
            if denial is None:
                return
            if role == "host":
                self._unavailable[(node.name, "host")] = (
                    f"host-network probe on {node.name} denied by admission: {denial}")
                self._unusable[(node.name, "host")] = self._unavailable[(node.name, "host")]
            else:
                denied_pod.append(f"{node.name}: {denial}")

        with ThreadPoolExecutor(max_workers=min(16, max(1, len(manifests))),
                                thread_name_prefix="k8snet-create") as pool:
            futures = [pool.submit(create, m) for m in manifests]
            errors = [f.exception() for f in futures]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first if isinstance(first, BackendError) else BackendError(str(first))
        if denied_pod:
            raise BackendError(
                f"admission denied the pod-network probe in namespace {self.namespace} "
                f"(also without NET_RAW), so nothing can be probed: {denied_pod[0]}"
                + (f" (and {len(denied_pod) - 1} more nodes)" if len(denied_pod) > 1 else "")
                + ". The probes need a namespace whose Pod Security level is privileged "
                "(hostNetwork and NET_RAW; baseline admits only the pod-network probe "
                "without NET_RAW): leave --k8s-namespace out for a fresh one, or label it "
                "pod-security.kubernetes.io/enforce=privileged")

    def _problems_note(self, node: str, line: str) -> None:
        with self._count_lock:
            self._notes.setdefault(node, []).append(line)

    def _create_pod(self, manifest: dict[str, Any], deadline: float) -> str | None:
        """Create one probe pod: None when created (or there already), else the admission
        denial; other failures raise BackendError."""
        from kubernetes.client.exceptions import ApiException

        what = f"create pod {manifest['metadata']['name']} in {self.namespace}"
        while True:
            try:
                _done(self._retrying(self.core.create_namespaced_pod, self.namespace,
                                     manifest, _preload_content=False))
                return None
            except ApiException as exc:
                if exc.status == 409:
                    return None
                body = str(exc.body or "")
                # a fresh namespace gets its default ServiceAccount a moment later
                if exc.status == 403 and "serviceaccount" in body.lower() \
                        and "not found" in body.lower() and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                denial = admission_denial(exc.status, body)
                if denial is not None:
                    return denial
                raise self._error(exc, what) from None
            except Exception as exc:  # noqa: BLE001
                raise self._error(exc, what) from None

    def _read_service(self) -> None:
        svc = self._json(f"get service {self.service_name} in {self.namespace}",
                         self.core.read_namespaced_service, self.service_name, self.namespace)
        ip = (svc.get("spec") or {}).get("clusterIP")
        self._service_ip = str(ip) if ip and ip != "None" else None
        self._service_cidr = self._probe_service_cidr()

    def _probe_service_cidr(self) -> str | None:
        """The Service CIDR, from the apiserver's answer to a dry-run Service outside it."""
        from kubernetes.client.exceptions import ApiException

        probe = service_manifest(f"{self.prefix}-cidr-probe", self.run_id)
        probe["spec"]["clusterIP"] = "203.0.113.254"  # TEST-NET-3: never a Service range
        try:
            _done(self._retrying(self.core.create_namespaced_service, self.namespace, probe,
                                 dry_run="All", _preload_content=False))
        except ApiException as exc:
            try:
                message = json.loads(exc.body or "{}").get("message", "")
            except ValueError:
                message = str(exc.body)
            return service_cidr_from_message(str(message))
        except Exception:  # noqa: BLE001 - optional information
            return None
        return None

    def _list_pods(self) -> list[dict[str, Any]]:
        data = self._json(f"list pods in {self.namespace}", self.core.list_namespaced_pod,
                          self.namespace, label_selector=f"{RUN_LABEL}={self.run_id}")
        self._pods_rv = str((data.get("metadata") or {}).get("resourceVersion") or "")
        return list(data.get("items") or [])

    def _events(self) -> list[dict[str, Any]]:
        """Core/v1 Events of the namespace (not events.k8s.io); none if not allowed."""
        try:
            data = self._json(f"list events in {self.namespace}",
                              self.core.list_namespaced_event, self.namespace)
        except BackendError:
            return []
        return list(data.get("items") or [])

    def _watch_pause(self, seconds: float) -> None:
        """Return when a run pod changes, or after ``seconds``."""
        if seconds <= 0:
            return
        w = kube().watch.Watch()
        begin = time.monotonic()
        try:
            for _ in w.stream(self.core.list_namespaced_pod, self.namespace,
                              label_selector=f"{RUN_LABEL}={self.run_id}",
                              resource_version=self._pods_rv or None,
                              timeout_seconds=max(1, int(seconds)),
                              _request_timeout=(self.timeout, seconds + self.timeout)):
                break
        except Exception:  # noqa: BLE001 - a watch is only a faster poll
            pass
        finally:
            w.stop()
        left = seconds - (time.monotonic() - begin)
        if left > 0 and time.monotonic() - begin < 0.05:
            time.sleep(min(left, 0.5))  # the watch answered at once (e.g. 410 Gone): poll

    def _wait(self, wait_for: set[str], everything: set[str], deadline: float
              ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """List (and watch) the run's pods until ``wait_for`` are ready or hopeless, or the
        deadline; then the namespace's events if any of ``everything`` is not ready.
        Says how far it got every few seconds (:attr:`progress`)."""
        self._pods_rv = ""
        begin = last_said = time.monotonic()
        said = ""
        while True:
            pods = {str(p["metadata"]["name"]): p for p in self._list_pods()}
            waiting = {n for n in wait_for if n not in pods
                       or not (pod_is_ready(pods[n]) or pod_gave_up(pods[n]))}
            now = time.monotonic()
            remaining = deadline - now
            if not waiting or remaining <= 0:
                break
            if now - last_said >= self.progress_every:
                mine = {n: p for n, p in pods.items() if n in everything}
                line = progress_line(mine, len(everything), self._events()) \
                    + f" ({now - begin:.0f}s of {self.setup_timeout:.0f}s)"
                if line != said:
                    self._say(line)
                    said = line
                last_said = now
            self._watch_pause(min(2.0, remaining))
        unready = any(n not in pods or not pod_is_ready(pods[n]) for n in everything)
        return pods, self._events() if unready else []

    def _check_probes(self) -> None:
        """One exec per running probe: missing tools, ping, the cluster domain.

        A missing tool becomes one ``probe image <ref> lacks ...`` problem of the node,
        never a network cause; ping that cannot open its socket (no NET_RAW) likewise.
        """
        targets = [ep for key, ep in self._endpoints.items() if key not in self._unusable]

        def check(ep: Endpoint) -> tuple[Endpoint, ExecResult]:
            script = readiness_script(http_server=ep.network == "pod")
            return ep, self.run(ep, ["sh", "-c", script], max(self.timeout, 5.0))

        if not targets:
            return
        with ThreadPoolExecutor(max_workers=min(16, len(targets)),
                                thread_name_prefix="k8snet-check") as pool:
            results = list(pool.map(check, targets))
        image = self.settings.probe_image
        missing: dict[str, dict[str, list[str]]] = {}
        ping_errors: dict[str, list[str]] = {}
        for ep, res in sorted(results, key=lambda r: (r[0].node, r[0].network)):
            if res.exit_code == 127 and not res.stdout:
                found = ProbeCheck(missing=("sh",))  # not even a shell to run the check
            elif not res.ok:
                self._problems.setdefault(ep.node, []).append(
                    f"{ep.network}-network probe does not run commands: "
                    f"{(res.stderr or res.stdout).strip()[:200]}")
                continue
            else:
                found = parse_probe_check(res.stdout)
            for tool in found.missing:
                missing.setdefault(ep.node, {}).setdefault(tool, []).append(ep.network)
            if found.ping_error:
                ping_errors.setdefault(ep.node, []).append(f"{ep.network}: {found.ping_error}")
            if found.mtu:
                self._mtu[(ep.node, ep.network)] = found.mtu
            domain = cluster_domain_from_search(found.search)
            if domain and (self._cluster_domain is None or ep.network == "pod"):
                self._cluster_domain = domain
        for node, tools in missing.items():
            self._missing[node] = sorted(tools)
            where = sorted({net for nets in tools.values() for net in nets})
            self._problems.setdefault(node, []).append(
                f"probe image {image} lacks {', '.join(sorted(tools))} (in the "
                f"{' and '.join(where)}-network probe{'s' if len(where) > 1 else ''}): the "
                "checks that run it cannot run here; this is not a network fault")
        for node, errors in ping_errors.items():
            if "ping" in self._missing.get(node, []):
                continue
            self._problems.setdefault(node, []).append(
                f"ping cannot run in the probe ({'; '.join(errors)}): it needs the NET_RAW "
                "capability, which admission or the runtime took away; not a network fault")

    def _record_problems(self, nodes: list[Node]) -> None:
        for seq in (nodes, self._node_list):
            for i, node in enumerate(seq):
                extra = tuple(p for p in self._problems.get(node.name, [])
                              if p not in node.problems)
                notes = tuple(n for n in self._notes.get(node.name, [])
                              if n not in node.notes)
                if extra or notes:
                    seq[i] = replace(node, problems=node.problems + extra,
                                     notes=node.notes + notes)
        self._problems = {k: v for k, v in self._problems.items() if v}

    # -- using the probes ---------------------------------------------------------------

    def endpoint(self, node: str, network: Network) -> Endpoint:
        try:
            return self._endpoints[(node, network)]
        except KeyError:
            why = self._unavailable.get((node, network))
            if why:  # callers that ask anyway get an endpoint whose commands say why
                ep = Endpoint(node, network, "", probe_pod_name(
                    "probe" if network == "pod" else "host", node, self.prefix), self)
                self._endpoints[(node, network)] = ep
                return ep
            raise BackendError(f"no {network} probe started on {node}") from None

    def run(self, endpoint: Endpoint, argv: Sequence[str], timeout: float) -> ExecResult:
        """Exec ``argv`` in the endpoint's pod through the API; never raises.

        A probe that never came up (or was denied) gives exit 125 at once with the reason;
        no answer within ``timeout`` gives ``timed_out=True``, exit 124.
        """
        why = self._unusable.get((endpoint.node, endpoint.network))
        if why:
            return ExecResult(tuple(argv), EXIT_EXEC_FAILED, "", why, 0.0)
        with self._count_lock:
            self.exec_count += 1
        return exec_in_pod(self.api.configuration, self.namespace, endpoint.name, argv, timeout)

    def interface_mtu(self, endpoint: Endpoint) -> int | None:
        """The probe's eth0 MTU as the readiness check read it (no exec), else read now."""
        cached = self._mtu.get((endpoint.node, endpoint.network))
        return cached if cached is not None else super().interface_mtu(endpoint)

    def targets(self) -> ClusterTargets:
        """The Service, cluster names under the cluster's real domain, and the external
        targets: the external DNS name is the egress URL's host; an IP address there, or
        no egress URL, gives ``external_skip`` (and ``egress_skip``) instead."""
        if self._service_ip is None:
            raise BackendError(f"service {self.service_name} in {self.namespace} has no "
                               "ClusterIP (probes not started?)")
        egress_url = (self.settings.egress_url or "").strip()
        host = urlparse(egress_url).hostname or "" if egress_url else ""
        external, external_skip, egress_skip = host, "", ""
        if not egress_url or not host:
            external = ""
            egress_skip = "no egress target (--k8s-egress-url is empty)"
            external_skip = "no external name to look up (--k8s-egress-url is empty)"
        else:
            try:
                ipaddress.ip_address(host)
                external = ""
                external_skip = (f"the egress target {host} is an IP address: no external "
                                 "name to look up (give --k8s-egress-url a host name to check "
                                 "external DNS)")
            except ValueError:
                pass
        named = (getattr(self.settings, "external_name", None) or "").strip()
        if named:  # --k8s-external-name: checked whatever the egress target is
            external, external_skip = named, ""
        domain = self.cluster_domain
        fqdn = f"{self.service_name}.{self.namespace}.svc.{domain}"
        nodes = self._node_list or []
        cidrs = tuple(dict.fromkeys([*self._cluster_pod_subnets(),
                                     *(c for n in nodes for c in n.pod_cidrs)]))
        return ClusterTargets(
            service_ip=self._service_ip, service_port=SERVICE_PORT, service_name=fqdn,
            dns_names=(f"kubernetes.default.svc.{domain}", fqdn),
            external_name=external, egress_url=egress_url, pod_cidrs=cidrs,
            service_cidr=self._service_cidr, cluster_domain=domain,
            external_skip=external_skip, egress_skip=egress_skip)

    def service_backends(self) -> list[str]:
        """The Service's backends: the probe pods that came up (they answer ``/`` by name)."""
        return list(self._ready_probe_pods)

    def backend_node(self, backend_name: str) -> str:
        return self._pod_node.get(backend_name, "")

    def identity(self) -> dict[str, Any]:
        if self._version is None:
            try:
                self._version = str(kube().client.VersionApi(self.api).get_code(
                    _request_timeout=self.request_timeout).git_version)
            except Exception:  # noqa: BLE001 - identity is informative
                self._version = "unknown"
        return {"kind": "kube", "server": self.server, "context": self.context,
                "version": self._version, "nodes": len(self._node_list),
                "namespace": self.namespace, "cluster_domain": self.cluster_domain}

    # -- cleanup ------------------------------------------------------------------------

    def keep_hint(self) -> str:
        flags = _kubectl_flags(self.kubeconfig, self.settings.context)
        if self.owns_namespace:
            return (f"Namespace {self.namespace}; remove it with "
                    f"`kubectl{flags} delete namespace -l {RUN_LABEL}={self.run_id}`.")
        return (f"Remove them with `kubectl{flags} -n {self.namespace} delete pods,services "
                f"-l {RUN_LABEL}={self.run_id} --grace-period=0`.")

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
                    self.core, self.namespace, self.run_id, self.owns_namespace,
                    self.service_name, self.request_timeout, self.server, self.timeout,
                    _kubectl_flags(self.kubeconfig, self.settings.context))
                report_leftovers(self._leftovers, self.run_id)
        except Exception as exc:  # noqa: BLE001 - cleanup never raises
            self._leftovers = [f"{exc}; {self.keep_hint()}"]
            sys.stderr.write(f"k8snet: cleanup failed: {exc}. {self.keep_hint()}\n")
        finally:
            self.api.close()

    def cleanup_leftovers(self) -> list[str]:
        return list(self._leftovers)
