"""The judge names the detected encapsulation: real lab documents whose ``encapsulation`` was
EDITED to what the measurement records for another kind (the entry is what parse_links
makes of real ``ip -d link`` output, tests/data/DETECTION_SOURCES.md); the rest of each
document is the run's own measurement."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pytest_k8snet.judge import SKIPPED, judge
from pytest_k8snet.probes import proxymode
from pytest_k8snet.probes.nodecheck import parse_links

from tests.judged import roots

DATA = Path(__file__).parent / "data"


def edited(name: str, links: str) -> dict[str, Any]:
    """``name``'s document with every node's encapsulation read from the ``links`` sample."""
    doc: dict[str, Any] = json.loads((DATA / "diagnosis" / name).read_text())
    entry = parse_links((DATA / links).read_text()).as_dict()
    doc["encapsulation"] = {n: entry for n in doc["nodes"]}
    return doc


def test_lossy_overlay_on_userspace_wireguard_names_its_port() -> None:
    # The lab's lossy overlay at node-1, judged as if flannel's wireguard-go device (a tun
    # link, captured live) carried the pods: the finding names WireGuard's port.
    doc = edited("judge-vxlan-loss-node-1.json", "live_netns_flannel_wg_tun_vxlan_4789.txt")
    (root,) = roots(judge(doc))
    assert (root.cause, root.nodes, root.protocol, root.port) == (
        "pod-lossy", ("node-1",), "udp", "51820")
    assert "the overlay's packets (UDP 51820 (WireGuard))" in root.summary


def test_path_mtu_finding_uses_the_detected_overhead() -> None:
    # underlay-mtu 1400 at node-2 measured 1350 (VXLAN's 50); with Calico's kernel
    # WireGuard device (from its docs' ip -d link output) the finding says WireGuard's 60.
    doc = edited("pmtu-underlay-mtu-node-2.json", "ip_link_docs_calico_wireguard.txt")
    (root,) = roots(judge(doc))
    assert root.cause == "mtu"
    assert ("(WireGuard adds 60 bytes and pads to 16, so the underlay carries 1410-1425 here)"
            in root.summary), root.summary
    v6 = doc["encapsulation"]["node-2"] | {"overhead": 80}  # an IPv6 device's
    doc["encapsulation"] = {n: v6 for n in doc["nodes"]}
    (root,) = roots(judge(doc))
    assert ("(WireGuard adds 80 bytes and pads to 16, so the underlay carries 1430-1445 here)"
            in root.summary), root.summary


def test_lossy_overlay_on_ipip_names_ip_protocol_4_and_udp_check_skips_with_it() -> None:
    doc = edited("judge-vxlan-loss-node-1.json", "ip_link_calico_ipip.txt")
    j = judge(doc)
    (root,) = roots(j)
    assert "the overlay's packets (IP protocol 4 (IPIP))" in root.summary
    assert root.port is None  # no UDP port to name or to block
    v = j.verdict("test_udp_8472", "node-1->node-2")
    assert v.outcome == SKIPPED
    assert "(node-1: calico: ipip tunl0 IP protocol 4, not bridged;" in v.message


def test_unexplained_service_failure_names_kube_proxys_mode() -> None:
    # EDITED: node-1's 12 Service requests all fail (nothing else in the run explains it),
    # and every node check carries the mode read from the nft tables captured live.
    doc: dict[str, Any] = json.loads(
        (DATA / "diagnosis" / "pmtu-underlay-mtu-node-2.json").read_text())
    for s in doc["service"]:
        if s["node"] == "node-1":
            s.update(failures=12, answered_by={}, failure_rate=1.0,
                     missing_backends=sorted(doc["service_backends"]),
                     errors=["curl: (28) Connection timed out"])
    mode = proxymode.parse((DATA / "live_netns_proxymode_nft_tables.txt").read_text())
    for c in doc["node_checks"]:
        c["kube_proxy"] = asdict(mode)
    v = judge(doc).verdict("test_service", "node-1")
    assert v.finding == "service:node-1"
    assert ("kube-proxy on node-1 runs in nftables mode: its Service rules are in "
            "`nft list table ip kube-proxy`") in v.message
