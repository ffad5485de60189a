"""Helpers for the client-side checks (control-plane ports, DNS, egress) that locate a
fault: where it is (node, direction), what it takes (protocol, port) and how (drop,
reject), and what earlier finding already explains a failure on a node (a knock-on).

"One fault, one finding": a firewall rule shows up in several measurements; the first
check that locates it writes the root, and every later check that sees the same fault
files a knock-on that names it (``root``), so a person fixes one thing.
"""

from __future__ import annotations

from typing import Any

from .context import CONNECTIVITY, Context
from .model import Finding

# curl's own words: a connect that got no answer (a drop) versus one that was answered
# with a reset or an ICMP unreachable (a reject: "Couldn't connect to server").
CURL_DROP = ("Timeout was reached", "Connection timeout", "Connection timed out",
             "timed out")
CURL_REJECT = ("Couldn't connect", "Connection refused", "No route to host",
               "Network is unreachable", "Connection reset")

RESOLVING = ("Resolving timed out", "Could not resolve")

# What each mode does to a packet, for messages and fixes.
VERBS = {"drop": "drops", "reject": "rejects", "loss": "loses some of"}
SYMPTOMS = {"drop": "time out (dropped, no answer)",
            "reject": "are refused (rejected: reset or ICMP unreachable)",
            "loss": "fail some of the time (some packets lost)"}
WAYS = {"out": "leaving", "in": "entering", "both": "entering and leaving"}


def curl_mode(errors: Any) -> str | None:
    """``drop`` when every connect error is a timeout, ``reject`` when every one was
    answered (refused, unreachable), None when they disagree or say neither."""
    modes = set()
    for e in errors or ():
        text = str(e)
        if text.startswith(RESOLVING):
            return None  # no connect was tried: the name never resolved
        if any(w in text for w in CURL_REJECT):
            modes.add("reject")
        elif any(w in text for w in CURL_DROP):
            modes.add("drop")
        else:
            return None
    return modes.pop() if len(modes) == 1 else None


def port_state_mode(states: Any) -> str | None:
    """The mode of a set of port-probe states: timeouts drop, refusals reject."""
    modes = {"drop" if s == "timeout" else "reject" if s == "refused" else "?"
             for s in states}
    return modes.pop() if len(modes) == 1 and "?" not in modes else None


def cut_off(ctx: Context, node: str, network: str) -> Finding | None:
    """The connectivity finding that already names ``node`` as the one node cut off:
    everything else that fails to or from it is that finding's knock-on. For the host
    network only a broken underlay counts (an overlay or forwarding fault leaves the
    host's own connections alone); for the pod network any connectivity cause does."""
    causes = ("underlay",) if network == "host" else CONNECTIVITY
    for f in ctx.findings.values():
        if f.root is None and f.cause in causes and f.nodes == (node,):
            return f
    # All of a node's pod traffic dropped at the node (its host network fine): its pods'
    # DNS, egress and Service requests fail because of it, not on their own.
    return ctx.pods_cut(node) if network != "host" else None


def host_pair_cut(ctx: Context, a: str, b: str) -> Finding | None:
    """The underlay finding that owns the pair between ``a`` and ``b`` (either way) when
    node-to-node ping on it got no reply: a host connect between them (a kubelet, a
    NodePort) fails because of it, as every pair between two cut-off groups does."""
    for pid in (f"{a}->{b}", f"{b}->{a}"):
        fid = ctx.pod_finding.get(pid)
        h = ctx.ping.get(("host", pid))
        if fid is not None and h is not None and not int(h.get("received") or 0):
            f = ctx.findings[fid]
            if f.root is None and f.cause == "underlay":
                return f
    return None
