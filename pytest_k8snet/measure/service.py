"""The Service: which backends answer each node's pod, and 1 MiB through the Service VIP.

Cheap where cheap suffices. Small requests: one round over every backend, then a few more
unless that round saw failures. 1 MiB: a healthy node makes a few transfers; only a node
where one fails gets one transfer per backend (the full measurement the judge needs to
tell a bad backend from a bad client).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from ..backends import host_port
from ..probes import http
from .engine import Engine
from .transfers import ONE_MIB

SERVICE_HTTP_SAMPLE = 3
# 1 MiB transfers at least in a node's full measurement (one per backend on bigger
# clusters): with 3 backends and one cut off, a healthy client sees all 9 fail 0.005% of
# the time, so the judge can tell that from failures that only landed on the cut backend.
SERVICE_HTTP_FULL = 9
SERVICE_EXTRA_REQUESTS = 6
# Requests at least, where the first round saw failures: enough that a backend none of them
# reached is evidence (3 backends: (2/3)**24 = 0.006%, below the judge's CHANCE of 0.1%).
SERVICE_FAILING_REQUESTS = 24


@dataclass(frozen=True)
class ServiceResult:
    """Repeated requests from one node's pod to the Service VIP."""

    node: str
    attempts: int
    failures: int
    answered_by: dict[str, int]
    missing_backends: tuple[str, ...]
    errors: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.failures == 0


def service(engine: Engine, rounds: int = 3) -> dict[str, ServiceResult]:
    """Repeated new connections from each node's pod to the Service, which backends answer."""
    t = engine.backend.targets()
    backends = engine.backend.service_backends()
    count = max(rounds * len(backends), SERVICE_FAILING_REQUESTS)

    def curl(first: int, last: int) -> str:
        # curl globs [first-last] and still reads [fd00::a] as an IPv6 address
        url = f"http://{host_port(t.service_ip, t.service_port)}/?k8snet=[{first}-{last}]"
        return shlex.join(["curl", "-s", "-H", "Connection: close", "--connect-timeout",
                           "1", "-m", "2", "-w", "\\n%{json}\\n", url])

    def one(node: str) -> ServiceResult:
        # One round over every backend first: if none answers at all, more rounds only
        # add timeouts. A clean round needs only a few more requests (bounded, whatever
        # N); a round with failures gets the full rounds the judge reads. One exec: the
        # shell decides, and says on stderr how many requests it made.
        first = max(1, len(backends))
        clean = min(count, max(12, first + SERVICE_EXTRA_REQUESTS))
        more = ""
        if count > first:
            more = (f"printf '%s\\n' \"$o\" | grep -q '\"exitcode\":0' || exit 0\n"
                    f"if printf '%s\\n' \"$o\" | grep -q '\"exitcode\":[1-9]'; then "
                    f"echo k8snet-requests {count} >&2; {curl(first + 1, count)}\n"
                    + (f"elif [ {clean} -gt {first} ]; then echo k8snet-requests {clean} >&2;"
                       f" {curl(first + 1, clean)}\n" if clean > first else "")
                    + "fi")
        script = f"o=$({curl(1, first)})\nprintf '%s\\n' \"$o\"\n{more}"
        _, out, err = engine.run(engine.endpoint(node), ["sh", "-c", script], count * 2.5 + 5)
        answered, failures, errors = _answers(out)
        attempts = first
        for line in err.splitlines():
            if line.startswith("k8snet-requests ") and line.split()[1].isdigit():
                attempts = int(line.split()[1])
        missing = tuple(b for b in backends if b not in answered) if failures else ()
        return ServiceResult(node, attempts, failures, answered, missing,
                             tuple(dict.fromkeys(errors))[:3])

    return engine.each("service", engine.node_names, one)


def _answers(out: str) -> tuple[dict[str, int], int, list[str]]:
    """Requests per answering backend (the body names it), failures, and their errors."""
    answered: dict[str, int] = {}
    failures, errors, body = 0, [], ""
    for line in out.splitlines():
        if line.startswith("{"):
            data = json.loads(line)
            if int(data.get("exitcode") or 0) == 0 and body.strip():
                answered[body.strip()] = answered.get(body.strip(), 0) + 1
            else:
                failures += 1
                if data.get("errormsg"):
                    errors.append(str(data["errormsg"]))
            body = ""
        elif line.strip():
            body = line
    return answered, failures, errors


def service_http(engine: Engine) -> dict[str, list[http.HttpResult]]:
    """1 MiB from every node's pod through the Service.

    First a sample of SERVICE_HTTP_SAMPLE transfers (N MiB per node would make the
    whole check O(N^2) bytes and time out on big clusters). When one of them fails,
    the node gets the full measurement: one transfer per backend, SERVICE_HTTP_FULL at
    least (new connections, so the Service picks again each time), which covers the paths
    to every node and is what the judge needs to tell bad backends from a bad client.
    """
    t = engine.backend.targets()
    timeout = engine.settings.timeout
    count = max(1, len(engine.backend.service_backends()))
    url = f"http://{host_port(t.service_ip, t.service_port)}/1mib"
    # The small requests reach every backend; a node where some fail gets the full
    # set at once (a sample of 3 could miss exactly the backends that fail). Asked
    # here, outside the pool's tasks: a task waiting on the pool can deadlock it.
    small = service(engine)

    def transfers(node: str, n: int) -> list[http.HttpResult]:
        argv = ["curl", "--parallel", "--parallel-immediate", "--no-progress-meter"]
        for i in range(n):
            argv += (["--next"] if i else []) + http.argv(
                f"{url}?k8snet={i}", connect_timeout=min(2.0, timeout),
                max_time=timeout)[1:-1] + ["-H", "Connection: close", f"{url}?k8snet={i}"]
        code, out, err = engine.run(engine.endpoint(node), argv, timeout + 5)
        lines = [line for line in out.replace("}{", "}\n{").splitlines() if line.strip()]
        return [http.parse(url, line, err, code, expected_bytes=ONE_MIB) for line in lines] \
            or [http.parse(url, "", err, code, expected_bytes=ONE_MIB)]

    def failed(results: list[http.HttpResult]) -> int:
        return sum(not r.ok for r in results)

    def full(node: str) -> list[http.HttpResult]:
        return transfers(node, max(count, SERVICE_HTTP_FULL))

    def one(node: str) -> list[http.HttpResult]:
        sample = min(SERVICE_HTTP_SAMPLE, count)
        if sample < count and not small[node].ok:
            return full(node)
        results = transfers(node, sample)
        if len(results) != sample or failed(results):
            results = full(node)
        return results

    # A node with failures (always a full set: a failed sample gets one) gets a second
    # full set, and the one with fewer failures stands (see second_chance).
    return engine.each("http-service", engine.node_names, one, failures=failed, redo=full)
