"""Regressions against a previous results file (``--k8s-baseline PATH``).

A regression is, for what both runs measured:

- ``pair``: a pair whose small pings all came back in the baseline and now lose some
  (per network, pod and host);
- ``path_mtu``: a path MTU that shrank;
- ``throughput``: UDP throughput across the overlay down by more than
  ``--k8s-baseline-tolerance`` percent (default 20);
- ``failure_rate``: an egress (per node and network) or Service (per node) failure
  rate that rose.

Pairs and nodes only one run measured are counted as not compared, never as
regressions. Any regression makes the run fail (exit status 1), after every test ran.
"""

from __future__ import annotations

import json
from itertools import compress
from operator import itemgetter, ne
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..gcpause import no_cyclic_gc
from . import columns
from .schema import SCHEMA, VERSION
from .view import natural_key

KINDS = ("pair", "path_mtu", "throughput", "failure_rate")
# The sections compare() reads: a baseline without any of them compares nothing.
COMPARED_SECTIONS = ("ping", "path_mtu", "throughput", "egress", "service")
KIND_TITLES = {"pair": "pair now failing", "path_mtu": "path MTU shrank",
               "throughput": "throughput dropped", "failure_rate": "failure rate rose"}


class BaselineError(ValueError):
    """The baseline file cannot be used; the message says why."""


@dataclass(frozen=True)
class Change:
    """One compared value that got worse (a regression) or better (an improvement)."""

    kind: str
    before: Any
    after: Any
    message: str
    src: str | None = None
    dst: str | None = None
    node: str | None = None
    network: str | None = None

    @property
    def subject(self) -> str:
        who = f"{self.src}->{self.dst}" if self.src and self.dst else (self.node or "?")
        return who + (f" ({self.network})" if self.network else "")

    def shown(self, value: Any) -> str:
        """``before`` or ``after`` with its unit, for people."""
        if self.kind == "path_mtu":
            return f"{value} bytes"
        if self.kind == "throughput":
            return f"{float(value):.2f} Mbit/s"
        if self.kind == "failure_rate":
            return _pct(float(value))
        return str(value)

    @property
    def pair(self) -> str | None:
        return f"{self.src}->{self.dst}" if self.src and self.dst else None


@dataclass
class Comparison:
    path: str
    baseline: dict[str, Any]
    tolerance_pct: float
    compared: int = 0
    not_compared: int = 0
    regressions: list[Change] = field(default_factory=list)
    improvements: list[Change] = field(default_factory=list)

    @property
    def regressed_pairs(self) -> list[str]:
        """Pair ids (``a->b``) named by any regression, in first-seen order."""
        return list(dict.fromkeys(c.pair for c in self.regressions if c.pair))

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "time": self.baseline.get("time"),
                "cluster": self.baseline.get("cluster"), "tolerance_pct": self.tolerance_pct,
                "compared": self.compared, "not_compared": self.not_compared,
                "regressions": [asdict(c) for c in self.regressions],
                "improvements": [asdict(c) for c in self.improvements]}


def load(path: str | Path) -> dict[str, Any]:
    """Read and check a results file; :class:`BaselineError` if it cannot serve as baseline."""
    with no_cyclic_gc():  # millions of parsed objects at 1,000 nodes
        return _load(path)


