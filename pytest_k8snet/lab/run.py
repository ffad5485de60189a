"""``k8snet-lab run``: a lab for the length of one command, for root or a normal user.

A normal user gets the lab inside an unprivileged user namespace (``unshare --user
--map-root-user --net --mount``): there, private tmpfs mounts over /run and /etc/netns
give ``ip netns`` the writable directories it needs, and everything the lab creates
vanishes with the namespace. The command (pytest) runs inside, with ``K8SNET_LAB_NAME``
naming the lab. With a real cluster (root only) the command gets what points a client
at the cluster instead (:func:`.kube.client.client_env`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .bringup import up
from .kube.client import client_env
from .netns import LabError, missing_tools, tool_env
from .plan import LabSpec
from .teardown import down

INSIDE = "K8SNET_LAB_INSIDE_USERNS"
# What names the lab to the command: the plugin's --k8s-lab-name, as an environment variable.
LAB_NAME_ENV = "K8SNET_LAB_NAME"


def userns_available() -> bool:
    try:
        return int(Path("/proc/sys/user/max_user_namespaces").read_text()) > 0
    except (OSError, ValueError):
        return False


def _private_dirs() -> None:
    """Inside our own mount namespace: writable, private /run and /etc/netns."""
    for target in ("/run", "/etc/netns"):
        if target == "/etc/netns" and not os.path.isdir(target):
            continue
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "k8snet", target],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise LabError(f"cannot mount a private {target} in the user namespace: "
                           f"{proc.stderr.strip()}")
    if not os.path.isdir("/etc/netns"):
        raise LabError("/etc/netns does not exist and a user namespace cannot create it; "
                       "ask an administrator to run `mkdir /etc/netns` once")


def _find(command: Sequence[str], env: dict[str, str]) -> None:
    """Fail the way a shell does (one line, exit status 127) before any lab is built."""
    if shutil.which(command[0], path=env["PATH"]) is None:
        raise LabError(f"{command[0]}: command not found", exit_code=127)


def _run_command(command: Sequence[str], env: dict[str, str]) -> int:
    try:
        return subprocess.run(list(command), env=env).returncode
    except FileNotFoundError:  # removed since _find looked
        raise LabError(f"{command[0]}: command not found", exit_code=127) from None
    except PermissionError:
        raise LabError(f"{command[0]}: permission denied", exit_code=126) from None


def run(spec: LabSpec, command: Sequence[str], force_userns: bool = False) -> int:
    inside = os.environ.get(INSIDE) == "1"
    # One PATH for the tool check, the lab's own tools and the command: a normal user's PATH
    # lacks /usr/sbin, where bridge, iptables and dnsmasq are.
    env = tool_env()
    _find(command, env)
    if not inside and (os.geteuid() != 0 or force_userns):
        if not userns_available():
            raise LabError("not root, and unprivileged user namespaces are disabled here "
                           "(user.max_user_namespaces=0): run with sudo")
        if missing_tools():
            raise LabError(f"missing system tools: {', '.join(sorted(missing_tools()))}")
        argv = ["unshare", "--user", "--map-root-user", "--net", "--mount", "--fork", "--",
                sys.executable, "-m", "pytest_k8snet.lab.cli", "run", "--name", spec.name,
                "--nodes", str(spec.nodes), "--ip-family", spec.ip_family]
        for name, nodes, value in spec.faults:
            argv += ["--fault", name + (":" + ",".join(nodes) if nodes else "")
                     + (f"={value}" if value else "")]
        return subprocess.run([*argv, "--", *command], env=dict(env, **{INSIDE: "1"})).returncode
    if inside:
        _private_dirs()
    up(spec)
    try:
        env[LAB_NAME_ENV] = spec.name
        env.pop(INSIDE, None)
        return _run_command(command, env)
    finally:
        down(spec.name)


def run_with_cluster(spec: LabSpec, command: list[str],
                     progress: Callable[[str], None] | None = None) -> int:
    """``k8snet-lab run --kubernetes -- CMD``: up (telling ``progress`` its stages), CMD
    with :func:`client_env`, down."""
    lab = up(spec, progress=progress)
    env = {**os.environ, **client_env(lab)}
    try:
        try:
            proc = subprocess.Popen(command, env=env)
        except FileNotFoundError:
            print(f"k8snet-lab: {command[0]}: command not found", file=sys.stderr)
            return 127
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            return proc.wait()
    finally:
        down(lab.name)
