"""Judge: pure functions from a measurement document (:mod:`pytest_k8snet.measure`) to
findings, and from findings to one verdict per suite test and subject.

A finding names a cause only when every measurement it rests on agrees with it; where
measurements disagree it is ``inconclusive`` and says what is known and what contradicts.
Partial loss is ``lossy``, never a blocked port. A probe that failed for a reason of its
own (tool missing, exec error, interrupted, its own timeout) is ``probe-failure``, never a
network cause. A failure that another finding explains (DNS whose endpoints all sit behind
a failed pair) is a knock-on: it names that finding (``root``) and its test skips.

Nothing here measures or reads the clock: the same document always gives the same
findings and the same text, whichever tests run, in whatever order, in whichever worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .causes import CAUSES, FIX_DEFAULTS, VXLAN_OVERHEAD
from ..probes.egress import EgressResult
from ..probes.http import CURL_EXIT
from ..probes.iperf import NETWORK, TIMEOUT
from ..probes.nodecheck import OVERHEAD, cidr_overlaps

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
EVIDENCE_MAX_NODES = 6
IMAGE_PULL_WORDS = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName")
CONNECTIVITY = ("vxlan-blocked", "underlay", "ip-forward")
# Interfaces a CNI, kube-proxy or the node's DNS cache own: they carry Pod or Service
# addresses by design (kube-ipvs0 holds every Service IP, tunl0 and cni0 a pod address),
# so test_pod_cidr never counts them as node networks that overlap.
CNI_IFACES = ("lo", "cni", "cbr", "flannel", "vxlan.calico", "vxlan", "tunl", "cali", "cilium_",
              "lxc", "weave", "vethwe", "kube-ipvs", "kube-bridge", "kube-dummy-if", "docker",
              "nodelocaldns", "wg", "wireguard", "veth", "genev", "antrea", "ovn", "br-int")
KIND_NAMES = {"vxlan": "VXLAN", "geneve": "Geneve", "ipip": "IPIP", "wireguard": "WireGuard",
              "none": "no encapsulation"}


@dataclass(frozen=True)
class Finding:
    """One cause (or one honest "don't know") and everything it covers."""

    id: str
    cause: str
    summary: str
    nodes: tuple[str, ...] = ()
    pairs: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    contradicting: tuple[str, ...] = ()  # measured facts that disagree (then: inconclusive)
    would_contradict: tuple[str, ...] = ()  # what, if measured, would refute the cause
    root: str | None = None  # the finding this one is a knock-on of
    fix_args: tuple[tuple[str, Any], ...] = ()

    @property
    def title(self) -> str:
        return CAUSES.get(self.cause, CAUSES["unknown"])[0]

    @property
    def fix(self) -> str:
        text = CAUSES.get(self.cause, CAUSES["unknown"])[1].format(
            **{**FIX_DEFAULTS, **dict(self.fix_args)})
        return text[:1].upper() + text[1:]

    @property
    def incidents(self) -> str:
        return CAUSES.get(self.cause, CAUSES["unknown"])[2]

    @property
    def message(self) -> str:
        """``summary. Fix (incidents N).`` plus what contradicts, when anything does."""
        text = self.summary.rstrip(".")
        if self.contradicting:
            text += ". Contradicting: " + "; ".join(self.contradicting)
        inc = self.incidents
        return f"{text}. {self.fix}" + (
            f" (incidents {inc})." if "," in inc else f" (incident {inc})." if inc else ".")

    @property
    def evidence_nodes(self) -> tuple[str, ...]:
        """Where to look: the finding's nodes, else both ends of its pairs."""
        if self.nodes:
            return self.nodes
        out: list[str] = []
        for p in self.pairs:
            out += [n for n in p.split("->", 1) if n not in out]
        return tuple(out)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "cause": self.cause, "title": self.title,
                "summary": self.summary, "message": self.message, "fix": self.fix,
                "nodes": list(self.nodes), "pairs": list(self.pairs), "checks": list(self.checks),
                "evidence": self.evidence, "contradicting": list(self.contradicting),
                "would_contradict": list(self.would_contradict), "root": self.root,
                "evidence_nodes": list(self.evidence_nodes)}


@dataclass(frozen=True)
class Verdict:
    """What one suite test does for one subject (``node-1->node-2`` or ``node-1``)."""

    test: str
    subject: str
    outcome: str  # passed, failed, skipped
    message: str = ""
    finding: str | None = None
    raw: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"test": self.test, "subject": self.subject, "outcome": self.outcome,
                "message": self.message, "finding": self.finding, "raw": self.raw}


@dataclass(frozen=True)
class Judgement:
    findings: tuple[Finding, ...]
    verdicts: dict[tuple[str, str], Verdict]

    def finding(self, fid: str | None) -> Finding | None:
        return next((f for f in self.findings if f.id == fid), None)

    def verdict(self, test: str, subject: str) -> Verdict:
        v = self.verdicts.get((test, subject))
        if v is not None:
            return v
        return Verdict(test, subject, SKIPPED, f"{subject}: not measured in this run's "
                       "measurement phase (not a selected node or pair)")

    def for_subject(self, subject: str) -> list[Finding]:
        return [f for f in self.findings if subject in f.pairs or subject in f.nodes]

    def evidence_nodes(self, limit: int = EVIDENCE_MAX_NODES) -> list[str]:
        """The nodes worth looking at: those of every finding that fails a test (not its
        knock-ons, not a probe's own failure), finding by finding, at most ``limit``."""
        nodes: list[str] = []
        for f in self.findings:
            if f.root is not None or f.cause == "probe-failure":
                continue
            nodes += [n for n in f.evidence_nodes if n not in nodes]
        return nodes[:limit]


def judge(doc: dict[str, Any]) -> Judgement:
    """Findings and verdicts for a measurement (or results) document."""
    j = _Judge(doc)
    j.run()
    return Judgement(tuple(j.findings.values()), dict(j.verdicts))


# -- helpers ----------------------------------------------------------------------------------

def _pid(a: str, b: str) -> str:
    return f"{a}->{b}"


def _ends(pid: str) -> tuple[str, str]:
    a, _, b = pid.partition("->")
    return a, b


def _listing(items: Iterable[str], limit: int = 8) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _loss(x: float | None) -> str:
    return f"{float(x or 0):g}%"


def _curl_error(h: dict[str, Any]) -> str:
    # Not curl's own message: it carries timings and byte counts that differ run to run.
    code = int(h.get("exit_code") or 0)
    if code:
        return CURL_EXIT.get(code, f"curl exit {code}")
    return f"HTTP {h.get('http_code')}" if h.get("http_code") else "incomplete"


