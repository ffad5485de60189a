"""Path MTU without ICMP: Don't-Fragment UDP datagrams to the probe pod's UDP echo port.

Where ICMP is filtered (a cloud security group, a NetworkPolicy), the DF ping search of
:mod:`.pathmtu` gets no reply at any size and measures nothing. This search asks the
transport instead, as packetization-layer PMTUD does (RFC 4821): a datagram of N bytes
crosses if its echo of N bytes comes back. It never waits for an ICMP error, so it works
where "fragmentation needed" is filtered too.

The client sets ``IP_MTU_DISCOVER = IP_PMTUDISC_PROBE`` (IPv6: ``IPV6_PMTUDISC_PROBE``):
every datagram leaves with DF set at its full size whatever path MTU the kernel has
cached, so an earlier size (or a "fragmentation needed" that did get through) never
makes the kernel fragment or refuse a later one. A datagram larger than the pod's own
interface fails to send (EMSGSIZE) and counts as lost, as a DF ping does.

The client is a Python program (netshoot and the lab's hosts have python3) run by the
batched search in :mod:`.pathmtu` as its fallback; it prints one ``udp <size> <1|0>``
line per size it decided, in the same order as :func:`.pathmtu.search` asks.
"""

from __future__ import annotations

PORT = 8081  # the probe pod's UDP echo responder (the lab's and the kube backend's)
PREFIX = "udp"

# ``sys.argv``: IP CEILING FLOOR WAIT PORT HEADERS. No single quotes: it lives in a
# single-quoted shell variable. Each size is tried twice before it counts as lost, and a
# reply must be the very datagram sent (a token, and the length): a late echo of an
# earlier size is skipped, not taken as this size's answer.
CLIENT = """
import os, socket, sys, time
ip, lost, floor, wait, port, hdr = sys.argv[1:7]
lost, floor, wait, port, hdr = int(lost), int(floor), float(wait), int(port), int(hdr)
v6 = ":" in ip
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
if v6:
    s.setsockopt(socket.IPPROTO_IPV6, 23, 3)  # IPV6_MTU_DISCOVER = IPV6_PMTUDISC_PROBE
else:
    s.setsockopt(socket.IPPROTO_IP, 10, 3)  # IP_MTU_DISCOVER = IP_PMTUDISC_PROBE
def once(size):
    data = os.urandom(8) + bytes(max(0, size - hdr - 8))
    try:
        s.sendto(data, (ip, port))
    except OSError:
        return False
    end = time.monotonic() + wait
    while time.monotonic() < end:
        s.settimeout(max(0.001, end - time.monotonic()))
        try:
            if s.recv(65535) == data:
                return True
        except OSError:
            return False
    return False
def cross(size):
    ok = once(size) or once(size)
    print("udp", size, int(ok), flush=True)
    return ok
if not cross(lost) and cross(floor):
    good = floor
    while lost - good > 1:
        mid = (good + lost) // 2
        if cross(mid):
            good = mid
        else:
            lost = mid
"""


def batch_prelude(wait: float) -> str:
    """``k8snet_udp IP CEILING FLOOR HEADERS``: the search, for :mod:`.pathmtu`'s prelude."""
    return "\n".join([
        f"k8snet_udp_py='{CLIENT.strip()}'",
        "k8snet_udp() {",
        f'  python3 -c "$k8snet_udp_py" "$1" "$2" "$3" {float(wait)} {PORT} "$4"',
        "}",
    ])


def answers(stdout: str) -> dict[int, bool] | None:
    """The sizes the UDP search decided (``udp <size> <1|0>`` lines); None when it did not
    run (no such line: the DF ping search found its answer, or python3 is missing)."""
    found: dict[int, bool] = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == PREFIX and parts[1].isdigit() \
                and parts[2] in ("0", "1"):
            found[int(parts[1])] = parts[2] == "1"
    return found or None


# The responder in the kube backend's probe pod: one process, a datagram back to its
# sender as it came. It sends with DF at full size too (IP_PMTUDISC_PROBE), so the echo
# measures the way back as a ping's echo reply does.
# Dual-stack where the pod has IPv6, else IPv4 alone (a kernel booted without IPv6).
RESPONDER = """
import socket
try:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", {port}))
except OSError:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", {port}))
for level, opt in ((socket.IPPROTO_IPV6, 23), (socket.IPPROTO_IP, 10)):
    try:
        s.setsockopt(level, opt, 3)
    except OSError:
        pass
while True:
    data, peer = s.recvfrom(65535)
    try:
        s.sendto(data, peer)
    except OSError:
        pass
"""


def responder_script(port: int = PORT) -> str:
    """Shell lines that start the UDP echo responder in the background: python3, else
    socat (a child per datagram; ``ip-mtu-discover=3`` is IP_PMTUDISC_PROBE), else none
    (the search then finds nothing, as the DF ping search does under an ICMP filter)."""
    source = RESPONDER.strip().format(port=int(port))
    return "\n".join([
        "if command -v python3 >/dev/null 2>&1; then",
        f"  python3 -c '{source}' </dev/null >/dev/null 2>&1 &",
        "elif command -v socat >/dev/null 2>&1; then",
        f"  socat -T 5 UDP-RECVFROM:{int(port)},fork,ip-mtu-discover=3 PIPE "
        "</dev/null >/dev/null 2>&1 &",
        "fi",
    ])
