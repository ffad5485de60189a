"""Who created a lab, so that ``k8snet-lab down --all`` removes only the caller's labs.

A host is shared: other users, other CI jobs and other developers' sessions (often all root)
run labs side by side. Every lab records its creator in its state file: the person (the real
uid, or ``SUDO_UID`` under sudo, so two people using sudo stay apart) and the run marker
``K8SNET_LAB_RUN``, which a script or CI job sets once and every process of the run inherits
(``scripts/test.sh`` sets a fresh one). ``down --all`` removes a lab only when both match the
caller's, where a run owns its sub-runs (``RUN/anything``: a test that needs its own marker
nests it, and the enclosing run's cleanup still covers it); labs without a record (older versions, leftovers whose state file is gone) are never
"owned" by anyone, and only ``down NAME`` or ``down --all --everyone`` remove them.
"""

from __future__ import annotations

import os
import pwd
import socket
from typing import Any

RUN_ENV = "K8SNET_LAB_RUN"


def person_uid() -> int:
    """The uid of the person behind this process: under sudo, the one who ran sudo."""
    uid = os.getuid()
    sudo_uid = os.environ.get("SUDO_UID", "")
    if uid == 0 and sudo_uid.isdigit():
        return int(sudo_uid)
    return uid


def run_marker() -> str | None:
    return os.environ.get(RUN_ENV) or None


def current() -> dict[str, Any]:
    """The owner record written into a new lab's state file."""
    uid = person_uid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    return {"uid": uid, "user": user, "run": run_marker(), "pid": os.getpid(),
            "host": socket.gethostname()}


def owns(owner: dict[str, Any] | None, me: dict[str, Any] | None = None) -> bool:
    """True if ``owner`` (a lab's record) was created by the caller ``me`` (default: us)."""
    if not owner:
        return False
    me = me or current()
    if owner.get("uid") != me["uid"]:
        return False
    run, mine = owner.get("run"), me["run"]
    return bool(run == mine or (mine and isinstance(run, str) and run.startswith(mine + "/")))


def sub_run(name: str) -> str:
    """A run marker nested in the caller's (owned by it), or a fresh one if it has none."""
    mine = run_marker()
    return f"{mine}/{name}" if mine else name


def describe(owner: dict[str, Any] | None) -> str:
    if not owner:
        return "owner unknown"
    run = f", run {owner['run']}" if owner.get("run") else ""
    return f"{owner.get('user', '?')} (uid {owner.get('uid', '?')}{run})"
