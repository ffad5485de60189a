"""What the cluster says about itself, read once: the probe Service's address and the Service
CIDR, the Pod CIDRs, where cluster DNS and the API server are, and the version."""

from __future__ import annotations

import json

from .. import BackendError, ControlPlane
from .api import KubeApi
from .client import kube, release_response
from .manifests import RunNames, service_manifest
from .status import (api_endpoints_from_slices, dns_endpoints_from_slices,
                     pod_subnets_from_kubeadm, service_cidr_from_message)

SYSTEM_NAMESPACE = "kube-system"
DNS_SLICE_SELECTOR = "kubernetes.io/service-name=kube-dns"


class ClusterDiscovery:
    """Reads of the cluster beyond the probes; the optional ones give nothing, not an error,
    where the run may not read them."""

    def __init__(self, api: KubeApi, names: RunNames) -> None:
        self.api = api
        self.names = names
        self.service_ip: str | None = None  # the probe Service's ClusterIP, once read
        self.service_ips: list[str] = []  # spec.clusterIPs: one per family
        self.node_port: int | None = None  # its NodePort, once read (None: it has none)
        self.service_cidr: str | None = None
        self._dns_endpoints: list[tuple[str, str]] | None = None
        self._pod_subnets: list[str] | None = None
        self._version: str | None = None

    def read_service(self) -> None:
        """The probe Service's ClusterIP and NodePort (the same GET: no verb beyond
        creating it) and the cluster's Service CIDR."""
        svc = self.api.read(f"get service {self.names.service_name} in {self.names.namespace}",
                            self.api.core.read_namespaced_service, self.names.service_name,
                            self.names.namespace)
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        self.service_ip = str(ip) if ip and ip != "None" else None
        # Dual-stack: one ClusterIP per family (the first is clusterIP).
        self.service_ips = [str(i) for i in spec.get("clusterIPs") or [] if i and i != "None"]
        port = ((spec.get("ports") or [{}])[0] or {}).get("nodePort")
        self.node_port = int(port) if port else None
        self.service_cidr = self._probe_service_cidr()

    def _probe_service_cidr(self) -> str | None:
        """The Service CIDR, from the apiserver's answer to a dry-run Service outside it."""
        from kubernetes.client.exceptions import ApiException

        probe = service_manifest(f"{self.names.prefix}-cidr-probe", self.names.run_id,
                                 node_port=False)
        probe["spec"]["clusterIP"] = "203.0.113.254"  # TEST-NET-3: never a Service range
        try:
            release_response(self.api.retrying(
                self.api.core.create_namespaced_service, self.names.namespace, probe,
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

    def dns_endpoints(self) -> list[tuple[str, str]]:
        """(IP, node) of every ready cluster DNS endpoint, from the ``kube-dns``
        EndpointSlices in kube-system (read once); [] when not allowed or not there."""
        if self._dns_endpoints is None:
            try:
                data = self.api.read(f"list endpointslices in {SYSTEM_NAMESPACE}",
                                     self.api.discovery().list_namespaced_endpoint_slice,
                                     SYSTEM_NAMESPACE, label_selector=DNS_SLICE_SELECTOR)
                self._dns_endpoints = dns_endpoints_from_slices(data.get("items") or [])
            except BackendError:
                self._dns_endpoints = []
        return list(self._dns_endpoints)

    def pod_subnets(self) -> list[str]:
        """The cluster's Pod CIDR as kubeadm records it (``kube-system/kubeadm-config``,
        ``networking.podSubnet``); [] on clusters without it or without the right to read it.
        Each node's own /24 can miss the hosts while the cluster's CIDR overlaps them."""
        if self._pod_subnets is None:
            self._pod_subnets = []
            try:
                cm = self.api.read("get configmap kube-system/kubeadm-config",
                                   self.api.core.read_namespaced_config_map,
                                   "kubeadm-config", SYSTEM_NAMESPACE)
                text = str((cm.get("data") or {}).get("ClusterConfiguration") or "")
                self._pod_subnets = pod_subnets_from_kubeadm(text)
            except BackendError:
                pass
        return list(self._pod_subnets)

    def control_plane(self, cluster_domain: str) -> ControlPlane:
        """The API server as the ``kubernetes`` EndpointSlices list it (what kubelets dial;
        the Service's ClusterIP when those cannot be read), and the ``kube-dns`` Service."""
        apis: list[tuple[str, int]] = []
        try:
            data = self.api.read("list endpointslices in default",
                                 self.api.discovery().list_namespaced_endpoint_slice, "default",
                                 label_selector="kubernetes.io/service-name=kubernetes")
            apis = api_endpoints_from_slices(data.get("items") or [])
        except BackendError:
            pass
        dns: str | None = None
        for ns, name in (("default", "kubernetes"), (SYSTEM_NAMESPACE, "kube-dns")):
            try:
                svc = self.api.read(f"get service {ns}/{name}",
                                    self.api.core.read_namespaced_service, name, ns)
            except BackendError:
                continue
            ip = str((svc.get("spec") or {}).get("clusterIP") or "")
            if name == "kube-dns":
                dns = ip or None
            elif not apis and ip:
                ports = (svc.get("spec") or {}).get("ports") or [{}]
                apis = [(ip, int(ports[0].get("port") or 443))]
        return ControlPlane(tuple(apis), dns, cluster_domain)

    def version(self) -> str:
        """The API server's gitVersion ("unknown" when it does not say); read once."""
        if self._version is None:
            try:
                self._version = str(kube().client.VersionApi(self.api.client).get_code(
                    _request_timeout=self.api.request_timeout).git_version)
            except Exception:  # noqa: BLE001 - identity is informative
                self._version = "unknown"
        return self._version
