"""A TCP forwarder from the machine's 127.0.0.1 to the API server inside the lab.

Nothing of the lab is wired to the host's own namespace; this process listens on the host's
loopback and opens each upstream connection with a socket created inside the control-plane
namespace (a socket keeps the namespace it was made in), so kubectl and pytest on the host
reach the cluster while the lab stays sealed.

    python -m pytest_k8snet.lab.kube.forward --state DIR --netns NS --target IP:PORT

prints ``ready PORT`` once listening. ``--state`` names the lab's state directory, which is
how ``k8snet-lab down`` finds this process.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading

from ..netns import entered


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _serve(client: socket.socket, netns: str, target: tuple[str, int]) -> None:
    with entered(netns):
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        upstream.settimeout(10)
        upstream.connect(target)
        upstream.settimeout(None)
    except OSError:
        upstream.close()
        client.close()
        return
    t = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
    t.start()
    _pipe(client, upstream)
    t.join()
    client.close()
    upstream.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pytest_k8snet.lab.kube.forward")
    p.add_argument("--state", required=True)
    p.add_argument("--netns", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    target = (host, int(port))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(128)
    print(f"ready {listener.getsockname()[1]}", flush=True)
    sys.stdout.close()
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_serve, args=(client, args.netns, target), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
