"""The lab's HTTP servers: every probe pod, echo pod and the world host, in one process.

One process binds a listening socket inside each namespace (a socket keeps the
namespace it was created in), so a 32-node lab costs one interpreter, not 65, and serves
them all on one asyncio event loop (HTTP/1.0, one request per connection).

Routes: ``/`` answers the serving pod's name, ``/1mib`` a 1 MiB body for bulk
transfers, ``/healthz`` ``ok``. ``--udp-echo NETNS:PORT`` also sends every UDP datagram
on PORT back to its sender as it came (the path-MTU search's fallback under an ICMP
filter, the plugin's probes/pmtu_udp.py).

Run as ``python -m pytest_k8snet.lab.server --lab NAME --listen NETNS:PORT:LABEL ...``;
it prints ``ready`` once every socket listens and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
import threading
from collections.abc import Awaitable, Callable

from .netns import entered

IP_MTU_DISCOVER, IP_PMTUDISC_PROBE = 10, 3  # linux/in.h; not in Python's socket module
IPV6_MTU_DISCOVER = 23  # linux/in6.h; its PROBE value is the same 3
ONE_MIB = b"k8snet" * (1024 * 1024 // 6) + b"\n" * (1024 * 1024 % 6)


# Request heads are small; a client that sends no complete head in this time is dropped.
HEAD_TIMEOUT = 30.0
WRITE_TIMEOUT = 60.0  # a 1 MiB body to a client that stopped reading
BACKLOG = 4096  # every node's egress probe connects at once
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 501: "Not Implemented"}


def _body(label: str, target: str) -> tuple[int, bytes]:
    """Status and body for a GET of ``target`` on the pod named ``label``."""
    path = target.split("?", 1)[0]
    if path == "/1mib":
        return 200, ONE_MIB
    if path == "/healthz":
        return 200, b"ok\n"
    if path == "/":
        return 200, f"{label}\n".encode()
    return 404, b"not found\n"


def response(status: int, body: bytes) -> bytes:
    """An HTTP/1.0 response (the connection closes after it, as http.server's did)."""
    kind = "application/octet-stream" if status == 200 else "text/plain"
    return (f"HTTP/1.0 {status} {REASONS[status]}\r\nServer: k8snet-lab\r\n"
            f"Content-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode() + body


async def _read_head(reader: asyncio.StreamReader) -> list[str]:
    """The request line's words; the header lines are read up to the blank line and
    ignored (no route depends on them)."""
    first = (await reader.readline()).decode("latin-1").split()
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return first


def _handler(label: str) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                      Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            words = await asyncio.wait_for(_read_head(reader), HEAD_TIMEOUT)
            if len(words) < 2:
                status, body = 400, b"bad request\n"
            elif words[0] != "GET":
                status, body = 501, b"not implemented\n"
            else:
                status, body = _body(label, words[1])
            writer.write(response(status, body))
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, ValueError):
            pass  # the client went away or never asked: nothing to answer
        finally:
            writer.close()

    return handle


def _ipv6_on() -> bool:
    """IPv6 is on in the namespace the calling thread is in (--ip-family ipv6|dual)."""
    try:
        with open("/proc/sys/net/ipv6/conf/all/disable_ipv6") as fh:
            return fh.read().strip() == "0"
    except OSError:
        return False


def _bind(netns: str, port: int) -> socket.socket:
    """A listening socket inside ``netns`` (it keeps that namespace wherever it is used)."""
    with entered(netns):
        # One dual-stack socket where the lab has IPv6 (IPv4 arrives mapped), else IPv4.
        dual = _ipv6_on()
        sock = socket.socket(socket.AF_INET6 if dual else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if dual:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::" if dual else "0.0.0.0", port))
        sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


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


def _serve(servers: list[tuple[socket.socket, str]]) -> None:
    """Every listening socket on one event loop, in a thread of its own: a request costs
    a coroutine, not a thread and http.server's parsing. A 128-node lab takes ~65,000
    requests per suite (the Service from every pod, every node's kubelet port and NodePort
    from every other node), which a thread per request made most of the server's CPU."""
    async def run() -> None:
        for sock, label in servers:
            await asyncio.start_server(_handler(label), sock=sock, backlog=BACKLOG)
        await asyncio.Event().wait()  # serve until the process ends

    asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="k8snet-lab-server")
    parser.add_argument("--lab", required=True, help="lab name, so ps and pgrep can trace us")
    parser.add_argument("--listen", action="append", default=[], metavar="NETNS:PORT:LABEL")
    parser.add_argument("--udp-echo", action="append", default=[], metavar="NETNS:PORT")
    args = parser.parse_args(argv)
    servers = []
    for spec in args.listen:
        netns, port, label = spec.split(":", 2)
        servers.append((_bind(netns, int(port)), label))
    echoes = [_udp_echo(netns, int(port)) for netns, port in
              (spec.rsplit(":", 1) for spec in args.udp_echo)]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=_serve, args=(servers,), daemon=True).start()
    for sock in echoes:
        threading.Thread(target=_echo, args=(sock,), daemon=True).start()
    print("ready", flush=True)
    stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
