"""Thin, fast wrappers around iproute2, iptables and setns(2) for the lab.

Speed matters here (a 16-node lab is ~70 namespaces), so link and address setup
goes through one ``ip -batch`` per namespace and sysctls are written in-process
after ``setns`` instead of forking ``sysctl`` for each key.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000

# Which Debian package provides each tool the lab shells out to.
REQUIRED_TOOLS: dict[str, str] = {
    "ip": "iproute2",
    "iptables": "iptables",
    "iptables-restore": "iptables",
    "dnsmasq": "dnsmasq-base",
    "ping": "iputils-ping",
    "curl": "curl",
    "dig": "dnsutils",
    "iperf3": "iperf3",
    "tracepath": "iputils-tracepath",
}

_libc = ctypes.CDLL(None, use_errno=True)
_setns_lock = threading.Lock()


class LabError(RuntimeError):
    """A lab operation failed; the message is meant for a person, one line."""


def missing_tools() -> dict[str, str]:
    """Return ``{tool: apt package}`` for every required tool not on PATH."""
    extra = ("/usr/sbin", "/sbin")
    path = os.pathsep.join([os.environ.get("PATH", ""), *extra])
    return {t: p for t, p in REQUIRED_TOOLS.items() if shutil.which(t, path=path) is None}


def run(argv: Sequence[str], *, input: str | None = None, check: bool = True,
        timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(list(argv), input=input, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]} not found: {exc}") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"timed out after {timeout:g}s: {' '.join(argv)}") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabError(f"{' '.join(argv[:6])} failed: {detail[-1] if detail else proc.returncode}")
    return proc


def ip_batch(netns: str | None, commands: Iterable[str]) -> None:
    """Run many ``ip`` commands in one process, optionally inside ``netns``."""
    script = "\n".join(commands) + "\n"
    argv = ["ip"] + (["-n", netns] if netns else []) + ["-batch", "-"]
    run(argv, input=script)


def netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def list_netns(prefix: str = "") -> list[str]:
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(prefix))


def add_netns(names: Iterable[str]) -> None:
    ip_batch(None, [f"netns add {n}" for n in names])


def delete_netns(names: Iterable[str]) -> None:
    for name in names:
        run(["ip", "netns", "delete", name], check=False)


def netns_pids(name: str) -> list[int]:
    proc = run(["ip", "netns", "pids", name], check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


@contextmanager
def entered(netns: str) -> Iterator[None]:
    """Move the *calling thread* into ``netns`` for the block (setns is per thread).

    A lock serialises callers, because /proc/sys/net resolves against the
    opener's namespace and we must never leak a thread into the wrong one.
    """
    with _setns_lock:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(os.path.join(NETNS_DIR, netns), os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise LabError(f"setns into {netns} failed: {os.strerror(err)}")
            try:
                yield
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:  # pragma: no cover - fatal
                    raise LabError("could not return to the original network namespace")
        finally:
            os.close(target)
            os.close(own)


def write_sysctls(netns: str, values: dict[str, str]) -> None:
    with entered(netns):
        for key, value in values.items():
            path = "/proc/sys/" + key.replace(".", "/")
            try:
                with open(path, "w") as fh:
                    fh.write(value)
            except OSError as exc:
                raise LabError(f"cannot set {key}={value} in {netns}: {exc.strerror}") from None


def read_sysctl(netns: str, key: str) -> str:
    with entered(netns):
        with open("/proc/sys/" + key.replace(".", "/")) as fh:
            return fh.read().strip()


def iptables(netns: str, args: Sequence[str], *, check: bool = True) -> bool:
    proc = run(["ip", "netns", "exec", netns, "iptables", "-w", *args], check=check)
    return proc.returncode == 0


def iptables_restore(netns: str, rules: str) -> None:
    run(["ip", "netns", "exec", netns, "iptables-restore", "-w"], input=rules)


def exec_in(netns: str, argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in ``netns`` the way ``ip netns exec`` does (with /etc/netns)."""
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True,
                          text=True, timeout=timeout, check=False)
