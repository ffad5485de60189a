"""DNS with dig: the answer, the rcode and the latency of one name."""

from __future__ import annotations

import re
from dataclasses import dataclass

_STATUS = re.compile(r"->>HEADER<<- opcode: \w+, status: (\w+)")
_QTIME = re.compile(r";; Query time: (\d+) msec")
_SERVER = re.compile(r";; SERVER: ([^#\s]+)")


@dataclass(frozen=True)
class DnsResult:
    name: str
    rcode: str  # NOERROR, NXDOMAIN, SERVFAIL, REFUSED, or TIMEOUT when no server answered
    answers: tuple[str, ...]
    query_ms: int | None
    server: str | None

    @property
    def ok(self) -> bool:
        return self.rcode == "NOERROR" and bool(self.answers)


def argv(name: str, *, server: str | None = None, timeout: float = 1.0, tries: int = 2) -> list[str]:
    args = ["dig", f"+time={max(1, round(timeout))}", f"+tries={tries}", name, "A"]
    return args + ([f"@{server}"] if server else [])


def parse(name: str, stdout: str) -> DnsResult:
    status = _STATUS.search(stdout)
    qtime = _QTIME.search(stdout)
    server = _SERVER.search(stdout)
    answers = []
    in_answer = False
    for line in stdout.splitlines():
        if line.startswith(";; ANSWER SECTION"):
            in_answer = True
            continue
        if in_answer:
            if not line.strip() or line.startswith(";;"):
                break
            fields = line.split()
            if len(fields) >= 5:
                answers.append(fields[-1])
    return DnsResult(name=name, rcode=status.group(1) if status else "TIMEOUT",
                     answers=tuple(answers), query_ms=int(qtime.group(1)) if qtime else None,
                     server=server.group(1) if server else None)
