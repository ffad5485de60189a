"""test_large_packets_to_service from a node whose overlay is blocked: the Service picks a
backend per transfer, so all of the node's transfers can land on remote (cut) backends. That is the block's knock-on, not an unknown (a real-cluster run
with vxlan-blocked on node-2 judged it unknown about a third of the time). A node's full
measurement is 9 transfers on 3 nodes, enough to tell that from a node whose every transfer
fails."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from pytest_k8snet.judge import FAILED, SKIPPED, judge

from .judged import roots

DOC = Path(__file__).parent / "data" / "diagnosis" / "flannel-wireguard-vxlan-blocked-node-2.json"
NAME = "test_large_packets_to_service"


def with_service_transfers_failing(node: str, transfers: int = 9) -> dict[str, Any]:
    """``node``'s full measurement through the Service (measure.service.SERVICE_HTTP_FULL
    transfers), every one failing."""
    doc = copy.deepcopy(json.loads(DOC.read_text()))
    mine = [e for e in doc["http"] if e["src"] == node and e["dst"] == "service"]
    doc["http"] = [e for e in doc["http"] if e not in mine] + [
        {**mine[0], "ok": False, "bytes": 0, "http_code": 0, "exit_code": 28, "mbps": 0.0,
         "error": "Failed to connect to 10.96.111.34 port 80 after 2004 ms: "
                  "Timeout was reached"} for _ in range(transfers)]
    return doc


def test_every_transfer_from_the_blocked_node_failing_is_the_blocks_knock_on() -> None:
    # node-2 reaches only its own backend: all 9 on the other two is 2.6% likely.
    j = judge(with_service_transfers_failing("node-2"))
    v = j.verdicts[(NAME, "node-2")]
    assert v.outcome == SKIPPED, v
    assert v.finding == "vxlan-blocked:node-2"
    assert [f.id for f in roots(j)] == ["vxlan-blocked:node-2"]


def test_every_transfer_from_a_healthy_node_failing_is_not_explained_away() -> None:
    # node-1 reaches two of three backends: all 9 transfers on node-2's is 0.005% likely.
    j = judge(with_service_transfers_failing("node-1"))
    v = j.verdicts[(NAME, "node-1")]
    assert v.outcome == FAILED, v
    assert v.finding != "vxlan-blocked:node-2"
