"""Thin, fast wrappers around iproute2, iptables and setns(2) for the lab.

Speed matters here (a 16-node lab is ~70 namespaces), so link and address setup
goes through one ``ip -batch`` per namespace and sysctls are written in-process
after ``setns`` instead of forking ``sysctl`` for each key.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

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
# Lock files whose open descriptor every helper command inherits (see lent_to_helpers).
# A tuple replaced under a lock: run() reads it from any thread without a copy.
_lent_fds: tuple[int, ...] = ()
_lent_lock = threading.Lock()


class LabError(RuntimeError):
    """A lab operation failed; the message is meant for a person, one line.

    ``exit_code`` is what the command line exits with (2 unless a shell convention, such as
    127 for a command that does not exist, says otherwise).
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# A normal Debian user's PATH lacks the sbin directories where bridge, iptables and dnsmasq
# live. The tool check looks there, so everything the lab executes must look there too.
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def tool_path(path: str | None = None) -> str:
    """``path`` (default: $PATH) with the sbin directories appended where missing."""
    parts = [p for p in (os.environ.get("PATH", "") if path is None else path).split(os.pathsep) if p]
    return os.pathsep.join(parts + [d for d in SBIN_DIRS if d not in parts])


def tool_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for the lab's commands: ``base`` (default: ours) with :func:`tool_path`."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = tool_path(env.get("PATH", ""))
    return env


def missing_tools() -> dict[str, str]:
    """Return ``{tool: apt package}`` for every required tool not on :func:`tool_path`."""
    path = tool_path()
    return {t: p for t, p in REQUIRED_TOOLS.items() if shutil.which(t, path=path) is None}


def require_tools() -> None:
    missing = missing_tools()
    if missing:
        pkgs = " ".join(sorted(set(missing.values())))
        raise LabError(f"missing system tools: {', '.join(sorted(missing))}; "
                       f"install them with: apt-get install -y {pkgs}")


def require_root() -> None:
    if os.geteuid() == 0:
        return
    userns = Path("/proc/sys/user/max_user_namespaces")
    hint = ""
    if userns.exists() and userns.read_text().strip() not in ("", "0"):
        hint = (" Unprivileged user namespaces are enabled here, so `k8snet-lab run -- pytest "
                "--pyargs pytest_k8snet.suite` works without root.")
    raise LabError("the lab needs root (CAP_NET_ADMIN and /run/netns): run it with sudo." + hint)


SYSCTL_ROOT = "/proc/sys"


def _sysctl_int(key: str) -> int | None:
    try:
        with open(os.path.join(SYSCTL_ROOT, *key.split("."))) as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def host_limits(namespaces: int, sockets: int) -> list[str]:
    """Host-wide limits that a lab of ``namespaces`` namespaces, whose HTTP server holds
    ``sockets`` listening sockets, would run into: one line each, with how to raise it.

    The neighbour tables are not among them: the lab adds no dynamic IPv4 entry (its
    entries are permanent) and no IPv6 one (IPv6 is off), so gc_thresh3 cannot bind.
    The soft open-files limit is raised up to the hard one, which any process may do.
    """
    problems = []
    limit = _sysctl_int("user.max_net_namespaces")
    existing = len(list_netns())  # other namespaces of this user count too; these are seen
    if limit is not None and existing + namespaces > limit:
        problems.append(
            f"user.max_net_namespaces is {limit}, and {existing} namespaces exist plus "
            f"{namespaces} for this lab: raise it with `sysctl -w user.max_net_namespaces="
            f"{existing + namespaces + 64}`")
    # The server's sockets, a connection each for the probes that arrive at once, and
    # what the interpreter itself holds.
    wanted = sockets + 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
            soft = new_soft
        except (OSError, ValueError):
            pass
        if soft < wanted:
            problems.append(f"open files (ulimit -n) are limited to {soft} and the lab's "
                            f"server needs {wanted}: raise the hard limit (`ulimit -Hn "
                            f"{wanted}` as root, or LimitNOFILE= for a service)")
    return problems