class _Judge:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.nodes: list[str] = [str(n) for n in doc.get("nodes") or []]
        self.pairs: list[str] = [str(p) for p in doc.get("pairs") or []] or sorted(
            {_pid(e["src"], e["dst"]) for e in doc.get("ping", []) if e.get("network") == "pod"})
        self.expected = doc.get("expected_mtu")
        self.threshold = float((doc.get("thresholds") or {}).get("loss_pct", 5.0))
        self.ping = {(e.get("network", "pod"), _pid(e["src"], e["dst"])): e
                     for e in doc.get("ping", [])}
        self.pmtu = {_pid(e["src"], e["dst"]): e for e in doc.get("path_mtu", [])
                     if e.get("network", "pod") == "pod"}
        self.udp = {_pid(e["src"], e["dst"]): e for e in doc.get("throughput", [])}
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
        self.http = {_pid(e["src"], e["dst"]): e for e in doc.get("http", [])
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
        # here (older documents, links not read) is judged as flannel's VXLAN on 8472.
        self.encap: dict[str, dict[str, Any]] = {
            str(k): dict(v) for k, v in (doc.get("encapsulation") or {}).items()
            if isinstance(v, dict) and v.get("measured")}
        self.pod_mtu: dict[str, int] = {str(k): int(v) for k, v in
                                        (doc.get("pod_mtu") or {}).items() if v}
        self.mtu_source = str(doc.get("expected_mtu_source") or "")
        self.failures: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for f in doc.get("probe_failures") or []:
            self.failures.setdefault((str(f.get("measurement")), str(f.get("key"))), []).append(f)
        self.findings: dict[str, Finding] = {}
        self.verdicts: dict[tuple[str, str], Verdict] = {}
        self.pod_finding: dict[str, str] = {}  # pair -> id of the finding that owns its ping

    # -- plumbing -----------------------------------------------------------------------------

    def add(self, f: Finding) -> Finding:
        self.findings[f.id] = f
        return f

    def extend(self, fid: str, *, pairs: Iterable[str] = (), nodes: Iterable[str] = (),
               checks: Iterable[str] = (), evidence: dict[str, Any] | None = None) -> Finding:
        f = self.findings[fid]
        new = Finding(f.id, f.cause, f.summary,
                      tuple(dict.fromkeys([*f.nodes, *nodes])),
                      tuple(dict.fromkeys([*f.pairs, *pairs])),
                      tuple(dict.fromkeys([*f.checks, *checks])),
                      {**f.evidence, **(evidence or {})}, f.contradicting, f.would_contradict,
                      f.root, f.fix_args)
        self.findings[fid] = new
        return new

    def verdict(self, test: str, subject: str, outcome: str, message: str = "",
                finding: str | None = None, raw: str = "") -> None:
        self.verdicts[(test, subject)] = Verdict(test, subject, outcome, message, finding, raw)

    def fail(self, test: str, subject: str, symptom: str, f: Finding, raw: str = "") -> None:
        self.extend(f.id, checks=[test])
        head = symptom.rstrip(".")
        # A finding about this one subject often says the symptom already: not twice.
        text = f.message if not head or f.summary.startswith(head) or head.startswith(
            f.summary.rstrip(".")) else f"{head}. {f.message}"
        self.verdict(test, subject, FAILED, text, f.id, raw)

    def unusable(self, node: str) -> str | None:
        problems = [p for p in self.readiness.get(node, []) if p != "node is NotReady"]
        return problems[0] if problems else None

    def skip_no_host_probe(self, test: str, subject: str, node: str) -> bool:
        """A host-network check on a node whose host-network probe was not admitted (Pod
        Security, a policy engine): skipped with the denial; the pod checks still run."""
        why = self.host_unavailable.get(node)
        if why:
            self.verdict(test, subject, SKIPPED, f"{node}: the host-network probe was not "
                         f"admitted, so this host-network check cannot run: {why}")
            return True
        return False

    def skip_unusable(self, test: str, subject: str, *nodes: str) -> bool:
        for n in nodes:
            why = self.unusable(n)
            if why:
                self.verdict(test, subject, SKIPPED, f"{n}: probes cannot run ({why}); "
                             f"see test_nodes_ready[{n}]", f"node-not-ready:{n}")
                return True
        return False

    def forwarding_off(self, node: str) -> bool:
        c = self.checks.get(node)
        v = (c or {}).get("sysctls", {}).get("net.ipv4.ip_forward")
        return v is not None and str(v).strip() == "0"

    def skip_no_forwarding(self, test: str, subject: str, *nodes: str) -> bool:
        for n in nodes:
            if self.forwarding_off(n):
                self.verdict(test, subject, SKIPPED, f"{n}: net.ipv4.ip_forward=0, pod traffic "
                             f"cannot leave the node; see test_node_sysctls[{n}]",
                             f"ip-forward:{n}")
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
            self.add(Finding(fid, "probe-failure", f"{what} ({str(failure.get('detail') or '')[:160]}"
                             f"); this says nothing about the network", fix_args=(("tool", tool),),
                             would_contradict=(f"{tool} running to completion",)))
        return self.extend(fid, nodes=[str(failure.get("node"))], checks=[test],
                           pairs=[subject] if "->" in subject else [])

    def culprits(self, pairs: list[str]) -> tuple[tuple[str, ...], str]:
        """Nodes a group of failing pairs points at, and how strongly (a sentence)."""
        common = set.intersection(*(set(_ends(p)) for p in pairs)) if pairs else set()
        if len(common) == 1:
            node = next(iter(common))
            others = [p for p in self.pairs if node not in _ends(p)
                      and ("pod", p) in self.ping]
            healthy = [p for p in others if p not in self.pod_finding
                       and self._pod_ok(p)]
            if len(pairs) > 1 and others and len(healthy) == len(others):
                return (node,), (f"{node} is in every failing pair and every measured pair "
                                 f"without it works")
            if len(pairs) > 1:
                return (node,), f"{node} is in every failing pair"
        nodes = sorted({n for p in pairs for n in _ends(p)},
                       key=lambda n: self.nodes.index(n) if n in self.nodes else 0)
        return tuple(nodes), ""

    def _pod_ok(self, pid: str) -> bool:
        p = self.ping.get(("pod", pid))
        return p is not None and int(p.get("received") or 0) > 0 and float(
            p.get("loss_pct") or 0) <= self.threshold

    # -- the judge ----------------------------------------------------------------------------

    def run(self) -> None:
        self.nodes_ready()
        self.node_sysctls()
        self.pod_ping()
        self.udp_8472()
        self.path_mtu()
        self.large_packets()
        self.large_packets_to_service()
        self.service_checks()
        self.dns_checks()
        self.egress_checks()
        self.pod_cidr()
        self.control_plane_ports()

    def nodes_ready(self) -> None:
        for n in self.nodes:
            problems = self.readiness.get(n, [])
            image = [p for p in problems if p.startswith("probe image")]
            if image and len(image) == len(problems):
                # The probe image, not the node or its network: say that, with its own fix.
                tools = sorted({t.strip(" ,.") for p in image
                                for t in p.partition(" lacks ")[2].split("(")[0].split(",")
                                if t.strip(" ,.")})
                f = self.add(Finding(f"probe-image:{n}", "probe-failure",
                                     f"{n}: " + "; ".join(image), (n,),
                                     evidence={n: {"problems": problems}},
                                     fix_args=(("tool", ", ".join(tools) or "the probe tools"),),
                                     would_contradict=("the tools found in the probe image",)))
                self.fail("test_nodes_ready", n, n, f)
                continue
            pulls = [p for p in problems if any(w in p for w in IMAGE_PULL_WORDS)]
            if pulls:  # the probe image, not the node: its own cause and fix
                f = self.add(Finding(f"image-pull:{n}", "image-pull", f"{n}: " + pulls[0], (n,),
                                     evidence={n: {"problems": problems}},
                                     would_contradict=("the probe pods running",)))
                self.fail("test_nodes_ready", n, n, f)
                continue
            if problems:
                f = self.add(Finding(f"node-not-ready:{n}", "node-not-ready",
                                     f"{n}: " + "; ".join(problems), (n,),
                                     evidence={n: {"problems": problems}},
                                     would_contradict=("the node Ready and its probes running",)))
                self.fail("test_nodes_ready", n, n, f)
                self.verdicts[("test_nodes_ready", n)] = Verdict(
                    "test_nodes_ready", n, FAILED, f.message, f.id)
            elif n in self.readiness or not self.readiness:
                self.verdict("test_nodes_ready", n, PASSED)

    def node_sysctls(self) -> None:
        for n in self.nodes:
            if self.skip_unusable("test_node_sysctls", n, n) or \
                    self.skip_no_host_probe("test_node_sysctls", n, n):
                continue
            c = self.checks.get(n)
            if c is None:
                self.verdict("test_node_sysctls", n, SKIPPED, f"{n}: node checks not measured")
                continue
            sysctls = c.get("sysctls") or {}
            raw = "\n".join(f"{k}={v}" for k, v in sysctls.items())
            found = []
            if str(sysctls.get("net.ipv4.ip_forward", "1")).strip() == "0":
                found.append(self.add(Finding(
                    f"ip-forward:{n}", "ip-forward", f"{n}: net.ipv4.ip_forward=0, so it cannot "
                    "route pod traffic", (n,), evidence={n: {"net.ipv4.ip_forward": 0}},
                    would_contradict=(f"net.ipv4.ip_forward=1 on {n}",))))
            bnf = sysctls.get("net.bridge.bridge-nf-call-iptables")
            enc = self.encap.get(n)
            # Bridge netfilter matters only where pods sit on a Linux bridge (flannel's cni0,
            # bridge plugin, weave): routed veths (Calico, Cilium) never pass a bridge.
            routed = enc is not None and enc.get("bridged") is False
            note = (f"{n}: bridge netfilter not required: pod traffic is not bridged "
                    f"({enc.get('description')})" if routed and enc is not None else "")
            if not routed and (bnf is None or str(bnf).strip() != "1"):
                state = "0" if bnf is not None else "absent (br_netfilter not loaded)"
                found.append(self.add(Finding(
                    f"bridge-nf:{n}", "bridge-nf", f"{n}: net.bridge.bridge-nf-call-iptables is "
                    f"{state}", (n,), evidence={n: {"net.bridge.bridge-nf-call-iptables": bnf}},
                    would_contradict=(f"net.bridge.bridge-nf-call-iptables=1 on {n}",))))
            if not found:
                self.verdict("test_node_sysctls", n, PASSED, note)
                continue
            for f in found:
                self.extend(f.id, checks=["test_node_sysctls"])
            self.verdict("test_node_sysctls", n, FAILED, " ".join(
                self.findings[f.id].message for f in found), found[0].id, raw)

    # -- pairs --------------------------------------------------------------------------------

    def pod_ping(self) -> None:
        test = "test_pod_ping"
        groups: dict[str, list[str]] = {"overlay": [], "underlay": [], "lossy": [],
                                        "unknown": []}
        for pid in self.pairs:
            a, b = _ends(pid)
            if self.skip_unusable(test, pid, a, b):
                continue
            p = self.ping.get(("pod", pid))
            if p is None:
                self.verdict(test, pid, SKIPPED, f"{pid}: pod-to-pod ping not measured")
                continue
            if self._pod_ok(pid):
                self.verdict(test, pid, PASSED)
                continue
            failure = self.probe_failure("ping-pod-56", pid)
            if failure is not None:
                f = self.probe_finding(failure, pid, test)
                self.pod_finding[pid] = f.id
                self.fail(test, pid, f"{pid}: pod-to-pod ping could not run", f)
                continue
            off = [n for n in (a, b) if self.forwarding_off(n)]
            if off:
                fid = f"ip-forward:{off[0]}"
                f = self.extend(fid, pairs=[pid], checks=[test])
                self.pod_finding[pid] = fid
                self.fail(test, pid, self.ping_symptom(pid), f, self.ping_raw(pid))
                continue
            h = self.ping.get(("host", pid))
            received = int(p.get("received") or 0)
            if h is not None and int(h.get("received") or 0) == 0:
                groups["underlay"].append(pid)
            elif received > 0:
                groups["lossy"].append(pid)
            elif h is not None:
                groups["overlay"].append(pid)
            else:
                groups["unknown"].append(pid)
        self.overlay_group(groups["overlay"])
        if groups["underlay"]:
            pairs = groups["underlay"]
            nodes, why = self.culprits(pairs)
            f = self.add(Finding(
                "underlay:" + ",".join(nodes), "underlay",
                f"Pod-to-pod and node-to-node ping both get no reply on {len(pairs)} pair"
                f"{'s' if len(pairs) != 1 else ''} ({_listing(pairs)})"
                + (f"; {why}" if why else ""), nodes, tuple(pairs),
                evidence={p: self.ping_numbers(p) for p in pairs},
                would_contradict=("node-to-node ping working on these pairs",)))
            for pid in pairs:
                self.pod_finding[pid] = f.id
                self.fail(test, pid, self.ping_symptom(pid) + " and node-to-node ping fails too",
                          f, self.ping_raw(pid))
        if groups["lossy"]:
            pairs = groups["lossy"]
            nodes, why = self.culprits(pairs)
            f = self.add(Finding(
                "pod-lossy:" + ",".join(nodes), "pod-lossy",
                f"Pod-to-pod ping loses more than {self.threshold:g}% but not everything, "
                f"re-measured with a bigger sample, on {_listing(pairs)}"
                + (f"; {why}" if why else "") + ": some packets cross, so no port is blocked",
                nodes, tuple(pairs), evidence={p: self.ping_numbers(p) for p in pairs},
                would_contradict=("a loss-free re-measurement",)))
            for pid in pairs:
                self.pod_finding[pid] = f.id
                self.fail(test, pid, self.ping_symptom(pid), f, self.ping_raw(pid))
        for pid in groups["unknown"]:
            f = self.add(Finding(
                f"pod-unreachable:{pid}", "inconclusive",
                f"{pid}: pod-to-pod ping gets no reply and node-to-node ping was not measured, "
                "so the underlay cannot be told from the overlay", pairs=(pid,),
                evidence={pid: self.ping_numbers(pid)}))
            self.pod_finding[pid] = f.id
            self.fail(test, pid, self.ping_symptom(pid), f, self.ping_raw(pid))

    def ping_numbers(self, pid: str) -> dict[str, Any]:
        p, h = self.ping.get(("pod", pid)) or {}, self.ping.get(("host", pid))
        u = self.udp.get(pid)
        out: dict[str, Any] = {"pod_ping_loss_pct": p.get("loss_pct"),
                               "pod_ping_replies": f"{p.get('received')}/{p.get('transmitted')}"}
        if h is not None:
            out["host_ping_loss_pct"] = h.get("loss_pct")
        if u is not None:
            out["udp_overlay"] = u.get("error") or f"{_loss(u.get('loss_pct'))} lost"
        return out

    def ping_symptom(self, pid: str) -> str:
        p = self.ping.get(("pod", pid)) or {}
        return f"{pid}: pod-to-pod ping lost {_loss(p.get('loss_pct'))}"

    def ping_raw(self, pid: str) -> str:
        p = self.ping.get(("pod", pid)) or {}
        return (f"ping {pid} (pod): {p.get('received')}/{p.get('transmitted')} replies, "
                f"{_loss(p.get('loss_pct'))} lost" + (f", {p['error']}" if p.get("error") else ""))

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

    def overlay_group(self, pairs: list[str]) -> None:
        """Pod ping dead, node ping fine: the overlay, when nothing measured disagrees."""
        if not pairs:
            return
        test = "test_pod_ping"
        against = [p for p in pairs if self.udp_state(p) == "crossed"]
        consistent = [p for p in pairs if p not in against]
        if consistent:
            nodes, why = self.culprits(consistent)
            udp_all = all(self.udp_state(p) == "blocked" for p in consistent)
            overlay = self.overlay(n for p in consistent for n in _ends(p))
            f = self.add(Finding(
                "vxlan-blocked:" + ",".join(nodes), "vxlan-blocked",
                f"Pod-to-pod ping gets no reply while node-to-node ping works"
                + ("; UDP through the overlay fails too" if udp_all else "")
                + f", on {len(consistent)} pair{'s' if len(consistent) != 1 else ''} "
                f"({_listing(consistent)}): the overlay ({overlay}) is dropped between the "
                "nodes" + (f"; {why}" if why else ""), nodes, tuple(consistent),
                evidence={p: self.ping_numbers(p) for p in consistent},
                would_contradict=("UDP through the overlay crossing on these pairs",
                                  "node-to-node ping failing (the underlay, not the port)"),
                fix_args=(("overlay", overlay),)))
            for pid in consistent:
                self.pod_finding[pid] = f.id
                self.fail(test, pid, self.ping_symptom(pid) + " while node-to-node ping works",
                          f, self.ping_raw(pid))
        if against:
            f = self.add(Finding(
                "inconclusive-overlay:" + ",".join(against), "inconclusive",
                f"Pod-to-pod ping gets no reply while node-to-node ping works on "
                f"{_listing(against)}, which looks like a blocked overlay port",
                pairs=tuple(against), evidence={p: self.ping_numbers(p) for p in against},
                contradicting=tuple(f"{p}: UDP through the overlay crossed "
                                    f"({_loss(self.udp[p].get('loss_pct'))} lost)"
                                    for p in against)))
            for pid in against:
                self.pod_finding[pid] = f.id
                self.fail(test, pid, self.ping_symptom(pid), f, self.ping_raw(pid))

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
        """The encapsulation's name and the bytes it adds (VXLAN's 50 when not detected)."""
        kinds = {str(self.encap[n].get("kind")) for n in nodes if n in self.encap}
        if len(kinds) == 1:
            kind = kinds.pop()
            if kind in OVERHEAD:
                return KIND_NAMES.get(kind, kind), OVERHEAD[kind]
        return "VXLAN", VXLAN_OVERHEAD

    def mtu_default_note(self) -> str:
        """Said with every path-MTU verdict when the expected MTU was nobody's number."""
        if not self.mtu_source.startswith("default"):
            return ""
        return (f"the expected MTU {self.expected} is a default: no pod interface MTU could "
                "be read (set --k8s-expect-mtu)")

    def pod_pointer(self, test: str, pid: str) -> bool:
        """Skip a pair whose pod connectivity another finding owns; True when skipped."""
        fid = self.pod_finding.get(pid)
        if fid is None:
            return False
        f = self.findings[fid]
        self.verdict(test, pid, SKIPPED, f"{pid}: no pod connectivity ({f.title}), see "
                     f"test_pod_ping[{pid}]", fid)
        return True

    def udp_8472(self) -> None:
        test = "test_udp_8472"
        lossy: list[str] = []
        for pid in self.pairs:
            a, b = _ends(pid)
            if self.skip_unusable(test, pid, a, b) or self.skip_no_forwarding(test, pid, a, b):
                continue
            ends = [self.encap.get(n) for n in (a, b)]
            if all(e is not None and not e.get("udp_port") for e in ends):
                self.verdict(test, pid, SKIPPED, f"{pid}: no UDP encapsulation detected ("
                             + "; ".join(f"{n}: {e.get('description')}" for n, e in
                                         zip((a, b), ends) if e is not None)
                             + "), so the overlay has no UDP port to test")
                continue
            u = self.udp.get(pid)
            if u is None:
                self.verdict(test, pid, SKIPPED, f"{pid}: UDP not measured")
                continue
            raw = self.udp_raw(pid)
            np = u.get("node_port")
            if np is not None and not np.get("port_busy") and self.node_port_failed(np):
                what = np.get("error") or f"{_loss(np.get('loss_pct'))} of UDP datagrams lost"
                if np.get("failure") == TIMEOUT:
                    what = ("no answer over UDP: iperf3 ran past its deadline, twice, while "
                            "other iperf3 runs on these machines finished in time")
                port = int(np.get("port") or 8472)
                name = self.overhead((a, b))[0]
                f = self.add(Finding(
                    f"vxlan-blocked-node-port:{pid}", "vxlan-blocked",
                    f"The overlay port (UDP {port}, {name}) is blocked between {a} and {b} "
                    f"(port {port} is free, no CNI holds it, so it was tested node to node)",
                    _ends(pid), (pid,),
                    evidence={pid: {f"node_port_{port}": what}},
                    would_contradict=(f"UDP {port} crossing node to node",),
                    fix_args=(("overlay", f"UDP {port} ({name})"),)))
                self.fail(test, pid, f"{pid}: node to node on UDP {port} itself fails ({what})",
                          f, raw)
                continue
            fid = self.pod_finding.get(pid)
            state = self.udp_state(pid)
            if fid is not None:
                f = self.findings[fid]
                if f.cause == "vxlan-blocked" and state == "blocked":
                    self.fail(test, pid, f"{pid}: UDP across the overlay fails ({u.get('error')})",
                              f, raw)
                else:
                    self.pod_pointer(test, pid)
                continue
            if state == "probe":
                failure = {"tool": "iperf3", "failure": u.get("failure"), "node": a,
                           "detail": u.get("error")}
                f = self.probe_finding(failure, pid, test)
                self.fail(test, pid, f"{pid}: UDP through the overlay not measured", f, raw)
            elif state == "blocked":
                f = self.add(Finding(
                    f"inconclusive-udp:{pid}", "inconclusive",
                    f"{pid}: UDP to iperf3 through the overlay fails ({u.get('error')})",
                    pairs=(pid,), evidence={pid: {"udp_overlay": u.get("error")}},
                    contradicting=("pod-to-pod ping crosses the same overlay, so the VXLAN port "
                                   "is open; look for a policy on the iperf3 port",)))
                self.fail(test, pid, f"{pid}: UDP through the overlay fails", f, raw)
            elif float(u.get("loss_pct") or 0) > self.threshold:
                note = self.lost_in_receiver(b)
                if note:
                    self.verdict(test, pid, PASSED, f"{pid}: {_loss(u.get('loss_pct'))} of UDP "
                                 f"datagrams not received; {note}", raw=raw)
                else:
                    lossy.append(pid)
            else:
                self.verdict(test, pid, PASSED)
        if lossy:
            nodes, why = self.culprits(lossy)
            f = self.add(Finding(
                "udp-lossy:" + ",".join(nodes), "udp-lossy",
                f"UDP through the overlay loses more than {self.threshold:g}% in every sample, "
                f"re-measured, on {_listing(lossy)}" + (f"; {why}" if why else "")
                + ": datagrams cross, so the port is open, but the path drops some", nodes,
                tuple(lossy), evidence={p: {"loss_pct": [a.get("loss_pct") for a in
                                                         self.udp[p].get("attempts") or []],
                                            **self.receiver_evidence(_ends(p)[1])}
                                        for p in lossy},
                would_contradict=(f"a sample with at most {self.threshold:g}% loss",)))
            for pid in lossy:
                u = self.udp[pid]
                samples = [a for a in u.get("attempts") or [] if a.get("packets")]
                self.fail(test, pid, f"{pid}: {_loss(u.get('loss_pct'))} of UDP datagrams lost "
                          f"in the best of {len(samples) or 1} samples", f, self.udp_raw(pid))

    def lost_in_receiver(self, node: str) -> str:
        """Why the UDP loss into ``node`` is not the path's ('' when it may be): every
        datagram lost into it was dropped by its probe pod's own full socket buffers, which
        the path had delivered them to (a starved iperf3 server, not the network)."""
        drops, lost = self.receive_drops.get(node), self.udp_lost_into.get(node, 0)
        if drops is None or lost <= 0 or drops < lost:
            return ""
        return (f"the path delivered them: {node}'s probe pod dropped {drops} datagrams at "
                f"its own full socket buffers (UDP RcvbufErrors) while {lost} went missing into "
                "it, so its iperf3 servers did not read them in time (a busy machine)")

    def receiver_evidence(self, node: str) -> dict[str, Any]:
        if node not in self.receive_drops:
            return {}
        return {f"{node}_socket_buffer_drops": self.receive_drops[node],
                f"datagrams_lost_into_{node}": self.udp_lost_into.get(node, 0)}

    def node_port_failed(self, np: dict[str, Any]) -> bool:
        """Node to node on the overlay port (free: no CNI holds it) failed for the
        network's reasons.

        A client whose UDP handshake gets no answer waits past any deadline, so a timeout
        counts, but only when other iperf3 runs finished in time: then the machine was not
        too starved to run the probe, and the silence is the network's.
        """
        failure = np.get("failure")
        if failure == TIMEOUT:
            return any(a.get("failure") is None for t in self.udp.values()
                       for a in [*(t.get("attempts") or [t]), t.get("node_port") or {}]
                       if a)
        return failure in (None, NETWORK) and bool(
            np.get("error") or float(np.get("loss_pct") or 0) > self.threshold)

    def udp_raw(self, pid: str) -> str:
        u = self.udp.get(pid) or {}
        lines = [f"iperf3 {pid} attempt {i + 1}: " + (
            f"{a.get('failure')}: {a.get('error')}" if a.get("error") else
            f"{a.get('mbps')} Mbit/s, {_loss(a.get('loss_pct'))} lost, {a.get('packets')} "
            "datagrams") for i, a in enumerate(u.get("attempts") or [u])]
        np = u.get("node_port")
        if np:
            lines.append(f"iperf3 {pid} node to node on UDP {np.get('port') or 8472}: " + (
                f"{np.get('error')}" if np.get("error") else f"{_loss(np.get('loss_pct'))} lost"))
        return "\n".join(lines)

    def path_mtu(self) -> None:
        test = "test_path_mtu"
        small: list[str] = []
        own: list[str] = []  # limited by the pods' own interface MTU, not by the wire
        note = self.mtu_default_note()
        for pid in self.pairs:
            a, b = _ends(pid)
            if self.skip_unusable(test, pid, a, b) or self.pod_pointer(test, pid):
                continue
            pm = self.pmtu.get(pid)
            got = int(pm.get("bytes") or 0) if pm is not None else 0
            if pm is None or not self.expected:
                self.verdict(test, pid, SKIPPED, f"{pid}: path MTU not measured")
            elif got >= int(self.expected):
                self.verdict(test, pid, PASSED, f"{pid}: {note}" if note else "")
            elif got == 0:
                f = self.add(Finding(
                    f"inconclusive-pmtu:{pid}", "inconclusive",
                    f"{pid}: not even a {pm.get('first_lost')}-byte DF ping crosses",
                    pairs=(pid,), evidence={pid: {"path_mtu": 0}},
                    contradicting=("small pings (without DF) cross the same pair",)))
                self.fail(test, pid, f"{pid}: path MTU search found nothing that crosses", f,
                          self.pmtu_raw(pid))
            elif got == self.pod_limit(pid):
                # A DF ping larger than the pod's eth0 never leaves the pod (the kernel
                # refuses it locally): no underlay link was ever asked to carry it.
                own.append(pid)
            else:
                small.append(pid)
        self.pod_mtu_group(own, note)
        if not small:
            return
        worst = min(int(self.pmtu[p]["bytes"]) for p in small)
        nodes, why = self.culprits(small)
        name, overhead = self.overhead(n for p in small for n in _ends(p))
        needs = (f"{name} adds {overhead} bytes, so the underlay carries {worst + overhead} here"
                 if overhead else f"{name}: pod packets cross as they are")
        f = self.add(Finding(
            "mtu:" + ",".join(nodes), "mtu",
            f"An underlay link drops frames larger than the overlay needs ({needs}) on "
            f"{len(small)} pair{'s' if len(small) != 1 else ''} ({_listing(small)})"
            + (f"; {why}" if why else "") + (f"; {note}" if note else ""), nodes, tuple(small),
            evidence={p: {"path_mtu": self.pmtu[p]["bytes"], "expected": self.expected,
                          "first_lost": self.pmtu[p].get("first_lost")} for p in small},
            would_contradict=("a DF ping of the expected size crossing",
                              "small pings failing too"), fix_args=(("limit", worst),)))
        for pid in small:
            got = int(self.pmtu[pid]["bytes"])
            hdr = int(self.pmtu[pid].get("headers") or 28)  # ping payload = packet - headers
            self.fail(test, pid, f"{pid}: {int(self.expected or 0) - hdr}-byte DF ping lost, "
                      f"{got - hdr} passes; path MTU {got} < expected {self.expected}"
                      + (f" ({note})" if note else ""), f, self.pmtu_raw(pid))

    def pod_limit(self, pid: str) -> int | None:
        """The smaller pod interface MTU of the pair's two ends (None when unknown)."""
        known = [self.pod_mtu[n] for n in _ends(pid) if n in self.pod_mtu]
        return min(known) if known else None

    def pod_mtu_group(self, own: list[str], note: str) -> None:
        """Pairs whose path MTU is exactly the pods' own interface MTU, below the expected:
        the CNI's MTU setting (or the expectation) is the limit, never the underlay."""
        if not own:
            return
        test = "test_path_mtu"
        mtu = min(self.pod_limit(p) or 0 for p in own)
        ends = {n for p in own for n in _ends(p)}
        nodes = tuple(n for n in [*self.nodes, *sorted(ends - set(self.nodes))]
                      if n in ends and self.pod_mtu.get(n) == mtu)
        overhead = self.overhead(ends)[1]
        source = ("--k8s-expect-mtu" if self.mtu_source == "flag" else
                  self.mtu_source or "expected")
        f = self.add(Finding(
            "pod-mtu:" + ",".join(nodes), "pod-mtu",
            f"The probe pods' eth0 MTU is {mtu} on {_listing(nodes)} (the CNI's MTU setting), "
            f"below the expected {self.expected} ({source}), on {len(own)} "
            f"pair{'s' if len(own) != 1 else ''} ({_listing(own)}): the limit is the pod "
            "interface, not the underlay (a larger packet never leaves the pod)"
            + (f"; {note}" if note else ""), nodes, tuple(own),
            evidence={p: {"path_mtu": self.pmtu[p]["bytes"], "expected": self.expected,
                          "pod_mtu": {n: self.pod_mtu.get(n) for n in _ends(p)}} for p in own},
            would_contradict=("a DF ping larger than the pod's interface MTU crossing",
                              "a path MTU below the pod's interface MTU"),
            fix_args=(("mtu", mtu), ("expected", self.expected), ("overhead", overhead))))
        for pid in own:
            got = int(self.pmtu[pid]["bytes"])
            self.fail(test, pid, f"{pid}: path MTU {got} < expected {self.expected}; {got} is "
                      "the pods' own interface MTU", f, self.pmtu_raw(pid))

    def pmtu_raw(self, pid: str) -> str:
        pm = self.pmtu.get(pid) or {}
        return (f"path MTU search {pid}: largest {pm.get('bytes')}, first lost "
                f"{pm.get('first_lost')}, {pm.get('probes')} probes")

    def mtu_finding(self) -> Finding | None:
        return next((f for f in self.findings.values() if f.cause == "mtu"), None)

    def large_packets(self) -> None:
        test = "test_large_packets"
        for pid in self.pairs:
            a, b = _ends(pid)
            if self.skip_unusable(test, pid, a, b) or self.pod_pointer(test, pid):
                continue
            h = self.http.get(pid)
            if h is None:
                self.verdict(test, pid, SKIPPED, f"{pid}: 1 MiB transfer not measured")
                continue
            if h.get("ok"):
                self.verdict(test, pid, PASSED)
                continue
            raw = f"curl 1 MiB {pid}: {h.get('bytes')} bytes, {h.get('error')}"
            failure = self.probe_failure("http-1mib", pid)
            mtu = self.mtu_finding()
            if failure is not None:
                self.fail(test, pid, f"{pid}: 1 MiB transfer could not run",
                          self.probe_finding(failure, pid, test), raw)
            elif mtu is not None and pid in mtu.pairs:
                self.fail(test, pid, f"{pid}: 1 MiB HTTP transfer stalled ({_curl_error(h)}) "
                          "while small packets cross", mtu, raw)
            else:
                pm = self.pmtu.get(pid)
                f = self.add(Finding(
                    f"inconclusive-http:{pid}", "inconclusive",
                    f"{pid}: a 1 MiB HTTP transfer fails ({_curl_error(h)})", pairs=(pid,),
                    evidence={pid: {"bytes": h.get("bytes"), "error": _curl_error(h)}},
                    contradicting=("small pings cross",) + (
                        (f"the path MTU {pm.get('bytes')} is at least the expected "
                         f"{self.expected}",) if pm is not None else ())))
                self.fail(test, pid, f"{pid}: 1 MiB HTTP transfer failed", f, raw)

    # -- nodes --------------------------------------------------------------------------------

    def behind(self, node: str, other: str) -> Finding | None:
        """The connectivity finding that explains why ``node`` cannot reach ``other``'s pods:
        the measured pair's, else one that names ``other`` as its only culprit."""
        fid = self.pod_finding.get(_pid(node, other))
        if fid is not None:
            return self.findings[fid]
        if _pid(node, other) in self.pairs and ("pod", _pid(node, other)) in self.ping:
            return None  # measured and fine
        # Not measured (--k8s-pairs ring or sample:K): a connectivity finding about either
        # end explains it; a culprit named alone first, as the stronger statement.
        ranked = sorted((f for f in self.findings.values() if f.cause in CONNECTIVITY),
                        key=lambda f: len(f.nodes))
        for f in ranked:
            if f.nodes in ((other,), (node,)) or (f.pairs and {node, other} & set(f.nodes)):
                return f
        return None

    def large_packets_to_service(self) -> None:
        test = "test_large_packets_to_service"
        for n in self.nodes:
            if self.skip_unusable(test, n, n) or self.skip_no_forwarding(test, n, n):
                continue
            results = self.svc_http.get(n)
            if not results:
                self.verdict(test, n, SKIPPED, f"{n}: 1 MiB through the Service not measured")
                continue
            bad = [r for r in results if not r.get("ok")]
            if not bad:
                self.verdict(test, n, PASSED)
                continue
            raw = "\n".join(f"curl 1 MiB {n}->service: {r.get('bytes')} bytes, {r.get('error')}"
                            for r in bad)
            per_node = max(1, len(results) // max(1, len(self.nodes)))
            roots = {m: f for m in self.nodes if m != n for f in [self.behind(n, m)] if f}
            if roots and len(bad) <= per_node * len(roots):
                self.verdict(test, n, SKIPPED, f"{n}: {len(bad)} transfers through the Service "
                             f"failed, no more than its backends on nodes without pod "
                             f"connectivity ({', '.join(roots)}): "
                             + "; ".join(sorted({f"{f.title}, see test_pod_ping"
                                                 for f in roots.values()})),
                             next(iter(roots.values())).id, raw)
                continue
            svc = self.service.get(n) or {}
            if f"bridge-nf:{n}" in self.findings and svc.get("failures") \
                    and len(bad) <= per_node:
                self.verdict(test, n, SKIPPED, f"{n}: the transfers that failed went to its own "
                             "node's backends, which fail for any request (Bridge netfilter off);"
                             f" see test_service[{n}]", f"bridge-nf:{n}", raw)
                continue
            what = (f"{n}->service: {len(bad)} of {len(results)} 1 MiB transfers failed "
                    f"({_curl_error(bad[0])})")
            mtu = self.mtu_finding()
            failure = self.probe_failure("http-service", n)
            if failure is not None:
                self.fail(test, n, what, self.probe_finding(failure, n, test), raw)
            elif mtu is not None and len(bad) < len(results):
                self.fail(test, n, what + " while small requests answer; backends behind a "
                          f"path MTU below {self.expected} stall", mtu, raw)
            else:
                f = self.add(Finding(
                    f"inconclusive-service-http:{n}", "unknown", what, (n,),
                    evidence={n: {"failed": len(bad), "transfers": len(results)}}))
                self.fail(test, n, what, f, raw)

    def service_checks(self) -> None:
        test = "test_service"
        for n in self.nodes:
            if self.skip_unusable(test, n, n) or self.skip_no_forwarding(test, n, n):
                continue
            s = self.service.get(n)
            if s is None:
                self.verdict(test, n, SKIPPED, f"{n}: Service not measured")
                continue
            if not int(s.get("failures") or 0):
                self.verdict(test, n, PASSED)
                continue
            missing = [str(b) for b in s.get("missing_backends") or []]
            raw = (f"{n}: {s.get('failures')} of {s.get('attempts')} failed; answered by "
                   f"{s.get('answered_by')}; errors {s.get('errors')}")
            symptom = (f"{n}: {s.get('failures')} of {s.get('attempts')} requests to the Service "
                       "failed" + (f"; unanswered backends: {', '.join(missing)}"
                                   if missing else ""))
            failure = self.probe_failure("service", n)
            if failure is not None:
                self.fail(test, n, symptom, self.probe_finding(failure, n, test), raw)
                continue
            where = {b: self.backends.get(b, "") for b in missing}
            roots = {b: self.behind(n, m) for b, m in where.items() if m and m != n}
            if missing and all(roots.get(b) is not None for b in missing):
                found = {f.id: f for f in roots.values() if f is not None}
                pairs = sorted({_pid(n, where[b]) for b in missing})
                self.verdict(test, n, SKIPPED, f"{n}: Service requests fail only towards backends"
                             f" without pod connectivity ({', '.join(missing)}, behind "
                             f"{', '.join(pairs)}): " + "; ".join(
                                 f"{f.title}, see test_pod_ping" for f in found.values()),
                             next(iter(found)), raw)
                continue
            local = [b for b in missing if where[b] == n]
            remote = [b for b in missing if where[b] != n]
            if local and not remote:
                symptom += (f". Only backends on {n} itself fail while remote ones answer: "
                            "replies bridged inside the node skip the Service NAT")
                fid = f"bridge-nf:{n}"
                if fid in self.findings:
                    f = self.extend(fid, evidence={f"{n} Service": {
                        "failures": s.get("failures"), "attempts": s.get("attempts"),
                        "unanswered": missing}})
                    self.fail(test, n, symptom, f, raw)
                    continue
                enc = self.encap.get(n)
                against = (f"pod traffic on {n} is not bridged ({enc.get('description')}), so "
                           "bridge netfilter does not apply" if enc is not None
                           and enc.get("bridged") is False
                           else f"net.bridge.bridge-nf-call-iptables=1 on {n}")
                f = self.add(Finding(
                    f"inconclusive-service:{n}", "inconclusive", symptom, (n,),
                    evidence={n: {"failures": s.get("failures"), "unanswered": missing}},
                    contradicting=(against,)))
                self.fail(test, n, f"{n}: Service requests to local backends fail", f, raw)
                continue
            unmeasured = sorted({_pid(n, m) for m in where.values() if m and m != n
                                 and _pid(n, m) not in self.pairs})
            if unmeasured:
                symptom += (f"; pod connectivity {', '.join(unmeasured)} was not measured "
                            f"(--k8s-pairs {self.doc.get('pair_mode', 'all')})")
            f = self.add(Finding(f"service:{n}", "unknown", symptom, (n,),
                                 evidence={n: {"failures": s.get("failures"),
                                               "unanswered": missing}}))
            self.fail(test, n, symptom, f, raw)

    def control_plane_ports(self) -> None:
        """Per node: its own kubelet and etcd ports as the other nodes reach them, and its
        way to the API server and the cluster DNS. A connect that times out is a dropped
        port; a refused one proves the path and means nothing listens (said, and skipped)."""
        test = "test_control_plane_ports"
        entries = list(self.doc.get("ports") or [])
        if not entries:
            for n in self.nodes:
                self.verdict(test, n, SKIPPED, f"{n}: control-plane ports not measured")
            return
        for n in self.nodes:
            if self.skip_unusable(test, n, n) or self.skip_no_host_probe(test, n, n):
                continue
            inbound = [e for e in entries if str(e.get("peer", "")).endswith(f" on {n}")]
            outbound = [e for e in entries if e.get("src") == n
                        and not str(e.get("peer", "")).rpartition(" on ")[2] in self.nodes]
            mine = [e for e in entries if e.get("src") == n]
            failure = self.probe_failure("ports", n)
            if mine and all(e.get("state") == "error" for e in mine):
                if failure is not None:
                    self.fail(test, n, f"{n}: the port probe could not run",
                              self.probe_finding(failure, n, test))
                else:
                    self.verdict(test, n, SKIPPED, f"{n}: the port probe gave no result")
                continue
            dropped: dict[str, list[str]] = {}  # "tcp/10250 (the kubelet on node-2)" -> sources
            outward: dict[str, list[str]] = {}  # the same, for n's own way to the API and DNS
            deferred: list[str] = []
            cut_dns = self.dns_cut_off(n)
            for e in inbound + outbound:
                if e.get("state") != "timeout":
                    continue
                label = (f"{'udp' if e.get('kind') == 'dns-udp' else 'tcp'}/{e.get('port')} "
                         f"({e.get('peer')} {e.get('ip')})")
                if str(e.get("kind", "")).startswith("dns") and e.get("src") == n:
                    # The cluster DNS is pods behind a Service: a timeout to it from n is a
                    # pod-network knock-on when an endpoint sits behind a failed pair, and
                    # test_dns's to judge when the pods' own DNS already fails.
                    dns_verdict = self.verdicts.get(("test_dns", n))
                    if cut_dns:
                        deferred.append(f"{label}: {cut_dns}")
                        continue
                    if dns_verdict is not None and dns_verdict.outcome != PASSED:
                        deferred.append(f"{label}: see test_dns[{n}]")
                        continue
                (outward if e in outbound else dropped).setdefault(label, []).append(
                    str(e.get("src")))
            no_listener = sorted({f"tcp/{e.get('port')} ({e.get('peer')})" for e in inbound + outbound
                                  if e.get("state") == "refused"})
            raw = "\n".join(f"{e.get('src')} -> {e.get('kind')} {e.get('ip')}:{e.get('port')} "
                             f"({e.get('peer')}): {e.get('state')}" for e in inbound + outbound)
            if dropped or outward:
                parts = []
                if dropped:
                    parts.append("into " + n + ": " + "; ".join(
                        f"{label} from {', '.join(sorted(set(srcs)))}"
                        for label, srcs in sorted(dropped.items())))
                if outward:
                    parts.append(f"from {n}: " + "; ".join(sorted(outward)))
                # Dropped into the node: its own firewall; only outward: the way out or the peer.
                cause = "control-plane-ports" if dropped else "control-plane-unreachable"
                ports = sorted({label.split(" ")[0] for label in (dropped or outward)})
                f = self.add(Finding(
                    f"control-plane-ports:{n}", cause,
                    f"{n}: connects time out (dropped, no reset) " + "; ".join(parts), (n,),
                    evidence={n: {"dropped_into": dropped, "dropped_from": outward,
                                  "no_listener": no_listener, "deferred": deferred}},
                    would_contradict=("a connect that completes or is refused",),
                    fix_args=(("ports", ", ".join(ports)), ("node", n))))
                self.fail(test, n, "", f, raw)
            elif deferred and not any(e.get("state") == "open" for e in mine):
                self.verdict(test, n, SKIPPED, f"{n}: " + "; ".join(deferred))
            else:
                notes = []
                if not any(e.get("peer") == "the API server" for e in mine):
                    notes.append("tcp/6443: no API server endpoint known here, skipped")
                if not any(str(e.get("kind", "")).startswith("dns") for e in mine):
                    notes.append("53: no cluster DNS address known here, skipped")
                if no_listener:
                    notes.append("no listener, skipped: " + ", ".join(no_listener))
                if deferred:
                    notes.append("; ".join(deferred))
                self.verdict(test, n, PASSED, f"{n}: " + "; ".join(notes) if notes else "",
                             raw=raw)

    def dns_cut_off(self, n: str) -> str:
        """Why some cluster DNS endpoint is out of ``n``'s reach because of a pair that
        already fails ("" when none is): those queries time out as a knock-on."""
        for m in sorted(set(self.dns_endpoints.values())):
            f = self.behind(n, m) if m != n else None
            if f is not None:
                return (f"the cluster DNS endpoint on {m} sits behind {_pid(n, m)}, which "
                        f"already fails ({f.title}, see test_pod_ping[{_pid(n, m)}])")
        return ""

    def dns_checks(self) -> None:
        test = "test_dns"
        timeouts: list[str] = []
        for n in self.nodes:
            if self.skip_unusable(test, n, n) or self.skip_no_forwarding(test, n, n):
                continue
            results = self.dns.get(n)
            if not results:
                self.verdict(test, n, SKIPPED, f"{n}: DNS not measured")
                continue
            bad = [r for r in results if not r.get("ok")]
            if not bad:
                # Cluster names only, when there is no external name: a pass that says so.
                skip = self.targets.get("external_skip")
                self.verdict(test, n, PASSED, f"{n}: external DNS not checked: {skip}"
                             if skip else "")
                continue
            failure = next((self.probe_failure("dns", f"{n}/{r.get('name')}") for r in bad
                            if self.probe_failure("dns", f"{n}/{r.get('name')}")), None)
            listing = ", ".join(f"{r.get('name')} {r.get('rcode')}" for r in bad)
            raw = "\n".join(f"{r.get('name')}: {r.get('rcode')} {r.get('answers')}"
                            for r in results)
            if failure is not None:
                self.fail(test, n, f"{n}: DNS probe could not run",
                          self.probe_finding(failure, n, test), raw)
                continue
            if not all(r.get("rcode") == "TIMEOUT" for r in bad):
                f = self.add(Finding(f"dns-errors:{n}", "dns",
                                     f"{n}: DNS answered with errors ({listing})", (n,)))
                self.fail(test, n, f"{n}: DNS answered with errors", f, raw)
                continue
            endpoint_nodes = sorted(set(self.dns_endpoints.values()))
            behind = {m: self.behind(n, m) for m in endpoint_nodes if m != n}
            cut = [m for m, f in behind.items() if f is not None]
            if cut:
                # Queries are spread over the endpoints: those behind a failed pair time out
                # (all of them when every endpoint is cut off, some when only one is).
                found = {f.id: f for f in (behind[m] for m in cut) if f is not None}
                pairs = [_pid(n, m) for m in cut]
                first = next(iter(found.values()))
                which = "every" if len(cut) == len(endpoint_nodes) else "the"
                ips = sorted(ip for ip, m in self.dns_endpoints.items() if m in cut)
                f = self.add(Finding(
                    f"dns-knock-on:{n}", "dns",
                    f"{n}: no answer from cluster DNS ({listing}); {which} DNS endpoint"
                    f"{'s' if len(ips) > 1 else ''} {', '.join(ips)} on {', '.join(cut)} "
                    f"sit{'' if len(ips) > 1 else 's'} behind {', '.join(pairs)}, which "
                    f"already fail{'s' if len(pairs) == 1 else ''}"
                    f" ({'; '.join(x.title for x in found.values())}, see test_pod_ping"
                    f"[{pairs[0]}]): a knock-on, not a DNS problem", (n,), tuple(pairs),
                    root=first.id, would_contradict=("an answer from every DNS endpoint "
                                                     f"reachable from {n}'s pod",)))
                self.extend(f.id, checks=[test])
                self.verdict(test, n, SKIPPED, f.summary, f.id, raw)
                continue
            timeouts.append(n)
        if timeouts:
            pod_ok = {n: all(self._pod_ok(p) for p in self.pairs if n in _ends(p)
                             and ("pod", p) in self.ping) for n in timeouts}
            f = self.add(Finding(
                "dns:" + ",".join(timeouts), "dns",
                f"No answer from cluster DNS on {', '.join(timeouts)}"
                + (" while the pod network works" if all(pod_ok.values()) else ""),
                tuple(timeouts), evidence={n: {"timeouts": [r.get("name") for r in self.dns[n]
                                                            if not r.get("ok")]}
                                           for n in timeouts},
                would_contradict=("an answer from the cluster DNS",)))
            for n in timeouts:
                bad = [r for r in self.dns[n] if not r.get("ok")]
                self.fail(test, n, f"{n}: no answer from cluster DNS (" + ", ".join(
                    f"{r.get('name')} {r.get('rcode')}" for r in bad) + ")", f,
                    "\n".join(f"{r.get('name')}: {r.get('rcode')}" for r in self.dns[n]))

    def egress_checks(self) -> None:
        test = "test_egress"
        for n in self.nodes:
            if self.skip_unusable(test, n, n) or self.skip_no_forwarding(test, n, n):
                continue
            pe, he = self.egress.get((n, "pod")), self.egress.get((n, "host"))
            if pe is None and self.targets.get("egress_skip"):
                self.verdict(test, n, SKIPPED, f"{n}: {self.targets['egress_skip']}")
                continue
            if pe is None:
                self.verdict(test, n, SKIPPED, f"{n}: egress not measured")
                continue
            pod, host = _egress(pe), (_egress(he) if he is not None else None)
            if pod.failures == 0:
                self.verdict(test, n, PASSED)
                continue
            raw = f"pod failed ports: {list(pod.failed_ports)}\nerrors: {list(pod.errors)}"
            failure = self.probe_failure("egress", f"{n}/pod")
            symptom = (f"{n}: {pod.failures} of {pod.attempts} pod egress connections to "
                       f"{pod.url} failed ({pod.failure_rate:.0%})")
            if host is not None:
                symptom += (f", host network {host.failures} of {host.attempts}"
                            f" ({host.failure_rate:.0%})")
            if failure is not None:
                self.fail(test, n, symptom, self.probe_finding(failure, n, test), raw)
                continue
            split = pod.low_port_pattern
            if host is not None and host.failure_rate < pod.failure_rate and split:
                f = self.add(Finding(
                    f"egress-port-range:{n}", "egress-port-range",
                    f"{n}: the failures came from source ports below {split} and the successes "
                    f"from above it ({pod.fits(split)} of {pod.attempts} attempts fit; failed "
                    f"ports {min(pod.failed_ports)}-{max(pod.failed_ports)}, pod range "
                    f"{pod.port_range[0]}-{pod.port_range[1]}): a firewall past the node passes "
                    "only high source ports", (n,),
                    evidence={n: {"pod_failures": pod.failures, "attempts": pod.attempts,
                                  "host_failures": host.failures, "split_port": split}},
                    would_contradict=("failures from high source ports",
                                      "host-network egress failing as often")))
                self.fail(test, n, symptom, f, raw)
                continue
            contra: tuple[str, ...] = ()
            if host is not None and host.failures:
                contra = (f"host-network egress fails too ({host.failures} of {host.attempts}):"
                          " not specific to pods",)
            what = symptom + (": no pod egress at all (SNAT/masquerade or routing)"
                              if host is not None and host.failures == 0
                              and pod.failures == pod.attempts else "")
            f = self.add(Finding(f"egress:{n}", "unknown", what, (n,),
                                 evidence={n: {"pod_failures": pod.failures,
                                               "attempts": pod.attempts}},
                                 contradicting=contra))
            self.fail(test, n, f"{n}: pod egress fails", f, raw)

    def pod_cidr(self) -> None:
        test = "test_pod_cidr"
        overlaps: dict[str, list[str]] = {}
        for n in self.nodes:
            if self.skip_unusable(test, n, n) or self.skip_no_host_probe(test, n, n):
                continue
            c = self.checks.get(n)
            if c is None:
                self.verdict(test, n, SKIPPED, f"{n}: node checks not measured")
                continue
            addresses = [a for i in c.get("interfaces") or [] for a in i.get("addresses") or []
                         if not str(i.get("name")).startswith(CNI_IFACES)]
            found = cidr_overlaps(addresses, list(self.targets.get("pod_cidrs") or []),
                                  self.targets.get("service_cidr"))
            if found:
                overlaps[n] = found
            else:
                self.verdict(test, n, PASSED)
        if not overlaps:
            return
        f = self.add(Finding(
            "pod-cidr-overlap", "pod-cidr-overlap",
            f"Node networks overlap the cluster's CIDRs on {', '.join(overlaps)}",
            tuple(overlaps), evidence={n: {"overlaps": o} for n, o in overlaps.items()},
            would_contradict=("node addresses outside the Pod and Service CIDRs",)))
        for n, found in overlaps.items():
            self.fail(test, n, f"{n}: " + "; ".join(found), f)


def _egress(e: dict[str, Any]) -> EgressResult:
    return EgressResult(url=str(e.get("url") or ""), attempts=int(e.get("attempts") or 0),
                        failures=int(e.get("failures") or 0),
                        failed_ports=tuple(e.get("failed_ports") or ()),
                        passed_ports=tuple(e.get("passed_ports") or ()),
                        port_range=tuple(e.get("port_range") or (0, 0)),
                        errors=tuple(e.get("errors") or ()))
