"""test_nodes_ready: every node Ready and its probe pods started; a node whose probes
cannot run is what every later check skips behind (:func:`skip_unusable`)."""

from __future__ import annotations

from typing import Any

from ..context import Check, Context
from ..model import PASSED, SKIPPED, Finding

NAME = "test_nodes_ready"
IMAGE_PULL_WORDS = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName")


def skip_unusable(ctx: Context, test: str, subject: str, *nodes: str) -> bool:
    """Skip ``test`` for ``subject`` when a probe on one of ``nodes`` cannot run; True when
    skipped (the failure is this check's)."""
    for n in nodes:
        why = ctx.unusable(n)
        if why:
            ctx.set_verdict(test, subject, SKIPPED, f"{n}: probes cannot run ({why}); "
                            f"see {NAME}[{n}]", f"node-not-ready:{n}")
            return True
    return False


def host_checks(ctx: Context, test: str, n: str) -> dict[str, Any] | None:
    """Node ``n``'s host-network node checks for ``test``, or None after the verdict that
    says why they cannot be judged (no probes there, no host probe, not measured)."""
    if skip_unusable(ctx, test, n, n) or ctx.skip_no_host_probe(test, n, n):
        return None
    c = ctx.checks.get(n)
    if c is None:
        ctx.set_verdict(test, n, SKIPPED, f"{n}: node checks not measured")
    return c


def judge(ctx: Context) -> None:
    for n in ctx.nodes:
        problems = ctx.readiness.get(n, [])
        image = [p for p in problems if p.startswith("probe image")]
        if image and len(image) == len(problems):
            # The probe image, not the node or its network: say that, with its own fix.
            tools = sorted({t.strip(" ,.") for p in image
                            for t in p.partition(" lacks ")[2].split("(")[0].split(",")
                            if t.strip(" ,.")})
            f = ctx.add(Finding(f"probe-image:{n}", "probe-failure",
                                f"{n}: " + "; ".join(image), (n,),
                                evidence={n: {"problems": problems}},
                                fix_args=(("tool", ", ".join(tools) or "the probe tools"),),
                                would_contradict=("the tools found in the probe image",)))
            ctx.fail(NAME, n, n, f)
            continue
        pulls = [p for p in problems if any(w in p for w in IMAGE_PULL_WORDS)]
        if pulls:  # the probe image, not the node: its own cause and fix
            f = ctx.add(Finding(f"image-pull:{n}", "image-pull", f"{n}: " + pulls[0], (n,),
                                evidence={n: {"problems": problems}},
                                would_contradict=("the probe pods running",)))
            ctx.fail(NAME, n, n, f)
            continue
        if problems:
            f = ctx.add(Finding(f"node-not-ready:{n}", "node-not-ready",
                                f"{n}: " + "; ".join(problems), (n,),
                                evidence={n: {"problems": problems}},
                                would_contradict=("the node Ready and its probes running",)))
            ctx.fail(NAME, n, n, f)
        elif n in ctx.readiness or not ctx.readiness:
            ctx.set_verdict(NAME, n, PASSED)


CHECK = Check(NAME, "nodes", judge)
