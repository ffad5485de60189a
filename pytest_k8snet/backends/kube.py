"""The kube backend: probe pods on a real cluster, driven through the Kubernetes API.

What a run creates (all labelled ``app.kubernetes.io/managed-by=pytest-k8snet`` and
``k8snet.io/run=<run id>``):

* a namespace ``k8snet-<run id>`` (unless ``--k8s-namespace`` names an existing one);
* per node, a probe pod (``k8snet.io/probe=pod``) pinned by ``nodeName``, tolerating every
  taint, serving HTTP on 8080 (``/`` its own name, ``/1mib``, ``/healthz``), and a
  host-network twin (``k8snet.io/probe=host``);
* a ClusterIP Service selecting the probe pods, port 80 -> 8080.

Objects are read as plain JSON dicts (``_preload_content=False``) and interpreted by the
pure functions at the top of this module, which the tests feed with objects captured from
a real kube-apiserver. Every API failure becomes a :class:`BackendError` with one line fit
for a person; nothing here waits longer than the run's ``--k8s-timeout`` per request, or
10 times that for the probes to come up.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import urllib3
from filelock import FileLock

from . import Backend, BackendError, ClusterTargets, Endpoint, ExecResult, Network, Node

if TYPE_CHECKING:
    import pytest

    from ..settings import Settings


def kube() -> Any:
    """The ``kubernetes`` package, imported on first use and typed loosely (its generated
    annotations want model objects where this module passes plain JSON dicts)."""
    import kubernetes.client
    import kubernetes.config
    import kubernetes.stream
    import kubernetes.watch

    return kubernetes


MANAGED_BY = ("app.kubernetes.io/managed-by", "pytest-k8snet")
RUN_LABEL = "k8snet.io/run"
ROLE_LABEL = "k8snet.io/probe"  # "pod" or "host"
NODE_ANNOTATION = "k8snet.io/node"
PROBE_PORT = 8080
SERVICE_PORT = 80
CONTAINER = "probe"
ONE_MIB = 1024 * 1024
CLUSTER_DOMAIN = "cluster.local"

# Exit codes for an exec that did not produce one (the command's own codes pass through).
EXIT_TIMEOUT = 124  # like timeout(1)
EXIT_EXEC_FAILED = 125  # the API or the kubelet could not run the exec at all
EXIT_CANNOT_RUN = 126  # the runtime refused the command
EXIT_NOT_FOUND = 127  # the executable is not in the image

# Container waiting reasons after which waiting longer does not help.
GIVE_UP_REASONS = frozenset({"ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                             "CreateContainerConfigError", "CrashLoopBackOff"})
WAITING_PROBLEMS = GIVE_UP_REASONS | {"ErrImagePull", "CreateContainerError",
                                      "RunContainerError", "PreStartHookError"}
# Warning events on a pod that explain why it does not come up.
EVENT_PROBLEMS = ("FailedCreatePodSandBox", "FailedScheduling", "NetworkNotReady", "FailedMount",
                  "Unhealthy", "Failed", "BackOff", "FailedSync", "InspectFailed",
                  "ErrImageNeverPull", "Evicted", "Preempting", "OutOfcpu", "OutOfmemory")
# Node conditions other than Ready that matter when they are True.
BAD_CONDITIONS = ("NetworkUnavailable", "MemoryPressure", "DiskPressure", "PIDPressure")
# Taints worth a line in the node's problems (probes tolerate every taint anyway).
NOTABLE_TAINTS = ("node.kubernetes.io/network-unavailable", "node.kubernetes.io/not-ready",
                  "node.kubernetes.io/unreachable", "node.kubernetes.io/out-of-service",
                  "node.cloudprovider.kubernetes.io/uninitialized",
                  "node.kubernetes.io/disk-pressure", "node.kubernetes.io/memory-pressure",
                  "node.kubernetes.io/pid-pressure")
DETAIL_CHARS = 300


# -- pure functions: manifests --------------------------------------------------------------


def http_server_script(port: int = PROBE_PORT, root: str = "/tmp/www") -> str:
    """The probe container's command: serve ``/`` (the pod's name), ``/1mib`` and ``/healthz``.

    Images differ, so the script uses the first server it finds: ``python3 -m http.server``
    (netshoot ships python3), ``busybox httpd``, ``httpd`` (busybox-extras), then ``socat``
    with a small shell responder. With none it exits with a message that the pod's status
    shows (``terminationMessagePolicy: FallbackToLogsOnError``). The pod's name comes from
    ``$K8SNET_POD`` (downward API).
    """
    respond = (
        "read -r _ p _; p=${p%%\\?*}; case $p in /) f=index.html;; /1mib) f=1mib;; "
        "/healthz) f=healthz;; *) f=;; esac; "
        "if [ -n \"$f\" ]; then printf 'HTTP/1.0 200 OK\\r\\nContent-Type: "
        "application/octet-stream\\r\\nContent-Length: %s\\r\\nConnection: close\\r\\n\\r\\n' "
        "\"$(wc -c <\"$f\" | tr -d ' ')\"; cat \"$f\"; "
        "else printf 'HTTP/1.0 404 Not Found\\r\\nContent-Length: 0\\r\\n\\r\\n'; fi")
    return "\n".join([
        "set -u",
        f"mkdir -p {root} && cd {root} || exit 1",
        f"head -c {ONE_MIB} /dev/zero >1mib 2>/dev/null || "
        "dd if=/dev/zero of=1mib bs=1024 count=1024 2>/dev/null",
        "echo ok >healthz",
        'echo "${K8SNET_POD:-$(hostname)}" >index.html',
        f"if command -v python3 >/dev/null 2>&1; then exec python3 -m http.server {port}; fi",
        "if command -v busybox >/dev/null 2>&1 && busybox --list 2>/dev/null | grep -qx httpd; "
        f"then exec busybox httpd -f -p {port} -h {root}; fi",
        f"if command -v httpd >/dev/null 2>&1; then exec httpd -f -p {port} -h {root}; fi",
        "if command -v socat >/dev/null 2>&1; then",
        f"  cat >/tmp/k8snet-respond.sh <<'EOF'\ncd {root}\n{respond}\nEOF",
        f"  exec socat TCP-LISTEN:{port},reuseaddr,fork SYSTEM:'sh /tmp/k8snet-respond.sh'",
        "fi",
        'echo "k8snet: no HTTP server in the probe image (need python3, busybox httpd, httpd '
        'or socat)" >&2',
        "exit 1",
    ])


HOST_SCRIPT = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"


def probe_pod_name(role: str, node: str, prefix: str = "k8snet") -> str:
    """``<prefix>-<role>-<node>``, shortened with a hash to stay a valid 63-character name."""
    name = f"{prefix}-{role}-{node}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha1(node.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-.')}-{digest}"


def run_labels(run_id: str) -> dict[str, str]:
    return {MANAGED_BY[0]: MANAGED_BY[1], RUN_LABEL: run_id}


def namespace_manifest(name: str, run_id: str) -> dict[str, Any]:
    """The run's namespace.

    Pod Security: ``enforce=privileged`` because the host-network probes need it. The
    minimum each probe needs: the pod-network probe only adds ``NET_RAW`` (ping), which
    the ``baseline`` level allows; only the host-network probes for node checks need
    ``privileged`` (``hostNetwork``, privileged container). With ``--k8s-namespace`` the
    namespace is yours and its labels are left alone, so it must admit both.
    """
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {
                **run_labels(run_id), "pod-security.kubernetes.io/enforce": "privileged",
                "pod-security.kubernetes.io/warn": "privileged",
                "pod-security.kubernetes.io/audit": "privileged"}}}


def _base_pod(name: str, node: str, run_id: str, role: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {**run_labels(run_id), ROLE_LABEL: role},
                     "annotations": {NODE_ANNOTATION: node}},
        "spec": {
            "nodeName": node,
            "tolerations": [{"operator": "Exists"}],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 2,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
        },
    }


def probe_pod_manifest(name: str, node: str, run_id: str, image: str) -> dict[str, Any]:
    """The pod-network probe on ``node``: HTTP on 8080, ``NET_RAW`` for ping."""
    pod = _base_pod(name, node, run_id, "pod")
    pod["spec"]["containers"] = [{
        "name": CONTAINER, "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", http_server_script()],
        "env": [{"name": "K8SNET_POD",
                 "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "ports": [{"name": "http", "containerPort": PROBE_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": PROBE_PORT},
                           "periodSeconds": 2, "timeoutSeconds": 2},
        "securityContext": {"capabilities": {"add": ["NET_RAW"]}},
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }]
    return pod


def host_probe_manifest(name: str, node: str, run_id: str, image: str) -> dict[str, Any]:
    """The host-network probe on ``node``: privileged, for node-level checks."""
    pod = _base_pod(name, node, run_id, "host")
    pod["spec"].update({"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet"})
    pod["spec"]["containers"] = [{
        "name": CONTAINER, "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", HOST_SCRIPT],
        "securityContext": {"privileged": True},
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }]
    return pod


def service_manifest(name: str, run_id: str) -> dict[str, Any]:
    """ClusterIP Service over the run's pod-network probes: port 80 -> 8080."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": run_labels(run_id)},
            "spec": {"type": "ClusterIP",
                     "selector": {RUN_LABEL: run_id, ROLE_LABEL: "pod"},
                     "ports": [{"name": "http", "protocol": "TCP", "port": SERVICE_PORT,
                                "targetPort": PROBE_PORT}]}}


