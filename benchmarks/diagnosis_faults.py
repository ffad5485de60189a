"""Raw firewall faults for the diagnosis benchmark (``benchmarks/diagnosis.py``).

A fault is a rule set nobody named: not one of the lab's faults (``k8snet-lab fault``), but
what a person or a security scan writes, drawn from node x direction x protocol/port x mode x
where. Everything here is pure: the catalogue, the seeded draw, the rules a fault installs
and removes (as argv to run inside a namespace), and what a judge can see of it.

- **direction** is the packets' direction relative to the node: ``in`` towards the node (or
  its pods), ``out`` from it, ``both``. A port is always the *destination* port, so ``in
  tcp/8080`` breaks connections to the node's pods' port 8080 and leaves their replies alone,
  the way most firewall rules are written (replies are never matched on their own).
- **where**: ``host`` (the node's INPUT for ``in``, OUTPUT for ``out``, on its underlay eth0),
  ``forward`` (the node's FORWARD, its pods' traffic: ``-o cni0`` in, ``-i cni0`` out),
  ``switch`` (the underlay bridge, the node's port: frames leaving it towards the node are
  ``in``) and ``gateway`` (its FORWARD, traffic to or from the node's address; pods'
  traffic is masqueraded to it).
- **mode**: ``drop``, ``reject`` (TCP reset, else ICMP port unreachable), ``loss`` (20% of
  packets dropped at random).
- ``icmp`` means echo requests only: all ICMP in one direction would also take the replies
  to the other direction's pings, and the direction would be unobservable.

Each fault gets its own iptables chains (``KBENCH-<n>-IN``/``-OUT``/``-FWD``, one jump from
the built-in chain) or nft table (``k8snet_bench_<n>``), so removal is exact.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pytest_k8snet.lab.plan import KUBELET_PORT, PROBE_PORT, VXLAN_PORT, WORLD_PORT
from pytest_k8snet.lab.state import Lab
from pytest_k8snet.measure.udp import IPERF_BASE_PORT

Direction = Literal["in", "out", "both"]
Proto = Literal["icmp", "tcp", "udp", "all"]
Mode = Literal["drop", "reject", "loss"]
Where = Literal["host", "forward", "switch", "gateway"]

LOSS_PROBABILITY = 0.2
DNS_PORT = 53
# test_control_plane_ports connects to every other node's etcd ports; nothing listens on
# them in the lab, so healthy is "refused" and only a drop (a timeout) changes anything.
ETCD_PORT = 2379
# measure/udp.py: iperf3 on IPERF_BASE_PORT + attempt * nodes + source index, at most three
# samples per pair, so one port alone is missed by the re-measurement: the fault takes them all.
IPERF_ATTEMPTS = 3
BOTH: tuple[Direction, ...] = ("in", "out", "both")
OUT: tuple[Direction, ...] = ("out",)


@dataclass(frozen=True)
class Fault:
    node: str
    direction: Direction
    proto: Proto
    ports: tuple[int, int] | None  # inclusive destination-port range; None for icmp and all
    mode: Mode
    where: Where

    @property
    def label(self) -> str:
        """``tcp/8080``, ``udp/5201-5209``, ``icmp`` or ``all``."""
        if self.ports is None:
            return self.proto
        lo, hi = self.ports
        return f"{self.proto}/{lo}" + (f"-{hi}" if hi != lo else "")

    @property
    def place(self) -> str:
        """Where the rules sit, as a person would say it."""
        if self.where == "host":
            return {"in": "INPUT", "out": "OUTPUT", "both": "INPUT+OUTPUT"}[self.direction]
        return {"forward": "FORWARD", "switch": "switch", "gateway": "gateway"}[self.where]

    @property
    def klass(self) -> str:
        """The fault's class for the breakdown: everything but the node."""
        return f"{self.place} {self.direction} {self.label} {self.mode}"

    def describe(self) -> str:
        return f"{self.node} {self.klass}"

    @property
    def expected_directions(self) -> frozenset[str]:
        """The directions a judge can tell from the measurements."""
        if self.where == "gateway" and self.proto == "all":
            # Only the node's own connections out of the cluster cross the gateway, so
            # whichever packets die, the node is the client that fails.
            return frozenset({"out"})
        if self.proto == "all" or self.ports == (VXLAN_PORT, VXLAN_PORT):
            # Every connection needs both directions, and VXLAN carries every pod
            # connection's packets both ways: any of these breaks the pairs both ways.
            return frozenset({"both"})
        return frozenset({self.direction})

    @property
    def expected_modes(self) -> frozenset[str]:
        """The modes a judge can tell: a reject answers the packet's sender, which for
        encapsulated pod traffic (VXLAN) or the replies that ``all`` also takes is a
        kernel or a server, never the probe, so there it looks like a drop."""
        if self.mode == "reject" and (self.proto == "all" or self.ports == (VXLAN_PORT,
                                                                            VXLAN_PORT)):
            return frozenset({"reject", "drop"})
        return frozenset({self.mode})

    def as_dict(self) -> dict[str, Any]:
        return {"node": self.node, "direction": self.direction, "proto": self.proto,
                "ports": list(self.ports) if self.ports else None, "mode": self.mode,
                "where": self.where, "label": self.label, "place": self.place,
                "describe": self.describe()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fault:
        ports = d.get("ports")
        return cls(d["node"], d["direction"], d["proto"],
                   (int(ports[0]), int(ports[1])) if ports else None, d["mode"], d["where"])


@dataclass(frozen=True)
class FaultClass:
    """What may be drawn at one place for one protocol/port, and what it breaks there."""

    where: Where
    proto: Proto
    ports: tuple[int, int] | None
    directions: tuple[Direction, ...]
    modes: tuple[Mode, ...]
    breaks: str


def iperf_ports(nodes: int) -> tuple[int, int]:
    return IPERF_BASE_PORT, IPERF_BASE_PORT + IPERF_ATTEMPTS * nodes - 1


def _one(port: int) -> tuple[int, int]:
    return port, port


# Only what changes something the suite measures. Left out, and why:
# - icmp at host or switch: only the node-to-node ping crosses there, and no test judges
#   it (it only tells the underlay from the overlay when pod ping fails).
# - pod traffic other than VXLAN at the switch: it is inside VXLAN there.
# - reject at the switch: this kernel has no nft bridge reject, and br_netfilter's REJECT
#   cannot route its answer out of the switch namespace (no address): it would be a drop.
# - reject of tcp/10250 or of the node's own DNS (udp/53, tcp/53 at host): "refused" is how
#   test_control_plane_ports tells "nothing listens", and it passes; reject of tcp/2379:
#   nothing listens there, it is refused already.
# - tcp/80 at host: host-network egress is measured only to compare the pods' with, and
#   test_egress fails on the pods' alone.
# - loss on TCP: retransmits hide 20% within every probe's timeout; loss on udp/53: dig
#   tries twice; loss at the gateway: only DNS and TCP egress cross it.
# - in at the gateway for one port: nothing outside the cluster connects to a node.
def catalogue(nodes: int) -> tuple[FaultClass, ...]:
    vx, dns, iperf = _one(VXLAN_PORT), _one(DNS_PORT), iperf_ports(nodes)
    kubelet, etcd, http, web = (_one(KUBELET_PORT), _one(ETCD_PORT), _one(PROBE_PORT),
                                _one(WORLD_PORT))
    dra: tuple[Mode, ...] = ("drop", "reject", "loss")
    dr: tuple[Mode, ...] = ("drop", "reject")
    d: tuple[Mode, ...] = ("drop",)
    dl: tuple[Mode, ...] = ("drop", "loss")
    return (
        FaultClass("host", "udp", vx, BOTH, dra, "VXLAN: every pod path of the node"),
        FaultClass("host", "tcp", kubelet, BOTH, d, "control-plane ports: the kubelet"),
        FaultClass("host", "tcp", etcd, BOTH, d, "control-plane ports: etcd"),
        FaultClass("host", "udp", dns, OUT, d, "the node's own cluster DNS over UDP"),
        FaultClass("host", "tcp", dns, OUT, d, "the node's own cluster DNS over TCP"),
        FaultClass("host", "all", None, BOTH, dra, "the node's underlay"),
        FaultClass("forward", "icmp", None, BOTH, dra, "pod ping and path MTU"),
        FaultClass("forward", "tcp", http, BOTH, dr, "1 MiB HTTP and the Service"),
        FaultClass("forward", "udp", iperf, BOTH, dra, "iperf3's UDP through the overlay"),
        FaultClass("forward", "tcp", iperf, BOTH, dr, "iperf3's control connection"),
        FaultClass("forward", "udp", dns, OUT, dr, "the pods' cluster DNS"),
        FaultClass("forward", "tcp", web, OUT, dr, "pod egress"),
        FaultClass("forward", "all", None, BOTH, dra, "every pod path of the node"),
        FaultClass("switch", "udp", vx, BOTH, dl, "VXLAN on the node's switch port"),
        FaultClass("switch", "tcp", kubelet, BOTH, d, "the kubelet port on the wire"),
        FaultClass("switch", "tcp", etcd, BOTH, d, "the etcd port on the wire"),
        FaultClass("switch", "udp", dns, OUT, d, "DNS from the node and its pods"),
        FaultClass("switch", "tcp", web, OUT, d, "egress from the node and its pods"),
        FaultClass("switch", "all", None, BOTH, dl, "the node's switch port"),
        FaultClass("gateway", "udp", dns, OUT, dr, "DNS from the node and its pods"),
        FaultClass("gateway", "tcp", web, OUT, dr, "egress from the node and its pods"),
        FaultClass("gateway", "all", None, BOTH, dr, "the node's way out of the cluster"),
    )


# Left out on the real cluster (``--kubernetes``), and why. Nothing is left out for the
# control plane's sake: it sits in its own namespace on the management network (mgmt0,
# lab/kube/mgmt.py), and every rule here matches the underlay (eth0), cni0, the switch or
# the gateway, so exec, the kubelets' heartbeats and the API server survive every fault.
KUBE_LEFT_OUT: dict[tuple[Where, Proto, tuple[int, int] | None], str] = {
    ("host", "udp", _one(DNS_PORT)): "the node's DNS goes to the cluster DNS Service, "
    "DNAT'd to CoreDNS pods through cni0 or flannel.1, never out of eth0 to port 53",
    ("host", "tcp", _one(DNS_PORT)): "the same, over TCP",
    # Seed 7's first run: both drawn on a node without CoreDNS, both had no effect.
    ("switch", "udp", _one(DNS_PORT)): "the nodes' and pods' DNS crosses the switch inside "
    "VXLAN; only CoreDNS's upstream queries do not, from the node it runs on, which the "
    "draw cannot know (no effect elsewhere, every node's external names there)",
    ("gateway", "udp", _one(DNS_PORT)): "only CoreDNS's upstream queries cross it, from "
    "the node it runs on (the same)",
}


def kube_catalogue(nodes: int) -> tuple[FaultClass, ...]:
    """The classes that change something on the real cluster."""
    return tuple(c for c in catalogue(nodes) if (c.where, c.proto, c.ports) not in KUBE_LEFT_OUT)


def _fault(rng: random.Random, c: FaultClass, node: str) -> Fault:
    return Fault(node, rng.choice(c.directions), c.proto, c.ports, rng.choice(c.modes), c.where)


def draw(seed: int, single: int, double: int, nodes: Sequence[str], kubernetes: bool = False
         ) -> list[tuple[Fault, ...]]:
    """``single`` one-fault runs, then ``double`` two-fault runs, from one seeded RNG: a
    class uniformly (of :func:`kube_catalogue` with ``kubernetes``), then node, direction
    and mode. The two faults of a pair sit on different nodes and differ in protocol/port,
    so that each is a cause of its own."""
    rng = random.Random(seed)
    classes = kube_catalogue(len(nodes)) if kubernetes else catalogue(len(nodes))
    runs: list[tuple[Fault, ...]] = []
    for _ in range(single):
        c = rng.choice(classes)
        runs.append((_fault(rng, c, rng.choice(list(nodes))),))
    for _ in range(double):
        first = _fault(rng, rng.choice(classes), rng.choice(list(nodes)))
        while True:
            c = rng.choice(classes)
            node = rng.choice(list(nodes))
            if node != first.node and (c.proto, c.ports) != (first.proto, first.ports):
                break
        runs.append((first, _fault(rng, c, node)))
    return runs


# -- rules ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One command to run inside a namespace (``ip netns exec NETNS argv...``)."""

    netns: str
    argv: tuple[str, ...]
    input: str | None = None

    def text(self) -> str:
        return f"[{self.netns}] {' '.join(self.argv)}" + (f" <<{self.input!r}"
                                                           if self.input else "")


HOOK_SUFFIX = {"INPUT": "IN", "OUTPUT": "OUT", "FORWARD": "FWD"}


def chain(index: int, hook: str) -> str:
    return f"KBENCH-{index}-{HOOK_SUFFIX[hook]}"


def nft_table(index: int) -> str:
    return f"k8snet_bench_{index}"


def _directions(f: Fault) -> tuple[str, ...]:
    return ("in", "out") if f.direction == "both" else (f.direction,)


def _placements(f: Fault, lab: Lab) -> list[tuple[str, list[str]]]:
    """(built-in chain, interface or address match) per direction, for iptables."""
    node = lab.node(f.node)
    out: list[tuple[str, list[str]]] = []
    for d in _directions(f):
        if f.where == "host":
            out.append(("INPUT", ["-i", "eth0"]) if d == "in" else ("OUTPUT", ["-o", "eth0"]))
        elif f.where == "forward":
            out.append(("FORWARD", ["-o", "cni0"] if d == "in" else ["-i", "cni0"]))
        elif f.where == "gateway":
            out.append(("FORWARD", ["-d", node["ip"]] if d == "in" else ["-s", node["ip"]]))
        else:
            raise ValueError(f"{f.where}: not an iptables place")
    return out


def _ipt_match(f: Fault) -> list[str]:
    if f.proto == "icmp":
        return ["-p", "icmp", "--icmp-type", "echo-request"]
    if f.proto == "all" or f.ports is None:
        return []
    lo, hi = f.ports
    return ["-p", f.proto, "--dport", str(lo) if lo == hi else f"{lo}:{hi}"]


def _ipt_target(f: Fault) -> list[str]:
    if f.mode == "loss":
        return ["-m", "statistic", "--mode", "random", "--probability",
                f"{LOSS_PROBABILITY:g}", "-j", "DROP"]
    if f.mode == "reject":
        return ["-j", "REJECT", "--reject-with",
                "tcp-reset" if f.proto == "tcp" else "icmp-port-unreachable"]
    return ["-j", "DROP"]


def _nft_rules(f: Fault, lab: Lab) -> list[str]:
    if f.mode == "reject":
        raise ValueError("reject at the switch: no nft bridge reject on this kernel")
    port = lab.node(f.node)["switch_port"]
    if f.proto == "icmp":
        match = "meta l4proto icmp icmp type echo-request"
    elif f.proto == "all" or f.ports is None:
        match = "meta protocol ip"
    else:
        lo, hi = f.ports
        match = f"meta l4proto {f.proto} {f.proto} dport {lo if lo == hi else f'{lo}-{hi}'}"
    verdict = (f"numgen random mod 100 < {round(LOSS_PROBABILITY * 100)} counter drop"
               if f.mode == "loss" else "counter drop")
    return [f'{"oifname" if d == "in" else "iifname"} "{port}" {match} {verdict}'
            for d in _directions(f)]


def netns_of(f: Fault, lab: Lab) -> str:
    if f.where == "switch":
        return lab.switch_netns
    if f.where == "gateway":
        return str(lab.gateway["netns"])
    return str(lab.node(f.node)["netns"])


def install(f: Fault, lab: Lab, index: int) -> list[Step]:
    """The commands that switch fault number ``index`` on in ``lab``."""
    ns = netns_of(f, lab)
    if f.where == "switch":
        body = "\n".join(f"    {r}" for r in _nft_rules(f, lab))
        script = (f"table bridge {nft_table(index)} {{\n  chain forward {{\n"
                  "    type filter hook forward priority 0; policy accept;\n"
                  f"{body}\n  }}\n}}\n")
        return [Step(ns, ("nft", "-f", "-"), script)]
    steps: list[Step] = []
    comment = ["-m", "comment", "--comment", f"k8snet-bench:{f.describe()}"]
    by_hook: dict[str, list[list[str]]] = {}
    for hook, where in _placements(f, lab):
        by_hook.setdefault(hook, []).append(where)
    for hook, wheres in by_hook.items():
        name = chain(index, hook)
        steps.append(Step(ns, ("iptables", "-w", "-N", name)))
        steps += [Step(ns, ("iptables", "-w", "-A", name, *w, *_ipt_match(f), *comment,
                            *_ipt_target(f))) for w in wheres]
        steps.append(Step(ns, ("iptables", "-w", "-I", hook, "1", "-j", name)))
    return steps


def remove(f: Fault, lab: Lab, index: int) -> list[Step]:
    """The commands that take exactly what :func:`install` added away again."""
    ns = netns_of(f, lab)
    if f.where == "switch":
        return [Step(ns, ("nft", "delete", "table", "bridge", nft_table(index)))]
    steps: list[Step] = []
    for hook in dict.fromkeys(h for h, _ in _placements(f, lab)):
        name = chain(index, hook)
        steps += [Step(ns, ("iptables", "-w", "-D", hook, "-j", name)),
                  Step(ns, ("iptables", "-w", "-F", name)),
                  Step(ns, ("iptables", "-w", "-X", name))]
    return steps
