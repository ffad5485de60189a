"""Why a pair has no expensive measurement: the expensive tier left it out on purpose
(``--k8s-expensive-pairs``, measure/tiers.py), which is not the same as "not measured"."""

from __future__ import annotations

from .context import Context


def not_measured(ctx: Context, pid: str, what: str) -> str:
    """The skip message for ``pid`` whose ``what`` (e.g. "1 MiB transfer") is missing."""
    tier = ctx.doc.get("expensive") or {}
    mode = str(tier.get("mode") or "all")
    if mode == "all" or pid in set(tier.get("pairs") or ()):
        return f"{pid}: {what} not measured"
    k = mode.split(":", 1)[1]
    return (f"{pid}: {what} not measured here: the expensive tier ({mode}) measures a covering "
            f"sample, every node source and destination {k} times, plus every pair ping or "
            "the DF path-MTU check flagged (--k8s-expensive-pairs all measures every pair)")