# -- pure functions: reading API objects ----------------------------------------------------


def _one_line(text: Any, limit: int = DETAIL_CHARS) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


def node_from_api(obj: Mapping[str, Any]) -> Node:
    """A :class:`Node` from a Node object in its JSON form.

    ``ip``: the InternalIP (else the ExternalIP); ``pod_cidrs``: ``spec.podCIDRs`` or
    ``[spec.podCIDR]``; ``problems``: a Ready condition that is not True, other bad
    conditions, cordoning and taints worth knowing about.
    """
    meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status", {})
    addresses = {a.get("type"): a.get("address", "") for a in status.get("addresses") or []}
    ip = addresses.get("InternalIP") or addresses.get("ExternalIP") or ""
    cidrs = tuple(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready_cond = conditions.get("Ready")
    ready = ready_cond is not None and ready_cond.get("status") == "True"
    problems: list[str] = []
    if ready_cond is None:
        problems.append("no Ready condition (the kubelet never reported)")
    elif not ready:
        why = ": ".join(x for x in (ready_cond.get("reason"), _one_line(ready_cond.get("message")))
                        if x)
        problems.append(f"Ready={ready_cond.get('status')}" + (f": {why}" if why else ""))
    for ctype in BAD_CONDITIONS:
        cond = conditions.get(ctype)
        if cond and cond.get("status") == "True":
            why = ": ".join(x for x in (cond.get("reason"), _one_line(cond.get("message"))) if x)
            problems.append(f"{ctype}" + (f": {why}" if why else ""))
    if spec.get("unschedulable"):
        problems.append("cordoned (spec.unschedulable)")
    for taint in spec.get("taints") or []:
        key = taint.get("key", "")
        if key not in NOTABLE_TAINTS:
            continue
        if not ready and key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            continue  # already said by NotReady
        value = f"={taint['value']}" if taint.get("value") else ""
        problems.append(f"taint {key}{value}:{taint.get('effect', '')}")
    if not ip:
        problems.append("no InternalIP or ExternalIP address")
    return Node(name=str(meta.get("name", "")), ip=str(ip), pod_cidrs=cidrs, ready=ready,
                labels=dict(meta.get("labels") or {}), problems=tuple(problems))


def _containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = pod.get("status") or {}
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def pod_is_ready(pod: Mapping[str, Any]) -> bool:
    """Running with the Ready condition True."""
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in status.get("conditions") or [])


