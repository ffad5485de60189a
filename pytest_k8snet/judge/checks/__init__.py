"""The checks, one per suite test, in the order they run over one context.

Order matters: a later check reads what an earlier one found. The pair checks skip
behind test_pod_ping's findings, the DNS check behind pairs that already fail, the Service
and egress checks behind those pairs and behind test_dns' findings (a name that does not
resolve), test_large_packets_to_service behind test_path_mtu's and test_node_sysctls'
findings, test_control_plane_ports behind test_dns' verdicts, and test_nodeport behind
the findings that cut a node (its underlay, or its pods) off.
"""

from __future__ import annotations

from ..context import Check
from . import (control_plane_ports, dns, egress, large_packets, large_packets_to_service,
               node_sysctls, nodeport, nodes_ready, path_mtu, pod_cidr, pod_ping, service,
               udp_8472)

CHECKS: tuple[Check, ...] = (
    nodes_ready.CHECK,
    node_sysctls.CHECK,
    pod_ping.CHECK,
    udp_8472.CHECK,
    path_mtu.CHECK,
    large_packets.CHECK,
    large_packets_to_service.CHECK,
    dns.CHECK,
    service.CHECK,
    egress.CHECK,
    pod_cidr.CHECK,
    control_plane_ports.CHECK,
    nodeport.CHECK,
)
