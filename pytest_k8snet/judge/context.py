"""What every check shares: the measurement document indexed once, the findings and
verdicts the checks have written so far, and the helpers several checks need.

Checks run in order over one context (:data:`pytest_k8snet.judge.checks.CHECKS`): a later
check reads what an earlier one found (``pod_finding``, ``findings``, ``verdicts``) to skip
a knock-on instead of failing it a second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from itertools import repeat
from operator import itemgetter, methodcaller
from typing import Any, Literal

from .causes import FIX_DEFAULTS
from .model import FAILED, SKIPPED, Finding, Verdict
from ..probes.http import CURL_EXIT
from ..probes.iperf import NETWORK
from ..probes.nodecheck import OVERHEAD
from ..text import shorten

# Causes that take a pair's pod connectivity away: what later checks skip behind.
CONNECTIVITY = ("vxlan-blocked", "underlay", "ip-forward", "no-route")
KIND_NAMES = {"vxlan": "VXLAN", "geneve": "Geneve", "ipip": "IPIP", "wireguard": "WireGuard",
              "none": "no encapsulation"}


@dataclass(frozen=True)
class Check:
    """One suite test as the judge sees it: its name (the test function's), whether its
    subjects are nodes or pairs, and the function that writes its verdicts."""

    name: str
    subjects: Literal["nodes", "pairs"]
    judge: Callable[[Context], None]


def pair_id(a: str, b: str) -> str:
    return f"{a}->{b}"


# The pair sections are a million entries each at 1,000 nodes: their keys are made by C
# loops (map over itemgetter and str.format), not a Python step and a call per entry.
_NETWORK = methodcaller("get", "network", "pod")


def _pair_ids(entries: list[dict[str, Any]]) -> list[str]:
    """``src->dst`` of each entry, as :func:`pair_id`."""
    return list(map("{}->{}".format, map(itemgetter("src"), entries),
                    map(itemgetter("dst"), entries)))


def ends(pid: str) -> tuple[str, str]:
    a, _, b = pid.partition("->")
    return a, b


def listing(items: Iterable[str], limit: int = 8) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def loss_text(x: float | None) -> str:
    return f"{float(x or 0):g}%"


def curl_error(h: dict[str, Any]) -> str:
    # Not curl's own message: it carries timings and byte counts that differ run to run.
    code = int(h.get("exit_code") or 0)
    if code:
        return CURL_EXIT.get(code, f"curl exit {code}")
    return f"HTTP {h.get('http_code')}" if h.get("http_code") else "incomplete"


class Context:
    """The document, indexed by pair and node, and the findings and verdicts so far."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.nodes: list[str] = [str(n) for n in doc.get("nodes") or []]
        # Membership and order asked once per pair or port entry: a list would make every
        # ask cost the node count (a million pairs at 1,000 nodes).
        self.node_set: frozenset[str] = frozenset(self.nodes)
        self.node_order: dict[str, int] = {n: i for i, n in enumerate(self.nodes)}
        self.pairs: list[str] = [str(p) for p in doc.get("pairs") or []] or sorted(
            {pair_id(e["src"], e["dst"]) for e in doc.get("ping", [])
             if e.get("network") == "pod"})
        # Each pair's ends as ``(a, "->", b)``, split once by a C loop: every pair check
        # walks every pair (a million at 1,000 nodes) and needs them.
        self.pair_parts: list[tuple[str, str, str]] = list(
            map(str.partition, self.pairs, repeat("->")))
        self.expected = doc.get("expected_mtu")
        self.threshold = float(doc["thresholds"]["loss_pct"])
        pings = list(doc.get("ping", []))
        self.ping = dict(zip(zip(map(_NETWORK, pings), _pair_ids(pings)), pings))
        to_node = list(doc.get("ping_pod_to_node") or [])
        self.pod_to_node = dict(zip(_pair_ids(to_node), to_node))
        pmtus = [e for e in doc.get("path_mtu", []) if e.get("network", "pod") == "pod"]
        self.pmtu = dict(zip(_pair_ids(pmtus), pmtus))
        self.udp = {pair_id(e["src"], e["dst"]): e for e in doc.get("throughput", [])}
        self.receive_drops: dict[str, int] = {
            str(n): int(v) for n, v in (doc.get("udp_receive_drops") or {}).items()
            if v is not None}
        # Datagrams lost into each receiver over every sample of every pair (pod network).
        self.udp_lost_into: dict[str, int] = {}
        for e in doc.get("throughput", []):
            for a in e.get("attempts") or [e]:
                lost = round(int(a.get("packets") or 0) * float(a.get("loss_pct") or 0) / 100)
                if a.get("packets") and lost:
                    dst = str(e["dst"])
                    self.udp_lost_into[dst] = self.udp_lost_into.get(dst, 0) + lost
        self.http = {pair_id(e["src"], e["dst"]): e for e in doc.get("http", [])
                     if e.get("dst") != "service"}
        self.svc_http: dict[str, list[dict[str, Any]]] = {}
        for e in doc.get("http", []):
            if e.get("dst") == "service":
                self.svc_http.setdefault(e["src"], []).append(e)
        self.service = {e["node"]: e for e in doc.get("service", [])}
        self.dns: dict[str, list[dict[str, Any]]] = {}
        for e in sorted(doc.get("dns", []), key=lambda e: str(e.get("name"))):
            self.dns.setdefault(e["node"], []).append(e)
        self.egress = {(e["node"], e["network"]): e for e in doc.get("egress", [])}
        self.checks = {e["node"]: e for e in doc.get("node_checks", [])}
        self.readiness: dict[str, list[str]] = {
            str(k): list(v) for k, v in (doc.get("readiness") or {}).items()}
        self.backends: dict[str, str] = dict(doc.get("service_backends") or {})
        self.dns_endpoints: dict[str, str] = dict(doc.get("dns_endpoints") or {})
        self.targets: dict[str, Any] = dict(doc.get("targets") or {})
        self.host_unavailable: dict[str, str] = {
            str(k): str(v) for k, v in (doc.get("host_unavailable") or {}).items()}
        # The overlay each node's links show (measure.py ``encapsulation``); a node missing
        # here (links not read) is judged as flannel's VXLAN on 8472.
        self.encap: dict[str, dict[str, Any]] = {
            str(k): dict(v) for k, v in (doc.get("encapsulation") or {}).items()
            if isinstance(v, dict) and v.get("measured")}
        self.pod_mtu: dict[str, int] = {str(k): int(v) for k, v in
                                        (doc.get("pod_mtu") or {}).items() if v}
        self.mtu_source = str(doc.get("expected_mtu_source") or "")
        self.failures: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for f in doc.get("probe_failures") or []:
            self.failures.setdefault((str(f.get("measurement")), str(f.get("key"))), []).append(f)
        self._unusable: dict[str, str | None] = {}
        self.any_unusable = any(self.unusable(n) for n in self.readiness)
        self.any_forwarding_off = any(self.forwarding_off(n) for n in self.checks)
        self.findings: dict[str, Finding] = {}
        self.verdicts: dict[tuple[str, str], Verdict] = {}
        self.pod_finding: dict[str, str] = {}  # pair -> id of the finding that owns its ping
        # channel -> where its failures sit (:func:`pytest_k8snet.judge.faults.places`).
        self.places: dict[str, Any] = {}
        # Where random loss sits (:func:`pytest_k8snet.judge.faults.lossy_place`), once.
        self.lossy_place: tuple[str | None, tuple[str, ...]] | None = None

    # -- the findings and verdicts ------------------------------------------------------------

    def add(self, f: Finding) -> Finding:
        self.findings[f.id] = f
        return f

    def extend(self, fid: str, *, pairs: Iterable[str] = (), nodes: Iterable[str] = (),
               checks: Iterable[str] = (), evidence: dict[str, Any] | None = None) -> Finding:
        f = self.findings[fid]
        # replace(), not a rebuild from positional fields: a field added to Finding later
        # (the location fields were) is then kept without anyone touching this.
        new = replace(f, nodes=tuple(dict.fromkeys([*f.nodes, *nodes])),
                      pairs=tuple(dict.fromkeys([*f.pairs, *pairs])),
                      checks=tuple(dict.fromkeys([*f.checks, *checks])),
                      evidence={**f.evidence, **(evidence or {})})
        self.findings[fid] = new
        return new

    def set_verdict(self, test: str, subject: str, outcome: str, message: str = "",
                    finding: str | None = None, raw: str = "") -> None:
        self.verdicts[(test, subject)] = Verdict(test, subject, outcome, message, finding, raw)

    def fail(self, test: str, subject: str, symptom: str, f: Finding, raw: str = "") -> None:
        self.extend(f.id, checks=[test])
        head = symptom.rstrip(".")
        # A finding about this one subject often says the symptom already: not twice.
        text = f.message if not head or f.summary.startswith(head) or head.startswith(
            f.summary.rstrip(".")) else f"{head}. {f.message}"
        self.set_verdict(test, subject, FAILED, text, f.id, raw)

    # -- probes that could not run --------------------------------------------------------------

    def unusable(self, node: str) -> str | None:
        """Why no probe can run on ``node`` (None when they can: NotReady alone is no reason)."""
        if node not in self._unusable:  # asked for both ends of every pair, by every check
            problems = [p for p in self.readiness.get(node, []) if p != "node is NotReady"]
            self._unusable[node] = problems[0] if problems else None
        return self._unusable[node]

    def skip_no_host_probe(self, test: str, subject: str, node: str) -> bool:
        """A host-network check on a node whose host-network probe was not admitted (Pod
        Security, a policy engine): skipped with the denial; the pod checks still run."""
        why = self.host_unavailable.get(node)
        if why:
            self.set_verdict(test, subject, SKIPPED, f"{node}: the host-network probe was "
                             f"not admitted, so this host-network check cannot run: {why}")
            return True
        return False

    def probe_failure(self, measurement: str, key: str) -> dict[str, Any] | None:
        """The first failure of the probe itself for this measurement and key, if any."""
        found = self.failures.get((measurement, key))
        return found[0] if found else None

    def probe_finding(self, failure: dict[str, Any], subject: str, test: str) -> Finding:
        tool, kind = str(failure.get("tool") or "probe"), str(failure.get("failure"))
        fid = f"probe-failure:{tool}:{kind}"
        if fid not in self.findings:
            what = {"tool-missing": f"{tool} is missing where the probe runs",
                    "exec-error": f"{tool} could not be executed in the probe",
                    "interrupted": f"{tool} was interrupted before it finished",
                    "timeout": f"{tool} did not finish within the probe's own deadline",
                    }.get(kind, f"{tool} failed ({kind})")
            detail = shorten(str(failure.get("detail") or ""), 160)
            self.add(Finding(fid, "probe-failure", f"{what} ({detail}); this says nothing "
                             "about the network", fix_args=(("tool", tool),),
                             would_contradict=(f"{tool} running to completion",)))
        return self.extend(fid, nodes=[str(failure.get("node"))], checks=[test],
                           pairs=[subject] if "->" in subject else [])

    # -- what the measurements say ------------------------------------------------------------

    def forwarding_off(self, node: str) -> bool:
        c = self.checks.get(node)
        v = (c or {}).get("sysctls", {}).get("net.ipv4.ip_forward")
        return v is not None and str(v).strip() == "0"

    def pod_ok(self, pid: str) -> bool:
        p = self.ping.get(("pod", pid))
        return p is not None and int(p.get("received") or 0) > 0 and float(
            p.get("loss_pct") or 0) <= self.threshold

    def udp_state(self, pid: str) -> str:
        """``blocked``, ``crossed``, ``probe`` (the probe failed itself) or ``none``."""
        u = self.udp.get(pid)
        if u is None:
            return "none"
        if u.get("failure") not in (None, NETWORK):
            return "probe"
        if u.get("error") or not int(u.get("packets") or 0):
            return "blocked"
        return "crossed"

    def culprits(self, pairs: list[str]) -> tuple[tuple[str, ...], str]:
        """Nodes a group of failing pairs points at, and how strongly (a sentence)."""
        common = set.intersection(*(set(ends(p)) for p in pairs)) if pairs else set()
        if len(common) == 1:
            node = next(iter(common))
            # Not ends() per pair: at 1,000 nodes this is a million pairs per group. A
            # pair id is "a->b", so the node is an end iff the id starts "node->" or ends
            # "->node".
            head, tail = f"{node}->", f"->{node}"
            others = [p for p in self.pairs if not (p.startswith(head) or p.endswith(tail))
                      and ("pod", p) in self.ping]
            healthy = all(p not in self.pod_finding and self.pod_ok(p) for p in others)
            if len(pairs) > 1 and others and healthy:
                return (node,), (f"{node} is in every failing pair and every measured pair "
                                 f"without it works")
            if len(pairs) > 1:
                return (node,), f"{node} is in every failing pair"
        nodes = sorted({n for p in pairs for n in ends(p)},
                       key=lambda n: self.node_order.get(n, 0))
        return tuple(nodes), ""

    def behind(self, node: str, other: str) -> Finding | None:
        """The connectivity finding that explains why ``node`` cannot reach ``other``'s pods:
        the measured pair's, else one that names ``other`` as its only culprit."""
        fid = self.pod_finding.get(pair_id(node, other))
        if fid is not None:
            return self.findings[fid]
        if pair_id(node, other) in self.pairs and ("pod", pair_id(node, other)) in self.ping:
            return None  # measured and fine
        # Not measured (--k8s-pairs ring or sample:K): a connectivity finding about either
        # end explains it; a culprit named alone first, as the stronger statement.
        ranked = sorted((f for f in self.findings.values() if f.cause in CONNECTIVITY),
                        key=lambda f: len(f.nodes))
        for f in ranked:
            if f.nodes in ((other,), (node,)) or (f.pairs and {node, other} & set(f.nodes)):
                return f
        return None

    def pods_cut(self, node: str) -> Finding | None:
        """The finding that says ``node``'s own pods reach nothing (their traffic dropped at
        the node, the host network fine), once the pair checks made it: a pod's DNS,
        egress or Service request from ``node`` failing is its knock-on."""
        return next((f for f in self.findings.values() if f.cause == "pod-firewall"
                     and f.nodes == (node,) and f.protocol == "all"
                     and f.direction in ("out", "both")), None)

    def mtu_finding(self) -> Finding | None:
        return next((f for f in self.findings.values() if f.cause == "mtu"), None)

    # -- the overlay --------------------------------------------------------------------------

    def overlay(self, nodes: Iterable[str]) -> str:
        """What the overlay puts on the wire between ``nodes``: ``UDP 4789 (VXLAN)``,
        ``IP protocol 4 (IPIP)``; flannel's VXLAN when nothing was detected."""
        texts = []
        for n in nodes:
            e = self.encap.get(n)
            if e is None:
                continue
            kind, port = str(e.get("kind")), e.get("udp_port")
            text = (f"UDP {port} ({KIND_NAMES.get(kind, kind)})" if port else
                    "IP protocol 4 (IPIP)" if kind == "ipip" else
                    "routed pod traffic (no encapsulation)")
            if text not in texts:
                texts.append(text)
        return " / ".join(texts) or str(FIX_DEFAULTS["overlay"])

    def overhead(self, nodes: Iterable[str]) -> tuple[str, int]:
        """The encapsulation's name and the bytes it adds as the measurement recorded them
        (WireGuard: 60 over IPv4, 80 over IPv6); VXLAN's when not detected."""
        found = {(str(self.encap[n].get("kind")), self.encap[n].get("overhead"))
                 for n in nodes if n in self.encap}
        if len({kind for kind, _ in found}) == 1:
            kind = next(iter(found))[0]
            # Older documents may lack the number: the kind's usual one then.
            sizes = [int(v) for _, v in found if isinstance(v, int)]
            if sizes or kind in OVERHEAD:
                return KIND_NAMES.get(kind, kind), min(sizes) if sizes else OVERHEAD[kind]
        return "VXLAN", OVERHEAD["vxlan"]