def pod_gave_up(pod: Mapping[str, Any]) -> bool:
    """True when waiting longer will not make the pod ready (failed, image missing...)."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Failed", "Succeeded"):
        return True
    return any(((c.get("state") or {}).get("waiting") or {}).get("reason") in GIVE_UP_REASONS
               for c in _containers(pod))


def _event_time(event: Mapping[str, Any]) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime")
               or (event.get("metadata") or {}).get("creationTimestamp") or "")


def pod_problems(pod: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Why ``pod`` is not ready, one line each: from its status, then from Warning events.

    Lines read ``<kind> probe <pod> on <node>: <reason>: <detail>``; image problems name the
    image. ``events`` are core/v1 Events of the namespace in their JSON form (those about
    other objects are ignored).
    """
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    name = str(meta.get("name", "?"))
    node = spec.get("nodeName") or (meta.get("annotations") or {}).get(NODE_ANNOTATION) or "?"
    kind = "host-network" if spec.get("hostNetwork") else "pod-network"
    head = f"{kind} probe {name} on {node}"
    found: list[str] = []
    if status.get("phase") in ("Failed", "Succeeded"):
        found.append(f"{head}: pod {status.get('phase')}: "
                     + ": ".join(x for x in (status.get("reason"),
                                             _one_line(status.get("message"))) if x))
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            found.append(f"{head}: not scheduled: {cond.get('reason', '')}: "
                         f"{_one_line(cond.get('message'))}")
    for cs in _containers(pod):
        state = cs.get("state") or {}
        waiting, terminated = state.get("waiting") or {}, state.get("terminated") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        reason = waiting.get("reason")
        if reason in WAITING_PROBLEMS:
            detail = _one_line(waiting.get("message"))
            if "Image" in reason:
                found.append(f"{head}: {reason}: image {cs.get('image', '?')}"
                             + (f": {detail}" if detail else ""))
            else:
                if last:
                    detail = (f"last exit code {last.get('exitCode')}"
                              + (f" ({last['reason']})" if last.get("reason") else "")
                              + (f": {_one_line(last.get('message'))}" if last.get("message")
                                 else "") + (f"; {detail}" if detail else ""))
                found.append(f"{head}: {reason}" + (f": {detail}" if detail else ""))
        elif terminated:
            found.append(f"{head}: container exited with code {terminated.get('exitCode')}"
                         + (f" ({terminated['reason']})" if terminated.get("reason") else "")
                         + (f": {_one_line(terminated.get('message'))}"
                            if terminated.get("message") else ""))
    latest: dict[str, Mapping[str, Any]] = {}
    for ev in sorted(events, key=_event_time):
        obj = ev.get("involvedObject") or ev.get("regarding") or {}
        if obj.get("kind") != "Pod" or obj.get("name") != name or ev.get("type") != "Warning":
            continue
        if ev.get("reason") in EVENT_PROBLEMS:
            latest[str(ev["reason"])] = ev
    for reason, ev in latest.items():
        if found and reason in ("Failed", "BackOff"):
            continue  # the container status already says it, with the image
        count = int(ev.get("count") or (ev.get("series") or {}).get("count") or 1)
        found.append(f"{head}: {reason}: {_one_line(ev.get('message') or ev.get('note'))}"
                     + (f" (x{count})" if count > 1 else ""))
    return list(dict.fromkeys(found))


