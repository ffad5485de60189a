"""The engine every measurement runs on: probes run concurrently, once per run.

It runs a probe (alone, or many from one endpoint in ONE exec: probes/batch.py), notes a
probe's own failure against the measurement that ran it so that nobody reads it as the
network's, and fans a measurement out over a thread pool: per key (:meth:`Engine.each`) or
per source node (:meth:`Engine.by_source`), each cached once per run
(:class:`~.cache.MeasurementCache`), with a second chance for what failed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from threading import Lock, local
from typing import Any, TypeVar

from ..backends import Backend, Endpoint, ExecResult, Network, Node
from ..options import Settings
from ..probes import batch
from ..selection import select_pairs
from ..text import shorten_start
from .cache import MeasurementCache
from .failures import exec_failure, key_id

T = TypeVar("T")
K = TypeVar("K")
PairKey = tuple[str, str]
# What one item of a batch may be: an argv, shell text, or shell text with its argv.
BatchCommand = Sequence[str] | str | batch.Job
BatchItem = tuple[Any, BatchCommand, float | None]
# Threads for the measurements' fan-out: every node's exec waits on the network, not the CPU.
POOL_WORKERS = 48


def second_chance(first: dict[K, T], failures: Callable[[T], int],
                  measure: Callable[[list[K]], dict[K, T]]) -> dict[K, T]:
    """``first`` with every result that has ``failures`` measured once more; the second
    result stands unless it failed more (one that fails twice keeps its later failure, as
    the UDP rounds do). A broken path fails both times; a transfer that a starved machine
    cut off once rarely fails twice, and a healthy cluster costs nothing extra."""
    redo = [k for k, r in first.items() if failures(r)]
    if not redo:
        return first
    second = measure(redo)
    return {k: (second[k] if k in second and failures(second[k]) <= failures(r) else r)
            for k, r in first.items()}


class Engine:
    """Runs probes on ``backend``'s endpoints for the selected ``nodes``, counted and noted."""

    def __init__(self, backend: Backend, settings: Settings, nodes: list[Node],
                 all_nodes: list[Node], cache: MeasurementCache) -> None:
        self.backend = backend
        self.settings = settings
        self.nodes = nodes
        self.all_nodes = all_nodes
        self.cache = cache
        self.probe_count = 0
        # Probe runs that failed for a reason of their own (tool missing, exec error, timeout):
        # kind -> key -> failures. Filled while measuring, read into the measurement document.
        self.probe_failures: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self._lock = Lock()
        self._pool = ThreadPoolExecutor(max_workers=POOL_WORKERS)
        # The (kind, key) the calling thread measures, for exec() to note failures against.
        self._tag = local()

    # -- the cluster's nodes and endpoints ------------------------------------------------

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def node(self, name: str) -> Node:
        for n in self.all_nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def endpoint(self, node: str, network: Network = "pod") -> Endpoint:
        return self.backend.endpoint(node, network)

    def pairs(self, mode: str | None = None) -> list[PairKey]:
        return select_pairs(self.node_names, mode or self.settings.pairs)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- running probes -------------------------------------------------------------------

    def run(self, ep: Endpoint, argv: Sequence[str], timeout: float | None = None
            ) -> tuple[int, str, str]:
        res = self.exec(ep, argv, timeout)
        return res.exit_code, res.stdout, res.stderr

    def exec(self, ep: Endpoint, argv: Sequence[str], timeout: float | None = None
             ) -> ExecResult:
        """Run a probe; a failure of the probe itself is noted against the measurement
        (kind and key) the calling thread is taking, so nobody reads it as the network's."""
        with self._lock:
            self.probe_count += 1
        res = ep.run(argv, timeout)
        tag = getattr(self._tag, "value", None)
        if tag is not None:
            self.note_failure(tag[0], [tag[1]], ep, argv, res)
        return res

    def note_failure(self, kind: str, keys: Sequence[str], ep: Endpoint, argv: Sequence[str],
                     res: ExecResult) -> None:
        """If ``res`` failed for a reason of its own (failures.exec_failure), note it against
        ``(kind, key)`` for every key it measured; a network verdict is not noted."""
        failure = exec_failure(res)
        if failure is None:
            return
        entry = {"failure": failure, "node": ep.node, "network": ep.network,
                 "tool": argv[0] if argv else "", "exit_code": res.exit_code,
                 "timed_out": res.timed_out, "seconds": round(res.seconds, 2),
                 "detail": shorten_start(res.stderr.strip() or res.stdout.strip(), 300)}
        with self._lock:
            for key in keys:
                self.probe_failures.setdefault(kind, {}).setdefault(key, []).append(dict(entry))

    def noted_failures(self) -> list[dict[str, Any]]:
        """Every failure noted so far, one flat entry each, ordered by kind and key."""
        out = []
        with self._lock:
            for kind, by_key in sorted(self.probe_failures.items()):
                for key, entries in sorted(by_key.items()):
                    out += [{"measurement": kind, "key": key, **e} for e in entries]
        return out

    def batch(self, ep: Endpoint, kind: str | None, items: Sequence[BatchItem],
              parallel: int = batch.DEFAULT_PARALLEL, prelude: str = "", slack: float = 10.0,
              setup: str = "") -> dict[Any, ExecResult]:
        """Run many probes in ``ep`` in ONE exec (probes/batch.py) and give each its own
        result, as if it had run alone: ``items`` are ``(key, argv or shell text, timeout)``.

        A probe that failed for a reason of its own is noted against ``(kind, key)`` like
        :meth:`exec` notes it (``kind=None``: not noted, e.g. servers)."""
        jobs = []
        for i, (_, cmd, timeout) in enumerate(items):
            if isinstance(cmd, batch.Job):  # shell text with the argv it stands for
                job = batch.Job(f"j{i}", cmd.command, cmd.argv, timeout, cmd.simple)
            elif isinstance(cmd, str):
                job = batch.Job(f"j{i}", cmd, ("sh",), timeout)
            else:
                job = batch.Job.of(f"j{i}", cmd, timeout)
            jobs.append(job)
        if not jobs and not setup:
            return {}
        with self._lock:
            self.probe_count += len(jobs)
        res = ep.run(batch.argv(jobs, parallel, prelude, setup),
                     batch.exec_timeout(jobs, parallel, self.settings.timeout, slack))
        parsed = batch.parse(jobs, res.stdout)
        out: dict[Any, ExecResult] = {}
        for (key, _, _), job in zip(items, jobs):
            r = parsed[job.key]
            if r.framed:
                one = ExecResult(job.argv, r.exit_code, r.stdout, r.stderr, res.seconds,
                                 r.timed_out)
            else:
                # No result came back for this probe: the exec itself failed (timed out,
                # interrupted, no sh) or the runner did (no scratch dir). Either way the
                # probe's own failure (126: could not run), never evidence about the network.
                code = res.exit_code if (res.timed_out or res.exit_code < 0 or res.exit_code
                                         in (126, 127, 130, 143)) else 126
                one = ExecResult(job.argv, code, "", "batch runner gave no result for this "
                                 f"probe (exit {res.exit_code}): "
                                 + shorten_start(res.stderr.strip() or res.stdout.strip(), 300),
                                 res.seconds, res.timed_out)
            out[key] = one
            if kind is not None:
                self.note_failure(kind, [key_id(kind, key)], ep, job.argv, one)
        return out

    # -- fan-out --------------------------------------------------------------------------

    def map(self, fn: Callable[[K], T], items: Sequence[K], workers: int | None = None
            ) -> list[T]:
        """``fn`` over ``items`` at once, in order: on the shared pool, or with ``workers``
        on a pool of its own (for tasks that must all run at the same time)."""
        if workers is None:
            return list(self._pool.map(fn, items))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fn, items))

    def tagged(self, kind: str, one: Callable[[K], T]) -> Callable[[K], T]:
        """``one`` with the calling thread tagged by (kind, key) for :meth:`exec`."""
        def run(key: K) -> T:
            self._tag.value = (kind, key_id(kind, key))
            try:
                return one(key)
            finally:
                self._tag.value = None

        return run

    def each(self, kind: str, keys: Sequence[K], one: Callable[[K], T],
             failures: Callable[[T], int] | None = None,
             redo: Callable[[K], T] | None = None) -> dict[K, T]:
        """Measure ``one(key)`` for every key at once on the pool, once per run. With
        ``failures``, the keys whose result has any are measured once more with ``redo``
        (default ``one``; :func:`second_chance`)."""
        def each(fn: Callable[[K], T], todo: Sequence[K]) -> dict[K, T]:
            tagged = self.tagged(kind, fn)
            return dict(zip(todo, self.map(tagged, todo)))

        def compute() -> dict[K, T]:
            first = each(one, keys)
            if failures is None:
                return first
            return second_chance(first, failures, lambda todo: each(redo or one, todo))

        return self.cache.once(kind, compute)

    def by_source(self, kind: str, keys: Sequence[PairKey],
                  per_source: Callable[[str, list[PairKey]], dict[PairKey, T]],
                  failures: Callable[[T], int] | None = None,
                  widen: Callable[[dict[PairKey, T]], list[PairKey]] | None = None
                  ) -> dict[PairKey, T]:
        """Measure every pair once per run, one task (one batched exec) per source node;
        results keep the order of ``keys``. With ``failures``, the pairs whose result has
        any are measured once more (:func:`second_chance`); with ``widen``, the pairs it
        picks from the results are measured once more and those results stand (a bigger
        sample next to trouble the first pass saw)."""
        def by_source(todo: Sequence[PairKey]) -> dict[PairKey, T]:
            groups: dict[str, list[PairKey]] = {}
            for key in todo:
                groups.setdefault(key[0], []).append(key)
            merged: dict[PairKey, T] = {}
            for part in self.map(lambda src: per_source(src, groups[src]), list(groups)):
                merged.update(part)
            return {key: merged[key] for key in todo}

        def compute() -> dict[PairKey, T]:
            first = by_source(keys)
            if failures is not None:
                first = second_chance(first, failures, by_source)
            more = widen(first) if widen is not None else []
            return {**first, **by_source(more)} if more else first

        return self.cache.once(kind, compute)
