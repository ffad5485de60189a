"""pytest-k8snet: Kubernetes network acceptance testing as a pytest plugin.

The result types are exported so that user tests can annotate their fixtures.
"""

from .backends import Endpoint, ExecResult, Node
from .measure import Cluster, Pair, ServiceResult, UdpCheck
from .judge import Diagnosis
from .probes import (DnsResult, EgressResult, HttpResult, NodeCheckResult, PathMtuResult,
                     PingResult, UdpResult)
from .options import Settings

__version__ = "0.1.0"

__all__ = ["Cluster", "Diagnosis", "DnsResult", "EgressResult", "Endpoint", "ExecResult",
           "HttpResult", "Node", "NodeCheckResult", "Pair", "PathMtuResult", "PingResult",
           "ServiceResult", "Settings", "UdpCheck", "UdpResult", "__version__"]
