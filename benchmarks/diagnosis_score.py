"""Scoring one suite run of the diagnosis benchmark against the faults that were injected.

Input: the results document (``--k8s-results``: ``findings`` and ``verdicts``, see
``pytest_k8snet/report/schema.py``) and the faults. A run with no failed verdict had **no
visible effect** (not the judge's failure; listed apart); a run whose suite did not finish
or wrote no results is an **error**. Otherwise it passes when all four hold:

(a) **one root per fault**: the roots are the findings at the end of the ``root`` chain of
    every finding a failed verdict names; knock-ons (``root`` set) are inside their root.
(b) **place**: each fault's root (roots and faults matched one to one, best first) names
    exactly the fault's node and a direction it can be told by (``Fault.expected_directions``).
(c) **what**: that root names the fault's protocol/port and a mode it can be told by
    (``Fault.expected_modes``: drop = silence/timeouts, reject = refused/reset, loss).
(d) **no shrug**: no finding at all has the cause ``inconclusive`` or ``unknown``.

What a finding names: the fields ``direction``, ``protocol``, ``port`` and ``mode`` when the
judge writes them (a finding may carry them; none does yet), else read from it as follows.
Nodes: its ``nodes``, else both ends of its ``pairs``. Direction relative to the fault's
node: from its pairs (all towards the node: in; all from it: out; some each way: both);
without pairs, a control-plane finding's ``dropped_into``/``dropped_from`` evidence, and a
finding only of checks where the node is the client (DNS, egress, Service) is ``out``.
Protocol/port and mode from its ``summary`` (never its fix, which lists generic advice):
``tcp/8080``, ``TCP 8080``, ``UDP 8472`` name a port; ``ICMP``/``ping`` name icmp, which
counts only with no port named; cause ``underlay`` or "all traffic" names all; mode words
below, loss first (a lossy finding may say "drops some"), then reject and drop.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from diagnosis_faults import Fault

BAD_CAUSES = ("inconclusive", "unknown")
LOSSY_CAUSES = ("pod-lossy", "udp-lossy")
# Checks where the node under test is the client: a finding of these alone is about what
# leaves the node.
CLIENT_CHECKS = frozenset({"test_dns", "test_egress", "test_service",
                           "test_large_packets_to_service"})
PORT_RE = re.compile(r"\b(tcp|udp)\s*(?:/|\s)\s*(?:port\s+)?(\d{1,5})(?:\s*[-:]\s*(\d{1,5}))?",
                     re.I)
ICMP_RE = re.compile(r"\bicmp\b|\bping", re.I)
ALL_RE = re.compile(r"\ball (?:traffic|protocols|packets)\b|\bevery protocol\b", re.I)
LOSS_RE = re.compile(r"\blossy\b|\bloses\b|\bpartial(?:ly)? loss\b|\bsome packets cross", re.I)
REJECT_RE = re.compile(r"\brefused\b|\breject(?:ed|s)?\b|(?<!no )\breset\b|\bconnection "
                       r"failed\b|\bport unreachable\b|\bRST\b", re.I)
DROP_RE = re.compile(r"\bdrop(?:s|ped)?\b|\btime[sd]? out\b|\btimeouts?\b|\bno (?:reply|replies|"
                     r"answer)\b|\bsilent(?:ly)?\b|\bblack[- ]?hole|\bblocked\b", re.I)


@dataclass(frozen=True)
class Named:
    """What one finding says, in the benchmark's terms."""

    nodes: tuple[str, ...]
    direction: str | None
    ports: tuple[tuple[str, int, int], ...]  # (proto, lo, hi) named
    icmp: bool
    all: bool
    modes: frozenset[str]

    def as_dict(self) -> dict[str, Any]:
        return {"nodes": list(self.nodes), "direction": self.direction,
                "ports": [f"{p}/{lo}" + (f"-{hi}" if hi != lo else "") for p, lo, hi in
                          self.ports], "icmp": self.icmp, "all": self.all,
                "modes": sorted(self.modes)}


def _ends(pair: str) -> tuple[str, str]:
    a, _, b = pair.partition("->")
    return a, b


def _direction(f: dict[str, Any], node: str) -> str | None:
    given = f.get("direction")
    if given in ("in", "out", "both"):
        return str(given)
    pairs = [_ends(str(p)) for p in f.get("pairs") or []]
    if pairs:
        if not all(node in p for p in pairs):
            return None
        into, out = any(b == node for _, b in pairs), any(a == node for a, _ in pairs)
        return "both" if into and out else "in" if into else "out"
    ev = (f.get("evidence") or {}).get(node)
    if isinstance(ev, dict) and ("dropped_into" in ev or "dropped_from" in ev):
        into, out = bool(ev.get("dropped_into")), bool(ev.get("dropped_from"))
        return "both" if into and out else "in" if into else "out" if out else None
    checks = set(f.get("checks") or [])
    if checks and checks <= CLIENT_CHECKS:
        return "out"
    return None


def _ports(f: dict[str, Any], text: str) -> tuple[tuple[str, int, int], ...]:
    proto, port = f.get("protocol"), f.get("port")
    if proto in ("tcp", "udp") and port is not None:
        lo, _, hi = str(port).replace(":", "-").partition("-")
        return ((str(proto), int(lo), int(hi or lo)),)
    if proto in ("icmp", "all"):
        # The finding says its protocol: ports in its text are what still crosses.
        return ()
    return tuple((m.group(1).lower(), int(m.group(2)), int(m.group(3) or m.group(2)))
                 for m in PORT_RE.finditer(text))


