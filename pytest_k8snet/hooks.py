"""Hooks users implement in a conftest.py or plugin to customise pytest-k8snet.

The defaults are ordinary implementations in :mod:`pytest_k8snet.plugin`, so a
user's ``firstresult`` implementation simply wins, and ``pytest_k8snet_diagnose``
results add to the built-in ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .backends import Node
    from .judge.model import Diagnosis


@pytest.hookspec(firstresult=True)
def pytest_k8snet_select_nodes(config: pytest.Config, nodes: list["Node"]) -> list["Node"] | None:
    """Return the nodes to probe. The default keeps those matching every
    ``--k8s-node-selector``.

    ``nodes`` are the nodes the Linux probe pods can run on: nodes whose
    ``kubernetes.io/os`` is not linux, Fargate and virtual-kubelet nodes are left out
    before this hook (the summary names them). NotReady, cordoned and DiskPressure nodes
    are kept on purpose: pods pinned by nodeName still run there. Returning no node is a
    usage error: a run that would test nothing.
    """


@pytest.hookspec
def pytest_k8snet_probe_pod_manifest(config: pytest.Config, node: "Node",
                                     manifest: dict[str, Any]) -> None:
    """Change the probe pod manifest for ``node`` in place (kube backend), e.g. to add
    image pull secrets, a priority class or resource limits."""


@pytest.hookspec
def pytest_k8snet_diagnose(config: pytest.Config, test: str, subject: str,
                           evidence: dict[str, Any]) -> "Diagnosis | None":
    """Offer an extra diagnosis for a failing check.

    ``test`` is the suite test's name, ``subject`` the pair id or node, ``evidence``
    the measurements. Returned diagnoses are added to the failure message and report.
    """
