"""What a run tests, said so that a simulated lab cannot pass for a cluster: the one-line
target, the cluster's identity for the reports, and the one reader of the kubeconfig.

Nothing here contacts a cluster: the server comes from the kubeconfig file, so the header
can say what is under test before anything runs (and in ``--help`` or ``--collect-only``).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import yaml

from .backends import Backend
from .options import NO_TARGET, NO_TARGET_KIND, Settings, backend_kind, kubeconfig_path


class KubeconfigError(Exception):
    """The kubeconfig cannot be read or is not YAML; the message says which and why."""


def read_kubeconfig(path: str) -> dict[str, Any]:
    """The kubeconfig at ``path`` as a mapping. Of a ``KUBECONFIG``-style list the first
    file is read: kubectl takes the current context from the first file that sets one,
    and a one-line target needs no merge."""
    first = path.split(os.pathsep)[0]
    try:
        with open(first) as fh:
            doc = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise KubeconfigError(f"cannot read kubeconfig {first}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"kubeconfig {first} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise KubeconfigError(f"kubeconfig {first} is not a mapping")
    return doc


def check_kubeconfig(config: pytest.Config, settings: Settings) -> None:
    """A kubeconfig or context the user named must exist: a usage error before collection.

    A KUBECONFIG inherited from the environment (or ~/.kube/config) is checked at the end of
    collection (:func:`unusable`), and only when k8snet tests were collected, so that
    unrelated test runs in the same environment are not affected.
    """
    named = config.getoption("k8s_kubeconfig") or config.getini("k8s_kubeconfig") \
        or config.getoption("k8s_context") or config.getini("k8s_context")
    problem = unusable(settings) if named else None
    if problem:
        raise pytest.UsageError(f"k8snet: {problem}")


def unusable(settings: Settings) -> str | None:
    """Why this run has nothing it can test, read from local files only: no target at all,
    or a kubeconfig that cannot be read or lacks the context. None when it looks usable."""
    kind = backend_kind(settings)
    if kind == NO_TARGET_KIND:
        return NO_TARGET
    if kind != "kube" or settings.in_cluster or settings.kube_lab:
        return None  # a lab's kubeconfig is written when the lab comes up
    path = kubeconfig_path(settings)
    try:
        doc = read_kubeconfig(path)
    except KubeconfigError as exc:
        return str(exc)
    contexts = [c.get("name") for c in doc.get("contexts") or [] if isinstance(c, dict)]
    if settings.context and settings.context not in contexts:
        return (f"context {settings.context!r} is not in {path} "
                f"(contexts: {', '.join(map(str, contexts)) or 'none'})")
    if not settings.context and not doc.get("current-context"):
        return f"{path} has no current-context; pass --k8s-context"
    return None


def kubeconfig_server(path: str, context: str | None) -> str | None:
    """The API server a kubeconfig's context points at; None when the kubeconfig does not
    say. Raises KubeconfigError when it cannot be read."""
    doc = read_kubeconfig(path)
    try:
        name = context or doc.get("current-context")
        ctx = next(c["context"] for c in doc.get("contexts") or [] if c.get("name") == name)
        cluster = next(c["cluster"] for c in doc.get("clusters") or []
                       if c.get("name") == ctx.get("cluster"))
        return str(cluster["server"])
    except (StopIteration, KeyError, TypeError, AttributeError):
        return None


def lab_name(settings: Settings) -> str:
    """The lab this run tests: the one named, or the one it brings up (``r<run id>``)."""
    return settings.lab_name or f"r{settings.run_id}"


def describe(settings: Settings) -> dict[str, Any]:
    """What is under test, said so that a lab run cannot pass for a cluster run.

    ``simulated``: True for a lab (network namespaces on this machine, no Kubernetes);
    ``target``: one line for people; ``chosen_by``: why this backend (auto's reasoning);
    ``in_cluster``: kube through the pod's service account.
    """
    s = settings
    kind = backend_kind(s)
    name = lab_name(s)
    if kind == NO_TARGET_KIND:
        text = ("none: k8snet tests need a kubeconfig, a pod's service account, or --k8s-lab "
                "for a simulated lab")
    elif kind == "lab":
        how = (f"running lab {name}" if s.lab_name
               else f"lab {name} of {s.lab_nodes} node"
               f"{'s' if s.lab_nodes != 1 else ''} brought up for this run")
        text = f"SIMULATED lab, not a Kubernetes cluster ({how})"
    elif s.kube_lab:
        how = f"running lab {name}" if s.lab_name else f"lab {name} brought up for this run"
        text = (f"Kubernetes cluster in {how}: real kube-apiserver, kubelets, containerd "
                f"and CoreDNS on this machine (kubeconfig {kubeconfig_path(s)})")
    elif s.in_cluster:
        host = os.environ.get("KUBERNETES_SERVICE_HOST", "?")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        text = (f"Kubernetes cluster of this pod (in-cluster service account, "
                f"https://{host}:{port})")
    else:
        path = kubeconfig_path(s)
        try:
            server = kubeconfig_server(path, s.context) or "(server not found in kubeconfig)"
        except KubeconfigError as exc:
            server = f"unknown: {exc}"
        text = (f"Kubernetes cluster {server} (kubeconfig {path}"
                + (f", context {s.context}" if s.context else "") + ")")
    return {"simulated": kind == "lab", "target": text, "chosen_by": s.kind_reason,
            "in_cluster": s.in_cluster}


def identity(settings: Settings, backend: Backend | None) -> dict[str, Any]:
    """The cluster's identity for the reports: the backend's own once it exists (version,
    faults, ...), else what the settings say, plus :func:`describe`."""
    if backend is not None:
        ident = dict(backend.identity())
    elif backend_kind(settings) == "lab":
        ident = {"kind": "lab", "name": lab_name(settings)}
    else:
        ident = {"kind": "kube", "kubeconfig": kubeconfig_path(settings),
                 "context": settings.context}
    return {**ident, **describe(settings)}
