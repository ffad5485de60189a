"""Creating the run's objects: its namespace, the probe Service and both probes per node,
through admission (which may deny a probe, or its NET_RAW)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .. import BackendError, Node
from .api import KubeApi
from .client import release_response
from .findings import ProbeFindings
from .manifests import (NODE_ANNOTATION, ROLE_LABEL, RunNames, adds_capabilities,
                        host_probe_manifest, namespace_manifest, probe_pod_manifest,
                        run_labels, service_manifest, without_added_capabilities)
from .status import admission_denial

Manifests = list[tuple[Node, str, dict[str, Any]]]  # (node, role "pod"/"host", manifest)


@dataclass
class ProbeLauncher:
    """Creates the probes of one run; what admission denied goes into ``findings``."""

    api: KubeApi
    names: RunNames
    image: str
    active_deadline: int  # the pods' activeDeadlineSeconds
    findings: ProbeFindings
    # Called with each node and manifest before it is created, to change it (the
    # ``pytest_k8snet_probe_pod_manifest`` hook); None changes nothing.
    edit_manifest: Callable[[Node, dict[str, Any]], None] | None = None

    def manifests(self, nodes: Sequence[Node]) -> Manifests:
        """Both probe manifests per node, after :attr:`edit_manifest`."""
        out = []
        for node in nodes:
            for role, build in (("pod", probe_pod_manifest), ("host", host_probe_manifest)):
                manifest = build(self.names.probe(node.name, role), node.name,
                                 self.names.run_id, self.image, self.active_deadline)
                if self.edit_manifest is not None:
                    self.edit_manifest(node, manifest)
                # whatever the hook did, the run must still find and remove its pods
                meta = manifest.setdefault("metadata", {})
                meta.setdefault("labels", {}).update({**run_labels(self.names.run_id),
                                                      ROLE_LABEL: role})
                meta.setdefault("annotations", {})[NODE_ANNOTATION] = node.name
                out.append((node, role, manifest))
        return out

    def namespace_exists(self) -> bool:
        return self.api.exists(f"get namespace {self.names.namespace}",
                               self.api.core.read_namespace, self.names.namespace)

    def create_all(self, manifests: Manifests, deadline: float) -> None:
        """The namespace, the Service and every probe pod, concurrently. An admission
        denial of a host-network probe marks it unavailable; of a pod-network probe, the
        pod is tried once more without added capabilities (``baseline`` admits that), and a
        second denial raises."""
        core, namespace = self.api.core, self.names.namespace
        if self.names.owns_namespace:
            self.api.create(f"create namespace {namespace}", core.create_namespace,
                            namespace_manifest(namespace, self.names.run_id))
        elif not self.namespace_exists():
            raise BackendError(f"namespace {namespace} (--k8s-namespace) does not exist; "
                               "create it, or leave the option out for a fresh namespace")
        self.api.create(f"create service {self.names.service_name} in {namespace}",
                        core.create_namespaced_service, namespace,
                        service_manifest(self.names.service_name, self.names.run_id))
        denied_pod: list[str] = []

        def create(item: tuple[Node, str, dict[str, Any]]) -> None:
            node, role, manifest = item
            denial = self._admit(node, role, manifest, deadline)
            if denial is None:
                return
            if role == "host":
                self.findings.deny((node.name, "host"), f"host-network probe on {node.name} "
                                                        f"denied by admission: {denial}")
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
                f"admission denied the pod-network probe in namespace {namespace} "
                f"(also without NET_RAW), so nothing can be probed: {denied_pod[0]}"
                + (f" (and {len(denied_pod) - 1} more nodes)" if len(denied_pod) > 1 else "")
                + ". The probes need a namespace whose Pod Security level is privileged "
                "(hostNetwork and NET_RAW; baseline admits only the pod-network probe "
                "without NET_RAW): leave --k8s-namespace out for a fresh one, or label it "
                "pod-security.kubernetes.io/enforce=privileged")

    def _admit(self, node: Node, role: str, manifest: dict[str, Any], deadline: float
               ) -> str | None:
        """Create one probe; a pod-network probe denied its NET_RAW is tried once more
        without it. None when created, else the (last) admission denial."""
        denial = self._create_pod(manifest, deadline)
        if denial is None or role != "pod" or not adds_capabilities(manifest):
            return denial
        second = self._create_pod(without_added_capabilities(manifest), deadline)
        if second is not None:
            return second  # quote what is still wrong without NET_RAW
        # admitted with the runtime's default capabilities: ping may still work
        # (containerd's defaults include NET_RAW); the readiness check says
        self.findings.note(node.name, f"pod-network probe {manifest['metadata']['name']}: "
                                      f"admission denied NET_RAW ({denial}); running with the "
                                      "runtime's default capabilities")
        return None

    def _create_pod(self, manifest: dict[str, Any], deadline: float) -> str | None:
        """Create one probe pod: None when created (or there already), else the admission
        denial; other failures raise BackendError."""
        from kubernetes.client.exceptions import ApiException

        namespace = self.names.namespace
        what = f"create pod {manifest['metadata']['name']} in {namespace}"
        while True:
            try:
                release_response(self.api.retrying(self.api.core.create_namespaced_pod,
                                                   namespace, manifest,
                                                   _preload_content=False))
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
                raise self.api.error(exc, what) from None
            except Exception as exc:  # noqa: BLE001
                raise self.api.error(exc, what) from None