def pod_summary(pod: Mapping[str, Any]) -> str:
    """Phase and container state in a few words, e.g. ``Pending, no container status yet``."""
    status = pod.get("status") or {}
    parts = [str(status.get("phase") or "Pending")]
    states = []
    for cs in _containers(pod):
        state = cs.get("state") or {}
        if "waiting" in state:
            states.append(str((state["waiting"] or {}).get("reason") or "waiting"))
        elif "running" in state:
            states.append("running, not ready" if not cs.get("ready") else "running")
        elif "terminated" in state:
            states.append("terminated")
    parts.append(", ".join(states) if states else "no container status yet")
    return ", ".join(parts)


def exit_code_from_status(text: str) -> int:
    """The command's exit code from the exec status channel (channel 3).

    ``{"status":"Success"}`` is 0; a ``details.causes`` entry with ``reason: ExitCode`` holds
    the code. A Failure without one: 127 when the executable is missing, 126 when the
    runtime could not start it, else 125 (the exec never reached the container, e.g. the
    API server could not reach the kubelet); no or unreadable status is 125 too.
    """
    try:
        status = json.loads(text) if text and text.strip() else None
    except ValueError:
        return EXIT_EXEC_FAILED
    if not isinstance(status, dict):
        return EXIT_EXEC_FAILED
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message"))
            except (TypeError, ValueError):
                return EXIT_EXEC_FAILED
    message = str(status.get("message") or "").lower()
    if status.get("status") != "Failure":
        return EXIT_EXEC_FAILED
    if "executable file not found" in message or "no such file or directory" in message:
        return EXIT_NOT_FOUND
    if any(m in message for m in ("permission denied", "oci runtime", "exec failed",
                                  "failed to exec", "error executing command")):
        return EXIT_CANNOT_RUN
    return EXIT_EXEC_FAILED  # e.g. the API server could not reach the kubelet


def status_message(text: str) -> str:
    """The message of a Failure status (empty for success or a plain non-zero exit)."""
    try:
        status = json.loads(text) if text and text.strip() else {}
    except ValueError:
        return _one_line(text)
    if not isinstance(status, dict) or status.get("status") == "Success":
        return ""
    causes = (status.get("details") or {}).get("causes") or []
    if any(c.get("reason") == "ExitCode" for c in causes):
        return ""
    return _one_line(status.get("message"))


_SERVICE_RANGE = re.compile(r"range of valid IPs is ([0-9a-fA-F.:/]+(?:,\s*[0-9a-fA-F.:/]+)*)")


def service_cidr_from_message(message: str) -> str | None:
    """The Service CIDR(s) named by the apiserver when a Service asks for an IP outside it."""
    match = _SERVICE_RANGE.search(message or "")
    if not match:
        return None
    cidrs = [c.strip() for c in match.group(1).split(",") if c.strip()]
    try:
        return ",".join(str(ipaddress.ip_network(c, strict=False)) for c in cidrs) or None
    except ValueError:
        return None


def api_error_message(status: int | None, body: str | None, reason: str | None,
                      what: str, server: str) -> str:
    """One line for a failed API request (``what``: e.g. ``list nodes``)."""
    message = ""
    try:
        data = json.loads(body) if body else {}
        if isinstance(data, dict):
            message = _one_line(data.get("message"))
    except ValueError:
        message = _one_line(body)
    if status == 401:
        return (f"the Kubernetes API at {server} rejected the credentials (401 Unauthorized) "
                f"while trying to {what}")
    if status == 403:
        return (f"forbidden to {what}: {message or reason} "
                "(the RBAC rules pytest-k8snet needs are in examples/rbac.yaml)")
    return f"cannot {what}: {status} {reason or ''}".rstrip() + (f": {message}" if message else "")


def connection_error_reason(exc: BaseException, timeout: float) -> str:
    """A short reason for a failed connection to the API server."""
    inner: BaseException | None = exc
    while isinstance(inner, urllib3.exceptions.MaxRetryError) and inner.reason is not None:
        inner = inner.reason
    text = str(inner or exc)
    low = text.lower()
    if "refused" in low:
        return "connection refused"
    if "name or service not known" in low or "nodename nor servname" in low \
            or "failed to resolve" in low or "name resolution" in low:
        return "host name not found"
    if "unreachable" in low:
        return "network unreachable"
    # (urllib3's NewConnectionError is a ConnectTimeoutError too: test the text first)
    if isinstance(inner, (urllib3.exceptions.TimeoutError, TimeoutError)) \
            or "timed out" in low or "timeout" in low:
        return f"no answer within {timeout:g}s"
    if "certificate" in low or "ssl" in low:
        return "TLS error: " + _one_line(text.split("\n")[-1], 200)
    text = re.sub(r"^.*?: (?=\[Errno)", "", text)
    return _one_line(text, 200)


# -- the backend ------------------------------------------------------------------------------


def _done(resp: Any) -> None:
    """Finish with a raw response: read what is left, then give the connection back (an
    unread body on a pooled connection would be taken for the next response)."""
    try:
        resp.drain_conn()
    finally:
        resp.release_conn()


def _kubeconfig_files(path: str) -> list[str]:
    return [p for p in path.split(os.pathsep) if p]


