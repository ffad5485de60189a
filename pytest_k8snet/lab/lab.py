"""Build, describe and tear down a lab: a flannel-style VXLAN cluster network in netns.

Topology (names are ``k8snet-<lab>-<part>``)::

    world 198.18.0.10 ─┐                   ┌─ node-1 eth0 ── cni0 ─┬─ probe-node-1
    dns   198.18.0.53 ─┴ ext0 ─ gw ─ eth0 ─ sw (br0) ─ node-2 ...   └─ echo-node-1
                                            └─ node-N        flannel.1 (VXLAN, UDP 8472)

Nothing connects to the host's own namespace, so no traffic can leave the machine.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from . import netns as ns
from . import owner as owner_mod
from .netns import LabError

STATE_ROOT = Path(os.environ.get("K8SNET_LAB_STATE", "/run/k8snet"))
PREFIX = "k8snet-"
VXLAN_PORT = 8472
VXLAN_OVERHEAD = 50
PROBE_PORT = 8080
KUBELET_PORT = 10250
WORLD_PORT = 80
EXT_CIDR = ipaddress.ip_network("198.18.0.0/24")  # RFC 2544 benchmarking range: never routed
SERVICE_IP = "10.96.100.1"
SERVICE_PORT = 80
SERVICE_NAME = "k8snet-probe"
KUBERNETES_SERVICE_IP = "10.96.0.1"
EXTERNAL_NAME = "world.example.com"
CLUSTER_DOMAIN = "cluster.local"
RESERVED_WORDS = {"node", "sw", "gw", "world", "dns", "probe", "echo"}
# 64 nodes (196 namespaces) build in seconds and, with permanent neighbour entries, add no
# dynamic entry to the host's neighbour table; see host_limits() for what else could bind.
MAX_NODES = 64
NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Children we started, kept so they are reaped by ``down`` rather than garbage-collected alive.
_CHILDREN: dict[int, subprocess.Popen[Any]] = {}
NETNS_RE = re.compile(r"^k8snet-(?P<lab>.+?)-(?:sw|gw|world|dns|mgmt|cp|node-\d+(?:-probe|-echo)?)$")


@dataclass(frozen=True)
class LabSpec:
    """What to build. Every field has the default the README documents."""

    name: str = "lab"
    nodes: int = 3
    node_cidr: str = "172.28.128.0/24"
    pod_cidr: str = "10.244.0.0/16"
    underlay_mtu: int = 1500
    overlay_mtu: int = 1450
    faults: tuple[tuple[str, tuple[str, ...], str | None], ...] = ()
    # A real cluster on top (kube-apiserver, kubelets, containerd, CoreDNS): see lab.kube.
    kubernetes: bool = False

    def validate(self) -> None:
        if not NAME_RE.match(self.name) or len(self.name) > 24:
            raise LabError(f"bad lab name {self.name!r}: use 1-24 of [a-z0-9] and inner dashes")
        if RESERVED_WORDS & set(self.name.split("-")):
            raise LabError(f"bad lab name {self.name!r}: it may not contain the words "
                           + ", ".join(sorted(RESERVED_WORDS)))
        if not 1 <= self.nodes <= MAX_NODES:
            raise LabError(f"--nodes must be 1..{MAX_NODES}, got {self.nodes}")
        if not 576 <= self.underlay_mtu <= 9000 or not 576 <= self.overlay_mtu <= 9000:
            raise LabError("MTUs must be 576..9000")
        try:
            node_net = ipaddress.ip_network(self.node_cidr)
            pod_net = ipaddress.ip_network(self.pod_cidr)
        except ValueError as exc:
            raise LabError(f"bad CIDR: {exc}") from None
        if node_net.num_addresses < self.nodes + 16:
            raise LabError(f"node network {node_net} is too small for {self.nodes} nodes")
        if pod_net.prefixlen > 24 - max(1, (self.nodes - 1).bit_length()):
            raise LabError(f"Pod CIDR {pod_net} has no room for {self.nodes} /24 node subnets")
        for net in (node_net, pod_net):
            if net.overlaps(EXT_CIDR) or net.overlaps(ipaddress.ip_network("10.96.0.0/12")):
                raise LabError(f"{net} overlaps the lab's external or Service network")


@dataclass
class Lab:
    """A built lab, as recorded in its state file (``k8snet-lab status --json``)."""

    name: str
    spec: dict[str, Any]
    switch_netns: str
    nodes: list[dict[str, Any]]
    service: dict[str, Any]
    dns: dict[str, Any]
    world: dict[str, Any]
    gateway: dict[str, Any]
    faults: list[dict[str, Any]] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)
    created: float = 0.0
    kubernetes: dict[str, Any] = field(default_factory=dict)  # empty: no real cluster
    owner: dict[str, Any] = field(default_factory=dict)  # who created it: see lab.owner

    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / self.name

    def node(self, name: str) -> dict[str, Any]:
        for node in self.nodes:
            if node["name"] == name:
                return node
        known = ", ".join(n["name"] for n in self.nodes)
        raise LabError(f"unknown node {name!r} in lab {self.name} (nodes: {known})")

    def target_netns(self, target: str) -> str:
        """``node-1`` is the node (host network); ``node-1/probe`` its probe pod."""
        node_name, _, part = target.partition("/")
        node = self.node(node_name)
        if part == "":
            return str(node["netns"])
        if part in ("probe", "echo") and self.kubernetes:
            raise LabError(f"{self.name} runs real Kubernetes: its pods are reached with "
                           f"KUBECONFIG={self.kubernetes['kubeconfig']} kubectl exec")
        if part in ("probe", "echo"):
            return str(node[part]["netns"])
        raise LabError(f"unknown target {target!r}: use NODE, NODE/probe or NODE/echo")

    def all_netns(self) -> list[str]:
        names = [self.switch_netns, self.gateway["netns"], self.world["netns"], self.dns["netns"]]
        for node in self.nodes:
            names += [node["netns"]] + ([] if self.kubernetes else
                                        [node["probe"]["netns"], node["echo"]["netns"]])
        if self.kubernetes:
            from . import kube

            names += kube.netns_names(self.kubernetes)
        return names

    def status(self) -> dict[str, Any]:
        data = asdict(self)
        data["prefix"] = f"{PREFIX}{self.name}-"
        if self.kubernetes:
            data["kubeconfig"] = self.kubernetes["kubeconfig"]
        return data

    def save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(self.state_dir / "state.json")


def require_root() -> None:
    if os.geteuid() == 0:
        return
    userns = Path("/proc/sys/user/max_user_namespaces")
    hint = ""
    if userns.exists() and userns.read_text().strip() not in ("", "0"):
        hint = (" Unprivileged user namespaces are enabled here, so `k8snet-lab run -- pytest "
                "--pyargs pytest_k8snet.suite` works without root.")
    raise LabError("the lab needs root (CAP_NET_ADMIN and /run/netns): run it with sudo." + hint)


def require_tools() -> None:
    missing = ns.missing_tools()
    if missing:
        pkgs = " ".join(sorted(set(missing.values())))
        raise LabError(f"missing system tools: {', '.join(sorted(missing))}; "
                       f"install them with: apt-get install -y {pkgs}")


def load(name: str) -> Lab:
    path = STATE_ROOT / name / "state.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise LabError(f"no lab named {name!r} is running (see `k8snet-lab status --all`)") from None
    known = {f.name for f in fields(Lab)}  # a newer version's state file may carry more
    lab = Lab(**{k: v for k, v in data.items() if k in known})
    if not ns.netns_exists(lab.switch_netns):
        raise LabError(f"lab {name!r} has a state file but its namespaces are gone; "
                       f"run `k8snet-lab down {name}`")
    return lab


def running_labs() -> list[str]:
    names = set()
    for netns_name in ns.list_netns(PREFIX):
        m = NETNS_RE.match(netns_name)
        if m:
            names.add(m.group("lab"))
    if STATE_ROOT.is_dir():
        names.update(p.name for p in STATE_ROOT.iterdir() if (p / "state.json").exists())
    return sorted(names)


@contextmanager
def locked(name: str) -> Iterator[None]:
    """Serialise changes to one lab across processes (fault add/remove, up, down).

    The helpers run under the lock hold it too, so a killed ``up`` keeps its lab locked
    until the last of them has finished.
    """
    STATE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(STATE_ROOT / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with ns.lent_to_helpers(fh.fileno()):
            yield


def _plan(spec: LabSpec) -> Lab:
    node_net = ipaddress.ip_network(spec.node_cidr)
    pod_net = ipaddress.IPv4Network(spec.pod_cidr)  # the lab is IPv4 only
    subnets = pod_net.subnets(new_prefix=24)
    p = f"{PREFIX}{spec.name}"
    ext = list(EXT_CIDR.hosts())
    nodes: list[dict[str, Any]] = []
    for i in range(1, spec.nodes + 1):
        sub = next(subnets)
        name = f"node-{i}"
        nodes.append({
            "name": name,
            "index": i,
            "netns": f"{p}-{name}",
            "ip": str(node_net.network_address + 10 + i),
            "pod_cidr": str(sub),
            "pod_gateway": str(sub.network_address + 1),
            "vtep_ip": str(sub.network_address),
            "vtep_mac": f"0e:8e:00:00:{i >> 8:02x}:{i & 0xff:02x}",
            "switch_port": f"port-{name}",
            "probe": {"name": f"probe-{name}", "netns": f"{p}-{name}-probe",
                      "ip": str(sub.network_address + 2)},
            "echo": {"name": f"echo-{name}", "netns": f"{p}-{name}-echo",
                     "ip": str(sub.network_address + 3)},
        })
    gw_ip = str(node_net.broadcast_address - 1)
    dns_names = {
        f"kubernetes.default.svc.{CLUSTER_DOMAIN}": KUBERNETES_SERVICE_IP,
        f"{SERVICE_NAME}.default.svc.{CLUSTER_DOMAIN}": SERVICE_IP,
        EXTERNAL_NAME: str(ext[9]),
    }
    for node in nodes:
        for kind in ("probe", "echo"):
            pod = node[kind]
            dns_names[f"{pod['name']}.{SERVICE_NAME}.default.svc.{CLUSTER_DOMAIN}"] = pod["ip"]
    lab = Lab(
        name=spec.name,
        spec=asdict(spec),
        switch_netns=f"{p}-sw",
        nodes=nodes,
        service={"name": SERVICE_NAME, "ip": SERVICE_IP, "port": SERVICE_PORT,
                 "target_port": PROBE_PORT,
                 "fqdn": f"{SERVICE_NAME}.default.svc.{CLUSTER_DOMAIN}",
                 "backends": [n[k]["ip"] for n in nodes for k in ("probe", "echo")]},
        dns={"netns": f"{p}-dns", "ip": str(ext[52]), "names": dns_names,
             "search": [f"default.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN]},
        world={"netns": f"{p}-world", "ip": str(ext[9]), "port": WORLD_PORT,
               "name": EXTERNAL_NAME, "network": str(EXT_CIDR)},
        gateway={"netns": f"{p}-gw", "ip": gw_ip, "ext_ip": str(ext[0])},
    )
    if spec.kubernetes:
        from . import kube

        lab.kubernetes = kube.plan(lab)
    return lab


def _links(lab: Lab, spec: LabSpec) -> list[str]:
    """Every veth, created from the host namespace straight into its two namespaces."""
    cmds = []
    for node in lab.nodes:
        cmds.append(f"link add name eth0 netns {node['netns']} type veth "
                    f"peer name {node['switch_port']} netns {lab.switch_netns}")
        for kind in () if spec.kubernetes else ("probe", "echo"):
            cmds.append(f"link add name eth0 netns {node[kind]['netns']} type veth "
                        f"peer name veth-{kind} netns {node['netns']}")
    cmds += [
        f"link add name eth0 netns {lab.gateway['netns']} type veth "
        f"peer name port-gw netns {lab.switch_netns}",
        f"link add name eth0 netns {lab.world['netns']} type veth "
        f"peer name ext-world netns {lab.gateway['netns']}",
        f"link add name eth0 netns {lab.dns['netns']} type veth "
        f"peer name ext-dns netns {lab.gateway['netns']}",
    ]
    return cmds


def _alias(dev: str, lab: Lab) -> str:
    return f"link set dev {dev} alias {PREFIX}{lab.name}"


# Fixed (locally administered) MAC addresses, so that every neighbour entry the lab's traffic
# needs is known when the lab is built and can be permanent, as flannel's VTEP entries are.
# The kernel's table of dynamic neighbour entries is one for the whole host
# (net.ipv4.neigh.default.gc_thresh3, 1024); a 32-node lab resolving by ARP overflowed it,
# and a full table breaks every namespace on the host. Permanent entries do not count.
# Kind 0 is the VTEP (``vtep_mac`` in the plan). Labs are separate L2 domains, so two labs
# may use the same addresses.
MAC_NODE, MAC_CNI, MAC_PROBE, MAC_ECHO, MAC_EDGE = 1, 2, 3, 4, 5
EDGE_GW, EDGE_EXT, EDGE_WORLD, EDGE_DNS = 1, 2, 3, 4


def _mac(kind: int, index: int) -> str:
    return f"0e:8e:{kind:02x}:00:{index >> 8:02x}:{index & 0xff:02x}"


def _perm(ip: str, mac: str, dev: str) -> str:
    return f"neigh replace {ip} lladdr {mac} dev {dev} nud permanent"


def _node_neighbours(lab: Lab, node: dict[str, Any]) -> list[str]:
    """Every underlay peer and the gateway on eth0, the node's own pods on cni0."""
    cmds = [_perm(peer["ip"], _mac(MAC_NODE, peer["index"]), "eth0")
            for peer in lab.nodes if peer["name"] != node["name"]]
    cmds.append(_perm(lab.gateway["ip"], _mac(MAC_EDGE, EDGE_GW), "eth0"))
    if lab.kubernetes:  # real pods get their addresses from the CNI: they resolve by ARP
        return cmds
    cmds += [_perm(node[kind]["ip"], _mac(mac_kind, node["index"]), "cni0")
             for kind, mac_kind in (("probe", MAC_PROBE), ("echo", MAC_ECHO))]
    return cmds


