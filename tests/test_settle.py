"""The wait before the Service is measured (backends/kube/settle.py): which pods the
EndpointSlices list as ready, and the kube-proxy sync script run by a real shell and curl
against a metrics page served on 127.0.0.1:10249 in a namespace of its own."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_k8snet.backends.kube.settle import proxy_sync_script, ready_in_slices

from .own_netns import run_in_own_netns

SYNCED = """# HELP kubeproxy_sync_proxy_rules_endpoint_changes_pending Pending endpoint changes
kubeproxy_sync_proxy_rules_endpoint_changes_pending 0
kubeproxy_sync_proxy_rules_service_changes_pending 0
kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{ip_family="IPv4"} 1.7966187923255382e+09
kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{ip_family="IPv6"} 1.7966185938750656e+09
kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"} 1.7966187930770292e+09
kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv6"} 1.796618594113821e+09
"""
# An endpoint change queued and not yet written (pending 1), and one family whose last
# write is older than its last queued change.
PENDING = SYNCED.replace("endpoint_changes_pending 0", "endpoint_changes_pending 1")
BEHIND = SYNCED.replace('"IPv6"} 1.796618594113821e+09', '"IPv6"} 1.7966185900000000e+09')


def slice_of(address_type: str, *endpoints: tuple[str, bool | None]) -> dict[str, Any]:
    eps = []
    for name, ready in endpoints:
        conditions = {} if ready is None else {"ready": ready}
        eps.append({"addresses": ["10.0.0.1"], "conditions": conditions,
                    "targetRef": {"kind": "Pod", "name": name}})
    return {"addressType": address_type, "endpoints": eps}


def test_ready_in_slices_per_address_type() -> None:
    slices: list[dict[str, Any]] = [slice_of("IPv4", ("p1", True), ("p2", False), ("p3", None)),
              slice_of("IPv4", ("p4", True)),
              slice_of("IPv6", ("p1", True)),
              {"addressType": "IPv6", "endpoints": None}]
    # unset ready counts as ready (the API's default); not-ready endpoints do not
    assert ready_in_slices(slices) == {"IPv4": {"p1", "p3", "p4"}, "IPv6": {"p1"}}
    assert ready_in_slices([]) == {}


def run_sync(tmp_path: Path, metrics: str | None, tries: int) -> str:
    """The script in a namespace of its own, with ``metrics`` served where kube-proxy's are
    (no server when None)."""
    setup = ""
    if metrics is not None:
        (tmp_path / "metrics").write_text(metrics)
        server = (f"cd {shlex.quote(str(tmp_path))} && {shlex.quote(sys.executable)} -m "
                  "http.server --bind 127.0.0.1 10249 >/dev/null 2>&1 &\n"
                  "for i in $(seq 50); do curl -s -o /dev/null 127.0.0.1:10249/metrics "
                  "&& break; sleep 0.1; done\n")
        setup = server
    res = run_in_own_netns(proxy_sync_script(tries) + "\nkill %1 2>/dev/null; exit 0\n", setup)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


@pytest.mark.parametrize(("metrics", "said"), [(SYNCED, "proxy-sync:synced"),
                                               (PENDING, "proxy-sync:pending"),
                                               (BEHIND, "proxy-sync:pending"),
                                               (None, "")])
def test_proxy_sync_script(tmp_path: Path, metrics: str | None, said: str) -> None:
    out = run_sync(tmp_path, metrics, tries=4)
    assert out == said
