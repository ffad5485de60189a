"""Probe parsers on output captured from the real tools in the lab (tests/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_k8snet.probes import dns, egress, http, iperf, nodecheck, pathmtu, ping

from .conftest import needs_root

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


# Real iputils output, captured in a lab (node-1's probe pinging node-2's, 10.244.1.2) with
# `iptables -I FORWARD -p icmp --icmp-type echo-request -j REJECT [--reject-with X]` on
# node-2 (answered from its pod gateway 10.244.1.0), or the same rule in the INPUT chain
# of node-2's probe pod (answered by the destination itself).
@pytest.mark.parametrize(("name", "kind", "sender", "errors"), [
    ("ping_reject_port_unreachable.txt", "port-unreachable", "10.244.1.0", 3),
    ("ping_reject_host_prohibited.txt", "host-prohibited", "10.244.1.0", 3),
    ("ping_reject_admin_prohibited.txt", "admin-prohibited", "10.244.1.0", 3),  # "Packet filtered"
    ("ping_reject_net_unreachable.txt", "net-unreachable", "10.244.1.0", 3),
    ("ping_reject_host_unreachable.txt", "host-unreachable", "10.244.1.0", 1),
    ("ping_reject_in_pod.txt", "port-unreachable", "10.244.1.2", 3),
])
def test_ping_records_icmp_errors(name: str, kind: str, sender: str, errors: int) -> None:
    r = ping.parse("10.244.1.2", 56, False, read(name))
    assert (r.transmitted, r.received, r.loss_pct) == (3, 0, 100.0)
    assert (r.errors, r.error_kind, r.error_from) == (errors, kind, sender)
    assert r.error is None and r.local_mtu is None and not r.any_reply


def test_ping_without_icmp_errors_has_no_error_kind() -> None:
    for name in ("ping_ok.txt", "ping_lost.txt", "ping_df_local_error.txt"):
        r = ping.parse("10.244.1.2", 56, False, read(name))
        assert (r.error_kind, r.error_from) == (None, None)


def test_ping6_icmp_errors_in_iputils_words() -> None:
    # Not a capture (the lab is IPv4 only): the lines iputils prints for ICMPv6 errors.
    out = ("PING fd00::2 (fd00::2) 56 data bytes\n"
           "From fd00::1 icmp_seq=1 Destination unreachable: Administratively prohibited\n"
           "From fd00::1 icmp_seq=2 Destination unreachable: Port unreachable\n"
           "From fd00::1 icmp_seq=3 Destination unreachable: Port unreachable\n\n"
           "--- fd00::2 ping statistics ---\n"
           "3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 405ms\n")
    r = ping.parse("fd00::2", 56, False, out)
    assert (r.errors, r.error_kind, r.error_from) == (3, "port-unreachable", "fd00::1")


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


def test_dig_refused_query_is_unreachable_not_timeout() -> None:
    """dig 9.18's own output for a UDP query answered by an ICMP port unreachable (captured
    with dig +time=1 +tries=2 against a closed port): a reject on the way, not silence."""
    r = dns.parse("kubernetes.default.svc.cluster.local", read("dig_refused.txt"))
    assert r.rcode == "UNREACHABLE" and not r.ok and r.server == "127.0.0.1"


def test_iperf3_udp_results_and_errors() -> None:
    ok = iperf.parse("10.244.1.2", 5201, read("iperf3_udp_ok.json"))
    assert ok.ok and 9 < ok.mbps < 11 and ok.loss_pct == 0 and ok.packets == 1249
    busy = iperf.parse("172.28.128.12", 8472, read("iperf3_port_busy.json"))
    assert busy.port_busy and not busy.ok
    timeout = iperf.parse("x", 5201, read("iperf3_connect_timeout.json"))
    assert "timed out" in (timeout.error or "")
    refused = iperf.parse("x", 5299, read("iperf3_refused.json"))
    assert "refused" in (refused.error or "")


def test_iperf_datagrams_refused_after_the_control_connection_are_a_udp_reject() -> None:
    """Real iperf3 -u -J output (tests/data/iperf3_udp_stream_refused.json: a lab pod to
    another with REJECT on UDP 5201-5209 in the server's node FORWARD chain): the control
    connection opened (a cookie), the stream was refused: UDP's channel, mode reject."""
    from pytest_k8snet.judge.localize import IPERF_UDP, REJECT, iperf_channel

    r = iperf.parse("10.244.0.2", 5203, read("iperf3_udp_stream_refused.json"))
    assert r.error == "unable to read from stream socket: Connection refused"
    assert iperf_channel({"error": r.error, "failure": r.failure, "packets": r.packets},
                         5.0) == (IPERF_UDP, REJECT)


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


# -- IPv6 destinations -----------------------------------------------------------------------

def test_ping_and_path_mtu_argv_for_ipv6_use_48_header_bytes() -> None:
    assert ping.argv("fd00:10:244:1::2")[:2] == ["ping", "-6"]
    assert "-6" not in ping.argv("10.244.1.2")
    v6 = pathmtu.probe_argv("fd00:10:244:1::2", 1400, 0.3)
    assert v6[v6.index("-s") + 1] == "1352" and v6[v6.index("-M") + 1] == "do"
    v4 = pathmtu.probe_argv("10.244.1.2", 1400, 0.3)
    assert v4[v4.index("-s") + 1] == "1372"
    ok = ping.parse("::1", 1352, True, read("ping6_df_ok.txt"))
    assert ok.any_reply and ok.packet_size == 1400
    local = ping.parse("::1", 1353, True, read("ping6_df_local_error.txt"))
    assert local.local_mtu == 1400 and not local.any_reply  # "mtu: 1400", not "mtu=1400"


def test_path_mtu_search_over_ipv6_finds_the_ipv6_packet_size() -> None:
    # an IPv6 path with MTU 1400: a 1352-byte payload (+ 40 IPv6 + 8 ICMPv6) is the largest
    def run(argv: list[str]) -> tuple[int, str, str]:
        payload = int(argv[argv.index("-s") + 1])
        if payload <= 1352:
            return 0, read("ping6_df_ok.txt"), ""
        return 1, read("ping6_df_local_error.txt"), ""

    r = pathmtu.measure(run, "node-1", "node-2", "fd00:10:244:1::2", ceiling=1500, wait=0.1)
    assert (r.bytes, r.first_lost) == (1400, 1401)


def test_dns_asks_aaaa_on_ipv6_clusters_and_reads_aaaa_answers() -> None:
    assert dns.argv("kubernetes.default.svc.cluster.local", rtype="AAAA")[4] == "AAAA"
    assert dns.argv("x")[4] == "A" and dns.argv("x", server="fd00::a")[-1] == "@fd00::a"
    assert dns.record_types(["10.96.0.10", "10.244.0.0/16"]) == ("A",)
    assert dns.record_types(["10.96.0.10", "fd00:10:244::/56"]) == ("A", "AAAA")
    v6 = dns.parse("kubernetes.default.svc.cluster.local", read("dig_aaaa_ok.txt"), "AAAA")
    assert v6.ok and v6.answers == ("fd00:10:96::1",) and v6.rtype == "AAAA"
    # the CNAME on the way is not an answer
    cname = dns.parse("api.cluster.local", read("dig_aaaa_cname.txt"), "AAAA")
    assert cname.answers == ("fd00:10:96::1",)
    a = dns.parse("kubernetes.default.svc.cluster.local", read("dig_ok.txt"))
    both = dns.merge([a, v6])
    assert both.ok and both.answers == ("10.96.0.1", "fd00:10:96::1") and both.rtype == "A+AAAA"
    # dual-stack: a name with only an A record still resolves; a timeout on both does not
    empty = dns.DnsResult("x", "NOERROR", (), 0, None, "AAAA")
    assert dns.merge([a, empty]).ok
    timeout = dns.parse("x", read("dig_timeout.txt"))
    assert dns.merge([timeout, dns.parse("x", read("dig_timeout.txt"), "AAAA")]).rcode == "TIMEOUT"


def test_other_probe_argv_keep_an_ipv6_destination_whole() -> None:
    url = "http://[fd00:10:244:1::3]:8080/1mib"
    assert http.argv(url)[-1] == url
    assert iperf.client_argv("fd00::2", 5201)[2] == "fd00::2"
    sent = egress.argv("http://[fd00::10]:80/", [40000])
    assert sent[-1] == "http://[fd00::10]:80/?k8snet-sport=40000"
    addrs = ('[{"ifname": "eth0", "mtu": 1500, "addr_info": ['
             '{"family": "inet6", "local": "fd00:10:244::5", "prefixlen": 64, "scope": "global"},'
             '{"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link"}]}]')
    r = nodecheck.parse("node-1", "", addrs)
    assert r.interfaces[0].addresses == ("fd00:10:244::5/64",)
    assert nodecheck.cidr_overlaps(list(r.interfaces[0].addresses), ["fd00:10:244::/56"])
    from pytest_k8snet.probes import ports

    tcp = ports.PortCheck("tcp", "fd00::1", 6443, "the API server")
    dig = ports.PortCheck("dns-udp", "fd00:10:96::a", 53, "the cluster DNS")
    text = ports.script([tcp, dig], 2, "kubernetes.default.svc.cluster.local")
    assert "http://[fd00::1]:6443/" in text and "@fd00:10:96::a " in text  # curl, dig: bare


def test_path_mtu_results_carry_the_header_bytes_of_their_family() -> None:
    assert pathmtu.from_batch("a", "b", "1450 1\n", 1450, 0.1, "fd00::2").headers == 48
    assert pathmtu.from_batch("a", "b", "1450 1\n", 1450, 0.1, "10.244.1.2").headers == 28
    assert pathmtu.from_batch("a", "b", "1450 1\n", 1450, 0.1).headers == 28


def test_bound_udp_ports_read_the_overlay_socket_from_proc_net_udp() -> None:
    # Captured on a lab node: flannel.1's kernel VXLAN socket holds 8472 (0x2118).
    text = read("proc_net_udp_lab.txt")
    assert nodecheck.bound_udp_ports(text) == {8472}
    v6 = ("  sl  local_address                         remote_address\n"
          "   0: 00000000000000000000000000000000:12B5 00000000000000000000000000000000:0000 07 "
          "00000000:00000000 00:00000000 00000000     0        0 1234 2 0000000000000000 0\n")
    assert nodecheck.bound_udp_ports(text + v6) == {8472, 4789}
    assert nodecheck.bound_udp_ports("") == frozenset()


def test_parallel_curl_gives_each_url_its_own_result() -> None:
    # Captured: one curl --parallel for three URLs; the second has no listener.
    urls = ["http://10.244.1.2:8080/1mib", "http://10.244.2.2:8081/1mib",
            "http://10.244.3.2:8080/1mib", "http://10.244.4.2:8080/1mib"]
    argv = http.parallel_argv(urls[:3], connect_timeout=2, max_time=5, parallel=2)
    assert argv.count("--next") == 2 and argv[argv.index("--parallel-max") + 1] == "2"
    assert argv.count("-m") == 3  # every transfer has its own deadline
    got = http.parse_parallel(urls, read("curl_parallel.txt"), read("curl_parallel.stderr"), 7,
                              expected_bytes=1024 * 1024)
    assert got[urls[0]].ok and got[urls[2]].ok and got[urls[0]].bytes == 1024 * 1024
    assert not got[urls[1]].ok and got[urls[1]].exit_code == 7
    assert "Failed to connect" in (got[urls[1]].error or "")
    # No line at all for a URL (curl was cut off): a failure, never a success.
    assert not got[urls[3]].ok and got[urls[3]].error


def test_receive_buffer_errors_from_proc_net_snmp() -> None:
    # Captured in a lab probe pod after its iperf3 servers were starved.
    snmp = ("Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors "
            "InCsumErrors IgnoredMulti MemErrors\n"
            "Udp: 13207 0 12199 19677 12199 0 0 0 0\n"
            "UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors "
            "InCsumErrors IgnoredMulti MemErrors\nUdpLite: 0 0 0 0 0 0 0 0 0\n")
    assert iperf.receive_buffer_errors(snmp) == 12199
    assert iperf.receive_buffer_errors("Ip: Forwarding\nIp: 1\n") is None
    assert iperf.receive_buffer_errors("") is None


@needs_root
def test_one_curl_tells_open_refused_and_dropped_ports_apart() -> None:
    """Run for real in a namespace of its own: a listener that closes without a word is
    ``open`` for a TCP check (the connect went through) and ``error`` for a NodePort (no
    HTTP); a port with no listener is ``refused``; a port whose SYNs are dropped is
    ``timeout``, for both kinds."""
    import subprocess

    from pytest_k8snet.probes import ports

    checks = [ports.PortCheck(kind, "127.0.0.1", port, "x")
              for kind in ("tcp", "nodeport") for port in (9000, 9001, 9002)]
    script = ports.script(checks, 1, "n")
    assert script.count("curl ") == 1  # one process for every connect
    # Its lines are printed whole after the DNS checks ended (curl flushes mid-line, and a
    # DNS line written meanwhile split two of them: read as "error" on a 64-node lab).
    with_dns = ports.script([*checks, ports.PortCheck("dns-udp", "127.0.0.1", 53, "d")],
                            1, "n")
    assert with_dns.index("k8snet_o=$(curl ") < with_dns.index("\nwait\n") \
        < with_dns.index('printf \'%s\\n\' "$k8snet_o"')
    setup = ("ip link set lo up && iptables -A INPUT -p tcp --dport 9002 -j DROP && "
             "{ socat TCP-LISTEN:9000,reuseaddr,fork SYSTEM:true & } && sleep 0.5")
    out = subprocess.run(["unshare", "--net", "bash", "-c", f"{setup}; ( {script} ); kill %1"],
                         capture_output=True, text=True, timeout=60, check=False).stdout
    assert [(c.kind, c.port, c.state) for c in ports.parse(checks, out)] == [
        ("tcp", 9000, "open"), ("tcp", 9001, "refused"), ("tcp", 9002, "timeout"),
        ("nodeport", 9000, "error"), ("nodeport", 9001, "refused"),
        ("nodeport", 9002, "timeout")]
