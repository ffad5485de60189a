"""test_large_packets_to_service from a node whose overlay is blocked: the Service picks a
backend per transfer, so all three of the node's transfers land on remote (cut) backends
about 30% of the time. That is the block's knock-on, not an unknown (a real-cluster run
with vxlan-blocked on node-2 judged it unknown about a third of the time)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from pytest_k8snet.judge import FAILED, SKIPPED, judge

from .judged import roots

DOC = Path(__file__).parent / "data" / "diagnosis" / "flannel-wireguard-vxlan-blocked-node-2.json"
NAME = "test_large_packets_to_service"


def with_service_transfers_failing(node: str) -> dict[str, Any]:
    doc = copy.deepcopy(json.loads(DOC.read_text()))
    for e in doc["http"]:
        if e["src"] == node and e["dst"] == "service":
            e.update(ok=False, bytes=0, http_code=0, exit_code=28, mbps=0.0,
                     error="Failed to connect to 10.96.111.34 port 80 after 2004 ms: "
                           "Timeout was reached")
    return doc


def test_every_transfer_from_the_blocked_node_failing_is_the_blocks_knock_on() -> None:
    j = judge(with_service_transfers_failing("node-2"))
    v = j.verdicts[(NAME, "node-2")]
    assert v.outcome == SKIPPED, v
    assert v.finding == "vxlan-blocked:node-2"
    assert [f.id for f in roots(j)] == ["vxlan-blocked:node-2"]


def test_every_transfer_from_a_healthy_node_failing_is_not_explained_away() -> None:
    # node-1 reaches two of three backends: all three transfers on node-2's is 4% likely.
    j = judge(with_service_transfers_failing("node-1"))
    v = j.verdicts[(NAME, "node-1")]
    assert v.outcome == FAILED, v
    assert v.finding != "vxlan-blocked:node-2"
