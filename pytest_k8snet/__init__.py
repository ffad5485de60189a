"""pytest-k8snet: Kubernetes network acceptance testing as a pytest plugin.

The result types are exported so that user tests can annotate their fixtures. They are
imported on first use (PEP 562): the lab's daemons run as ``python -m
pytest_k8snet.lab.<module>``, and importing the whole plugin there cost every lab bring-up
about a second and 28 MB per server for nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backends import Endpoint, ExecResult, Node
    from .judge import Diagnosis
    from .measure import Cluster, Pair, ServiceResult, UdpCheck
    from .options import Settings
    from .probes import (DnsResult, EgressResult, HttpResult, NodeCheckResult, PathMtuResult,
                         PingResult, UdpResult)

__version__ = "0.1.0"

_EXPORTS = {
    **dict.fromkeys(("Endpoint", "ExecResult", "Node"), ".backends"),
    **dict.fromkeys(("Cluster", "Pair", "ServiceResult", "UdpCheck"), ".measure"),
    "Diagnosis": ".judge",
    **dict.fromkeys(("DnsResult", "EgressResult", "HttpResult", "NodeCheckResult",
                     "PathMtuResult", "PingResult", "UdpResult"), ".probes"),
    "Settings": ".options",
}

__all__ = ["Cluster", "Diagnosis", "DnsResult", "EgressResult", "Endpoint", "ExecResult",
           "HttpResult", "Node", "NodeCheckResult", "Pair", "PathMtuResult", "PingResult",
           "ServiceResult", "Settings", "UdpCheck", "UdpResult", "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # once: later lookups do not come here
    return value
