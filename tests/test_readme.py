"""The README as a newcomer reads it: every option in its table, and its suite commands never
green without a cluster (issue 17)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_k8snet.options import OPTIONS, env_name

README = Path(__file__).resolve().parent.parent / "README.md"
GOLDEN = Path(__file__).resolve().parent / "data" / "measure" / "bridge-nf-off.json"


def _table_rows() -> dict[str, str]:
    rows = {}
    for line in README.read_text().splitlines():
        m = re.match(r"\| `(--k8s-[a-z-]+)[^`]*` \| (.*)", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def test_every_option_is_in_the_readme_table_with_its_ini_key_and_env_var() -> None:
    rows = _table_rows()
    missing = [f"--k8s-{o.name}" for o in OPTIONS if f"--k8s-{o.name}" not in rows]
    assert not missing, f"README options table lacks {missing}"
    stale = sorted(set(rows) - {f"--k8s-{o.name}" for o in OPTIONS})
    assert not stale, f"README options table lists options that do not exist: {stale}"
    for opt in OPTIONS:
        ini = "k8s_" + opt.name.replace("-", "_")
        assert f"`{ini}` / `{env_name(opt)}`" in rows[f"--k8s-{opt.name}"], opt.name


def _suite_commands() -> list[list[str]]:
    """The README's `pytest --pyargs pytest_k8snet.suite` commands that name no lab, with
    their continuation lines joined."""
    text = README.read_text().replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("pytest --pyargs pytest_k8snet.suite") and "--k8s-lab" not in line:
            commands.append(shlex.split(line, comments=True))
    return commands


def test_the_readmes_suite_commands_stop_without_a_cluster(tmp_path: Path) -> None:
    """Followed on a machine with no kubeconfig (a CI job that forgot to mount it), each of the
    README's cluster commands stops with one line and exit 4: none tests a simulated lab and
    goes green."""
    commands = _suite_commands()
    assert len(commands) >= 3, commands  # on a real cluster, reports, baseline
    env = {k: v for k, v in os.environ.items()
           if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST") and not k.startswith("K8SNET_")}
    env["HOME"] = str(tmp_path)  # no ~/.kube/config
    for argv in commands:
        if "--k8s-baseline" in argv:  # a valid baseline, so that the command gets that far
            shutil.copy(GOLDEN, tmp_path / argv[argv.index("--k8s-baseline") + 1])
        proc = subprocess.run([sys.executable, "-m", *argv, "-p", "no:cacheprovider"],
                              cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
        out = proc.stdout + proc.stderr
        assert proc.returncode == pytest.ExitCode.USAGE_ERROR, (argv, out)
        assert "passed" not in out and "Traceback" not in out, (argv, out)
        assert re.search(r"^ERROR: k8snet: (no cluster to test|cannot read kubeconfig)",
                         proc.stderr, re.M), (argv, out)
        assert not (tmp_path / "results.json").exists() and not (tmp_path / "report.html").exists()
