"""Causes, their fixes and the incidents they come from; the checks live in
:mod:`pytest_k8snet.judge.checks`.

The judge (:func:`pytest_k8snet.judge.judge`) tells causes apart rather than listing
them all, from the run's measurement document only:
- pod-to-pod fails, node-to-node works, a node has ip_forward=0      -> forwarding (5)
- pod-to-pod fails, node-to-node works, the overlay's UDP fails      -> overlay port blocked (1, 5)
  (the port, or IPIP, the node's links show: VXLAN 8472/4789, Geneve 6081, WireGuard)
- small packets cross, big DF packets vanish                          -> MTU black hole (1, 3, 4)
- the path MTU is the pod's own interface MTU, below the expected     -> pod MTU (CNI setting)
- Service fails only towards backends on the client's own node       -> bridge netfilter off (5)
- pod egress fails, host egress works, only from low source ports    -> egress firewall (2)
- egress to one port fails every time, timeouts or refusals           -> firewall (its rule)
- node addresses inside the Pod/Service CIDR                          -> CIDR overlap (1, 5)
- some loss (not all) after re-measuring                              -> lossy, never "blocked"
- the probe itself failed (tool missing, exec error, interrupted)     -> probe failure
- one protocol/port fails on the pairs into/out of one node, others cross -> pod firewall
- pod-to-pod fails, node-to-node works, the node's route lookup for the
  peer's pod finds no route or another next hop than the working pairs'  -> no route
- measurements that disagree                                          -> inconclusive
"""

from __future__ import annotations

import re

# Fix arguments a finding may leave out: a document without a detected encapsulation
# (older results files, a node whose links could not be read) is judged as flannel's VXLAN.
FIX_DEFAULTS: dict[str, object] = {"overlay": "UDP 8472 (VXLAN)",
                                   "root": "the finding this one follows from"}

# The fix of a knock-on that names its root (``fix_args`` root): the root's, not its own.
KNOCK_ON_FIX = "Fix {root} first: this failure follows from it"

