"""One module per probe: build the argv, parse the real tool's output into a typed result."""

from .dns import DnsResult
from .egress import EgressResult
from .http import HttpResult
from .iperf import UdpResult
from .nodecheck import Interface, NodeCheckResult
from .pathmtu import PathMtuResult
from .ping import PingResult

__all__ = ["DnsResult", "EgressResult", "HttpResult", "Interface", "NodeCheckResult",
           "PathMtuResult", "PingResult", "UdpResult"]
