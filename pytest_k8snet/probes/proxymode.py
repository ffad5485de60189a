"""kube-proxy's mode on a node (iptables, ipvs or nftables), read on its host network.

kube-proxy answers its mode itself on the metrics port (``/proxyMode`` on 127.0.0.1:10249,
the default ``metricsBindAddress``), so that is asked first. Where it does not answer (the
address moved, curl missing), what the mode leaves on the node says it: the ``kube-proxy``
nftables tables, the ``kube-ipvs0`` dummy link that holds the ClusterIPs in ipvs mode, the
``KUBE-SERVICES`` chain of iptables mode. ipvs mode writes KUBE-SERVICES too and a switch
from iptables to nftables can leave the old chain behind, so the chain is asked last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROXY_MODE_URL = "http://127.0.0.1:10249/proxyMode"
MODES = ("iptables", "ipvs", "nftables")
NFT_MARK = "--- nft"
IPT_MARK = "--- iptables"
IP6T_MARK = "--- ip6tables"  # an IPv6-only cluster's kube-proxy writes ip6tables alone

# A socket listening on port 10249 (hex 2809) in /proc/net/tcp{,6}: only then is curl run.
# A connection to 127.0.0.1 makes the kernel put an entry for lo in the neighbour table,
# which every network namespace of the host shares (the lab's nodes keep it free).
LISTENING = r"grep -qE '^ *[0-9]+: [0-9A-F]+:2809 [0-9A-F]+:0000 0A' /proc/net/tcp /proc/net/tcp6"

# One shell text, run inside the node-check exec that is already there (no exec of its
# own): each source prints after its own marker; a missing tool or a refused permission
# prints nothing, which reads as "this source says nothing".
COMMAND = (f"{LISTENING} 2>/dev/null && curl -s -m 2 {PROXY_MODE_URL} 2>/dev/null; echo; "
           f"echo '{NFT_MARK}'; "
           f"nft list tables 2>/dev/null; echo '{IPT_MARK}'; "
           "iptables -w 2 -t nat -S KUBE-SERVICES 2>/dev/null | head -n 1; "
           f"echo '{IP6T_MARK}'; "
           "ip6tables -w 2 -t nat -S KUBE-SERVICES 2>/dev/null | head -n 1; true")

_IPVS_LINK = re.compile(r"^\d+: kube-ipvs0[:@]", re.M)
_KUBE_PROXY_TABLE = re.compile(r"^table (ip|ip6) kube-proxy$", re.M)


@dataclass(frozen=True)
class ProxyMode:
    mode: str  # iptables, ipvs, nftables or unknown
    source: str  # what said so, for the report

    def describe(self) -> str:
        return f"{self.mode} ({self.source})" if self.mode != "unknown" else (
            f"unknown ({self.source})")


def parse(text: str, links_out: str = "") -> ProxyMode:
    """The mode from :data:`COMMAND`'s output and the node's ``ip -d link show`` (for
    ``kube-ipvs0``)."""
    endpoint, _, rest = text.partition(NFT_MARK)
    nft, _, ipts = rest.partition(IPT_MARK)
    ipt, _, ip6t = ipts.partition(IP6T_MARK)
    answer = endpoint.strip().splitlines()[0].strip() if endpoint.strip() else ""
    if answer in MODES:
        return ProxyMode(answer, f"kube-proxy's {PROXY_MODE_URL}")
    tables = sorted({f"{m.group(1)} kube-proxy" for m in _KUBE_PROXY_TABLE.finditer(nft)})
    if tables:
        return ProxyMode("nftables", "nftables table " + " and ".join(tables))
    if _IPVS_LINK.search(links_out):
        return ProxyMode("ipvs", "the kube-ipvs0 link")
    if "KUBE-SERVICES" in ipt:
        return ProxyMode("iptables", "the KUBE-SERVICES chain in iptables' nat table")
    if "KUBE-SERVICES" in ip6t:
        return ProxyMode("iptables", "the KUBE-SERVICES chain in ip6tables' nat table")
    return ProxyMode("unknown", "no answer on :10249/proxyMode and no kube-proxy tables, "
                                "kube-ipvs0 link or KUBE-SERVICES chain seen")
