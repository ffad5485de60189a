import os

import pytest

from pytest_k8snet.run import RUN_KEY


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Only the lab needs root. Ask the plugin which backend the run resolved to: a cluster
    # can come from --k8s-kubeconfig, KUBECONFIG, ~/.kube/config or a pod's service account,
    # and checking the flag alone skipped every example on a KUBECONFIG cluster.
    if os.geteuid() != 0 and config.stash[RUN_KEY].settings.kind == "lab":
        for item in items:
            item.add_marker(pytest.mark.skip(reason="the lab needs root"))
