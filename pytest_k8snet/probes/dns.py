"""DNS with dig: the answer, the rcode and the latency of one name and record type (A, or
AAAA on an IPv6 or dual-stack cluster: :func:`record_types`; :func:`merge` makes one result
of a name's A and AAAA answers)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_STATUS = re.compile(r"->>HEADER<<- opcode: \w+, status: (\w+)")
_QTIME = re.compile(r";; Query time: (\d+) msec")
_SERVER = re.compile(r";; SERVER: ([^#\s]+)")
# No answer, but the server's host said so: an ICMP port unreachable (UDP) or a refused
# connect (TCP) is a reject on the way, which a plain TIMEOUT would hide (dig 9.18).
_REFUSED = re.compile(r";; communications error to ([^#\s]+)#\d+: (?:connection refused|"
                      r"connection reset|host unreachable|network unreachable)")


@dataclass(frozen=True)
class DnsResult:
    name: str
    # NOERROR, NXDOMAIN, SERVFAIL, REFUSED (the server's answer), or when no server
    # answered: UNREACHABLE (refused or unreachable on the way) or TIMEOUT (silence)
    rcode: str
    answers: tuple[str, ...]
    query_ms: int | None
    server: str | None
    rtype: str = "A"  # "A", "AAAA", or "A+AAAA" for a merged result

    @property
    def ok(self) -> bool:
        return self.rcode == "NOERROR" and bool(self.answers)


def argv(name: str, *, server: str | None = None, timeout: float = 1.0, tries: int = 2,
         rtype: str = "A") -> list[str]:
    """dig argv; ``server`` may be an IPv6 address (``@fd00::a``: dig takes it bare)."""
    args = ["dig", f"+time={max(1, round(timeout))}", f"+tries={tries}", name, rtype]
    return args + ([f"@{server}"] if server else [])


def record_types(addresses: Iterable[str]) -> tuple[str, ...]:
    """What to ask for a cluster with these addresses (node IPs, Service IP, Pod CIDRs):
    AAAA too as soon as one is IPv6 (an IPv6-only name has no A record)."""
    return ("A", "AAAA") if any(":" in a for a in addresses) else ("A",)


def merge(results: Sequence[DnsResult]) -> DnsResult:
    """One result for one name asked as several record types: resolved when any type
    answered (a dual-stack cluster's names need not have both), else the first failure."""
    if len(results) == 1:
        return results[0]
    answered = [r for r in results if r.ok]
    first = (answered or [r for r in results if r.rcode != "NOERROR"] or list(results))[0]
    return DnsResult(name=first.name, rcode=first.rcode,
                     answers=tuple(a for r in answered for a in r.answers),
                     query_ms=first.query_ms, server=first.server,
                     rtype="+".join(r.rtype for r in results))


def parse(name: str, stdout: str, rtype: str = "A") -> DnsResult:
    """dig's answer; ``answers`` are the records of ``rtype`` only (not the CNAMEs on the
    way to them)."""
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
            if len(fields) >= 5 and fields[3] == rtype:
                answers.append(fields[-1])
    refused = None if status else _REFUSED.search(stdout)
    rcode = status.group(1) if status else "UNREACHABLE" if refused else "TIMEOUT"
    where = server.group(1) if server else refused.group(1) if refused else None
    return DnsResult(name=name, rcode=rcode, answers=tuple(answers),
                     query_ms=int(qtime.group(1)) if qtime else None, server=where,
                     rtype=rtype)
