"""Judging a dual-stack cluster: each IP family on its own, then one judgement.

A document that measured two families (:mod:`pytest_k8snet.families`) is split
into one document per family, each judged as if the cluster had that family alone, with
that family's own overheads (VXLAN over an IPv6 underlay adds 70 bytes, 20 more than over
IPv4). The findings are then put together:

- every finding names its family: the id ends in ``/ipv6`` (``/ipv4``), the summary starts
  with ``IPv6:``, and IPv6 findings say ICMPv6 (Packet Too Big, not "fragmentation
  needed") and NDP where IPv4's would say ICMP and ARP;
- a pair's verdicts are the family's (subject ``node-1->node-2/ipv6``, the pair tests'
  ids on such a cluster);
- a node's verdicts (subject ``node-1``: one test per node) take both families: failed
  when either fails (its message names the family), else passed when either passed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..families import families_of, split
from .causes import ipv6_words
from .model import FAILED, PASSED, Finding, Judgement, Verdict

NAMES = {"ipv4": "IPv4", "ipv6": "IPv6"}
def family_document(doc: dict[str, Any], family: str) -> dict[str, Any]:
    """``family``'s document, its encapsulation's overhead that of the tunnels carrying
    that family: on a dual-stack node flannel.1 (50 bytes) carries IPv4 and flannel-v6.1
    (70) IPv6, and the node's entry names the smaller."""
    out = split(doc, family)
    encap = {}
    for node, entry in (out.get("encapsulation") or {}).items():
        tunnels = [t for t in entry.get("tunnels") or [] if isinstance(t, dict)]
        mine = [t for t in tunnels if t.get("kind") == entry.get("kind")
                and t.get("underlay", "ipv4") == family]
        if mine and all(isinstance(t.get("overhead"), int) for t in mine):
            entry = {**entry, "overhead": min(int(t["overhead"]) for t in mine)}
        encap[node] = entry
    out["encapsulation"] = encap
    if family == "ipv6":
        out["node_checks"] = [_ipv6_sysctls(c) for c in out.get("node_checks") or []]
    return out


# The IPv4 sysctls the checks read, and the IPv6 ones that do their job for IPv6 traffic.
IPV6_SYSCTLS = {"net.ipv4.ip_forward": "net.ipv6.conf.all.forwarding",
                "net.bridge.bridge-nf-call-iptables": "net.bridge.bridge-nf-call-ip6tables"}


def _ipv6_sysctls(check: Any) -> Any:
    """A node check whose IPv4 forwarding and bridge sysctls are the IPv6 ones (where the
    measurement read them: older documents did not), so the IPv6 family is judged on them."""
    if not isinstance(check, dict) or not isinstance(check.get("sysctls"), dict):
        return check
    sysctls = dict(check["sysctls"])
    for v4, v6 in IPV6_SYSCTLS.items():
        if v6 in sysctls:
            sysctls[v4] = sysctls[v6]
    return {**check, "sysctls": sysctls}


# A pointer to a pair test (``see test_pod_ping[node-1->node-3]``), which on a dual-stack
# cluster is the family's test id.
TEST_REF = re.compile(r"(\btest_\w+\[[^\]/\s]+->[^\]/\s]+)\]")


def _text(text: str, family: str) -> str:
    """A message in ``family``'s words, its pointers to pair tests at the family's ids."""
    return TEST_REF.sub(rf"\1/{family}]", ipv6_words(f"{NAMES[family]}: {text}", family))


def _finding(f: Finding, family: str) -> Finding:
    return replace(f, id=f"{f.id}/{family}", root=None if f.root is None else f"{f.root}/{family}",
                   summary=_text(f.summary, family), family=family)


def _verdict(v: Verdict, family: str, subject: str) -> Verdict:
    text = _text(v.message, family) if v.message else v.message
    return replace(v, subject=subject, message=text,
                   finding=None if v.finding is None else f"{v.finding}/{family}")


def _node_verdict(parts: list[Verdict]) -> Verdict:
    """One node test's verdict from each family's: a failure wins, then a pass."""
    for outcome in (FAILED, PASSED):
        chosen = [v for v in parts if v.outcome == outcome]
        if chosen:
            return chosen[0]
    return parts[0]


def judge_families(doc: dict[str, Any], judge_one: Callable[[dict[str, Any]], Judgement]
                   ) -> Judgement:
    """``judge_one`` per family of ``doc``, put together (see the module docstring)."""
    fams = families_of(doc)
    if len(fams) < 2:
        return judge_one(doc)
    findings: list[Finding] = []
    verdicts: dict[tuple[str, str], Verdict] = {}
    per_node: dict[tuple[str, str], list[Verdict]] = {}
    checks: tuple[str, ...] = ()
    for fam in fams:
        j = judge_one(family_document(doc, fam))
        checks = j.checks
        findings += [_finding(f, fam) for f in j.findings]
        for (test, subject), v in j.verdicts.items():
            if "->" in subject:
                key = f"{subject}/{fam}"
                verdicts[(test, key)] = _verdict(v, fam, key)
            else:
                per_node.setdefault((test, subject), []).append(_verdict(v, fam, subject))
    for node_key, parts in per_node.items():
        verdicts[node_key] = _node_verdict(parts)
    return Judgement(tuple(findings), verdicts, checks)
