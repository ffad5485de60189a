"""The destinations the probes aim at besides each other: the probe Service by address,
by name under the cluster's domain and by its NodePort on every node, and the external name and egress URL the options give."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlparse

from .. import BackendError, ClusterTargets, Node
from .manifests import SERVICE_PORT, RunNames


def cluster_targets(names: RunNames, service_ip: str | None, service_cidr: str | None,
                    domain: str, pod_subnets: list[str], nodes: list[Node], egress_url: str,
                    external_name: str | None, node_port: int | None = None
                    ) -> ClusterTargets:
    """The Service, cluster names under the cluster's real ``domain``, the Pod CIDRs (the
    cluster's and each node's), and the external targets: the external DNS name is the
    egress URL's host; an IP address there, or no egress URL, gives ``external_skip`` (and
    ``egress_skip``) instead."""
    if service_ip is None:
        raise BackendError(f"service {names.service_name} in {names.namespace} has no "
                           "ClusterIP (probes not started?)")
    egress_url = (egress_url or "").strip()
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
    named = (external_name or "").strip()
    if named:  # --k8s-external-name: checked whatever the egress target is
        external, external_skip = named, ""
    fqdn = f"{names.service_name}.{names.namespace}.svc.{domain}"
    cidrs = tuple(dict.fromkeys([*pod_subnets, *(c for n in nodes for c in n.pod_cidrs)]))
    return ClusterTargets(
        service_ip=service_ip, service_port=SERVICE_PORT, service_name=fqdn,
        dns_names=(f"kubernetes.default.svc.{domain}", fqdn),
        external_name=external, egress_url=egress_url, pod_cidrs=cidrs,
        service_cidr=service_cidr, cluster_domain=domain,
        external_skip=external_skip, egress_skip=egress_skip, node_port=node_port)
