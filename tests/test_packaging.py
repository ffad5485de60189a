"""What ``pip install`` of the project gives: its dependencies and a wheel that works."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def dependencies() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    out = {}
    for dep in deps:
        name = dep.split(">")[0].split("=")[0].split("<")[0].strip().lower()
        out[name] = dep
    return out


@pytest.mark.parametrize("name, spec", [
    ("pytest-html", "pytest-html>=4"),  # --html works after a plain install
    ("pytest-xdist", "pytest-xdist>=3"),  # -n works after a plain install
    ("pyyaml", "PyYAML>=6"),  # the plugin reads kubeconfigs with it
    ("pluggy", "pluggy>=1.2"),  # hookimpl(wrapper=True) needs 1.2
])
def test_runtime_dependencies_are_declared(name: str, spec: str) -> None:
    assert dependencies().get(name) == spec


def test_the_wheel_carries_the_plugin_and_its_files(tmp_path: Path) -> None:
    # A copy: setuptools builds in the source tree (build/, *.egg-info), which is shared.
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".mypy_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(src)], check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("pytest_k8snet-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for path in ("pytest_k8snet/plugin.py", "pytest_k8snet/py.typed",
                 "pytest_k8snet/report/k8snet.css", "pytest_k8snet/report/k8snet.js",
                 "pytest_k8snet/suite/test_network.py"):
        assert path in names, path
    meta = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    entry_points = zipfile.ZipFile(wheel).read(meta).decode()
    assert "k8snet = pytest_k8snet.plugin" in entry_points
    assert "k8snet-lab = pytest_k8snet.lab.cli:main" in entry_points
