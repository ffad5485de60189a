"""The control-plane port probes as failed connects between nodes, grouped by the node
they have in common: one firewall rule on node-2's way out fails node-2's connects to
every other node, which a per-destination reading would blame on each destination.

A connect fails when it times out (a drop), or when it is refused while another node's
connect to the same address and port opens (a reject: something listens there, so the
refusal is a firewall's reset or ICMP unreachable). Refused everywhere is no listener.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from .context import Context


@dataclass(frozen=True)
class Failed:
    """One connect that failed: from ``src`` to ``dst`` (a node, or None for the API
    server and the cluster DNS, which are no node's own port)."""

    src: str
    dst: str | None
    proto: str
    port: int
    peer: str
    ip: str
    mode: str  # drop or reject

    @property
    def label(self) -> str:
        return f"{self.proto}/{self.port}"

    @property
    def what(self) -> str:
        """The port and who listens there, without the node: ``tcp/10250 (the kubelet)``."""
        return f"{self.label} ({self.peer.rpartition(' on ')[0] or self.peer})"


@dataclass
class Group:
    """The failed connects one node has in common."""

    node: str
    fails: list[Failed]

    @property
    def into(self) -> list[Failed]:
        return [f for f in self.fails if f.dst == self.node]

    @property
    def out(self) -> list[Failed]:
        return [f for f in self.fails if f.src == self.node]

    @property
    def direction(self) -> str:
        return "both" if self.into and self.out else "in" if self.into else "out"

    @property
    def mode(self) -> str | None:
        modes = {f.mode for f in self.fails}
        return modes.pop() if len(modes) == 1 else None

    @property
    def protocol(self) -> str | None:
        protos = {f.proto for f in self.fails}
        return protos.pop() if len(protos) == 1 else None

    @property
    def port(self) -> str | None:
        ports = {f.port for f in self.fails}
        return str(ports.pop()) if len(ports) == 1 else None

    @property
    def labels(self) -> list[str]:
        return sorted({f.label for f in self.fails})


def peer_node(ctx: Context, e: dict[str, Any]) -> str | None:
    node = str(e.get("peer", "")).rpartition(" on ")[2]
    return node if node in ctx.node_set else None


class Index:
    """Which entries come from each node and which go into it (its peer), indexed once: a
    scan per node would cost nodes times entries (a million connects at 1,000 nodes)."""

    def __init__(self, ctx: Context, entries: list[dict[str, Any]]) -> None:
        self.entries = entries
        self.src: dict[str, list[int]] = {}
        self.into: dict[str, list[int]] = {}
        for i, e in enumerate(entries):
            self.src.setdefault(str(e.get("src")), []).append(i)
            peer = peer_node(ctx, e)
            if peer is not None:
                self.into.setdefault(peer, []).append(i)

    def from_node(self, n: str) -> list[dict[str, Any]]:
        return [self.entries[i] for i in self.src.get(n, ())]

    def into_node(self, n: str) -> list[dict[str, Any]]:
        return [self.entries[i] for i in self.into.get(n, ())]

    def touching(self, n: str) -> list[dict[str, Any]]:
        """From ``n`` or into it, in the document's order, each once."""
        return [self.entries[i] for i in sorted({*self.src.get(n, ()), *self.into.get(n, ())})]


def failed(ctx: Context, entries: list[dict[str, Any]]) -> tuple[list[Failed], list[str]]:
    """Every failed connect, and what was refused with no listener anywhere."""
    opened = {(e.get("kind"), e.get("ip"), e.get("port")) for e in entries
              if e.get("state") == "open"}
    out, no_listener = [], []
    for e in entries:
        state = e.get("state")
        if state == "refused" and (e.get("kind"), e.get("ip"), e.get("port")) not in opened:
            no_listener.append(f"tcp/{e.get('port')} ({e.get('peer')})")
            continue
        if state not in ("timeout", "refused"):
            continue
        out.append(Failed(str(e.get("src")), peer_node(ctx, e),
                          "udp" if e.get("kind") == "dns-udp" else "tcp",
                          int(e.get("port") or 0), str(e.get("peer")), str(e.get("ip")),
                          "drop" if state == "timeout" else "reject"))
    return out, sorted(set(no_listener))


def group(ctx: Context, fails: list[Failed], entries: list[dict[str, Any]]) -> list[Group]:
    """One group per node a rule sits at, in the node order.

    Each port is placed on its own first, as the pair channels are (:mod:`.localize`): the
    one node and direction whose connects on that port are exactly the failing ones, among
    the connects measured (``entries``). Two rules on two ports then stay two findings even
    when their failures share a node. A port no one rule explains goes to :func:`_common`.
    """
    opened = [(_label(e), str(e.get("src")), peer_node(ctx, e)) for e in entries
              if e.get("state") == "open"]
    at: dict[str, list[Failed]] = {}
    rest: list[Failed] = []
    for label in sorted({f.label for f in fails}):
        mine = [f for f in fails if f.label == label]
        measured = {(s, d) for lab, s, d in opened if lab == label and d is not None}
        node = _one_rule(ctx, mine, measured | {(f.src, f.dst) for f in mine})
        if node is None:
            rest.extend(mine)
        else:
            at.setdefault(node, []).extend(mine)
    for g in _common(ctx, rest):
        at.setdefault(g.node, []).extend(g.fails)
    order = {n: i for i, n in enumerate(ctx.nodes)}
    return [Group(n, at[n]) for n in sorted(at, key=lambda n: order.get(n, len(order)))]


def _label(e: dict[str, Any]) -> str:
    return f"{'udp' if e.get('kind') == 'dns-udp' else 'tcp'}/{e.get('port')}"


def _one_rule(ctx: Context, fails: list[Failed],
              measured: set[tuple[str, str | None]]) -> str | None:
    """The node whose connects on one port, into it, out of it or both, are exactly
    ``fails`` among ``measured``; into first (a closed port is more often the listener's
    own firewall), then out, then both, each in the node order. None when no node fits."""
    bad = {(f.src, f.dst) for f in fails}
    if any(d is None for _, d in bad):
        # The API server or the cluster DNS: no node of its own, so only the sources
        # can hold the rule, and only one source for one rule.
        srcs = {s for s, _ in bad}
        return srcs.pop() if len(srcs) == 1 else None
    for direction in ("in", "out", "both"):
        for n in ctx.nodes:
            shape = {c for c in measured if _touches(c, n, direction)}
            if shape and shape == bad:
                return n
    return None


def _touches(c: tuple[str, str | None], node: str, direction: str) -> bool:
    src, dst = c
    return {"in": dst == node, "out": src == node}.get(direction, node in (src, dst))


def _common(ctx: Context, fails: list[Failed]) -> list[Group]:
    """The nodes the failed connects have in common, most first: a node in every one of
    its connects' failures is where the rule is. Ties go to the destination, then to the
    node order."""
    left = list(fails)
    groups: list[Group] = []
    order = {n: i for i, n in enumerate(ctx.nodes)}
    while left:
        touching: Counter[str] = Counter()
        into: Counter[str] = Counter()
        for f in left:
            for n in {f.src, f.dst} - {None}:
                touching[str(n)] += 1
            if f.dst is not None:
                into[f.dst] += 1
        node = min(touching, key=lambda n: (-touching[n], -into[n], order.get(n, 0)))
        mine = [f for f in left if node in (f.src, f.dst)]
        groups.append(Group(node, mine))
        left = [f for f in left if f not in mine]
    return groups