def connect(kubeconfig: str, context: str | None) -> tuple[Any, str, str]:
    """An API client for ``kubeconfig`` (``:``-separated files merge) and ``context``.

    Returns the client, the server URL and the context's name. A missing file, an unknown
    context or a broken kubeconfig raise :class:`BackendError`. The client never retries:
    callers bound each request with ``_request_timeout`` (see ``request_timeout``).
    """
    kconfig = kube().config
    ConfigException = kconfig.config_exception.ConfigException  # noqa: N806

    files = _kubeconfig_files(kubeconfig)
    if not files or not any(Path(f).is_file() for f in files):
        raise BackendError(f"kubeconfig {kubeconfig} not found "
                           "(--k8s-kubeconfig, KUBECONFIG or ~/.kube/config)")
    try:
        contexts, current = kconfig.list_kube_config_contexts(config_file=kubeconfig)
        names = [str(c.get("name")) for c in contexts or []]
        if context is not None and context not in names:
            raise BackendError(f"context {context!r} not found in kubeconfig {kubeconfig} "
                               f"(it has: {', '.join(names) or 'none'})")
        if context is None and not current:
            raise BackendError(f"kubeconfig {kubeconfig} has no current context; "
                               "pass --k8s-context")
        conf = kube().client.Configuration()
        # No retries: an unreachable API fails at once; each request is bounded by timeout.
        conf.retries = urllib3.Retry(total=0, backoff_factor=0)
        conf.connection_pool_maxsize = 32
        api = kconfig.new_client_from_config(config_file=kubeconfig, context=context,
                                             persist_config=False, client_configuration=conf)
    except BackendError:
        raise
    except (ConfigException, OSError, ValueError, KeyError, TypeError) as exc:
        raise BackendError(f"kubeconfig {kubeconfig}: {_one_line(exc, 200)}") from None
    except Exception as exc:  # noqa: BLE001 - exec plugins and friends; one line, no traceback
        raise BackendError(f"kubeconfig {kubeconfig}: {type(exc).__name__}: "
                           f"{_one_line(exc, 200)}") from None
    conf = api.configuration
    name = context or str((current or {}).get("name") or "")
    return api, str(conf.host), name


