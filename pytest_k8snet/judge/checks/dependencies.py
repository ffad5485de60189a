"""What rests on what: the dependency model that turns a failure a failed dependency
explains into a knock-on of that dependency's root, instead of a cause of its own.

- A request by name (egress to a URL, a Service by name) rests on cluster DNS from the
  node it runs on: when every error is a name-resolution failure and test_dns failed or
  skipped on that node, the request never reached the network it was meant to test.
- Cluster DNS from a node rests on the pod paths to the nodes its endpoints sit on
  (``dns_endpoints``); :mod:`.dns` judges that one, through
  :meth:`Context.behind`.

A knock-on names the root (the finding at the end of the ``root`` chain) and points at
the test that fails on it, so a person fixes one thing, not four.
"""

from __future__ import annotations

from collections.abc import Iterable

from .. import knock_ons
from ..context import Context
from ..model import Finding
from .dns import NAME as DNS_TEST
# curl's own words (exit 6 and a resolver timeout under exit 28): no connection was tried.
RESOLUTION_ERRORS = ("Resolving timed out", "Could not resolve host")


def resolution_only(errors: Iterable[str]) -> bool:
    """True when there are errors and every one is a name-resolution failure.

    The probes keep the distinct messages only (up to 3): a fourth kind could hide behind
    them, which is why a knock-on says what would contradict it.
    """
    errors = [str(e) for e in errors]
    return bool(errors) and all(e.startswith(RESOLUTION_ERRORS) for e in errors)


def resolution_text(errors: Iterable[str]) -> str:
    """How the lookups failed, in words: timed out (no DNS answer) or not resolved."""
    errors = list(errors)
    if all(str(e).startswith("Resolving timed out") for e in errors):
        return "timed out resolving the name"
    return "could not resolve the name"


def dns_dependency(ctx: Context, node: str) -> Finding | None:
    """The finding cluster DNS from ``node`` failed or skipped on, when it is a DNS one
    (a probe that could not run says nothing about what a lookup elsewhere would do)."""
    v = ctx.verdicts.get((DNS_TEST, node))
    f = ctx.findings.get(v.finding) if v is not None and v.finding else None
    return f if f is not None and f.cause == "dns" else None


def dns_knock_on(ctx: Context, test: str, node: str, kind: str, what: str,
                 dep: Finding) -> Finding:
    """The finding for ``what`` failing on ``node`` because cluster DNS from there fails:
    a knock-on of DNS's root, whose fix is the root's."""
    via = ("" if knock_ons.root_of(ctx, dep).id == dep.id else
           f"cluster DNS from {node} fails ({DNS_TEST}[{node}])")
    return knock_ons.knock_on(
        ctx, f"{kind}-knock-on:{node}", kind, what, dep, test, nodes=(node,), pairs=dep.pairs,
        via=via, contradict=(f"a request from {node} that resolved the name and still failed",
                             "an error other than a name-resolution failure"))


def dns_endpoint_behind(ctx: Context, node: str) -> tuple[str, Finding] | None:
    """A node holding a cluster DNS endpoint that ``node``'s pods cannot reach, and the
    finding of the pair that already fails between them (None when every one is in reach):
    lookups sent there time out as that finding's knock-ons."""
    for m in sorted(set(ctx.dns_endpoints.values())):
        f = ctx.behind(node, m) if m != node else None
        if f is not None:
            return m, f
    return None
