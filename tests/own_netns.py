"""A shell script run in a network namespace of its own (``unshare -n``), lo at 1400 bytes:
real tools against each other on one machine, skipped where no namespace can be made."""

from __future__ import annotations

import subprocess

import pytest


def run_in_own_netns(script: str, setup: str = "", timeout: float = 60
                     ) -> subprocess.CompletedProcess[str]:
    """``script`` after lo is up at MTU 1400 and ``setup`` (exit 97 there: no namespace)."""
    first = "ip link set lo up && ip link set lo mtu 1400 || exit 97\n" + setup
    try:
        res = subprocess.run(["unshare", "-n", "sh", "-c", first + script],
                             capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"no network namespace of our own: {exc}")
    if res.returncode == 97 or "Operation not permitted" in res.stderr:
        pytest.skip(f"no network namespace of our own: {res.stderr.strip()[:200]}")
    return res
