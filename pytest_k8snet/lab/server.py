"""The lab's HTTP servers: every probe pod, echo pod and the world host, in one process.

One process binds a listening socket inside each namespace (a socket keeps the
namespace it was created in), so a 32-node lab costs one interpreter, not 65.

Routes: ``/`` answers the serving pod's name, ``/1mib`` a 1 MiB body for bulk
transfers, ``/healthz`` ``ok``. ``--udp-echo NETNS:PORT`` also sends every UDP datagram
on PORT back to its sender as it came (the path-MTU search's fallback under an ICMP
filter, the plugin's probes/pmtu_udp.py).

Run as ``python -m pytest_k8snet.lab.server --lab NAME --listen NETNS:PORT:LABEL ...``;
it prints ``ready`` once every socket listens and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .netns import entered

IP_MTU_DISCOVER, IP_PMTUDISC_PROBE = 10, 3  # linux/in.h; not in Python's socket module
IPV6_MTU_DISCOVER = 23  # linux/in6.h; its PROBE value is the same 3
ONE_MIB = b"k8snet" * (1024 * 1024 // 6) + b"\n" * (1024 * 1024 % 6)


class _Handler(BaseHTTPRequestHandler):
    server_version = "k8snet-lab"
    label = "?"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path == "/1mib":
            body = ONE_MIB
        elif path == "/healthz":
            body = b"ok\n"
        elif path == "/":
            body = f"{self.label}\n".encode()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 4096  # every node's egress probe connects at once


class _Server6(_Server):
    address_family = socket.AF_INET6


def _ipv6_on() -> bool:
    """IPv6 is on in the namespace the calling thread is in (--ip-family ipv6|dual)."""
    try:
        with open("/proc/sys/net/ipv6/conf/all/disable_ipv6") as fh:
            return fh.read().strip() == "0"
    except OSError:
        return False


def _bind(netns: str, port: int, label: str) -> _Server:
    handler = type("Handler", (_Handler,), {"label": label})
    with entered(netns):
        # One dual-stack socket where the lab has IPv6 (IPv4 arrives mapped), else IPv4.
        dual = _ipv6_on()
        server = (_Server6(("::", port), handler, bind_and_activate=False) if dual else
                  _Server(("0.0.0.0", port), handler, bind_and_activate=False))
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if dual:
            server.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        server.server_bind()
        server.server_activate()
    return server


def _udp_echo(netns: str, port: int) -> socket.socket:
    with entered(netns):
        dual = _ipv6_on()
        sock = socket.socket(socket.AF_INET6 if dual else socket.AF_INET, socket.SOCK_DGRAM)
    # Echoes leave with DF at full size whatever PMTU is cached (IP_PMTUDISC_PROBE), as
    # the client's datagrams do: the echo measures the way back, not a fragmented copy.
    sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE)
    if dual:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IP_PMTUDISC_PROBE)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::" if dual else "0.0.0.0", port))
    return sock


def _echo(sock: socket.socket) -> None:
    while True:
        data, peer = sock.recvfrom(65535)
        try:
            sock.sendto(data, peer)
        except OSError:
            pass  # too big for our own interface, or the peer gone: no echo, as on a wire


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="k8snet-lab-server")
    parser.add_argument("--lab", required=True, help="lab name, so ps and pgrep can trace us")
    parser.add_argument("--listen", action="append", default=[], metavar="NETNS:PORT:LABEL")
    parser.add_argument("--udp-echo", action="append", default=[], metavar="NETNS:PORT")
    args = parser.parse_args(argv)
    servers = []
    for spec in args.listen:
        netns, port, label = spec.split(":", 2)
        servers.append(_bind(netns, int(port), label))
    echoes = [_udp_echo(netns, int(port)) for netns, port in
              (spec.rsplit(":", 1) for spec in args.udp_echo)]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for server in servers:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                         daemon=True).start()
    for sock in echoes:
        threading.Thread(target=_echo, args=(sock,), daemon=True).start()
    print("ready", flush=True)
    stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
