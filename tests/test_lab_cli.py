"""`k8snet-lab` on a shared host and for a normal user: owner-scoped `down --all`, one PATH
for checking and running tools, clean errors, and help text for people."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_k8snet.lab import netns
from pytest_k8snet.lab.run import userns_available
from pytest_k8snet.lab.state import STATE_ROOT, running_labs

from .conftest import needs_root

ROOT = Path(__file__).resolve().parent.parent
# What a normal Debian user has: no /usr/sbin, no /sbin (plus this interpreter's directory).
USER_PATH = os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"])


def cli(*args: str, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_k8snet.lab.cli", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


def assert_up_refused(name: str, args: list[str], error: str) -> None:
    """``up --name NAME ARGS`` refused with exactly ``error`` on one line, before anything
    of the lab exists."""
    res = cli("up", "--name", name, *args)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == f"k8snet-lab: error: {error}"
    assert name not in running_labs() and not netns.list_netns(f"k8snet-{name}-")


def test_help_is_formatted_for_people() -> None:
    out = cli("--help").stdout
    assert "``" not in out and ":func:" not in out
    assert "examples:" in out and "k8snet-lab up --name lab" in out
    assert "{up,down" not in out  # the command list is described, not dumped as a set
    up_help = cli("up", "--help").stdout
    assert "default: 3" in up_help and "1..128" in up_help
    assert "--everyone" in cli("down", "--help").stdout


@needs_root
def test_fault_add_on_a_missing_lab_leaves_no_lock_file(tmp_path: Path) -> None:
    env = dict(os.environ, K8SNET_LAB_STATE=str(tmp_path))
    res = cli("fault", "add", "snolab", "vxlan-blocked", env=env)
    assert res.returncode == 2 and "no lab named 'snolab'" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == []  # no .snolab.lock
    res = cli("fault", "add", "../../etc/x", "vxlan-blocked", env=env)
    assert res.returncode == 2 and "bad lab name" in res.stderr
    assert list(tmp_path.iterdir()) == []


@needs_root
def test_run_a_missing_command_is_one_line_and_127() -> None:
    name = f"s{os.getpid()}m"
    res = cli("run", "--name", name, "--nodes", "1", "--", "no-such-binary-k8snet")
    assert res.returncode == 127, res.stderr
    assert "Traceback" not in res.stderr
    assert res.stderr.strip() == "k8snet-lab: error: no-such-binary-k8snet: command not found"
    assert not netns.list_netns(f"k8snet-{name}-")  # checked before any lab was built


@needs_root
@pytest.mark.parametrize("fault,error", [
    ("underlay-mtu:node-2=abc", "underlay-mtu value must be a whole number of bytes, 68..9000, "
                                "got 'abc'"),
    ("underlay-mtu:node-2=0", "underlay-mtu value must be a whole number of bytes, 68..9000, "
                              "got '0'"),
    ("underlay-mtu=70000", "underlay-mtu value must be a whole number of bytes, 68..9000, "
                           "got '70000'"),
    ("vxlan-blocked:node-1=x", "vxlan-blocked takes no value, got 'x'"),
    ("pod-cidr-overlap:node-1", "pod-cidr-overlap applies to the whole lab, not to nodes"),
])
def test_up_with_a_bad_fault_is_one_line_and_leaves_nothing(fault: str, error: str) -> None:
    name = f"s{os.getpid()}v"
    res = cli("up", "--name", name, "--nodes", "2", "--fault", fault)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == f"k8snet-lab: error: {error}"
    assert not netns.list_netns(f"k8snet-{name}-") and name not in running_labs()
    assert not (STATE_ROOT / name).exists() and not (STATE_ROOT / f".{name}.lock").exists()


@needs_root
def test_run_with_a_bad_fault_value_runs_nothing(tmp_path: Path) -> None:
    name = f"s{os.getpid()}r"
    ran = tmp_path / "ran"
    res = cli("run", "--name", name, "--nodes", "2", "--fault", "underlay-mtu:node-1=1.5", "--",
              "touch", str(ran))
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == ("k8snet-lab: error: underlay-mtu value must be a whole number "
                                  "of bytes, 68..9000, got '1.5'")
    assert not ran.exists() and not netns.list_netns(f"k8snet-{name}-")


@needs_root
def test_run_with_a_normal_users_path(tmp_path: Path) -> None:
    """bridge, iptables and dnsmasq are in /usr/sbin: the tool check found them there, so
    building the lab and running the command must find them there too. The command is told
    the lab's name in K8SNET_LAB_NAME (the plugin's --k8s-lab-name), and nothing else."""
    env = dict(os.environ, PATH=USER_PATH)
    env.pop("K8SNET_LAB", None)
    env.pop("K8SNET_LAB_NAME", None)
    name = f"s{os.getpid()}p"
    probe = tmp_path / "probe.sh"
    probe.write_text(f'#!/bin/sh\n[ "$K8SNET_LAB_NAME" = {name} ] || exit 3\n'
                     '[ -z "${K8SNET_LAB+set}" ] || exit 4\n'
                     "exec iptables -S >/dev/null\n")  # the command gets the sbin PATH too
    probe.chmod(0o755)
    userns = ["--userns"] if userns_available() else []
    res = cli("run", *userns, "--name", name, "--nodes", "2", "--", str(probe), env=env)
    assert res.returncode == 0, res.stderr
    assert not netns.list_netns(f"k8snet-{name}-")


# Runs inside `unshare --user --map-root-user --net --mount` with private /run and /etc/netns,
# so that `down --all` (even a broken one) can only ever see the labs this test made.
OWNERS_SCRIPT = textwrap.dedent("""
    import json, os, subprocess, sys
    from pytest_k8snet import lab as labmod

    def cli(*args, run=None, sudo=None, code=0):
        env = {k: v for k, v in os.environ.items() if k not in ("K8SNET_LAB_RUN", "SUDO_UID")}
        if run:
            env["K8SNET_LAB_RUN"] = run
        if sudo:
            env["SUDO_UID"] = sudo
        p = subprocess.run([sys.executable, "-m", "pytest_k8snet.lab.cli", *args], env=env,
                           capture_output=True, text=True)
        assert p.returncode == code, p.stderr
        return p.stdout + p.stderr

    cli("up", "--name", "sa1", "--nodes", "1", run="job-a")
    cli("up", "--name", "sa2", "--nodes", "1", run="job-a/sub")  # a test's own marker, nested
    cli("up", "--name", "sb1", "--nodes", "1", run="job-b")
    cli("up", "--name", "sc1", "--nodes", "1", sudo="4242")  # a person, via sudo
    cli("up", "--name", "sd1", "--nodes", "1", run="job-d")
    state = labmod.STATE_ROOT / "sd1" / "state.json"  # as an older version wrote it
    data = json.loads(state.read_text()); del data["owner"]; state.write_text(json.dumps(data))
    result = {"status": cli("status", "--all", run="job-a"),
              "down_a": cli("down", "--all", run="job-a"),
              "after_a": labmod.running_labs(),
              "bare_root": cli("down", "--all", code=2),
              "after_bare_root": labmod.running_labs(),
              "down_none": cli("down", "--all", sudo="4242"),
              "after_none": labmod.running_labs(),
              "everyone": cli("down", "--all", "--everyone", run="job-b"),
              "after_everyone": labmod.running_labs()}
    print(json.dumps(result))
