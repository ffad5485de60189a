"""test_nodes_ready: every node Ready and its probe pods started; a node whose probes
cannot run is what every later check skips behind (:func:`skip_unusable`)."""

from __future__ import annotations

import re
from typing import Any

from ..context import Check, Context, listing
from ..model import PASSED, SKIPPED, Finding

NAME = "test_nodes_ready"
IMAGE_PULL_WORDS = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName")
# A probe pod's problem as the kube backend words it (backends/kube/status.pod_problems):
# ``<probe> on <node>: <reason>: image <ref>[: <the runtime's error>]``.
IMAGE_PULL = re.compile(r": (?P<reason>" + "|".join(IMAGE_PULL_WORDS)
                        + r"): image (?P<image>\S+?)(?:: (?P<error>.*))?$")
# The kubelet's back-off prefix before the error it keeps repeating.
BACK_OFF = re.compile(r'^Back-off pulling image "[^"]*": (?:ErrImagePull: )?')


def skip_unusable(ctx: Context, test: str, subject: str, *nodes: str) -> bool:
    """Skip ``test`` for ``subject`` when a probe on one of ``nodes`` cannot run; True when
    skipped (the failure is this check's)."""
    if not ctx.any_unusable:  # asked for every pair by every pair check
        return False
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
    pulls = _image_pulls(ctx)
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
        if n in pulls:  # the probe image, not the node: its own cause and fix
            ctx.fail(NAME, n, "", pulls[n])
            continue
        if problems:
            f = ctx.add(Finding(f"node-not-ready:{n}", "node-not-ready",
                                f"{n}: " + "; ".join(problems), (n,),
                                evidence={n: {"problems": problems}},
                                would_contradict=("the node Ready and its probes running",)))
            ctx.fail(NAME, n, n, f)
        elif n in ctx.readiness or not ctx.readiness:
            ctx.set_verdict(NAME, n, PASSED)


def _image_pulls(ctx: Context) -> dict[str, Finding]:
    """Node -> the finding of the probe image its probe pods could not pull: ONE finding per
    image, whatever the number of nodes (one registry problem is one cause), saying where
    the pods did not start and the pull error in full."""
    by_image: dict[str, list[tuple[str, str, str]]] = {}  # image -> (node, reason, error)
    for n in ctx.nodes:
        problems = ctx.readiness.get(n, [])
        if all(p.startswith("probe image") for p in problems):
            continue  # tools missing from a pulled image: judged above
        pulls = [m for p in problems if (m := IMAGE_PULL.search(p))]
        if pulls:
            m = pulls[0]
            error = BACK_OFF.sub("", m.group("error") or "")
            by_image.setdefault(m.group("image"), []).append((n, m.group("reason"), error))
        elif any(w in p for p in problems for w in IMAGE_PULL_WORDS):
            # A pull problem that does not name its image: the node's own words.
            first = next(p for p in problems if any(w in p for w in IMAGE_PULL_WORDS))
            by_image.setdefault(f"?{n}", []).append((n, "", first))
    out: dict[str, Finding] = {}
    for image, found in by_image.items():
        nodes = tuple(n for n, _, _ in found)
        _, reason, error = found[0]
        if image.startswith("?"):
            summary = f"{nodes[0]}: {error}"
        else:
            where = ("any node" if set(nodes) >= set(ctx.nodes) and len(nodes) > 1
                     else listing(nodes))
            summary = (f"Probe pods did not start on {where}: image {image} could not be "
                       f"pulled ({reason})" + (f": {error}" if error else ""))
        f = ctx.add(Finding(f"image-pull:{image.lstrip('?')}", "image-pull", summary, nodes,
                            evidence={n: {"problems": ctx.readiness.get(n, [])} for n in nodes},
                            would_contradict=("the probe pods running",)))
        out.update((n, f) for n in nodes)
    return out


CHECK = Check(NAME, "nodes", judge)
