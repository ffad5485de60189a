"""Transfers: 1 MiB over HTTP from every pair's source pod to its destination pod."""

from __future__ import annotations

from ..backends import host_port
from ..probes import batch, http
from . import tiers
from .engine import Engine, PairKey
from .failures import key_id
from .readiness import Readings

ONE_MIB = 1024 * 1024
# At most this many 1 MiB transfers in flight across the cluster, whatever N: more and a
# big cluster (or the 2-core lab) times transfers out because of the probes themselves.
HTTP_TOTAL_TRANSFERS = 64


def large_http(engine: Engine, readings: Readings) -> dict[PairKey, http.HttpResult]:
    """A 1 MiB transfer from every pair's source pod to its destination pod (the
    expensive tier's pairs, :mod:`.tiers`): one curl per source runs its transfers, a
    few at a time (a process per transfer cost more CPU than the bytes on a big cluster)."""
    port = engine.backend.probe_port
    keys = tiers.expensive(engine, readings)
    sources = max(1, len({k[0] for k in keys}))
    parallel = max(1, min(batch.DEFAULT_PARALLEL, HTTP_TOTAL_TRANSFERS // sources))
    timeout = engine.settings.timeout

    def per_source(src: str, keys: list[PairKey]) -> dict[PairKey, http.HttpResult]:
        urls = {k: f"http://{host_port(engine.endpoint(k[1]).ip, port)}/1mib" for k in keys}
        argv = http.parallel_argv(list(urls.values()), connect_timeout=min(2.0, timeout),
                                  max_time=timeout, parallel=parallel)
        # Each transfer has its own deadline; the job's bounds the lanes they run in.
        ep = engine.endpoint(src)
        r = engine.batch(ep, None, [
            ("all", argv, batch.lane_length(len(keys), parallel) * (timeout + 1) + 2)])["all"]
        # curl itself did not run or was cut off: the probe's failure, every pair's.
        engine.note_failure("http-1mib", [key_id("http-1mib", k) for k in keys], ep, argv, r)
        got = http.parse_parallel(list(urls.values()), r.stdout, r.stderr, r.exit_code,
                                  expected_bytes=ONE_MIB)
        return {k: got[urls[k]] for k in keys}

    return engine.by_source("http-1mib", keys, per_source,
                            failures=lambda r: int(not r.ok))
