"""Control-plane ports from a node's host network: TCP connects and DNS over UDP and TCP.

One exec per source node runs every check concurrently and prints one line per check::

    tcp 172.28.128.12 10250 open
    tcp 172.28.128.12 2379 refused
    dns-udp 10.96.0.10 53 timeout
    nodeport 172.28.128.12 30080 open

A ``nodeport`` check connects and sends a small HTTP GET: ``open`` means an HTTP status
line came back through the NodePort; ``timeout`` that the connect or the answer did not
come in time; ``error`` that the connection opened but answered no HTTP (closed at once).

A TCP connect that is refused proves the path is open and nothing listens there (the check
says so and skips that port); only a connect that times out is a dropped port. bash's
/dev/tcp tells the two apart, which ``nc -z`` does not.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from . import batch

Kind = Literal["tcp", "dns-udp", "dns-tcp", "nodeport"]
State = Literal["open", "refused", "timeout", "error"]
STATES: tuple[State, ...] = ("open", "refused", "timeout", "error")


@dataclass(frozen=True)
class PortCheck:
    kind: Kind
    ip: str
    port: int
    peer: str  # what listens there, for messages: "node-2 kubelet", "API server", "cluster DNS"
    state: State = "error"

    @property
    def label(self) -> str:
        proto = "udp" if self.kind == "dns-udp" else "tcp"
        return f"{proto}/{self.port}"

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.kind, self.ip, self.port)


def _host(ip: str) -> str:
    return f"[{ip}]" if ipaddress.ip_address(ip).version == 6 else ip


PARALLEL = 16  # checks in flight at once: 3 per other node would fork hundreds on 64 nodes


def script(checks: Sequence[PortCheck], timeout: float, dns_name: str,
           parallel: int = PARALLEL) -> str:
    t = max(1, round(timeout))
    lines = []
    for c in checks:
        tag = f"{c.kind} {c.ip} {c.port}"
        if c.kind == "tcp":
            # exit 0: connected; 124: no answer in time; anything else: refused or unreachable
            lines.append(
                f"( timeout {t} bash -c 'exec 3<>/dev/tcp/{c.ip}/{c.port}' 2>/dev/null; rc=$?; "
                f"if [ $rc -eq 0 ]; then s=open; elif [ $rc -eq 124 ]; then s=timeout; "
                f"else s=refused; fi; echo \"{tag} $s\" ) &")
        elif c.kind == "nodeport":
            # exit 0: an HTTP status line; 124: no connect or no answer in time; 4: the
            # connection opened but gave no HTTP; anything else: refused or unreachable.
            # SIGPIPE ignored: a connection closed at once is no HTTP, not a refusal.
            get = "GET / HTTP/1.0\\r\\nHost: k8snet\\r\\n\\r\\n"
            lines.append(
                f"( timeout {t} bash -c 'exec 3<>/dev/tcp/{c.ip}/{c.port} || exit 1; "
                f"trap \"\" PIPE; printf \"{get}\" >&3; read -r line <&3; "
                f"case \"$line\" in HTTP/*) exit 0;; *) exit 4;; esac' 2>/dev/null; rc=$?; "
                f"case $rc in 0) s=open;; 124) s=timeout;; 4) s=error;; *) s=refused;; esac; "
                f"echo \"{tag} $s\" ) &")
        else:
            tcp = " +tcp" if c.kind == "dns-tcp" else ""
            lines.append(
                f"( out=$(dig{tcp} +time={t} +tries=1 -p {c.port} @{c.ip} "
                f"{shlex.quote(dns_name)} A 2>&1); "
                f"case \"$out\" in *'status: '*) s=open;; *refused*) s=refused;; "
                f"*'timed out'*|*'no servers'*) s=timeout;; *) s=error;; esac; "
                f"echo \"{tag} $s\" ) &")
    # Lanes: each runs its checks one after another, ``parallel`` lanes at once (round-robin,
    # so a node's three ports land in different lanes), as the batch runner's lanes do.
    lanes = ["( " + "\n".join(lines[i].rstrip(" &") for i in lane) + " ) &"
             for lane in batch.lanes(len(lines), parallel)] if lines else []
    return "\n".join([*lanes, "wait"])


def lane_length(count: int) -> int:
    """The most checks one lane runs one after another (for the exec's own timeout)."""
    return batch.lane_length(count, PARALLEL)


def argv(checks: Sequence[PortCheck], timeout: float, dns_name: str) -> list[str]:
    return ["bash", "-c", script(checks, timeout, dns_name)]


def parse(checks: Sequence[PortCheck], stdout: str) -> list[PortCheck]:
    """The checks with their states; a check with no line is ``error`` (the probe broke)."""
    seen: dict[tuple[str, str, int], State] = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2].isdigit() and parts[3] in STATES:
            seen[(parts[0], parts[1], int(parts[2]))] = parts[3]
    return [PortCheck(c.kind, c.ip, c.port, c.peer, seen.get(c.key, "error")) for c in checks]
