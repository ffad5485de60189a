"""Reachability: small pings over every selected pair, one batched exec per source."""

from __future__ import annotations

from ..backends import Network
from ..probes import ping
from .engine import Engine, PairKey


def pings(engine: Engine, network: Network = "pod", payload: int = 56,
          to: Network | None = None) -> dict[PairKey, ping.PingResult]:
    """Small (or ``payload``-sized) pings over every selected pair, one exec per source:
    from ``network``'s endpoint on the source to ``to``'s (the same network by default)
    on the destination."""
    to = to or network
    kind = f"ping-{network}-{payload}" if to == network else f"ping-{network}-{to}-{payload}"
    # Into the host network (node to node, pod to node), the pairs whose pod ping lost
    # some echoes take the bigger sample too: whether those paths lose them as well tells
    # loss of all traffic at a node, or of its pods' own path, from the overlay's alone;
    # 3 echoes of a path losing 20% all cross half the time.
    lossy = set() if to != "host" else {
        k for k, r in pings(engine, "pod", payload).items() if r.any_reply and not r.ok}

    wide: set[PairKey] = set()  # pairs measured with the bigger sample from the start

    def per_source(src: str, keys: list[PairKey]) -> dict[PairKey, ping.PingResult]:
        ep = engine.endpoint(src, network)
        ips = {k: engine.endpoint(k[1], to).ip for k in keys}

        def measure(todo: list[PairKey], big: bool) -> dict[PairKey, ping.PingResult]:
            # No ``timeout`` around each ping (None): ping ends on its own (numeric
            # address, a count, -W bounds the wait for the last reply), and a ``timeout``
            # process per ping was 40% of the pings' CPU on a big lab (4 pings per pair,
            # 65,000 on 128 nodes). The exec keeps its bound (batch.exec_timeout).
            runs = engine.batch(ep, kind, [
                (k, ping.argv(ips[k], count=10 if big or k in wide else 3, payload=payload,
                              wait=1.0, interval=0.1 if big or k in wide else 0.2),
                 None) for k in todo])
            return {k: ping.parse(ips[k], payload, False, r.stdout, r.stderr)
                    for k, r in runs.items()}

        out = measure(keys, False)
        # A lost echo on a busy machine is not a broken path: measure a suspect pair
        # again with a bigger sample, which decides (3 pings cannot tell 5% from 33%).
        suspect = [k for k in keys if not out[k].ok or k in lossy]
        if suspect:
            out.update(measure(suspect, True))
        return out

    def neighbours(got: dict[PairKey, ping.PingResult]) -> list[PairKey]:
        """Pod to pod, the pairs beside one that loses echoes (sharing a node with it) that
        3 echoes called clean: 3 echoes of a path losing 20% all cross half the time, and
        where the loss sits is told by which of a node's pairs lose."""
        ends = {n for k, r in got.items() if r.any_reply and not r.ok for n in k}
        more = [k for k, r in got.items() if r.ok and r.transmitted < 10 and set(k) & ends]
        wide.update(more)
        return more

    return engine.by_source(kind, engine.pairs(), per_source,
                            widen=neighbours if (network, to) == ("pod", "pod") else None)
