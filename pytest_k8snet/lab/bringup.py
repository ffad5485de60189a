"""Bringing a lab up: check, plan, build its network, start its daemons (and its real
cluster), switch its faults on; on any failure, remove what was built."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from . import daemons, faults, network
from . import netns as ns
from . import owner as owner_mod
from .kube import binaries as kube_binaries
from .kube import cluster as kube_cluster
from .kube import mgmt as kube_mgmt
from .kube.constants import KUBE_VERSION
from .netns import LabError
from .plan import LabSpec, plan
from .state import Lab, locked, running_labs
from .teardown import teardown


def up(spec: LabSpec, progress: kube_cluster.Progress | None = None) -> Lab:
    """Build the lab described by ``spec``; on any failure, remove what was built.

    ``progress`` is told each stage of a real cluster's bring-up (the plain lab is up in a
    second or two, with nothing to report)."""
    spec.validate()
    planned = plan(spec)
    faults.check_all(planned, spec.faults)
    ns.require_root()
    ns.require_tools()
    # Said before anything is built (or locked): which host limit binds and how to raise it.
    ns.require_host_limits(len(planned.all_netns()), 2 * spec.nodes + 1)
    if spec.kubernetes:
        kube_binaries.require_tools(spec.proxy_mode)
        if progress:
            progress(f"bringing up lab {spec.name} with Kubernetes {KUBE_VERSION} "
                     f"on {spec.nodes} node(s): ~25 s on an idle machine")
        kube_binaries.build()  # outside the lock: the first build takes minutes
    with locked(spec.name):
        if spec.name in running_labs():
            raise LabError(f"a lab named {spec.name!r} already exists; "
                           f"pick another --name or run `k8snet-lab down {spec.name}`")
        if any(f[0] == "pod-cidr-overlap" for f in spec.faults):
            spec = faults.overlapping_spec(spec)
        lab = plan(spec)
        lab.created = time.time()
        lab.owner = owner_mod.current()
        lab.state_dir.mkdir(parents=True, exist_ok=True)
        lab.save()  # first, so that `down` finds a half-built lab
        try:
            network.build(lab, spec)
            daemons.start(lab)
            if spec.kubernetes:
                kube_mgmt.setup_network(lab)
                kube_cluster.start(lab, progress=progress)
            for fault_name, nodes, value in spec.faults:
                faults.add(lab, fault_name, list(nodes), value)
            lab.save()
        except LabError as exc:
            kept = _keep_logs(lab)
            teardown(lab.name)
            if kept is None:
                raise
            # The message pointed into the state dir, which teardown removes.
            raise LabError(str(exc).replace(str(lab.state_dir), str(kept))
                           + " (kept for you: remove it when done)") from None
        except BaseException:
            teardown(lab.name)
            raise
    return lab


def _keep_logs(lab: Lab) -> Path | None:
    """Copy a failed bring-up's logs out of the state dir before it is removed, so that the
    error's "logs in ..." still leads somewhere: /var/tmp/k8snet-<lab>-logs."""
    logs = sorted(lab.state_dir.rglob("*.log")) if lab.state_dir.is_dir() else []
    if not logs:
        return None
    kept = Path("/var/tmp") / f"k8snet-{lab.name}-logs"
    shutil.rmtree(kept, ignore_errors=True)
    for log in logs:
        dest = kept / log.relative_to(lab.state_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(log, dest)
        except OSError:
            continue
    return kept
