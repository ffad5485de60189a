"""A testinfra backend that runs commands through a k8snet endpoint (lab or kube alike), so
that ``k8s_node_host`` gives testinfra's modules (sysctl, interface, file...) on a node."""

from __future__ import annotations

from typing import Any

import testinfra.backend.base
import testinfra.host

from .backends import Endpoint


class EndpointBackend(testinfra.backend.base.BaseBackend):  # type: ignore[misc]  # untyped base
    """testinfra's command runner, backed by :meth:`Endpoint.run`."""

    NAME = "k8snet"

    def __init__(self, endpoint: Endpoint, *args: Any, **kwargs: Any) -> None:
        self.endpoint = endpoint
        super().__init__(f"{endpoint.node}-{endpoint.network}", *args, **kwargs)

    def run(self, command: str, *args: str, **kwargs: Any) -> Any:
        cmd = self.get_command(command, *args)  # testinfra quotes the arguments
        res = self.endpoint.run(["sh", "-c", cmd])
        return self.result(res.exit_code, cmd.encode(), res.stdout.encode(), res.stderr.encode())


def host_for(endpoint: Endpoint) -> testinfra.host.Host:
    """A testinfra ``Host`` whose commands run in ``endpoint``."""
    return testinfra.host.Host(EndpointBackend(endpoint))
