"""Probe parsers on output captured from the real tools in the lab (tests/data)."""

from __future__ import annotations

from pathlib import Path

from pytest_k8snet.probes import dns, egress, http, iperf, nodecheck, pathmtu, ping

DATA = Path(__file__).parent / "data"


def read(name: str) -> str:
    return (DATA / name).read_text()


def test_ping_ok_and_lost() -> None:
    ok = ping.parse("10.244.1.2", 56, False, read("ping_ok.txt"))
    assert (ok.transmitted, ok.received, ok.loss_pct) == (3, 3, 0.0)
    assert ok.rtt_avg_ms == 0.168 and ok.ok and ok.packet_size == 84
    lost = ping.parse("10.244.1.2", 56, False, read("ping_lost.txt"))
    assert lost.loss_pct == 100.0 and not lost.any_reply and lost.rtt_avg_ms is None


def test_ping_local_mtu_error() -> None:
    r = ping.parse("10.244.1.2", 1500, True, read("ping_df_local_error.txt"))
    assert r.local_mtu == 1450 and r.errors == 1 and not r.any_reply


def test_curl_ok_and_stalled() -> None:
    ok = http.parse("u", read("curl_ok.json"), "", 0, expected_bytes=1048576)
    assert ok.ok and ok.bytes == 1048576 and ok.http_code == 200
    stalled = http.parse("u", read("curl_timeout.json"), read("curl_timeout.stderr"), 28,
                         expected_bytes=1048576)
    assert not stalled.ok and stalled.exit_code == 28 and "timed out" in (stalled.error or "")


def test_dig_answers_nxdomain_timeout() -> None:
    ok = dns.parse("kubernetes.default.svc.cluster.local", read("dig_ok.txt"))
    assert ok.ok and ok.answers == ("10.96.0.1",) and ok.query_ms == 0
    nx = dns.parse("nope", read("dig_nxdomain.txt"))
    assert nx.rcode == "NXDOMAIN" and not nx.ok
    to = dns.parse("x", read("dig_timeout.txt"))
    assert to.rcode == "TIMEOUT" and to.query_ms is None


def test_iperf3_udp_results_and_errors() -> None:
    ok = iperf.parse("10.244.1.2", 5201, read("iperf3_udp_ok.json"))
    assert ok.ok and 9 < ok.mbps < 11 and ok.loss_pct == 0 and ok.packets == 1249
    busy = iperf.parse("172.28.128.12", 8472, read("iperf3_port_busy.json"))
    assert busy.port_busy and not busy.ok
    timeout = iperf.parse("x", 5201, read("iperf3_connect_timeout.json"))
    assert "timed out" in (timeout.error or "")
    refused = iperf.parse("x", 5299, read("iperf3_refused.json"))
    assert "refused" in (refused.error or "")


def test_egress_failures_cluster_below_32768() -> None:
    r = egress.parse("u", (1024, 65535), read("curl_egress_low_ports_blocked.txt"))
    assert r.attempts == 50 and 15 < r.failures < 35
    assert max(r.failed_ports) < 32768 <= min(r.passed_ports)
    assert r.low_port_pattern is not None


def test_pick_ports_covers_the_range() -> None:
    ports = egress.pick_ports((1024, 65535), 50, seed=1)
    assert len(set(ports)) == 50 and min(ports) < 3000 and max(ports) > 63000


def test_path_mtu_search_is_exact() -> None:
    for limit in (84, 1000, 1400, 1449, 1450):
        calls: list[int] = []

        def crosses(size: int) -> bool:
            calls.append(size)
            return size <= limit

        largest, lost, probes = pathmtu.search(crosses, 1450)
        assert largest == limit and probes == len(calls) <= 13
        assert lost == (None if limit == 1450 else limit + 1)


def test_cidr_overlap() -> None:
    problems = nodecheck.cidr_overlaps(["172.28.128.11/24", "127.0.0.1/8"], ["172.28.0.0/16"],
                                       "10.96.0.0/12")
    assert len(problems) == 1 and "172.28.128.0/24" in problems[0]
    assert not nodecheck.cidr_overlaps(["172.28.128.11/24"], ["10.244.0.0/16"], "10.96.0.0/12")


def test_low_port_pattern_tolerates_an_outlier() -> None:
    base = egress.parse("u", (1024, 65535), read("curl_egress_low_ports_blocked.txt"))
    # One low port that got through (a NAT remapped it) must not hide the firewall.
    noisy = egress.EgressResult(base.url, base.attempts, base.failures - 1,
                                base.failed_ports[1:], (base.failed_ports[0], *base.passed_ports),
                                base.port_range, base.errors)
    port = noisy.low_port_pattern
    assert port is not None and 32000 < port <= min(base.passed_ports)
    assert noisy.fits(port) == noisy.attempts - 1
    # Failures spread over the whole range are no pattern.
    spread = egress.EgressResult("u", 50, 25, tuple(range(1100, 65000, 2600)),
                                 tuple(range(2400, 65000, 2600)), (1024, 65535), ())
    assert spread.low_port_pattern is None


# ip -d -o link show: the lab's node (captured), and hand-made nodes of other CNIs in the
# same format (iproute2 6.x).
ENCAPSULATIONS = {
    "ip_link_lab_flannel.txt": ("vxlan", 8472, ("cni0",), "flannel"),
    "ip_link_calico_vxlan.txt": ("vxlan", 4789, (), "calico"),  # tunl0 is down: not used
    "ip_link_calico_ipip.txt": ("ipip", None, (), "calico"),
    "ip_link_cilium_geneve.txt": ("geneve", 6081, (), "cilium"),
    "ip_link_cilium_wireguard.txt": ("wireguard", 51871, (), "cilium"),
    "ip_link_host_gw.txt": ("none", None, ("cni0",), "flannel"),  # docker0: no pods
}


def test_encapsulation_from_ip_link() -> None:
    for name, (kind, port, bridges, cni) in ENCAPSULATIONS.items():
        e = nodecheck.parse_links(read(name))
        assert (e.kind, e.udp_port, e.bridges, e.cni) == (kind, port, bridges, cni), name
        assert e.bridged is bool(bridges)
        assert e.as_dict()["kind"] == kind and e.describe()
    lab = nodecheck.parse_links(read("ip_link_lab_flannel.txt"))
    assert lab.describe() == "flannel: vxlan flannel.1 UDP 8472, bridged (cni0)"
    assert lab.tunnels[0].mtu == 1450
    unknown = nodecheck.parse_links("")
    assert (unknown.kind, unknown.bridged, unknown.udp_port) == ("unknown", None, None)
