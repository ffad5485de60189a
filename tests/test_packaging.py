"""What ``pip install`` of the project gives: a wheel with the plugin, its files and entry
points, that requires every distribution the plugin imports."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _source_copy(tmp_path: Path) -> Path:
    # A copy: setuptools builds in the source tree (build/, *.egg-info), which is shared.
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".mypy_cache"))
    return src


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    tmp_path = tmp_path_factory.mktemp("wheel")
    src = _source_copy(tmp_path)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(src)], check=True, capture_output=True, timeout=300)
    return zipfile.ZipFile(next(tmp_path.glob("pytest_k8snet-*.whl")))


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_top_level_modules() -> set[str]:
    """Third-party modules the package imports anywhere (in functions too)."""
    found: set[str] = set()
    for path in (ROOT / "pytest_k8snet").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "pytest_k8snet"}


def test_the_wheel_carries_the_plugin_and_its_files(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    for path in ("pytest_k8snet/plugin.py", "pytest_k8snet/py.typed",
                 "pytest_k8snet/report/k8snet.css", "pytest_k8snet/report/k8snet.js",
                 "pytest_k8snet/suite/test_network.py"):
        assert path in names, path
    meta = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    entry_points = wheel.read(meta).decode()
    assert "k8snet = pytest_k8snet.plugin" in entry_points
    assert "k8snet-lab = pytest_k8snet.lab.cli:main" in entry_points


def test_the_wheel_requires_what_the_plugin_imports(wheel: zipfile.ZipFile) -> None:
    """A module imported but not required works here only through another package's
    dependencies, and breaks on an install where that one changed."""
    meta = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    required = {_normalized(m.group(1)) for line in wheel.read(meta).decode().splitlines()
                if (m := re.match(r"Requires-Dist: ([A-Za-z0-9._-]+)", line))
                and "extra ==" not in line}
    providers = importlib.metadata.packages_distributions()
    missing = {}
    for module in sorted(imported_top_level_modules()):
        dists = {_normalized(d) for d in providers.get(module, [])}
        assert dists, f"{module}: imported but not installed in this environment"
        if not dists & required:
            missing[module] = sorted(dists)
    assert not missing, f"imported but not in the wheel's Requires-Dist: {missing}"


def test_the_editable_install_prints_no_warning(tmp_path: Path) -> None:
    """scripts/setup.sh (`pip install -e .`) is a newcomer's first command: its output must
    not open with a build backend's warning block."""
    from pip._vendor import pyproject_hooks

    if not hasattr(pyproject_hooks, "BuildBackendWarning"):
        pytest.skip("this pip does not pass a build backend's warnings on")
    src = _source_copy(tmp_path)
    # An empty venv, installed into by this pip (--python): no second pip to download.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")],
                   check=True, timeout=120)
    proc = subprocess.run([sys.executable, "-m", "pip", "--python",
                           str(tmp_path / "venv" / "bin" / "python"), "install", "-q",
                           "--no-deps", "-e", str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