def _modes(f: dict[str, Any], text: str) -> frozenset[str]:
    given = f.get("mode")
    if given in ("drop", "reject", "loss"):
        return frozenset({str(given)})
    if f.get("cause") in LOSSY_CAUSES or LOSS_RE.search(text):
        return frozenset({"loss"})
    return frozenset(m for m, rx in (("reject", REJECT_RE), ("drop", DROP_RE))
                     if rx.search(text))


def named(f: dict[str, Any], node: str) -> Named:
    """What finding ``f`` says, the direction taken relative to ``node``."""
    text = str(f.get("summary") or "")
    nodes = [str(n) for n in f.get("nodes") or []]
    if not nodes:
        for p in f.get("pairs") or []:
            nodes += [n for n in _ends(str(p)) if n not in nodes]
    proto = f.get("protocol")
    return Named(tuple(nodes), _direction(f, node), _ports(f, text),
                 proto == "icmp" or (proto is None and bool(ICMP_RE.search(text))),
                 proto == "all" or (proto is None and (f.get("cause") == "underlay"
                                                       or bool(ALL_RE.search(text)))),
                 _modes(f, text))


def place_ok(fault: Fault, n: Named) -> bool:
    return set(n.nodes) == {fault.node} and n.direction in fault.expected_directions


def what_ok(fault: Fault, n: Named) -> bool:
    if not n.modes or not n.modes <= fault.expected_modes:
        return False
    if fault.proto == "all":
        return n.all
    if fault.proto == "icmp":
        return n.icmp and not n.ports
    lo, hi = fault.ports or (0, 0)
    return any(p == fault.proto and a <= hi and b >= lo for p, a, b in n.ports)


@dataclass
class Score:
    status: str  # pass, fail, no-effect, error
    error: str = ""
    roots: list[dict[str, Any]] = field(default_factory=list)
    bad: list[dict[str, Any]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # failed verdicts, test[subject]
    criteria: dict[str, bool] = field(default_factory=dict)  # a, b, c, d
    matches: list[dict[str, Any]] = field(default_factory=list)  # per fault: root, named

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.error, "criteria": self.criteria,
                "roots": self.roots, "bad": self.bad, "failed": self.failed,
                "matches": self.matches}


def _brief(f: dict[str, Any]) -> dict[str, Any]:
    return {k: f.get(k) for k in ("id", "cause", "nodes", "pairs", "checks", "summary")}


def roots_of(doc: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The root findings behind every failed verdict, and those verdicts."""
    by_id = {str(f.get("id")): f for f in doc.get("findings") or []}
    failed = [v for v in doc.get("verdicts") or [] if v.get("outcome") == "failed"]
    roots: dict[str, dict[str, Any]] = {}
    for v in failed:
        f = by_id.get(str(v.get("finding")))
        if f is None:  # a failure no finding explains: a root of its own
            roots[f"verdict:{v.get('test')}[{v.get('subject')}]"] = {
                "id": None, "cause": "none", "nodes": [], "pairs": [], "checks": [v.get("test")],
                "summary": str(v.get("message") or "")}
            continue
        seen = {str(f.get("id"))}
        while f.get("root") and str(f["root"]) in by_id and str(f["root"]) not in seen:
            f = by_id[str(f["root"])]
            seen.add(str(f.get("id")))
        roots[str(f.get("id"))] = f
    return list(roots.values()), [f"{v.get('test')}[{v.get('subject')}]" for v in failed]


def score(doc: dict[str, Any] | None, faults: Sequence[Fault], error: str = "") -> Score:
    """Score one run: ``doc`` is its results document (None when none was written) and
    ``error`` what went wrong with the suite run itself ('' when it finished)."""
    if doc is None or error:
        return Score("error", error or "no results document")
    if "verdicts" not in doc:
        return Score("error", "the results document has no verdicts (not judged)")
    roots, failed = roots_of(doc)
    bad = [_brief(f) for f in doc.get("findings") or [] if f.get("cause") in BAD_CAUSES]
    if not failed:
        return Score("no-effect", bad=bad)
    # Each fault against each root, then the one-to-one assignment that passes most.
    table = [[(place_ok(x, named(r, x.node)), what_ok(x, named(r, x.node))) for r in roots]
             for x in faults]
    best: list[int | None] = [None] * len(faults)
    if len(roots) >= len(faults):
        pick = max(itertools.permutations(range(len(roots)), len(faults)),
                   key=lambda p: sum(sum(table[i][j]) for i, j in enumerate(p)))
        best = list(pick)
    elif roots:  # too few roots: each fault against its best root, to say what it missed
        best = [max(range(len(roots)), key=lambda j: sum(table[i][j]))
                for i in range(len(faults))]
    matches = []
    for i, x in enumerate(faults):
        j = best[i]
        matches.append({"fault": x.describe(), "root": None if j is None else roots[j].get("id"),
                        "named": None if j is None else named(roots[j], x.node).as_dict(),
                        "place": j is not None and table[i][j][0],
                        "what": j is not None and table[i][j][1]})
    criteria = {"a": len(roots) == len(faults), "b": all(m["place"] for m in matches),
                "c": all(m["what"] for m in matches), "d": not bad}
    return Score("pass" if all(criteria.values()) else "fail", roots=[_brief(r) for r in roots],
                 bad=bad, failed=failed, criteria=criteria, matches=matches)
