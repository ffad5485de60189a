"""Knock-ons: a failure that a root finding explains is filed inside that root, never as
a cause of its own ("one fault, one finding").

Every knock-on reads the same way: what failed, what it rests on when that is not the root
itself (``via``: "cluster DNS from node-2 fails (test_dns[node-2])"), then "a knock-on of
<root> (see <the test the root fails first>), not a fault of its own". Its fix is the
root's, and ``root`` always names the end of the chain, so a person fixes one thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .context import Context
from .model import SKIPPED, Finding


def root_of(ctx: Context, f: Finding) -> Finding:
    """The finding at the end of ``f``'s knock-on chain (``f`` itself when it is a root)."""
    seen = {f.id}
    while f.root is not None and f.root in ctx.findings and f.root not in seen:
        f = ctx.findings[f.root]
        seen.add(f.id)
    return f


def where(ctx: Context, root: Finding, near: Sequence[str] = ()) -> str:
    """Where ``root`` fails a test first: ``test_pod_ping[node-1->node-2]``; among its pairs
    one of ``near`` (the knock-on's own) when it has one. The subject is one its first test
    has a verdict on (a node check's is a node, though the finding names pairs too)."""
    test = root.checks[0] if root.checks else ""
    if not test:
        return root.id
    shared = [p for p in near if p in root.pairs]
    candidates = [*shared, *root.pairs, *root.nodes]
    judged = (s for s in candidates if (v := ctx.verdicts.get((test, s))) is not None
              and v.finding == root.id)
    subject = next(judged, None) or (candidates or [""])[0]
    return f"{test}[{subject}]"


def knock_on(ctx: Context, fid: str, cause: str, symptom: str, root: Finding, test: str,
             nodes: Sequence[str], pairs: Sequence[str] = (), via: str = "",
             subject: str | None = None, contradict: Sequence[str] = (),
             **fields: Any) -> Finding:
    """File ``symptom`` (failing in ``test``) as a knock-on of ``root``'s root; with
    ``subject``, ``test`` skips on it there."""
    top = root_of(ctx, root)
    f = ctx.add(Finding(
        fid, cause, f"{symptom}" + (f"; {via}" if via else "") + f": a knock-on of "
        f"{top.title} (see {where(ctx, top, pairs)}), not a fault of its own", tuple(nodes),
        tuple(pairs), root=top.id, fix_args=(("root", top.title),),
        would_contradict=tuple(contradict) or (f"the same failure once {top.title} is fixed",),
        **fields))
    f = ctx.extend(f.id, checks=[test])
    if subject is not None:
        ctx.set_verdict(test, subject, SKIPPED, f.message, f.id)
    return f


def skip_on(ctx: Context, test: str, subject: str, symptom: str, root: Finding) -> Finding:
    """``test`` on ``subject`` (a node or a pair) skips as a knock-on of ``root``."""
    return knock_on(ctx, f"knock-on:{test}:{subject}", "knock-on", symptom, root, test,
                    nodes=root_of(ctx, root).nodes,
                    pairs=[subject] if "->" in subject else [], subject=subject,
                    contradict=(f"{subject} failing the same way once the root is fixed",))