class KubeBackend(Backend):
    """Probe pods on a cluster reached through a kubeconfig.

    Under xdist (``shared_dir`` set) the workers share one probe set: the first one (under
    ``shared_dir/kube.lock``) creates it and waits for it, the others find it by the run
    label; none of them deletes it, the controller calls :func:`cleanup_run`.
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
        self._node_list: list[Node] = []
        self._endpoints: dict[tuple[str, str], Endpoint] = {}
        self._unusable: dict[tuple[str, str], str] = {}
        self._pod_node: dict[str, str] = {}
        self._ready_probe_pods: list[str] = []
        self._problems: dict[str, list[str]] = {}
        self._pods_rv = ""
        self._service_ip: str | None = None
        self._service_cidr: str | None = None
        self._version: str | None = None
        self._started = False
        self._cleaned = False

    @classmethod
    def from_settings(cls, settings: Settings, kubeconfig_path: str,
                      config: pytest.Config | None, shared_dir: Path | None = None
                      ) -> "KubeBackend":
        api, server, context = connect(kubeconfig_path, settings.context)
        return cls(api, settings, config, server, context, kubeconfig_path, shared_dir)

    # -- API plumbing -------------------------------------------------------------------

    @property
    def request_timeout(self) -> tuple[float, float]:
        """(connect incl. TLS handshake, read): an unreachable API fails within timeout; a
        slow answer (a big node list) gets a little longer."""
        return (self.timeout, max(2 * self.timeout, 10.0))

    def _error(self, exc: BaseException, what: str) -> BackendError:
        return api_failure(exc, what, self.server, self.timeout)

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, _request_timeout=self.request_timeout, **kwargs)
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
            resp = fn(*args, _request_timeout=self.request_timeout, _preload_content=False)
            _done(resp)
            return True
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise self._error(exc, what) from None
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, what) from None

    # -- discovery ----------------------------------------------------------------------

    def nodes(self) -> list[Node]:
        """Every node. The list is kept: :meth:`start` adds the problems it finds to it."""
        data = self._json("list nodes", self.core.list_node)
        self._node_list = [node_from_api(item) for item in data.get("items") or []]
        return self._node_list

    def node_problems(self) -> dict[str, list[str]]:
        """Problems found by :meth:`start`, per node (also merged into the node lists)."""
        return {k: list(v) for k, v in self._problems.items()}

    # -- start --------------------------------------------------------------------------

    def start(self, nodes: Sequence[Node]) -> None:
        """Create (or, under xdist, find) the probes on ``nodes`` and wait for them.

        Waits at most ``10 * timeout`` for the probes on Ready nodes (those on NotReady
        nodes are not waited for). A probe that does not come up does not fail the run:
        its reasons (status, Warning events, or "not ready after Ns") are added to its
        node's ``problems`` -- in ``nodes`` and in the list :meth:`nodes` returned, whose
        items are replaced in place, so the run's node lists show them -- and commands in
        it fail at once with exit code 125. API failures (forbidden, rejected by admission)
        raise BackendError.
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
                    marker.write_text(json.dumps(self._problems))
        self._record_problems(nodes if isinstance(nodes, list) else chosen)

    def _namespace_exists(self) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            _done(self.core.read_namespace(self.namespace, _request_timeout=self.request_timeout,
                                           _preload_content=False))
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise self._error(exc, f"get namespace {self.namespace}") from None
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, f"get namespace {self.namespace}") from None

    def _manifests(self, nodes: Sequence[Node]) -> list[tuple[Node, str, dict[str, Any]]]:
        """Both probe manifests per node, after ``pytest_k8snet_probe_pod_manifest``."""
        out = []
        for node in nodes:
            for role, build in (("pod", probe_pod_manifest), ("host", host_probe_manifest)):
                name = probe_pod_name("probe" if role == "pod" else "host", node.name,
                                      self.prefix)
                manifest = build(name, node.name, self.run_id, self.settings.probe_image)
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
        deadline = started + 10 * self.timeout
        manifests = self._manifests(nodes)
        expected = {str(m["metadata"]["name"]): (node.name, role) for node, role, m in manifests}
        self._create_all([m for _, _, m in manifests], deadline)
        self._read_service()
        ready_nodes = {n.name for n in nodes if n.ready}
        wait_for = {name for name, (node, _) in expected.items() if node in ready_nodes}
        pods, events = self._wait(wait_for, set(expected), deadline)
        self._problems = {}
        self._evaluate(expected, nodes, pods, events, time.monotonic() - started, record=True)

    def _reuse(self, nodes: list[Node], pods: list[dict[str, Any]],
               known: Mapping[str, list[str]]) -> None:
        """Another xdist worker made the probes: find them by label, take its findings."""
        chosen = {n.name for n in nodes}
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
        self._problems = {k: list(v) for k, v in known.items()}
        self._evaluate(expected, nodes, by_name, events, 0.0, record=False)

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

    def _create_all(self, manifests: list[dict[str, Any]], deadline: float) -> None:
        from kubernetes.client.exceptions import ApiException

        if self.owns_namespace:
            self._create(f"create namespace {self.namespace}", self.core.create_namespace,
                         namespace_manifest(self.namespace, self.run_id))
        elif not self._namespace_exists():
            raise BackendError(f"namespace {self.namespace} (--k8s-namespace) does not exist; "
                               "create it, or leave the option out for a fresh namespace")
        self._create(f"create service {self.service_name} in {self.namespace}",
                     self.core.create_namespaced_service, self.namespace,
                     service_manifest(self.service_name, self.run_id))
        def create(manifest: dict[str, Any]) -> None:
            name = manifest["metadata"]["name"]
            what = f"create pod {name} in {self.namespace}"
            while True:
                try:
                    resp = self.core.create_namespaced_pod(
                        self.namespace, manifest, _request_timeout=self.request_timeout,
                        _preload_content=False)
                    _done(resp)
                    return
                except ApiException as exc:
                    if exc.status == 409:
                        return
                    # a fresh namespace gets its default ServiceAccount a moment later
                    if exc.status == 403 and "serviceaccount" in str(exc.body).lower() \
                            and "not found" in str(exc.body).lower() \
                            and time.monotonic() < deadline:
                        time.sleep(0.2)
                        continue
                    raise self._error(exc, what) from None
                except Exception as exc:  # noqa: BLE001
                    raise self._error(exc, what) from None

        with ThreadPoolExecutor(max_workers=min(16, max(1, len(manifests))),
                                thread_name_prefix="k8snet-create") as pool:
            futures = [pool.submit(create, m) for m in manifests]
            errors = [f.exception() for f in futures]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first if isinstance(first, BackendError) else BackendError(str(first))

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
            _done(self.core.create_namespaced_service(
                self.namespace, probe, dry_run="All", _request_timeout=self.request_timeout,
                _preload_content=False))
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
        deadline; then the namespace's events if any of ``everything`` is not ready."""
        self._pods_rv = ""
        while True:
            pods = {str(p["metadata"]["name"]): p for p in self._list_pods()}
            waiting = {n for n in wait_for if n not in pods
                       or not (pod_is_ready(pods[n]) or pod_gave_up(pods[n]))}
            remaining = deadline - time.monotonic()
            if not waiting or remaining <= 0:
                break
            self._watch_pause(min(2.0, remaining))
        unready = any(n not in pods or not pod_is_ready(pods[n]) for n in everything)
        return pods, self._events() if unready else []

    def _record_problems(self, nodes: list[Node]) -> None:
        if not self._problems:
            return
        for seq in (nodes, self._node_list):
            for i, node in enumerate(seq):
                extra = tuple(p for p in self._problems.get(node.name, [])
                              if p not in node.problems)
                if extra:
                    seq[i] = replace(node, problems=node.problems + extra)

    # -- using the probes ---------------------------------------------------------------

    def endpoint(self, node: str, network: Network) -> Endpoint:
        try:
            return self._endpoints[(node, network)]
        except KeyError:
            raise BackendError(f"no {network} probe started on {node}") from None

    def run(self, endpoint: Endpoint, argv: Sequence[str], timeout: float) -> ExecResult:
        """Exec ``argv`` in the endpoint's pod through the API; never raises.

        A probe that never came up gives exit 125 at once; no answer within ``timeout``
        gives ``timed_out=True``, exit 124.
        """
        why = self._unusable.get((endpoint.node, endpoint.network))
        if why:
            return ExecResult(tuple(argv), EXIT_EXEC_FAILED, "", why, 0.0)
        return exec_in_pod(self.api.configuration, self.namespace, endpoint.name, argv, timeout)

    def targets(self) -> ClusterTargets:
        if self._service_ip is None:
            raise BackendError(f"service {self.service_name} in {self.namespace} has no "
                               "ClusterIP (probes not started?)")
        host = urlparse(self.settings.egress_url).hostname or "example.com"
        try:
            ipaddress.ip_address(host)
            external = "example.com"  # an IP literal cannot be looked up; any public name will do
        except ValueError:
            external = host
        fqdn = f"{self.service_name}.{self.namespace}.svc.{CLUSTER_DOMAIN}"
        nodes = self._node_list or []
        cidrs = tuple(dict.fromkeys(c for n in nodes for c in n.pod_cidrs))
        return ClusterTargets(
            service_ip=self._service_ip, service_port=SERVICE_PORT, service_name=fqdn,
            dns_names=(f"kubernetes.default.svc.{CLUSTER_DOMAIN}", fqdn),
            external_name=external, egress_url=self.settings.egress_url, pod_cidrs=cidrs,
            service_cidr=self._service_cidr)

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
                "namespace": self.namespace}

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

        Idempotent; does nothing under xdist (the controller calls :func:`cleanup_run`).
        Never raises: a failure is printed with the command that finishes the job.
        """
        if self._cleaned or self.shared_dir is not None:
            return
        self._cleaned = True
        try:
            if self._started:
                delete_run(self.core, self.namespace, self.run_id, self.owns_namespace,
                           self.service_name, self.request_timeout, self.server, self.timeout)
        except BackendError as exc:
            sys.stderr.write(f"k8snet: cleanup failed: {exc}. {self.keep_hint()}\n")
        finally:
            self.api.close()


def _kubectl_flags(kubeconfig: str, context: str | None) -> str:
    default = str(Path("~/.kube/config").expanduser())
    flags = "" if kubeconfig in (default, os.environ.get("KUBECONFIG")) \
        else f" --kubeconfig {kubeconfig}"
    return flags + (f" --context {context}" if context else "")


def api_failure(exc: BaseException, what: str, server: str, timeout: float) -> BackendError:
    """The BackendError for any exception raised by an API call."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, ApiException) and exc.status:
        return BackendError(api_error_message(exc.status, exc.body, exc.reason, what, server))
    if isinstance(exc, ApiException):  # status 0: TLS and transport errors
        return BackendError(f"cannot reach the Kubernetes API at {server}: "
                            f"{connection_error_reason(Exception(exc.reason), timeout)}")
    if isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
        return BackendError(f"cannot reach the Kubernetes API at {server}: "
                            f"{connection_error_reason(exc, timeout)}")
    return BackendError(f"cannot {what}: {type(exc).__name__}: {_one_line(exc, 200)}")