def require_host_limits(namespaces: int, sockets: int) -> None:
    problems = host_limits(namespaces, sockets)
    if problems:
        raise LabError("host limit: " + "; ".join(problems))


@contextmanager
def lent_to_helpers(fd: int) -> Iterator[None]:
    """Hand the flock held on ``fd`` to every helper that :func:`run` starts in the block.

    A helper (say ``ip -batch`` creating namespaces) outlives a caller killed with SIGKILL
    and goes on building. Holding the caller's lock, it keeps ``down`` waiting until it is
    done, instead of letting ``down`` list the namespaces while more are still being made.
    Only short-lived helpers get it: daemons are started elsewhere and never hold a lock.
    """
    global _lent_fds
    with _lent_lock:
        _lent_fds = (*_lent_fds, fd)
    try:
        yield
    finally:
        with _lent_lock:
            _lent_fds = tuple(f for f in _lent_fds if f != fd)


def run(argv: Sequence[str], *, input: str | None = None, check: bool = True,
        timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(list(argv), input=input, capture_output=True, text=True,
                              timeout=timeout, check=False, env=tool_env(),
                              pass_fds=_lent_fds)
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


# IPv6 is off in every lab namespace. The lab is IPv4 only, and with IPv6 on, each interface
# that comes up adds multicast entries (ff02::2, ff02::16, solicited-node) to the kernel's
# neighbour table, whose limit (net.ipv6.neigh.default.gc_thresh3) is shared by every
# namespace on the host: a 64-node lab alone would fill it, for the host and its neighbours.
IPV6_OFF = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}
# A lab with IPv6 (--ip-family ipv6|dual) keeps what it adds to that table small: no
# link-local addresses (addr_gen_mode 1; every neighbour entry is permanent, so nothing
# needs NDP's link-local sources), no DAD, no router advertisements, no autoconfiguration.
IPV6_ON = {"net.ipv6.conf.all.disable_ipv6": "0", "net.ipv6.conf.default.disable_ipv6": "0",
           "net.ipv6.conf.default.addr_gen_mode": "1", "net.ipv6.conf.all.accept_dad": "0",
           "net.ipv6.conf.default.accept_dad": "0", "net.ipv6.conf.all.accept_ra": "0",
           "net.ipv6.conf.default.accept_ra": "0", "net.ipv6.conf.default.autoconf": "0"}


def add_netns(names: Iterable[str], ipv6: bool = False) -> None:
    """Create namespaces before any link is moved in: IPv4-only ones (see
    :data:`IPV6_OFF`) so that no interface ever gets an IPv6 address or a multicast
    neighbour entry, or with ``ipv6`` ones whose interfaces get only the addresses the lab
    gives them (:data:`IPV6_ON`)."""
    names = list(names)
    ip_batch(None, [f"netns add {n}" for n in names])
    if ipv6 and not os.path.exists("/proc/sys/net/ipv6"):
        raise LabError("this kernel has no IPv6: --ip-family ipv6|dual cannot be built")
    if os.path.exists("/proc/sys/net/ipv6"):  # a kernel without IPv6 has nothing to switch off
        for name in names:
            write_sysctls(name, IPV6_ON if ipv6 else IPV6_OFF)


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


def iptables(netns: str, args: Sequence[str], *, check: bool = True, ipv6: bool = False) -> bool:
    tool = "ip6tables" if ipv6 else "iptables"
    proc = run(["ip", "netns", "exec", netns, tool, "-w", *args], check=check)
    return proc.returncode == 0


def iptables_restore(netns: str, rules: str, ipv6: bool = False) -> None:
    tool = "ip6tables-restore" if ipv6 else "iptables-restore"
    run(["ip", "netns", "exec", netns, tool, "-w"], input=rules)


def exec_in(netns: str, argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in ``netns`` the way ``ip netns exec`` does (with /etc/netns)."""
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True,
                          text=True, timeout=timeout, check=False, env=tool_env())
