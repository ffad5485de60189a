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
from .api import KubeApi
from .client import connect, kubectl_flags, release_response
from .manifests import RunNames

if TYPE_CHECKING:
    from ...options import Settings


def delete_run(api: KubeApi, names: RunNames, kubectl_flags: str = "") -> list[str]:
    """Delete the run's pods at once (grace 0: no kubelet needs to agree), its Service, and
    its namespace when the run created it; missing objects are fine. Returns what could
    not be removed, one line each with the command that removes it ([]: all gone)."""
    from kubernetes.client.exceptions import ApiException

    k = f"kubectl{kubectl_flags}"
    core, namespace = api.core, names.namespace
    failed: list[tuple[str, str]] = []  # (kind, line)

    def quiet(kind: str, what: str, command: str, fn: Callable[..., Any], *args: Any,
              **kwargs: Any) -> Any:
        try:
            return api.retrying(fn, *args, _preload_content=False, **kwargs)
        except ApiException as exc:
            if exc.status in (404, 409):
                return None
            error = api.error(exc, what)
        except Exception as exc:  # noqa: BLE001 - keep going, report it
            error = api.error(exc, what)
        failed.append((kind, f"{error}; remove it with `{command}`"))
        return None

    pods_cmd = f"{k} -n {namespace} delete pods -l {names.selector} --grace-period=0"
    resp = quiet("pods", f"list pods in {namespace}", pods_cmd, core.list_namespaced_pod,
                 namespace, label_selector=names.selector)
    pods: list[str] = []
    if resp is not None:
        try:
            pods = [p["metadata"]["name"] for p in json.loads(resp.data).get("items") or []]
        finally:
            resp.release_conn()

    def delete_pod(name: str) -> None:
        r = quiet("pods", f"delete pod {name} in {namespace}",
                  f"{k} -n {namespace} delete pod {name} --grace-period=0",
                  core.delete_namespaced_pod, name, namespace, grace_period_seconds=0)
        if r is not None:
            release_response(r)

    if pods:
        with ThreadPoolExecutor(max_workers=min(16, len(pods)),
                                thread_name_prefix="k8snet-delete") as pool:
            list(pool.map(delete_pod, pods))
    service = names.service_name
    r = quiet("service", f"delete service {service} in {namespace}",
              f"{k} -n {namespace} delete service {service}",
              core.delete_namespaced_service, service, namespace)
    if r is not None:
        release_response(r)
    if names.owns_namespace:
        r = quiet("namespace", f"delete namespace {namespace}",
                  f"{k} delete namespace {namespace}", core.delete_namespace, namespace)
        if r is not None:
            release_response(r)
        if not any(kind == "namespace" for kind, _ in failed):
            return []  # the namespace takes whatever else was left in it
    return [line for _, line in failed]


def keep_hint(names: RunNames, kubectl_flags: str) -> str:
    """How to remove what a ``--k8s-keep`` run left behind."""
    if names.owns_namespace:
        return (f"Namespace {names.namespace}; remove it with "
                f"`kubectl{kubectl_flags} delete namespace -l {names.selector}`.")
    return (f"Remove them with `kubectl{kubectl_flags} -n {names.namespace} delete "
            f"pods,services -l {names.selector} --grace-period=0`.")


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
    flags = kubectl_flags(kubeconfig_path, settings.context)
    names = RunNames.of(settings.run_id, settings.namespace)
    try:
        client, server, _ = connect(kubeconfig_path, settings.context,
                                    in_cluster=settings.in_cluster)
    except BackendError as exc:
        line = (f"could not connect to the cluster ({exc}); its probes may still run. Remove "
                f"them with `kubectl{flags} delete namespace,pods,services -A "
                f"-l {names.selector}`")
        report_leftovers([line], settings.run_id)
        return [line]
    run_api = KubeApi(client, server, settings.timeout)
    try:
        leftovers = delete_run(run_api, names, flags)
    finally:
        run_api.close()
    report_leftovers(leftovers, settings.run_id)
    return leftovers
