"""The summary says what was detected: the overlay each node's links show, and where the
expected MTU came from (pure: documents in, terminal text out)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from pytest_k8snet.probes import proxymode
from pytest_k8snet.probes.nodecheck import parse_links
from pytest_k8snet.report import html, terminal
from pytest_k8snet.report.detected import detected_lines
from pytest_k8snet.report.results import RunReport

from .test_report_render import FakeTerminal, make_doc

DATA = Path(__file__).parent / "data"


def test_summary_names_the_detected_overlay_and_the_expected_mtu_source() -> None:
    doc = make_doc()
    flannel = parse_links((DATA / "ip_link_lab_flannel.txt").read_text()).as_dict()
    doc["encapsulation"] = {n: flannel for n in doc["nodes"]}
    doc["expected_mtu_source"] = "pod interface"
    tr = FakeTerminal()
    terminal.write(tr, RunReport(doc))
    assert "expected MTU 1450 (the pods' interface MTU)" in tr.text
    assert ("overlay: flannel: vxlan flannel.1 UDP 8472, bridged (cni0); adds 50 bytes "
            "(3 nodes)") in tr.text


def test_summary_lists_nodes_whose_overlay_differs() -> None:
    doc = make_doc()
    calico = parse_links((DATA / "ip_link_calico_ipip.txt").read_text()).as_dict()
    vxlan = parse_links((DATA / "ip_link_calico_vxlan.txt").read_text()).as_dict()
    doc["encapsulation"] = {"node-1": calico, "node-2": calico, "node-3": vxlan}
    doc["expected_mtu_source"] = "default 1500 (no pod MTU could be read)"
    tr = FakeTerminal()
    terminal.write(tr, RunReport(doc))
    assert ("overlay: calico: ipip tunl0 IP protocol 4, not bridged; adds 20 bytes on "
            "node-1, node-2") in tr.text
    assert ("overlay: calico: vxlan vxlan.calico UDP 4789, not bridged; adds 50 bytes on "
            "node-3") in tr.text
    assert "expected MTU 1450 (a default: no pod MTU could be read; set --k8s-expect-mtu)" \
        in tr.text


def test_summary_and_html_name_kube_proxys_mode_and_the_overhead() -> None:
    # node_checks[].kube_proxy as the document records it (measure/document.py: the
    # dataclass as a dict) from the nft tables captured live in a netns.
    mode = proxymode.parse((DATA / "live_netns_proxymode_nft_tables.txt").read_text())
    wg = parse_links((DATA / "live_netns_flannel_wg_tun_vxlan_4789.txt").read_text()).as_dict()
    doc = make_doc()
    doc["encapsulation"] = {n: wg for n in doc["nodes"]}
    doc["node_checks"] = [{"node": n, "kube_proxy": asdict(mode)} for n in doc["nodes"]]
    tr = FakeTerminal()
    terminal.write(tr, RunReport(doc))
    assert ("overlay: flannel: wireguard flannel-wg UDP 51820, vxlan vxlan.calico UDP 4789, "
            "not bridged; adds 60 bytes (3 nodes)") in tr.text
    assert ("kube-proxy: nftables (nftables table ip kube-proxy and ip6 kube-proxy) "
            "(3 nodes)") in tr.text
    assert detected_lines(doc)[1] in html.render(RunReport(doc))


def test_kube_proxy_counts_nodes_not_family_entries() -> None:
    # A dual-stack document has each node's checks once per family (families.merge).
    mode = proxymode.parse((DATA / "live_netns_proxymode_nft_tables.txt").read_text())
    doc = make_doc()
    doc["node_checks"] = [{"node": n, "family": fam, "kube_proxy": asdict(mode)}
                          for fam in ("ipv4", "ipv6") for n in doc["nodes"]]
    assert detected_lines(doc)[-1] == ("kube-proxy: nftables (nftables table ip kube-proxy "
                                       "and ip6 kube-proxy) (3 nodes)")
