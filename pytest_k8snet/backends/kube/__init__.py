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

The package is split by job: :mod:`.manifests` (what is created), :mod:`.status` (pure
readers of API objects), :mod:`.client` (connecting, retries, errors), :mod:`.exec`
(commands in probes), :mod:`.lifecycle` (removal) and :mod:`.backend` (the backend).
Every public name stays importable from ``pytest_k8snet.backends.kube``.
"""

from __future__ import annotations

from .backend import KubeBackend
from .client import (IN_CLUSTER, TRANSIENT_STATUSES, _done, _kubeconfig_files, _kubectl_flags,
                     api_failure, call_with_retries, connect, connect_in_cluster, kube,
                     retry_after, retry_delay)
from .exec import _close_ws, _exec_error, exec_in_pod
from .lifecycle import cleanup_run, delete_run, report_leftovers
from .manifests import (ACTIVE_DEADLINE_SECONDS, BAD_CONDITIONS, CLUSTER_DOMAIN, CONTAINER,
                        DETAIL_CHARS, EVENT_PROBLEMS, EXIT_CANNOT_RUN, EXIT_EXEC_FAILED,
                        EXIT_NOT_FOUND, EXIT_TIMEOUT, GIVE_UP_REASONS, HOST_SCRIPT,
                        HTTP_SERVERS, MANAGED_BY, NODE_ANNOTATION, NOTABLE_TAINTS, ONE_MIB,
                        PROBE_CAPABILITIES, PROBE_PORT, PROBE_TOOLS, ROLE_LABEL, RUN_LABEL,
                        SERVICE_PORT, WAITING_PROBLEMS, adds_capabilities,
                        host_probe_manifest, http_server_script, namespace_manifest,
                        probe_pod_manifest, probe_pod_name, readiness_script, run_labels,
                        security_context, service_manifest, without_added_capabilities)
from .status import (ProbeCheck, _one_line, admission_denial, api_error_message,
                     cluster_domain_from_search, connection_error_reason,
                     dns_endpoints_from_slices, exit_code_from_status, node_addresses,
                     node_from_api, parse_probe_check, pod_gave_up, pod_is_ready, pod_problems,
                     pod_subnets_from_kubeadm, pod_summary, progress_line,
                     service_cidr_from_message, status_message)

__all__ = [
    "ACTIVE_DEADLINE_SECONDS", "BAD_CONDITIONS", "CLUSTER_DOMAIN", "CONTAINER", "DETAIL_CHARS",
    "EVENT_PROBLEMS", "EXIT_CANNOT_RUN", "EXIT_EXEC_FAILED", "EXIT_NOT_FOUND", "EXIT_TIMEOUT",
    "GIVE_UP_REASONS", "HOST_SCRIPT", "HTTP_SERVERS", "IN_CLUSTER", "MANAGED_BY",
    "NODE_ANNOTATION", "NOTABLE_TAINTS", "ONE_MIB", "PROBE_CAPABILITIES", "PROBE_PORT",
    "PROBE_TOOLS", "ROLE_LABEL", "RUN_LABEL", "SERVICE_PORT", "TRANSIENT_STATUSES",
    "WAITING_PROBLEMS", "KubeBackend", "ProbeCheck", "_close_ws", "_done", "_exec_error",
    "_kubeconfig_files", "_kubectl_flags", "_one_line", "adds_capabilities",
    "admission_denial", "api_error_message", "api_failure", "call_with_retries",
    "cleanup_run", "cluster_domain_from_search", "connect", "connect_in_cluster",
    "connection_error_reason", "delete_run", "dns_endpoints_from_slices", "exec_in_pod",
    "exit_code_from_status", "host_probe_manifest", "http_server_script", "kube",
    "namespace_manifest", "node_addresses", "node_from_api", "parse_probe_check",
    "pod_gave_up", "pod_is_ready", "pod_problems", "pod_subnets_from_kubeadm", "pod_summary",
    "probe_pod_manifest",
    "probe_pod_name", "progress_line", "readiness_script", "report_leftovers", "retry_after",
    "retry_delay", "run_labels", "security_context", "service_cidr_from_message",
    "service_manifest", "status_message", "without_added_capabilities",
]
