"""The kube backend: probe pods on a real cluster, driven through the Kubernetes API.

What a run creates (all labelled ``app.kubernetes.io/managed-by=pytest-k8snet`` and
``k8snet.io/run=<run id>``):

* a namespace ``k8snet-<run id>`` (unless ``--k8s-namespace`` names an existing one),
  Pod Security ``privileged`` (hostNetwork and NET_RAW break ``baseline``);
* per node, a probe pod (``k8snet.io/probe=pod``) pinned by ``nodeName``, tolerating every
  taint, serving HTTP on 8080 (``/`` its own name, ``/1mib``, ``/healthz``), and a
  host-network twin (``k8snet.io/probe=host``); both drop every capability but NET_RAW and
  die on their own after ``activeDeadlineSeconds``;
* a ClusterIP Service selecting the probe pods, port 80 -> 8080.

The package is split by job. Pure: :mod:`.manifests` (what is created, and its names),
:mod:`.status` (readers of API objects), :mod:`.targets` (what the probes aim at).
Talking to the API: :mod:`.client` (connecting, retry policy), :mod:`.api` (one cluster's
requests), :mod:`.exec` (commands in probes), :mod:`.discovery` (what the cluster says
about itself), :mod:`.lifecycle` (removal). Starting the probes: :mod:`.launch` (creating
them through admission), :mod:`.wait` (waiting, with progress), :mod:`.readiness` (judging
them), :mod:`.findings` (what the start found), :mod:`.startup` (all of it, shared under
xdist). :mod:`.backend` puts them behind the Backend interface.
"""

from __future__ import annotations

from .backend import KubeBackend
from .client import (IN_CLUSTER, TRANSIENT_STATUSES, api_failure, call_with_retries, connect,
                     connect_in_cluster, kube, retry_after, retry_delay)
from .exec import exec_in_pod
from .lifecycle import cleanup_run, delete_run, report_leftovers
from .manifests import (ACTIVE_DEADLINE_SECONDS, BAD_CONDITIONS, CLUSTER_DOMAIN, CONTAINER,
                        DETAIL_CHARS, EVENT_PROBLEMS, EXIT_CANNOT_RUN, EXIT_EXEC_FAILED,
                        EXIT_NOT_FOUND, EXIT_TIMEOUT, GIVE_UP_REASONS, HOST_SCRIPT,
                        HTTP_SERVERS, MANAGED_BY, NODE_ANNOTATION, NOTABLE_TAINTS, ONE_MIB,
                        PROBE_CAPABILITIES, PROBE_PORT, PROBE_TOOLS, ROLE_LABEL, RUN_LABEL,
                        SERVICE_PORT, WAITING_PROBLEMS, RunNames, adds_capabilities,
                        host_probe_manifest, http_server_script, namespace_manifest,
                        probe_pod_manifest, probe_pod_name, readiness_script, run_labels,
                        security_context, service_manifest, without_added_capabilities)
from .status import (ProbeCheck, admission_denial, api_error_message,
                     cluster_domain_from_search, connection_error_reason,
                     dns_endpoints_from_slices, exit_code_from_status, node_addresses,
                     node_from_api, one_line, parse_probe_check, pod_gave_up, pod_is_ready,
                     pod_problems, pod_subnets_from_kubeadm, pod_summary, progress_line,
                     service_cidr_from_message, status_message)

__all__ = [
    "ACTIVE_DEADLINE_SECONDS", "BAD_CONDITIONS", "CLUSTER_DOMAIN", "CONTAINER", "DETAIL_CHARS",
    "EVENT_PROBLEMS", "EXIT_CANNOT_RUN", "EXIT_EXEC_FAILED", "EXIT_NOT_FOUND", "EXIT_TIMEOUT",
    "GIVE_UP_REASONS", "HOST_SCRIPT", "HTTP_SERVERS", "IN_CLUSTER", "MANAGED_BY",
    "NODE_ANNOTATION", "NOTABLE_TAINTS", "ONE_MIB", "PROBE_CAPABILITIES", "PROBE_PORT",
    "PROBE_TOOLS", "ROLE_LABEL", "RUN_LABEL", "SERVICE_PORT", "TRANSIENT_STATUSES",
    "WAITING_PROBLEMS", "KubeBackend", "ProbeCheck", "RunNames", "adds_capabilities",
    "admission_denial", "api_error_message", "api_failure", "call_with_retries",
    "cleanup_run", "cluster_domain_from_search", "connect", "connect_in_cluster",
    "connection_error_reason", "delete_run", "dns_endpoints_from_slices", "exec_in_pod",
    "exit_code_from_status", "host_probe_manifest", "http_server_script", "kube",
    "namespace_manifest", "node_addresses", "node_from_api", "one_line", "parse_probe_check",
    "pod_gave_up", "pod_is_ready", "pod_problems", "pod_subnets_from_kubeadm", "pod_summary",
    "probe_pod_manifest", "probe_pod_name", "progress_line", "readiness_script",
    "report_leftovers", "retry_after", "retry_delay", "run_labels", "security_context",
    "service_cidr_from_message", "service_manifest", "status_message",
    "without_added_capabilities",
]