def _edge_neighbours(lab: Lab) -> dict[str, list[str]]:
    """The gateway knows every node and the outside hosts; those know the gateway."""
    gw = [_perm(n["ip"], _mac(MAC_NODE, n["index"]), "eth0") for n in lab.nodes]
    gw += [_perm(lab.world["ip"], _mac(MAC_EDGE, EDGE_WORLD), "ext0"),
           _perm(lab.dns["ip"], _mac(MAC_EDGE, EDGE_DNS), "ext0")]
    back = [_perm(lab.gateway["ext_ip"], _mac(MAC_EDGE, EDGE_EXT), "eth0")]
    return {lab.gateway["netns"]: gw, lab.world["netns"]: back, lab.dns["netns"]: back}


def _node_batch(lab: Lab, node: dict[str, Any], spec: LabSpec) -> tuple[list[str], list[str]]:
    plen = ipaddress.ip_network(spec.node_cidr).prefixlen
    mtu_o, mtu_u = spec.overlay_mtu, spec.underlay_mtu
    ip_cmds = [
        "link set lo up",
        # One segment per skb keeps iptables' length match exact (no 64K GSO packets).
        f"link set eth0 address {_mac(MAC_NODE, node['index'])} mtu {mtu_u} gso_max_segs 1 up",
        _alias("eth0", lab),
        f"addr add {node['ip']}/{plen} dev eth0",
        # No multicast snooping: a snooping bridge sends IGMP reports, each a neighbour entry.
        f"link add cni0 address {_mac(MAC_CNI, node['index'])} type bridge mcast_snooping 0",
        _alias("cni0", lab),
        f"addr add {node['pod_gateway']}/24 dev cni0",
        f"link add flannel.1 type vxlan id 1 dstport {VXLAN_PORT} local {node['ip']} "
        f"dev eth0 nolearning",
        f"link set flannel.1 address {node['vtep_mac']} mtu {mtu_o} up", _alias("flannel.1", lab),
        f"addr add {node['vtep_ip']}/32 dev flannel.1",
    ]
    for kind in () if spec.kubernetes else ("probe", "echo"):
        ip_cmds += [f"link set veth-{kind} mtu {mtu_o} master cni0 up", _alias(f"veth-{kind}", lab),
                    f"link set dev veth-{kind} type bridge_slave hairpin on"]
    ip_cmds += [f"link set cni0 mtu {mtu_o} up", f"route add default via {lab.gateway['ip']}"]
    ip_cmds += _node_neighbours(lab, node)
    overlay, fdb = _overlay_entries(lab, node)
    return ip_cmds + overlay, fdb