""")


@needs_root
def test_down_all_removes_only_the_callers_labs(tmp_path: Path) -> None:
    if not userns_available() or not os.path.isdir("/etc/netns"):
        pytest.skip("needs user namespaces and /etc/netns")
    script = tmp_path / "owners.py"
    script.write_text(OWNERS_SCRIPT)
    inner = ("mount -t tmpfs -o mode=755 k8snet /run && mount -t tmpfs k8snet /etc/netns && "
             f"exec {sys.executable} {script}")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "--mount", "--fork",
                           "--", "sh", "-c", inner], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import json

    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "sa1 " in r["status"] and "run job-a)" in r["status"] and "(yours)" in r["status"]
    assert "sd1" in r["status"] and "owner unknown" in r["status"]
    # job-a's --all: its two labs (one of a nested run), nobody else's, and it says what it
    # left alone.
    assert r["after_a"] == ["sb1", "sc1", "sd1"], r["down_a"]
    assert "left 3 lab(s)" in r["down_a"] and "sb1 (root (uid 0, run job-b))" in r["down_a"]
    # Bare root with no run marker is every root user at once: refused, nothing removed.
    assert "cannot be told apart" in r["bare_root"] and r["after_bare_root"] == r["after_a"]
    # No run marker, via sudo: that person's labs made without one; never an unknown owner's.
    assert r["after_none"] == ["sb1", "sd1"], r["down_none"]
    # --everyone is explicit and loud: every lab, each named with its owner.
    assert r["after_everyone"] == [], r["everyone"]
    assert "removing sb1 of root (uid 0, run job-b)" in r["everyone"]
    assert "removing sd1 of owner unknown" in r["everyone"]


def test_test_sh_removes_only_its_own_labs() -> None:
    text = (ROOT / "scripts" / "test.sh").read_text()
    marker = text.index("export K8SNET_LAB_RUN=")
    assert marker < text.index(".venv/bin/python -m pytest -p no:cacheprovider")  # the tests
    downs = [line for line in text.splitlines() if "k8snet-lab down" in line]
    assert downs and all("--all" in d and "--everyone" not in d for d in downs)
    # The bystander lab (another owner's, which the tests must leave alone) is removed by
    # its own owner marker, after the check that it was untouched.
    assert "by_before=$(by_netns)" in text and 'K8SNET_LAB_RUN="$by_run" .venv' in text
    assert text.index("by_before=$(by_netns)") < text.index("export K8SNET_LAB_RUN=")
