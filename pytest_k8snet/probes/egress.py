"""Egress: many quick connections to one target, the failure rate and the failing source ports.

The kernel hands out ephemeral ports sequentially from a hashed offset, so a run
of connections to one target would use one narrow block of ports and a source-port
firewall would fail all or none of them. The probe therefore pins each attempt's
source port itself (``curl --local-port``), spread evenly over the endpoint's own
``ip_local_port_range``: the ports it would use sooner or later.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

PORT_MARK = "k8snet-sport="
NOT_TRIED = {45}  # curl could not bind the local port: the attempt says nothing about egress


@dataclass(frozen=True)
class EgressResult:
    url: str
    attempts: int
    failures: int
    failed_ports: tuple[int, ...]
    passed_ports: tuple[int, ...]
    port_range: tuple[int, int]
    errors: tuple[str, ...]

    @property
    def failure_rate(self) -> float:
        return self.failures / self.attempts if self.attempts else 1.0

    @property
    def low_port_pattern(self) -> int | None:
        """The port P that best splits failures (below P) from successes (P and above),
        when that split explains at least 90% of the attempts; else None.

        Not "every" attempt: a NAT that has to remap a port (its tuple is still in
        conntrack) or one connection lost to load must not hide a firewall.
        """
        if len(self.failed_ports) < 3 or not self.passed_ports:
            return None
        best, best_fit = None, -1
        for p in sorted(set(self.passed_ports)):
            fit = sum(1 for f in self.failed_ports if f < p) + sum(
                1 for ok in self.passed_ports if ok >= p)
            if fit > best_fit:
                best, best_fit = p, fit
        return best if best_fit >= 0.9 * self.attempts else None

    def fits(self, port: int) -> int:
        """How many attempts the split at ``port`` explains."""
        return sum(1 for f in self.failed_ports if f < port) + sum(
            1 for ok in self.passed_ports if ok >= port)


def parse_port_range(text: str) -> tuple[int, int]:
    lo, hi = (int(v) for v in text.split()[:2])
    return lo, hi


def pick_ports(port_range: tuple[int, int], count: int, seed: int | None = None) -> list[int]:
    """One port from each of ``count`` equal slices of the range (stratified sampling)."""
    lo, hi = port_range
    rng = random.Random(seed)
    width = (hi - lo + 1) / count
    return [lo + int(i * width) + rng.randrange(max(1, int(width))) for i in range(count)]


def argv(url: str, ports: list[int], *, connect_timeout: float = 1.0) -> list[str]:
    """One curl that makes every attempt in parallel, each from its own source port."""
    args = ["curl", "--parallel", "--parallel-immediate", "--parallel-max", "50", "--no-progress-meter"]
    for i, port in enumerate(ports):
        if i:
            args.append("--next")
        sep = "&" if "?" in url else "?"
        args += ["-s", "-o", "/dev/null", "--connect-timeout", f"{connect_timeout:g}",
                 "-m", f"{connect_timeout + 1:g}", "--local-port", str(port),
                 "-H", "Connection: close", "-w", "%{json}\\n", f"{url}{sep}{PORT_MARK}{port}"]
    return args


def parse(url: str, port_range: tuple[int, int], stdout: str) -> EgressResult:
    failed: list[int] = []
    passed: list[int] = []
    errors: list[str] = []
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        data = json.loads(line)
        effective = str(data.get("url_effective") or data.get("url") or "")
        if PORT_MARK not in effective:
            continue
        port = int(effective.rsplit(PORT_MARK, 1)[1].split("&")[0])
        code = int(data.get("exitcode") or 0)
        if code in NOT_TRIED:
            continue
        if code == 0 and 200 <= int(data.get("http_code") or 0) < 400:
            passed.append(port)
        else:
            failed.append(port)
            if data.get("errormsg"):
                errors.append(str(data["errormsg"]))
    return EgressResult(url=url, attempts=len(failed) + len(passed), failures=len(failed),
                        failed_ports=tuple(sorted(failed)), passed_ports=tuple(sorted(passed)),
                        port_range=port_range, errors=tuple(dict.fromkeys(errors))[:3])
