"""Removing what a run created: its namespace or its labelled objects, keeping going.

Every deletion is tried even when an earlier one failed; what could not be removed comes
back as lines that each end with the exact ``kubectl`` command that removes it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .. import BackendError
from .client import _done, _kubectl_flags, api_failure, call_with_retries, connect, kube
from .manifests import RUN_LABEL

if TYPE_CHECKING:
    from ...options import Settings


def delete_run(core: Any, namespace: str, run_id: str, owns_namespace: bool,
               service_name: str, request_timeout: tuple[float, float], server: str,
               timeout: float, kubectl_flags: str = "") -> list[str]:
    """Delete the run's pods at once (grace 0: no kubelet needs to agree), its Service, and
    its namespace when the run created it; missing objects are fine. Returns what could
    not be removed, one line each with the command that removes it ([]: all gone)."""
    from kubernetes.client.exceptions import ApiException

    k = f"kubectl{kubectl_flags}"
    failed: list[tuple[str, str]] = []  # (kind, line)

    def quiet(kind: str, what: str, command: str, fn: Callable[..., Any], *args: Any,
              **kwargs: Any) -> Any:
        try:
            return call_with_retries(lambda: fn(*args, _request_timeout=request_timeout,
                                                _preload_content=False, **kwargs))
        except ApiException as exc:
            if exc.status in (404, 409):
                return None
            error = api_failure(exc, what, server, timeout)
        except Exception as exc:  # noqa: BLE001 - keep going, report it
            error = api_failure(exc, what, server, timeout)
        failed.append((kind, f"{error}; remove it with `{command}`"))
        return None

    pods_cmd = f"{k} -n {namespace} delete pods -l {RUN_LABEL}={run_id} --grace-period=0"
    resp = quiet("pods", f"list pods in {namespace}", pods_cmd, core.list_namespaced_pod,
                 namespace, label_selector=f"{RUN_LABEL}={run_id}")
    names: list[str] = []
    if resp is not None:
        try:
            names = [p["metadata"]["name"] for p in json.loads(resp.data).get("items") or []]
        finally:
            resp.release_conn()

    def delete_pod(name: str) -> None:
        r = quiet("pods", f"delete pod {name} in {namespace}",
                  f"{k} -n {namespace} delete pod {name} --grace-period=0",
                  core.delete_namespaced_pod, name, namespace, grace_period_seconds=0)
        if r is not None:
            _done(r)

    if names:
        with ThreadPoolExecutor(max_workers=min(16, len(names)),
                                thread_name_prefix="k8snet-delete") as pool:
            list(pool.map(delete_pod, names))
    r = quiet("service", f"delete service {service_name} in {namespace}",
              f"{k} -n {namespace} delete service {service_name}",
              core.delete_namespaced_service, service_name, namespace)
    if r is not None:
        _done(r)
    if owns_namespace:
        r = quiet("namespace", f"delete namespace {namespace}",
                  f"{k} delete namespace {namespace}", core.delete_namespace, namespace)
        if r is not None:
            _done(r)
        if not any(kind == "namespace" for kind, _ in failed):
            return []  # the namespace takes whatever else was left in it
    return [line for _, line in failed]


def report_leftovers(leftovers: list[str], run_id: str) -> None:
    """Print what a cleanup could not remove (stderr: teardown output may be captured)."""
    for line in leftovers:
        sys.stderr.write(f"k8snet: cleanup of run {run_id} left something behind: {line}\n")


def cleanup_run(settings: Settings, kubeconfig_path: str) -> list[str]:
    """Controller side under xdist: delete the run's probes by label from a fresh client.

    Never raises; says so (stderr) when it cannot connect or cannot remove something, with
    the command that does; returns those lines.
    """
    if settings.keep:
        return []
    flags = _kubectl_flags(kubeconfig_path, settings.context)
    try:
        api, server, _ = connect(kubeconfig_path, settings.context,
                                 in_cluster=getattr(settings, "in_cluster", False))
    except BackendError as exc:
        line = (f"could not connect to the cluster ({exc}); its probes may still run. Remove "
                f"them with `kubectl{flags} delete namespace,pods,services -A "
                f"-l {RUN_LABEL}={settings.run_id}`")
        report_leftovers([line], settings.run_id)
        return [line]
    owns = settings.namespace is None
    namespace = settings.namespace or f"k8snet-{settings.run_id}"
    prefix = "k8snet" if owns else f"k8snet-{settings.run_id}"
    timeout = settings.timeout
    try:
        leftovers = delete_run(kube().client.CoreV1Api(api), namespace, settings.run_id, owns,
                               f"{prefix}-probe", (timeout, max(2 * timeout, 10.0)), server,
                               timeout, flags)
    finally:
        api.close()
    report_leftovers(leftovers, settings.run_id)
    return leftovers
