"""Encapsulation and kube-proxy mode from real tool output: captured live in a network
namespace here, or copied from public documents (tests/data/DETECTION_SOURCES.md says which
and where from)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_k8snet.probes import nodecheck, proxymode

DATA = Path(__file__).parent / "data"


def read(name: str) -> str:
    return (DATA / name).read_text()


# name -> (kind, UDP port on the wire, overhead, CNI guessed from the device names)
SAMPLES = {
    # live: wireguard-go's tun named flannel-wg beside Calico's VXLAN device on 4789;
    # WireGuard goes first (it carries the pods' traffic where both exist).
    "live_netns_flannel_wg_tun_vxlan_4789.txt": ("wireguard", 51820, 60, "flannel"),
    "live_netns_flannel_wg_tun_vxlan_4789_multiline.txt": ("wireguard", 51820, 60, "flannel"),
    "ip_link_docs_calico_wireguard.txt": ("wireguard", 51820, 60, "calico"),
    "ip_link_docs_ovn_geneve.txt": ("geneve", 6081, 50, None),
    # The ipip module loaded, its tunl0 down: no CNI tunnel (a routed node).
    "ip_link_docs_tunl0_down.txt": ("none", None, 0, "calico"),
}


@pytest.mark.parametrize("name", SAMPLES)
def test_encapsulation_from_real_ip_link_output(name: str) -> None:
    kind, port, overhead, cni = SAMPLES[name]
    e = nodecheck.parse_links(read(name))
    assert (e.kind, e.udp_port, e.overhead, e.cni) == (kind, port, overhead, cni)
    assert e.as_dict()["overhead"] == overhead


def test_live_tun_and_vxlan_devices_are_both_tunnels_with_their_ports() -> None:
    e = nodecheck.parse_links(read("live_netns_flannel_wg_tun_vxlan_4789.txt"))
    assert [(t.name, t.kind, t.port, t.mtu) for t in e.tunnels] == [
        ("flannel-wg", "wireguard", 51820, 1420), ("vxlan.calico", "vxlan", 4789, 1450)]
    assert e.udp_ports == (4789, 51820)
    assert e.describe() == ("flannel: wireguard flannel-wg UDP 51820, vxlan vxlan.calico "
                            "UDP 4789, not bridged")
    # Only the CNIs' WireGuard names count: a VPN client's tun0 carries no pod traffic.
    text = read("live_netns_flannel_wg_tun_vxlan_4789.txt").replace("flannel-wg", "tun0")
    other = nodecheck.parse_links(text)
    assert [t.name for t in other.tunnels] == ["vxlan.calico"] and other.kind == "vxlan"


def test_ipv6_wireguard_devices_add_80_bytes() -> None:
    text = read("ip_link_docs_calico_wireguard.txt")
    v6 = nodecheck.parse_links(text.replace("wireguard.cali", "wg-v6.cali"))
    assert (v6.kind, v6.udp_port, v6.overhead) == ("wireguard", 51821, 80)
    flannel = nodecheck.parse_links(
        read("live_netns_flannel_wg_tun_vxlan_4789.txt").replace("flannel-wg", "flannel-wg-v6"))
    assert (flannel.udp_port, flannel.overhead) == (51821, 80)


@pytest.mark.parametrize("name, links, mode, source", [
    ("live_netns_proxymode_nft_tables.txt", "", "nftables",
     "nftables table ip kube-proxy and ip6 kube-proxy"),
    ("live_netns_proxymode_iptables_chain.txt", "", "iptables",
     "the KUBE-SERVICES chain in iptables' nat table"),
    # The endpoint answers before the chain that is also there.
    ("live_netns_proxymode_endpoint.txt", "", "ipvs",
     "kube-proxy's http://127.0.0.1:10249/proxyMode"),
    # ipvs mode writes KUBE-SERVICES too: its kube-ipvs0 link is asked first.
    ("live_netns_proxymode_iptables_chain.txt", "ip_link_docs_kube_ipvs0.txt", "ipvs",
     "the kube-ipvs0 link"),
])
def test_kube_proxy_mode_from_real_output(name: str, links: str, mode: str,
                                          source: str) -> None:
    m = proxymode.parse(read(name), read(links) if links else "")
    assert (m.mode, m.source) == (mode, source)


def test_kube_proxy_mode_unknown_when_nothing_says() -> None:
    # What the command prints where curl, nft and iptables all print nothing.
    m = proxymode.parse(f"\n{proxymode.NFT_MARK}\n{proxymode.IPT_MARK}\n")
    assert m.mode == "unknown" and "no answer" in m.source


def test_node_check_records_the_mode_beside_the_links() -> None:
    links = read("live_netns_flannel_wg_tun_vxlan_4789.txt")
    nft = read("live_netns_proxymode_nft_tables.txt")
    r = nodecheck.parse("node-1", "", "[]", links, None, nft)
    assert r.kube_proxy is not None and r.kube_proxy.mode == "nftables"
    assert r.encapsulation is not None and r.encapsulation.kind == "wireguard"
    assert nodecheck.parse("node-1", "", "[]", links).kube_proxy is None
