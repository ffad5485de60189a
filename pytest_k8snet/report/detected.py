"""What the run detected of the cluster's network, one line each for the summary and the
HTML report: the overlay the nodes' links show and kube-proxy's mode (pure: document in,
text out)."""

from __future__ import annotations

from typing import Any

from .view import listed


def _grouped(label: str, by_text: dict[str, list[str]]) -> list[str]:
    """One line per text; the node count when every node says the same, else the nodes."""
    every = len(by_text) == 1
    return [f"{label}: {text} ({len(nodes)} node{'s' if len(nodes) != 1 else ''})" if every
            else f"{label}: {text} on {listed(nodes)}" for text, nodes in by_text.items()]


def overlay_lines(doc: dict[str, Any]) -> list[str]:
    """What the nodes' links show of the CNI and its encapsulation, one line per kind seen:
    ``overlay: flannel: vxlan flannel.1 UDP 8472, bridged (cni0) (3 nodes)``; with the
    bytes it adds where the document has them."""
    by_text: dict[str, list[str]] = {}
    for node, enc in sorted((doc.get("encapsulation") or {}).items()):
        if isinstance(enc, dict):
            text = str(enc.get("description") or enc.get("kind"))
            if enc.get("overhead"):
                text += f"; adds {enc['overhead']} bytes" + _over_ipv6(enc)
            by_text.setdefault(text, []).append(node)
    return _grouped("overlay", by_text)


def _over_ipv6(enc: dict[str, Any]) -> str:
    """`` (IPv4), 70 over IPv6``: a dual-stack node's second device adds more (flannel-v6.1:
    VXLAN over the IPv6 underlay); "" where no tunnel runs over IPv6."""
    six = sorted({int(t["overhead"]) for t in enc.get("tunnels") or [] if isinstance(t, dict)
                  and t.get("underlay") == "ipv6" and isinstance(t.get("overhead"), int)})
    if not six or six == [enc.get("overhead")]:
        return ""
    return f" over IPv4, {'/'.join(map(str, six))} over IPv6"


def kube_proxy_lines(doc: dict[str, Any]) -> list[str]:
    """``kube-proxy: nftables (nftables table ip kube-proxy and ip6 kube-proxy) (3 nodes)``,
    from ``node_checks[].kube_proxy`` (absent in documents from before it was read)."""
    by_text: dict[str, list[str]] = {}
    for entry in doc.get("node_checks") or []:
        kp = entry.get("kube_proxy") if isinstance(entry, dict) else None
        if isinstance(kp, dict):
            nodes = by_text.setdefault(f"{kp.get('mode')} ({kp.get('source')})", [])
            # a dual-stack document has each node's checks once per family: one node
            if str(entry.get("node")) not in nodes:
                nodes.append(str(entry.get("node")))
    return _grouped("kube-proxy", by_text)


def detected_lines(doc: dict[str, Any]) -> list[str]:
    return overlay_lines(doc) + kube_proxy_lines(doc)
