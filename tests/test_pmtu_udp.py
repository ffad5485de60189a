"""The path-MTU search's DF UDP fallback (probes/pmtu_udp.py): its lines parsed from real
lab output, and the real client against the real responder the kube probe pod starts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_k8snet.probes import pathmtu, pmtu_udp

from . import own_netns

DATA = Path(__file__).parent / "data"


def read(name: str) -> str:
    return (DATA / name).read_text()


# Captured in a 3-node lab: `sh` of pathmtu.batch_prelude(0.5) + batch_command(10.244.1.2,
# 1450, 0.5) in node-1's probe pod, with `iptables -I FORWARD -p icmp -j DROP` on node-2
# (and the lab's underlay-mtu fault at 1400 on node-2, and a DROP of udp dport 8081 too).
@pytest.mark.parametrize(("name", "size", "lost", "probes", "protocol"), [
    ("pmtu_udp_icmp_dropped.txt", 1450, None, 3, "udp"),
    ("pmtu_udp_icmp_dropped_underlay_1400.txt", 1350, 1351, 2 + 12, "udp"),
    ("pmtu_udp_icmp_and_udp_dropped.txt", 0, pathmtu.MIN_PACKET, 2 + 2, "udp"),
    ("pmtu_df_ping_underlay_1400.txt", 1350, 1351, 12, "icmp"),  # no ICMP filter
])
def test_search_result_from_real_output(name: str, size: int, lost: int | None, probes: int,
                                        protocol: str) -> None:
    r = pathmtu.from_batch("node-1", "node-2", read(name), 1450, 1.0, "10.244.1.2")
    assert (r.bytes, r.first_lost, r.probes, r.protocol) == (size, lost, probes, protocol)
    assert r.headers == 28


def test_udp_lines_are_only_read_when_no_df_ping_crossed() -> None:
    """A DF ping answer wins: stray ``udp`` lines never replace a measured ICMP search."""
    text = read("pmtu_df_ping_underlay_1400.txt") + "udp 1450 1\n"
    r = pathmtu.from_batch("a", "b", text, 1450, 1.0)
    assert (r.bytes, r.protocol) == (1350, "icmp")
    assert pmtu_udp.answers(read("pmtu_df_ping_underlay_1400.txt")) is None


def test_the_client_has_no_single_quote_to_break_its_shell_quoting() -> None:
    assert "'" not in pmtu_udp.CLIENT and "'" not in pmtu_udp.RESPONDER


def run_in_own_netns(script: str) -> subprocess.CompletedProcess[str]:
    # Every ICMP echo dropped (IPv4 and IPv6), as a security group does.
    return own_netns.run_in_own_netns(
        script, "iptables -A OUTPUT -p icmp -j DROP && ip6tables -A OUTPUT -p ipv6-icmp "
        "--icmpv6-type echo-request -j DROP || exit 97\n", timeout=90)


@pytest.mark.skipif(any(shutil.which(t) is None for t in ("unshare", "ping", "iptables",
                                                           "ip6tables", "python3")),
                    reason="needs unshare, ping, iptables, ip6tables and python3")
def test_udp_search_measures_the_mtu_where_icmp_is_dropped() -> None:
    """The kube probe pod's responder and the batched search, both real: no DF ping gets
    a reply, and DF UDP still finds 1400 on IPv4 and IPv6 (a 1372- and a 1352-byte
    payload: the size the kernel refuses to send past lo's MTU counts as lost)."""
    script = "\n".join([
        pmtu_udp.responder_script(), "r=$!", "sleep 0.5",
        pathmtu.batch_prelude(0.3),
        pathmtu.batch_command("::1", 1500, 0.3), "echo ---",
        pathmtu.batch_command("127.0.0.1", 1500, 0.3),
        "kill $r"])
    res = run_in_own_netns(script)
    v6, _, v4 = res.stdout.partition("---")
    for text, ip in ((v6, "::1"), (v4, "127.0.0.1")):
        r = pathmtu.from_batch("a", "b", text, 1500, 0, ip)
        assert (r.bytes, r.first_lost, r.protocol) == (1400, 1401, "udp"), (text, res.stderr)