def delete_run(core: Any, namespace: str, run_id: str, owns_namespace: bool,
               service_name: str, request_timeout: tuple[float, float], server: str,
               timeout: float) -> None:
    """Delete the run's pods at once (grace 0: no kubelet needs to agree), its Service, and
    its namespace when the run created it. Missing objects are fine."""
    from kubernetes.client.exceptions import ApiException

    def quiet(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, _request_timeout=request_timeout, _preload_content=False, **kwargs)
        except ApiException as exc:
            if exc.status in (404, 409):
                return None
            raise api_failure(exc, what, server, timeout) from None
        except Exception as exc:  # noqa: BLE001
            raise api_failure(exc, what, server, timeout) from None

    resp = quiet(f"list pods in {namespace}", core.list_namespaced_pod, namespace,
                 label_selector=f"{RUN_LABEL}={run_id}")
    names: list[str] = []
    if resp is not None:
        try:
            names = [p["metadata"]["name"] for p in json.loads(resp.data).get("items") or []]
        finally:
            resp.release_conn()

    def delete_pod(name: str) -> None:
        r = quiet(f"delete pod {name} in {namespace}", core.delete_namespaced_pod, name,
                  namespace, grace_period_seconds=0)
        if r is not None:
            _done(r)

    if names:
        with ThreadPoolExecutor(max_workers=min(16, len(names)),
                                thread_name_prefix="k8snet-delete") as pool:
            list(pool.map(delete_pod, names))
    for what, fn, args in (
            (f"delete service {service_name} in {namespace}", core.delete_namespaced_service,
             (service_name, namespace)),
            *([(f"delete namespace {namespace}", core.delete_namespace, (namespace,))]
              if owns_namespace else [])):
        r = quiet(what, fn, *args)
        if r is not None:
            _done(r)


