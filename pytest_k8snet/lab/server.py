"""The lab's HTTP servers: every probe pod, echo pod and the world host, in one process.

One process binds a listening socket inside each namespace (a socket keeps the
namespace it was created in), so a 32-node lab costs one interpreter, not 65.

Routes: ``/`` answers the serving pod's name, ``/1mib`` a 1 MiB body for bulk
transfers, ``/healthz`` ``ok``.

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


def _bind(netns: str, port: int, label: str) -> _Server:
    handler = type("Handler", (_Handler,), {"label": label})
    with entered(netns):
        server = _Server(("0.0.0.0", port), handler, bind_and_activate=False)
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.server_bind()
        server.server_activate()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="k8snet-lab-server")
    parser.add_argument("--lab", required=True, help="lab name, so ps and pgrep can trace us")
    parser.add_argument("--listen", action="append", default=[], metavar="NETNS:PORT:LABEL")
    args = parser.parse_args(argv)
    servers = []
    for spec in args.listen:
        netns, port, label = spec.split(":", 2)
        servers.append(_bind(netns, int(port), label))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for server in servers:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                         daemon=True).start()
    print("ready", flush=True)
    stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
