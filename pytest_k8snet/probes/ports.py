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
says so and skips that port); only a connect that times out is a dropped port. ``nc -z``
does not tell the two apart; curl does (exit 7: refused or unreachable; 28: no answer in
time, and ``time_connect`` above 0 when the connect itself went through).

Every TCP and NodePort check of a node runs in ONE curl (``--parallel``): a process per
check (bash's /dev/tcp under ``timeout``, as before) was about 4 ms of CPU each, and a node
checks four ports on every other node: 65,000 processes on a 128-node lab. A ``tcp`` check
sends a plain HTTP request once connected (so a server that answers closes at once); only
whether the connect went through counts. Its curl line reads::

    k8snet-port http://172.28.128.12:10250/?k8snet-check=tcp 0 0.000412
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, urlsplit

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


# Connects in flight at once in the one curl: 4 per other node would open hundreds at once
# on a 128-node lab.
PARALLEL = 64
CURL_MARK = "k8snet-port"
CURL_REFUSED = 7  # curl: failed to connect (refused, or unreachable: nothing to time out)
CURL_TIMEOUT = 28


def check_url(c: PortCheck) -> str:
    """The URL a TCP or NodePort check asks: its kind rides in the query, so that each
    line of curl's parallel output names its check."""
    return f"http://{_host(c.ip)}:{c.port}/?k8snet-check={c.kind}"


def curl_argv(checks: Sequence[PortCheck], t: int, parallel: int = PARALLEL) -> list[str]:
    """One curl for every TCP and NodePort check, ``parallel`` at a time, each with its own
    deadline and one line: the URL, curl's exit code and the connect time (0: no connect)."""
    out = ["curl", "--parallel", "--parallel-immediate", "--parallel-max",
           str(max(1, parallel)), "-g", "-s", "--http1.0"]
    for i, c in enumerate(checks):
        out += (["--next"] if i else []) + [
            "-g", "-s", "--http1.0", "-o", "/dev/null", "-H", "Host: k8snet",
            "--connect-timeout", str(t), "-m", str(t),
            "-w", f"{CURL_MARK} %{{url_effective}} %{{exitcode}} %{{time_connect}}\\n",
            check_url(c)]
    return out


def script(checks: Sequence[PortCheck], timeout: float, dns_name: str,
           parallel: int = PARALLEL) -> str:
    t = max(1, round(timeout))
    lines = []
    for c in checks:
        tag = f"{c.kind} {c.ip} {c.port}"
        if c.kind in ("dns-udp", "dns-tcp"):
            tcp = " +tcp" if c.kind == "dns-tcp" else ""
            lines.append(
                f"( out=$(dig{tcp} +time={t} +tries=1 -p {c.port} @{c.ip} "
                f"{shlex.quote(dns_name)} A 2>&1); "
                f"case \"$out\" in *'status: '*) s=open;; *refused*) s=refused;; "
                f"*'timed out'*|*'no servers'*) s=timeout;; *) s=error;; esac; "
                f"echo \"{tag} $s\" ) &")
    connects = [c for c in checks if c.kind in ("tcp", "nodeport")]
    if not connects:
        return "\n".join([*lines, "wait"])
    # curl's lines are printed after the DNS checks' have ended: curl flushes its buffered
    # output in blocks that may end mid-line, and a DNS line written meanwhile would land
    # inside one (two checks lost, read as "error").
    return "\n".join([*lines, f"k8snet_o=$({shlex.join(curl_argv(connects, t, parallel))} "
                                "</dev/null)", "wait", "printf '%s\\n' \"$k8snet_o\""])


def _curl_state(kind: str, code: int, connect_s: float) -> State:
    """A check's state from its curl line, as the one-process-per-check probe had it."""
    if code == 0:
        return "open"  # connected, and an HTTP answer came
    if kind == "tcp":
        # Connected is open, whatever the server then said (TLS, nothing, a reset).
        if connect_s > 0:
            return "open"
        return "timeout" if code == CURL_TIMEOUT else "refused"
    # A NodePort must answer HTTP: connected but silent in time is a timeout, connected
    # and closed or reset without HTTP is an error.
    if code == CURL_TIMEOUT:
        return "timeout"
    return "error" if connect_s > 0 else "refused"


def _curl_line(parts: list[str]) -> tuple[tuple[str, str, int], State] | None:
    """``k8snet-port URL EXIT CONNECT`` as (key, state); None for anything else."""
    if len(parts) != 4 or parts[0] != CURL_MARK or not parts[2].isdigit():
        return None
    url = urlsplit(parts[1])
    kind = parse_qs(url.query).get("k8snet-check", [""])[0]
    try:
        connect_s = float(parts[3])
        port = url.port
    except ValueError:
        return None
    if kind not in ("tcp", "nodeport") or url.hostname is None or port is None:
        return None
    return (kind, _canonical(url.hostname), port), _curl_state(kind, int(parts[2]), connect_s)


def _canonical(ip: str) -> str:
    """One spelling per address (curl may print an IPv6 address otherwise than asked)."""
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip


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
        found = _curl_line(parts)
        if found is not None:
            seen[found[0]] = found[1]
        elif len(parts) == 4 and parts[2].isdigit() and parts[3] in STATES:
            seen[(parts[0], parts[1], int(parts[2]))] = parts[3]
    return [PortCheck(c.kind, c.ip, c.port, c.peer,
                      seen.get(c.key) or seen.get((c.kind, _canonical(c.ip), c.port), "error"))
            for c in checks]
