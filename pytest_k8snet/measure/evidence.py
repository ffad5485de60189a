"""Evidence: what an engineer reads next on the nodes a failing finding names.

Taken after the judgement (the run pipeline asks for the nodes it names), from each node's
host network, before anything was changed; kept in the document's ``evidence`` section.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cluster import Cluster

EVIDENCE_MAX_CHARS = 6000

# What an engineer looks at next on a node, in the order they would.
EVIDENCE_COMMANDS: tuple[tuple[str, list[str]], ...] = (
    ("routes", ["ip", "route", "show", "table", "all"]),
    ("neighbours", ["ip", "neigh", "show"]),
    ("fdb", ["bridge", "fdb", "show"]),
    ("firewall", ["sh", "-c", "iptables-save -c 2>/dev/null || nft list ruleset"]),
    ("links", ["ip", "-o", "-d", "link", "show"]),
    ("offloads", ["sh", "-c", "command -v ethtool >/dev/null || { echo 'ethtool not installed';"
                  " exit 0; }; for i in $(ls /sys/class/net); do echo \"== $i\"; ethtool -k "
                  "\"$i\" 2>/dev/null | grep -E 'checksumming|segmentation-offload'; done"]),
)


def collect(cluster: "Cluster", nodes: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Routes, neighbours, FDB, firewall counters, links from each node's host network."""
    def one(node: str) -> list[dict[str, Any]]:
        try:
            ep = cluster.endpoint(node, "host")
        except Exception as exc:  # noqa: BLE001 - a node without probes has no evidence
            return [{"name": "error", "argv": [], "exit_code": None, "output": str(exc)}]
        out = []
        for name, argv in EVIDENCE_COMMANDS:
            res = ep.run(argv, cluster.settings.timeout)
            text = res.stdout if res.stdout.strip() else res.stderr
            if len(text) > EVIDENCE_MAX_CHARS:
                text = text[:EVIDENCE_MAX_CHARS] + f"\n... ({len(text)} characters, cut)"
            out.append({"name": name, "argv": list(argv), "exit_code": res.exit_code,
                        "output": text})
        return out

    return dict(zip(nodes, cluster.concurrently(one, nodes))) if nodes else {}