def _load(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except OSError as exc:
        raise BaselineError(f"--k8s-baseline {p}: cannot read it ({exc.strerror})") from None
    except ValueError as exc:
        raise BaselineError(f"--k8s-baseline {p}: not JSON ({exc})") from None
    if isinstance(doc, dict):
        # A large run's file holds its long sections as columns: those compared are read
        # back; the others (four million verdicts at 1,000 nodes) stay as they are, read
        # by nothing here (columns.expand gives them back).
        try:
            columns.expand(doc, COMPARED_SECTIONS)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise BaselineError(f"--k8s-baseline {p}: a section written as columns cannot "
                                f"be read back ({type(exc).__name__}: {exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise BaselineError(f"--k8s-baseline {p}: not a pytest-k8snet results file (no "
                            f"\"schema\": \"{SCHEMA}\"); write one with --k8s-results")
    version = doc.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise BaselineError(f"--k8s-baseline {p}: results version {version!r} is newer than "
                            f"this pytest-k8snet reads ({VERSION}); upgrade pytest-k8snet")
    if not any(doc.get(section) for section in COMPARED_SECTIONS):
        # The right schema but nothing measured (a run whose tests all skipped, or -k on a
        # check that measures nothing comparable): every comparison would pass unseen.
        raise BaselineError(f"--k8s-baseline {p}: the file has no measurements "
                            f"({', '.join(COMPARED_SECTIONS)} are all empty), so nothing "
                            "could be compared with it; write the baseline with a run that "
                            "probes the cluster (the built-in suite with --k8s-results)")
    return doc


def nothing_compared(comparison: "Comparison | None", path: str) -> str | None:
    """Why a requested baseline comparison compared nothing (None when it compared some).

    A run that measured nothing, or measured pairs and nodes the baseline never saw, has
    no regressions by construction; that must fail, not pass.
    """
    if comparison is None:
        return (f"--k8s-baseline {path}: nothing compared, this run measured nothing "
                "comparable (no pings, path MTU, throughput, egress or Service results)")
    if comparison.compared == 0:
        before = comparison.baseline.get("nodes") or []
        return (f"--k8s-baseline {path}: nothing compared, the baseline and this run have no "
                f"pair or node measured in common (baseline nodes: "
                f"{', '.join(map(str, before)) or 'none'})")
    return None


def check_option(baseline: str | None) -> None:
    """At configure time: a baseline that cannot be used is a usage error before any test."""
    if baseline:
        try:
            load(baseline)
        except BaselineError as exc:
            raise pytest.UsageError(f"k8snet: {exc}") from None


def _by_key(entries: list[dict[str, Any]], *key: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    # map(), not a generator per entry: a million pairs at 1,000 nodes, on both sides.
    return {tuple(map(e.get, key)): e for e in entries if isinstance(e, dict)}


def _aligned(before: list[Any], after: list[Any], key: tuple[str, ...], fields: tuple[str, ...]
             ) -> list[tuple[tuple[Any, ...], dict[str, Any], dict[str, Any]]] | None:
    """The entries whose ``fields`` changed, when both sides hold the same entries in the
    same order (a run against the baseline of the same cluster: the usual case); None
    when they do not, or an entry lacks a key or field (then :func:`_by_key` pairs them).

    At 1,000 nodes each side is two million pings: a dict of tuple keys a side and a
    Python step per pair took seconds; here the C loops of itemgetter and map do it and
    Python only sees the pairs that changed.
    """
    if len(key) < 2 or len(before) != len(after) or not after \
            or set(map(type, before)) | set(map(type, after)) != {dict}:
        return None
    try:
        keys, values = itemgetter(*key), itemgetter(*fields)
        ka = list(map(keys, after))
        if list(map(keys, before)) != ka or len(set(ka)) != len(ka):
            return None
        changed = compress(range(len(after)), map(ne, map(values, before),
                                                  map(values, after)))
        return [(ka[i], before[i], after[i]) for i in changed]
    except (KeyError, TypeError):  # a missing key or field, an unhashable key
        return None


def _fmt_loss(e: dict[str, Any]) -> str:
    rtt = e.get("rtt_ms")
    return f"{e.get('loss_pct', 100):g}% loss" + (f", rtt {rtt:g} ms" if rtt is not None else "")


def _pct(rate: float) -> str:
    return f"{100 * rate:.1f}%".replace(".0%", "%")


def compare(before: dict[str, Any], after: dict[str, Any], tolerance_pct: float,
            path: str = "") -> Comparison:
    """What got worse (and better) from ``before`` to ``after``; see the module docstring."""
    with no_cyclic_gc():  # a million pairs a side at 1,000 nodes, no cycles
        return _compare(before, after, tolerance_pct, path)


def _compare(before: dict[str, Any], after: dict[str, Any], tolerance_pct: float,
             path: str) -> Comparison:
    c = Comparison(path=path, baseline=before, tolerance_pct=tolerance_pct)

    def both(section: str, *key: str, fields: tuple[str, ...]) -> list[
            tuple[tuple[Any, ...], dict[str, Any], dict[str, Any]]]:
        """The entries of ``section`` both runs measured, paired by ``key``; only those
        whose ``fields`` (what the comparison reads) differ are returned, all counted."""
        bl, al = list(before.get(section) or []), list(after.get(section) or [])
        aligned = _aligned(bl, al, key, fields)
        if aligned is not None:
            c.compared += len(al)
            return aligned
        b = _by_key(bl, *key)
        a = _by_key(al, *key)
        c.not_compared += len(set(b) ^ set(a))
        common = [k for k in a if k in b]
        c.compared += len(common)
        return [(k, b[k], a[k]) for k in common]

    for (src, dst, net), b, a in both("ping", "src", "dst", "network",
                                         fields=("loss_pct", "rtt_ms")):
        was_ok = b.get("loss_pct") == 0 and b.get("rtt_ms") is not None
        now_ok = a.get("loss_pct") == 0 and a.get("rtt_ms") is not None
        if was_ok and not now_ok:
            c.regressions.append(Change("pair", _fmt_loss(b), _fmt_loss(a),
                                        f"{src}->{dst} ({net}): passed in the baseline "
                                        f"({_fmt_loss(b)}), now fails ({_fmt_loss(a)})",
                                        src=src, dst=dst, network=net))
        elif now_ok and not was_ok:
            c.improvements.append(Change("pair", _fmt_loss(b), _fmt_loss(a),
                                         f"{src}->{dst} ({net}): failed in the baseline, now "
                                         "passes", src=src, dst=dst, network=net))

    for (src, dst, net), b, a in both("path_mtu", "src", "dst", "network",
                                         fields=("bytes",)):
        bb, ab = int(b.get("bytes") or 0), int(a.get("bytes") or 0)
        if ab < bb:
            c.regressions.append(Change("path_mtu", bb, ab, f"{src}->{dst} ({net}): path MTU "
                                        f"shrank from {bb} to {ab} bytes ({ab - bb:+d})",
                                        src=src, dst=dst, network=net))
        elif ab > bb:
            c.improvements.append(Change("path_mtu", bb, ab, f"{src}->{dst} ({net}): path MTU "
                                         f"grew from {bb} to {ab} bytes", src=src, dst=dst,
                                         network=net))

    for (src, dst), b, a in both("throughput", "src", "dst",
                                  fields=("mbps",)):
        bm, am = float(b.get("mbps") or 0.0), float(a.get("mbps") or 0.0)
        net = str(a.get("network") or "pod")
        if bm > 0 and am < bm * (1 - tolerance_pct / 100):
            drop = 100 * (bm - am) / bm
            why = f" ({a['error']})" if a.get("error") else ""
            c.regressions.append(Change("throughput", round(bm, 2), round(am, 2),
                                        f"{src}->{dst}: UDP throughput {bm:.2f} -> {am:.2f} "
                                        f"Mbit/s, down {drop:.0f}% (tolerance "
                                        f"{tolerance_pct:g}%){why}", src=src, dst=dst,
                                        network=net))
        elif am > 0 and (bm == 0 or am > bm * (1 + tolerance_pct / 100)):
            c.improvements.append(Change("throughput", round(bm, 2), round(am, 2),
                                         f"{src}->{dst}: UDP throughput {bm:.2f} -> {am:.2f} "
                                         "Mbit/s", src=src, dst=dst, network=net))

    rates = [(k, b, a, "egress") for k, b, a in both("egress", "node", "network",
                                                            fields=("failure_rate",))]
    rates += [((k[0], "service"), b, a, "Service") for k, b, a in both("service", "node",
                                                                fields=("failure_rate",))]
    for (node, net), b, a, what in rates:
        br, ar = float(b.get("failure_rate") or 0.0), float(a.get("failure_rate") or 0.0)
        where = f"{node} ({net})" if what == "egress" else node
        if round(ar, 4) > round(br, 4):
            c.regressions.append(Change("failure_rate", round(br, 4), round(ar, 4),
                                        f"{where}: {what} failure rate rose from {_pct(br)} to "
                                        f"{_pct(ar)}", node=node,
                                        network=net if what == "egress" else "service"))
        elif round(ar, 4) < round(br, 4):
            c.improvements.append(Change("failure_rate", round(br, 4), round(ar, 4),
                                         f"{where}: {what} failure rate fell from {_pct(br)} to "
                                         f"{_pct(ar)}", node=node,
                                         network=net if what == "egress" else "service"))
    order = {k: i for i, k in enumerate(KINDS)}

    def key(ch: Change) -> tuple[Any, ...]:
        return (order.get(ch.kind, 99), natural_key(ch.src or ch.node or ""),
                natural_key(ch.dst or ""), ch.network or "")

    c.regressions.sort(key=key)
    c.improvements.sort(key=key)
    return c
