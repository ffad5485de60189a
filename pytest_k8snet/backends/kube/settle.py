"""Waiting until the probe Service is programmed before it is measured.

A probe pod is Ready before the cluster routes to it: the EndpointSlice controller adds it
to the Service's slices, then every node's kube-proxy writes its rules. Measured in between,
a node's requests never reach the missing backend (they go to the others), so the Service
check reads "backend never answered" with nothing on the network to blame. Seen under CI
load: a node's own probe missing from its kube-proxy's rules for the whole Service check.

Two waits, both bounded and both optional: the slices (one list per poll; a run without
the right to list them goes on at once), then each node's kube-proxy, asked through its
metrics in the host-network probe's readiness exec (no extra exec).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from .. import BackendError
from .api import KubeApi
from .manifests import RunNames

SLICE_WAIT_SECONDS = 30.0
SLICE_POLL_SECONDS = 0.5
# kube-proxy's metrics address (metricsBindAddress, 127.0.0.1:10249 by default).
PROXY_METRICS = "http://127.0.0.1:10249/metrics"
PROXY_SYNC_INTERVAL_S = 0.5
PROXY_SYNC_TRIES = 20
PROXY_SYNC_WAIT_S = PROXY_SYNC_TRIES * PROXY_SYNC_INTERVAL_S  # ~10 s at most
# The exec's worst case on top of the readiness check: every try timing out.
PROXY_SYNC_SECONDS = PROXY_SYNC_TRIES * 1.5


def ready_in_slices(slices: Iterable[dict[str, Any]]) -> dict[str, set[str]]:
    """Pod names each address type's slices list as ready (``{"IPv4": {...}, ...}``)."""
    ready: dict[str, set[str]] = {}
    for item in slices:
        names = ready.setdefault(str(item.get("addressType") or ""), set())
        for ep in item.get("endpoints") or []:
            ref = ep.get("targetRef") or {}
            # ready unset means ready (the API's documented default)
            if (ep.get("conditions") or {}).get("ready") is not False and ref.get("name"):
                names.add(str(ref["name"]))
    return ready


def wait_for_slices(api: KubeApi, names: RunNames, pods: Iterable[str],
                    seconds: float = SLICE_WAIT_SECONDS) -> bool:
    """Until every one of ``pods`` is a ready endpoint in every address type's slices of
    the probe Service, at most ``seconds``. False when it did not get there (or could not
    read slices): the Service check then may see a backend missing that is only late."""
    want = set(pods)
    if not want:
        return True
    deadline = time.monotonic() + seconds
    selector = f"kubernetes.io/service-name={names.service_name}"
    while True:
        try:
            data = api.read(f"list endpointslices in {names.namespace}",
                            api.discovery().list_namespaced_endpoint_slice, names.namespace,
                            label_selector=selector)
        except BackendError:
            return False
        ready = ready_in_slices(data.get("items") or [])
        if ready and all(want <= got for got in ready.values()):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(SLICE_POLL_SECONDS)


def proxy_sync_script(tries: int = PROXY_SYNC_TRIES) -> str:
    """Shell lines for the host-network probe: wait (~10 s at most) until kube-proxy says it
    has programmed every change it has seen, twice in a row 0.5 s apart (a change it has
    not heard of yet would otherwise look synced). No kube-proxy metrics (another proxy,
    another port) or no curl or awk in the image: go on at once. Prints ``proxy-sync:synced``
    or ``proxy-sync:pending``."""
    awk = ("/^kubeproxy_sync_proxy_rules_(endpoint|service)_changes_pending /{p+=$2} "
           "/^kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds/"
           "{k=$1; sub(/^[^{]*/,\"\",k); q[k]=$2+0} "
           "/^kubeproxy_sync_proxy_rules_last_timestamp_seconds/"
           "{k=$1; sub(/^[^{]*/,\"\",k); t[k]=$2+0} "
           "END{ok=(p==0); for(k in q) if(!(k in t) || t[k]<q[k]) ok=0; print ok}")
    return "\n".join([
        "if command -v curl >/dev/null 2>&1 && command -v awk >/dev/null 2>&1; then "
        "i=0; n=0; s=none",
        f"while [ $i -lt {tries} ]; do",
        f"  m=$(curl -s --connect-timeout 0.5 -m 1 {PROXY_METRICS} 2>/dev/null) || break",
        f"  if [ \"$(printf '%s\\n' \"$m\" | awk '{awk}')\" = 1 ]; then n=$((n+1)); "
        "else n=0; fi",
        "  if [ $n -ge 2 ]; then s=synced; break; fi",
        f"  s=pending; i=$((i+1)); sleep {PROXY_SYNC_INTERVAL_S}",
        "done",
        '[ "$s" = none ] || echo "proxy-sync:$s"; fi',
    ])