def cleanup_run(settings: Settings, kubeconfig_path: str) -> None:
    """Controller side under xdist: delete the run's probes by label from a fresh client.

    Quiet when there is no kubeconfig (nothing can have been created); never raises.
    """
    if settings.keep:
        return
    try:
        api, server, _ = connect(kubeconfig_path, settings.context)
    except BackendError:
        return
    owns = settings.namespace is None
    namespace = settings.namespace or f"k8snet-{settings.run_id}"
    prefix = "k8snet" if owns else f"k8snet-{settings.run_id}"
    timeout = settings.timeout
    try:
        delete_run(kube().client.CoreV1Api(api), namespace, settings.run_id, owns,
                   f"{prefix}-probe",
                   (timeout, max(2 * timeout, 10.0)), server, timeout)
    except BackendError as exc:
        flags = _kubectl_flags(kubeconfig_path, settings.context)
        sys.stderr.write(f"k8snet: cleanup failed: {exc}. Remove leftovers with `kubectl{flags} "
                         f"delete namespace,pods,services -A -l {RUN_LABEL}={settings.run_id}`\n")
    finally:
        api.close()


# -- exec -------------------------------------------------------------------------------------


def _exec_error(exc: BaseException) -> str:
    """The apiserver's message from a failed exec handshake, else the exception's text."""
    text = str(getattr(exc, "reason", None) or exc)
    match = re.search(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
    if match:
        try:
            return _one_line(json.loads(f'"{match.group(1)}"'))
        except ValueError:
            return _one_line(match.group(1))
    return _one_line(text)


def _close_ws(ws: Any) -> None:
    """Close an exec stream and its socket (websocket-client leaves the socket open when
    the server closed first)."""
    try:
        ws.close(timeout=0.5)
    except Exception:  # noqa: BLE001 - closing a broken stream
        pass
    sock = getattr(ws, "sock", None)
    if sock is not None:
        sock.shutdown()


def exec_in_pod(configuration: Any, namespace: str, pod: str, argv: Sequence[str],
                timeout: float) -> ExecResult:
    """Run ``argv`` in ``pod`` through the exec API; the result, never an exception.

    A fresh ApiClient per call: ``kubernetes.stream.stream`` swaps the client's transport
    while it runs, which must not leak into concurrent calls. The websocket connect runs in
    a daemon thread so that an API server waiting on an unreachable kubelet cannot hold
    the caller past ``timeout``.
    """
    k = kube()
    error_channel = k.stream.ws_client.ERROR_CHANNEL

    args = tuple(argv)
    start = time.monotonic()
    deadline = start + timeout
    box: dict[str, Any] = {}
    lock = threading.Lock()

    def open_stream() -> None:
        api = k.client.ApiClient(configuration)
        try:
            ws = k.stream.stream(k.client.CoreV1Api(api).connect_get_namespaced_pod_exec, pod,
                                 namespace, command=list(args), container=CONTAINER,
                                 stderr=True, stdin=False, stdout=True, tty=False,
                                 _preload_content=False)
        except BaseException as exc:  # noqa: BLE001 - reported as the result
            box["error"] = exc
            ws = None
        finally:
            api.close()
        with lock:
            if box.get("abandoned") and ws is not None:
                _close_ws(ws)
            else:
                box["ws"] = ws

    thread = threading.Thread(target=open_stream, name=f"k8snet-exec-{pod}", daemon=True)
    thread.start()
    thread.join(max(0.0, timeout))
    with lock:
        if thread.is_alive():
            box["abandoned"] = True
            return ExecResult(args, EXIT_TIMEOUT, "", f"exec in {pod}: no connection within "
                              f"{timeout:g}s", time.monotonic() - start, True)
    if box.get("ws") is None:
        return ExecResult(args, EXIT_EXEC_FAILED, "",
                          "exec in {} failed: {}".format(
                              pod, _exec_error(box.get("error") or RuntimeError("no stream"))),
                          time.monotonic() - start)
    ws = box["ws"]
    out: list[str] = []
    err: list[str] = []
    status = ""
    timed_out = False
    try:
        while ws.is_open():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            ws.update(timeout=min(remaining, 1.0))
            out.append(ws.read_stdout(timeout=0))
            err.append(ws.read_stderr(timeout=0))
        out.append(ws.read_stdout(timeout=0))
        err.append(ws.read_stderr(timeout=0))
        status = ws.read_channel(error_channel, timeout=0) or ""
    except Exception as exc:  # noqa: BLE001 - a broken stream is a failed command
        err.append(f"\nexec in {pod}: stream error: {_one_line(exc)}")
        status = status or ""
    finally:
        _close_ws(ws)
    seconds = time.monotonic() - start
    stdout, stderr = "".join(out), "".join(err)
    if timed_out:
        return ExecResult(args, EXIT_TIMEOUT, stdout, stderr, seconds, True)
    code = exit_code_from_status(status)
    extra = status_message(status)
    if code in (EXIT_CANNOT_RUN, EXIT_NOT_FOUND, EXIT_EXEC_FAILED) and extra:
        stderr = (stderr + ("\n" if stderr and not stderr.endswith("\n") else "") + extra)
    return ExecResult(args, code, stdout, stderr, seconds)
