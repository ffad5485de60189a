import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The lab needs root; on a real cluster (--k8s-kubeconfig) nothing local is needed.
    if os.geteuid() != 0 and config.getoption("k8s_kubeconfig") is None:
        for item in items:
            item.add_marker(pytest.mark.skip(reason="the lab needs root"))