def _overlay_entries(lab: Lab, node: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What flanneld programs for every peer: neighbour, route, and FDB entry."""
    ip_cmds, fdb = [], []
    for peer in lab.nodes:
        if peer["name"] == node["name"]:
            continue
        ip_cmds += [
            f"neigh replace {peer['vtep_ip']} lladdr {peer['vtep_mac']} dev flannel.1 "
            "nud permanent",
            f"route replace {peer['pod_cidr']} via {peer['vtep_ip']} dev flannel.1 onlink",
        ]
        fdb.append(f"fdb replace {peer['vtep_mac']} dev flannel.1 dst {peer['ip']}")
    return ip_cmds, fdb


def reprogram_overlay(lab: Lab, node_name: str) -> None:
    """Bring a node's VXLAN device up and program it again, as flanneld does on restart
    (taking the device down drops its routes, neighbours and FDB entries)."""
    node = lab.node(node_name)
    ip_cmds, fdb = _overlay_entries(lab, node)
    ns.ip_batch(node["netns"], ["link set flannel.1 up", *ip_cmds])
    ns.run(["bridge", "-n", node["netns"], "-batch", "-"], input="\n".join(fdb) + "\n")


def _pod_batch(lab: Lab, node: dict[str, Any], pod: dict[str, Any], spec: LabSpec) -> list[str]:
    macs = {node[kind]["ip"]: _mac(m, node["index"]) for kind, m in (("probe", MAC_PROBE),
                                                                      ("echo", MAC_ECHO))}
    return [
        "link set lo up",
        f"link set eth0 address {macs[pod['ip']]} mtu {spec.overlay_mtu} gso_max_segs 1 up",
        _alias("eth0", lab),
        f"addr add {pod['ip']}/24 dev eth0",
        f"route add default via {node['pod_gateway']}",
        # The gateway, and the node's other pod (a Service hairpin answers it directly).
        _perm(node["pod_gateway"], _mac(MAC_CNI, node["index"]), "eth0"),
        *[_perm(ip, mac, "eth0") for ip, mac in macs.items() if ip != pod["ip"]],
    ]


def _node_iptables(lab: Lab, node: dict[str, Any], spec: LabSpec) -> str:
    """kube-proxy (iptables mode) and flannel's NAT rules, as they are on a real node.

    One deviation: endpoints are picked with ``statistic --mode nth`` instead of
    ``random``, so that N*k requests from a node hit every backend exactly k times
    and a local-backend failure (bridge-nf-off) is always seen.
    """
    svc = lab.service
    backends = svc["backends"]
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":POSTROUTING ACCEPT [0:0]", ":KUBE-SERVICES - [0:0]", ":KUBE-SVC-K8SNET - [0:0]",
             ":KUBE-MARK-MASQ - [0:0]", ":KUBE-POSTROUTING - [0:0]", ":FLANNEL-POSTRTG - [0:0]"]
    lines += [f":KUBE-SEP-{i} - [0:0]" for i in range(len(backends))]
    lines += [
        "-A PREROUTING -m comment --comment kubernetes-service-portals -j KUBE-SERVICES",
        "-A OUTPUT -m comment --comment kubernetes-service-portals -j KUBE-SERVICES",
        "-A POSTROUTING -j KUBE-POSTROUTING",
        "-A POSTROUTING -j FLANNEL-POSTRTG",
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x4000",
        "-A KUBE-POSTROUTING -j MASQUERADE",
        f"-A KUBE-SERVICES -d {svc['ip']}/32 -p tcp --dport {svc['port']} -j KUBE-SVC-K8SNET",
    ]
    n = len(backends)
    for i, ip in enumerate(backends):
        rule = f"-A KUBE-SVC-K8SNET -m statistic --mode nth --every {n - i} --packet 0 " \
            if i < n - 1 else "-A KUBE-SVC-K8SNET "
        lines.append(rule + f"-j KUBE-SEP-{i}")
        lines += [f"-A KUBE-SEP-{i} -s {ip}/32 -j KUBE-MARK-MASQ",  # hairpin
                  f"-A KUBE-SEP-{i} -p tcp -j DNAT --to-destination {ip}:{svc['target_port']}"]
    pod = spec.pod_cidr
    lines += [f"-A FLANNEL-POSTRTG -s {pod} -d {pod} -j RETURN",
              f"-A FLANNEL-POSTRTG -s {pod} ! -d 224.0.0.0/4 -j MASQUERADE", "COMMIT"]
    return "\n".join(lines) + "\n"


def _write_resolv(lab: Lab) -> None:
    search = " ".join(lab.dns["search"])
    for node in lab.nodes:
        pods = () if lab.kubernetes else ((node["probe"]["netns"], True),
                                          (node["echo"]["netns"], True))
        for netns_name, with_search in ((node["netns"], False), *pods):
            d = Path("/etc/netns") / netns_name
            d.mkdir(parents=True, exist_ok=True)
            text = f"nameserver {lab.dns['ip']}\n"
            if with_search:
                text += f"search {search}\noptions ndots:5 timeout:1 attempts:1\n"
            (d / "resolv.conf").write_text(text)
            # The namespaces share the machine's hostname; tools (curl --local-port) look it
            # up, and with cluster DNS cut off that lookup would hang, as no real pod's does.
            (d / "hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {socket.gethostname()}\n")


def _start_processes(lab: Lab) -> None:
    logs = lab.state_dir
    listens = []
    for node in lab.nodes:
        for kind in () if lab.kubernetes else ("probe", "echo"):
            pod = node[kind]
            listens += ["--listen", f"{pod['netns']}:{PROBE_PORT}:{pod['name']}"]
        if not lab.kubernetes:  # a stand-in for the kubelet's port, for the port checks
            listens += ["--listen", f"{node['netns']}:{KUBELET_PORT}:kubelet-{node['name']}"]
    listens += ["--listen", f"{lab.world['netns']}:{WORLD_PORT}:world"]
    with open(logs / "server.log", "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "pytest_k8snet.lab.server", "--lab", lab.name, *listens],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
            start_new_session=True)
    lab.pids["server"] = server.pid
    _CHILDREN[server.pid] = server
    # --no-daemon: stay in the foreground and keep our uid/gid; dropping to another group
    # fails in a user namespace (setgroups is denied there).
    args = ["ip", "netns", "exec", lab.dns["netns"], "dnsmasq", "--no-daemon",
            "--conf-file=/dev/null", f"--pid-file={logs}/dnsmasq.pid", "--no-resolv", "--no-hosts",
            f"--listen-address={lab.dns['ip']}", "--bind-interfaces",
            f"--local=/{CLUSTER_DOMAIN}/", "--local=/example.com/", "--log-facility=-"]
    args += [f"--host-record={name},{ip}" for name, ip in lab.dns["names"].items()]
    with open(logs / "dnsmasq.log", "w") as log:
        dns = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log,
                               stdin=subprocess.DEVNULL, start_new_session=True,
                               env=ns.tool_env())  # dnsmasq is in sbin, off a user's PATH
    lab.pids["dnsmasq"] = dns.pid
    _CHILDREN[dns.pid] = dns
    assert server.stdout is not None
    line = server.stdout.readline().strip()  # bounded: the server binds or dies quickly
    server.stdout.close()
    if line != "ready":
        err = (logs / "server.log").read_text().strip().splitlines()
        raise LabError(f"the lab's HTTP server did not start: {err[-1] if err else 'no output'}")
    deadline = time.monotonic() + 5
    while dns.poll() is None and time.monotonic() < deadline:
        if _port_open(lab.dns["netns"], lab.dns["ip"]):
            return
        time.sleep(0.02)
    err = (logs / "dnsmasq.log").read_text().strip().splitlines()
    raise LabError(f"dnsmasq did not start: {err[-1] if err else 'no output'}")


def _port_open(netns_name: str, ip: str) -> bool:
    with ns.entered(netns_name):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((ip, 53))
    except OSError:
        return True  # dnsmasq holds it
    finally:
        s.close()
    return False


def up(spec: LabSpec) -> Lab:
    """Build the lab described by ``spec``; on any failure, remove what was built."""
    spec.validate()
    require_root()
    require_tools()
    from . import faults as faults_mod

    for fault_name, _nodes, _value in spec.faults:
        faults_mod.get(fault_name)
    # Said before anything is built (or locked): which host limit binds and how to raise it.
    ns.require_host_limits(len(_plan(spec).all_netns()), 2 * spec.nodes + 1)
    if spec.kubernetes:
        from . import kube

        kube.require_tools()
        kube.build()  # outside the lock: the first build takes minutes
    with locked(spec.name):
        if spec.name in running_labs():
            raise LabError(f"a lab named {spec.name!r} already exists; "
                           f"pick another --name or run `k8snet-lab down {spec.name}`")
        if any(f[0] == "pod-cidr-overlap" for f in spec.faults):
            spec = faults_mod.overlapping_spec(spec)
        lab = _plan(spec)
        lab.created = time.time()
        lab.owner = owner_mod.current()
        lab.state_dir.mkdir(parents=True, exist_ok=True)
        lab.save()  # first, so that `down` finds a half-built lab
        try:
            _build(lab, spec)
            for fault_name, nodes, value in spec.faults:
                faults_mod.add(lab, fault_name, list(nodes), value)
            lab.save()
        except BaseException:
            _teardown(lab.name)
            raise
    return lab


def _build(lab: Lab, spec: LabSpec) -> None:
    ns.add_netns(lab.all_netns())
    ns.ip_batch(None, _links(lab, spec))
    if spec.kubernetes:
        from . import kube

        ns.ip_batch(None, kube.links(lab))

    def node_setup(node: dict[str, Any]) -> None:
        ip_cmds, fdb = _node_batch(lab, node, spec)
        ns.ip_batch(node["netns"], ip_cmds)
        if fdb:
            ns.run(["bridge", "-n", node["netns"], "-batch", "-"], input="\n".join(fdb) + "\n")
        if spec.kubernetes:  # real kube-proxy and pods replace the simulated ones
            from . import kube

            ns.iptables_restore(node["netns"], kube.node_nat_rules(lab))
            return
        for kind in ("probe", "echo"):
            ns.ip_batch(node[kind]["netns"], _pod_batch(lab, node, node[kind], spec))
        ns.iptables_restore(node["netns"], _node_iptables(lab, node, spec))

    def switch_setup() -> None:
        cmds = ["link set lo up", "link add br0 type bridge mcast_snooping 0", _alias("br0", lab),
                "link set br0 up"]
        for port in [n["switch_port"] for n in lab.nodes] + ["port-gw"]:
            cmds += [f"link set {port} mtu {spec.underlay_mtu} master br0 up", _alias(port, lab)]
        ns.ip_batch(lab.switch_netns, cmds)
        ns.write_sysctls(lab.switch_netns, {"net.bridge.bridge-nf-call-iptables": "0"})

    def edge_setup() -> None:
        plen = ipaddress.ip_network(spec.node_cidr).prefixlen
        gw, ext_len = lab.gateway, EXT_CIDR.prefixlen
        neighbours = _edge_neighbours(lab)
        ns.ip_batch(gw["netns"], [
            "link set lo up", _alias("eth0", lab),
            f"link set eth0 address {_mac(MAC_EDGE, EDGE_GW)} mtu {spec.underlay_mtu} up",
            f"addr add {gw['ip']}/{plen} dev eth0",
            f"link add ext0 address {_mac(MAC_EDGE, EDGE_EXT)} type bridge mcast_snooping 0",
            _alias("ext0", lab),
            f"addr add {gw['ext_ip']}/{ext_len} dev ext0", "link set ext0 up",
            "link set ext-world master ext0 up", "link set ext-dns master ext0 up",
            *neighbours[gw["netns"]]])
        ns.write_sysctls(gw["netns"], {"net.ipv4.ip_forward": "1",
                                       "net.bridge.bridge-nf-call-iptables": "0"})
        for host, edge in ((lab.world, EDGE_WORLD), (lab.dns, EDGE_DNS)):
            ns.ip_batch(host["netns"], [
                "link set lo up", f"link set eth0 address {_mac(MAC_EDGE, edge)} up",
                _alias("eth0", lab), f"addr add {host['ip']}/{ext_len} dev eth0",
                f"route add default via {gw['ext_ip']}", *neighbours[host["netns"]]])

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(node_setup, n) for n in lab.nodes]
        futures += [pool.submit(switch_setup), pool.submit(edge_setup)]
        for fut in futures:
            fut.result()
    # sysctls go through setns under a lock, so they are cheap but serial.
    for node in lab.nodes:
        ns.write_sysctls(node["netns"], {
            "net.ipv4.ip_forward": "1",
            "net.bridge.bridge-nf-call-iptables": "1",
            "net.ipv4.conf.all.rp_filter": "0",
            "net.ipv4.conf.default.rp_filter": "0",
        })
    _write_resolv(lab)
    _start_processes(lab)
    if spec.kubernetes:
        from . import kube

        kube.setup_network(lab)
        kube.start(lab)


def _kill(pids: Sequence[int]) -> None:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            alive.append(pid)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + 2
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p)]
        time.sleep(0.02)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in pids:
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            child.wait(timeout=5)


def _alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _lab_pids(name: str) -> list[int]:
    """Processes of this lab: inside its namespaces, or naming it on their command line."""
    pids: set[int] = set()
    for netns_name in _lab_netns(name):
        pids.update(ns.netns_pids(netns_name))
    marks = (f"pytest_k8snet.lab.server --lab {name} ", f"{STATE_ROOT}/{name}/")
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace") + " "
        except OSError:
            continue
        if any(mark in cmdline for mark in marks):
            pids.add(int(entry))
    return sorted(pids)


def _lab_netns(name: str) -> list[str]:
    return [n for n in ns.list_netns(f"{PREFIX}{name}-")
            if (m := NETNS_RE.match(n)) and m.group("lab") == name]


def _teardown(name: str) -> None:
    from . import kube

    kube.teardown(name)  # the real cluster's processes and containers, by cgroup
    _kill(_lab_pids(name))
    netns_names = _lab_netns(name)
    ns.delete_netns(netns_names)
    for netns_name in netns_names:
        shutil.rmtree(Path("/etc/netns") / netns_name, ignore_errors=True)
    for d in Path("/etc/netns").glob(f"{PREFIX}{name}-*") if Path("/etc/netns").is_dir() else []:
        m = NETNS_RE.match(d.name)
        if m and m.group("lab") == name:
            shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(STATE_ROOT / name, ignore_errors=True)
    try:
        (STATE_ROOT / f".{name}.lock").unlink()
    except FileNotFoundError:
        pass


def down(name: str) -> bool:
    """Remove lab ``name`` and anything a crashed run of it left. True if anything was there."""
    require_root()
    existed = bool(_lab_netns(name) or (STATE_ROOT / name).exists() or _lab_pids(name))
    with locked(name):
        _teardown(name)
    return existed


def lab_owner(name: str) -> dict[str, Any]:
    """The creator recorded in lab ``name``'s state file; empty if unknown."""
    try:
        data = json.loads((STATE_ROOT / name / "state.json").read_text())
    except (OSError, ValueError):
        return {}
    owner = data.get("owner") if isinstance(data, dict) else None
    return owner if isinstance(owner, dict) else {}


def owned_labs(me: dict[str, Any] | None = None) -> list[str]:
    """Running labs created by ``me`` (default: the caller): same person, same run marker."""
    return [n for n in running_labs() if owner_mod.owns(lab_owner(n), me)]


def down_all(everyone: bool = False) -> list[str]:
    """Remove the caller's labs (see lab.owner); with ``everyone``, every lab on the host."""
    require_root()
    names = running_labs() if everyone else owned_labs()
    for name in names:
        down(name)
    return names
