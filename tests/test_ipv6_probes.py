"""The batched path-MTU search (probes/pathmtu.py's shell) with the real ping, over IPv6
and IPv4, in a network namespace of its own whose loopback MTU is 1400 (needs root)."""

from __future__ import annotations

import shutil

import pytest

from pytest_k8snet.probes import pathmtu

from . import own_netns


def run_in_own_netns(script: str) -> str:
    return own_netns.run_in_own_netns(script).stdout


@pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("ping") is None,
                    reason="needs unshare and ping")
def test_batched_path_mtu_search_is_exact_over_ipv6_and_ipv4() -> None:
    script = "\n".join([pathmtu.batch_prelude(0.3),
                        pathmtu.batch_command("::1", 1500, 0.3), "echo ---",
                        pathmtu.batch_command("127.0.0.1", 1500, 0.3)])
    v6, _, v4 = run_in_own_netns(script).partition("---")
    # 1400 on both: IPv6 carries a 1352-byte payload (48 header bytes), IPv4 1372 (28)
    assert pathmtu.from_batch("a", "b", v6, 1500, 0).bytes == 1400, v6
    assert pathmtu.from_batch("a", "b", v4, 1500, 0).bytes == 1400, v4
