"""How a probe run failed for a reason of its own, and the measurement key it is noted under."""

from __future__ import annotations

from typing import Any

from ..backends import ExecResult
from ..probes.iperf import EXEC_ERROR, INTERRUPTED, TIMEOUT, TOOL_MISSING

PAIR_KINDS = ("ping-", "pmtu-", "http-1mib", "udp")


def key_id(kind: str, key: Any) -> str:
    """A measurement key as text: ``node-1->node-2`` for a pair, ``node-1/pod`` otherwise."""
    if isinstance(key, tuple):
        return ("->" if kind.startswith(PAIR_KINDS) else "/").join(str(k) for k in key)
    return str(key)


def exec_failure(res: ExecResult) -> str | None:
    """How a probe run failed *for a reason of its own*, or None when the tool ran and its
    exit status is its verdict on the network (ping exit 1, curl 28 and so on)."""
    text = f"{res.stderr}\n{res.stdout}".lower()
    if res.timed_out:
        return TIMEOUT
    if res.exit_code == 0:
        return None
    if res.exit_code == 127 or "executable file not found" in text or (
            "exec of" in text and "no such file" in text) or "command not found" in text:
        return TOOL_MISSING
    if res.exit_code < 0 or res.exit_code in (130, 143) or "has terminated" in text:
        return INTERRUPTED
    if res.exit_code == 126 or "cannot open network namespace" in text \
            or "oci runtime" in text or "unable to upgrade connection" in text:
        return EXEC_ERROR
    return None