# cause -> (short title, fix, incidents)
CAUSES: dict[str, tuple[str, str, str]] = {
    "mtu": ("MTU", "set the CNI MTU to at most {limit} or raise the underlay MTU", "1, 3, 4"),
    "vxlan-blocked": ("Overlay port blocked", "allow {overlay} between all nodes in the "
                      "datacenter ACLs, security groups and host firewalls (ufw)", "1, 5"),
    "pod-mtu": ("Pod interface MTU below expected", "expect {mtu} (--k8s-expect-mtu {mtu}), or "
                "raise the CNI's MTU setting to {expected} if the underlay carries {expected} "
                "plus the {overhead} bytes of the encapsulation", ""),
    "ip-forward": ("IP forwarding off", "run `sysctl -w net.ipv4.ip_forward=1` and persist it in "
                   "/etc/sysctl.d (security scans reset it)", "5"),
    "bridge-nf": ("Bridge netfilter off", "run `modprobe br_netfilter` and `sysctl -w "
                  "net.bridge.bridge-nf-call-iptables=1`, persisted in /etc/modules-load.d and "
                  "/etc/sysctl.d", "5"),
    "egress-port-range": ("Egress firewall by source port", "open outbound source ports "
                          "1024-65535 in the firewall, or pin the SNAT port range and "
                          "net.ipv4.ip_local_port_range to 32768-60999", "2"),
    "pod-cidr-overlap": ("Pod CIDR overlaps nodes", "choose a Pod CIDR (kubeadm --pod-network-"
                         "cidr, the CNI's IP pool) that does not overlap any node network", "1, 5"),
    "dns": ("Cluster DNS unreachable", "check the DNS pods and Service, and that UDP/TCP 53 is "
            "allowed from pods to them", "1"),
    # Knock-ons only (their fix is KNOCK_ON_FIX): titles for what failed because of a root.
    "egress": ("Pod egress fails", KNOCK_ON_FIX.lower(), ""),
    "service": ("Service requests fail", KNOCK_ON_FIX.lower(), ""),
    "control-plane-ports": ("Control-plane port blocked", "open {ports} into {node} in its host "
                            "firewall (ufw, iptables) and the network ACLs: a cluster needs TCP "
                            "6443, 2379-2380 and 10250 and TCP/UDP 53 between its nodes", "1"),
    "control-plane-unreachable": ("Control plane unreachable", "let {node} reach {ports}: a "
                                  "firewall on its way out, on the path or at the peer drops "
                                  "them", "1"),
    "nodeport-blocked": ("NodePort range blocked", "open 30000-32767/tcp (the NodePort range) "
                         "{way} {node} in its host firewall (ufw, iptables, nftables: before "
                         "kube-proxy's DNAT) and in the cloud security group or network ACLs",
                         "1"),
    # A located rule: the protocol/port, the way through the node and what it does.
    "firewall": ("Firewall blocks a port", "find the rule that {verb} {what} {way} {node} "
                 "and remove it: `iptables -S`, `iptables -S -t raw` and `nft list ruleset` "
                 "on {node} (INPUT, OUTPUT, FORWARD), then the network ACLs, security groups "
                 "and the gateway on the way", ""),
    "no-route": ("No route to a peer's pods", "check the CNI's routing daemon on {node} "
                 "(flanneld host-gw, Calico BGP/bird, kube-router): it is not programming the "
                 "route to the peer's pod CIDR via the peer node; `ip route` on {node} shows "
                 "what is there, the daemon's log why", ""),
    "underlay": ("Nodes cannot reach each other", "fix node-to-node routing or firewalls first: "
                 "the underlay itself is broken", "1"),
    "image-pull": ("Probe image cannot be pulled", "check --k8s-probe-image (name, tag) and that "
                   "the nodes can pull it (registry reachable, credentials, or a mirror the "
                   "cluster can reach); this says nothing about the network under test", ""),
    "node-not-ready": ("Node not ready", "read the node's kubelet and CNI logs: a failed network "
                       "plugin shows as FailedCreatePodSandBox", "1"),
    "udp-lossy": ("Lossy overlay path", "look for congestion, a saturated link, a policer or "
                  "starved CPUs on these nodes (the port itself is open); raise "
                  "--k8s-loss-threshold only if this loss is expected", ""),
    "pod-lossy": ("Lossy pod path", "look for congestion, a saturated link, starved CPUs, a "
                  "policer or a firewall rule that drops a share of packets (an iptables "
                  "statistic match, tc netem) on these nodes; packets cross, so no port is "
                  "blocked", ""),
    "probe-failure": ("Probe could not run", "make {tool} runnable where the probes run (the "
                      "probe image, exec permissions, a less loaded machine), then run again", ""),
    "pod-firewall": ("Pod traffic blocked at a node", "find the rule that stops {what} at "
                     "{node}: `iptables -S FORWARD`, `nft list ruleset`, NetworkPolicies, and "
                     "the security groups or ACLs in front of it; the host network is fine",
                     "1, 5"),
    # A failure that follows from a root finding (``root``): its fix is the root's.
    "knock-on": ("Follows from another fault", KNOCK_ON_FIX.lower(), ""),
    "inconclusive": ("Conflicting evidence", "no single cause explains every measurement: read "
                     "the evidence and what contradicts it, attached to this finding", ""),
    "unknown": ("Unexplained failure", "read the raw probe output attached to the test", ""),
}


# The IPv6 words for what IPv4 messages say (the order matters: the long phrases first).
IPV6_WORDS = ((re.compile(r'ICMP "fragmentation\s+needed"'), 'ICMPv6 "Packet Too Big"'),
              (re.compile(r"fragmentation[- ]needed"), "Packet Too Big"),
              (re.compile(r"\bICMP\b(?!v6)"), "ICMPv6"),
              (re.compile(r"\bARP\b"), "NDP"),
              (re.compile(r"net\.ipv4\.ip_forward=1"), "net.ipv6.conf.all.forwarding=1"),
              (re.compile(r"net\.ipv4\.ip_forward"), "net.ipv6.conf.all.forwarding"),
              (re.compile(r"bridge-nf-call-iptables"), "bridge-nf-call-ip6tables"),
              (re.compile(r"`iptables -S"), "`ip6tables -S"))


def ipv6_words(text: str, family: str | None) -> str:
    """``text`` in ``family``'s terms (unchanged for IPv4)."""
    if family != "ipv6":
        return text
    for pattern, new in IPV6_WORDS:
        text = pattern.sub(new, text)
    return text
