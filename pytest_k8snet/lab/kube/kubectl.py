"""The cluster's own kubectl, through the API forwarder, for the lab's bring-up."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from ..netns import LabError


class Kubectl:
    """The cluster's own kubectl, through the forwarder, for the lab's bring-up."""

    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.argv = [str(binary), "kubectl", "--kubeconfig", str(kubeconfig),
                     "--request-timeout", "5s"]

    def _run(self, args: tuple[str, ...], stdin: str | None = None
             ) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run([*self.argv, *args], input=stdin, capture_output=True,
                                  text=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(args, 124, "", "timed out")

    def ok(self, *args: str) -> bool:
        return self._run(args).returncode == 0

    def lines(self, *args: str, prefix: str = "") -> list[str]:
        proc = self._run(args)
        if proc.returncode != 0:
            return []
        return [line[len(prefix):] if line.startswith(prefix) else line
                for line in proc.stdout.splitlines() if line.strip()]

    def run(self, *args: str) -> str:
        proc = self._run(args)
        if proc.returncode != 0:
            raise LabError(f"kubectl {' '.join(args[:3])} failed: "
                           f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
        return proc.stdout

    def apply(self, manifest: str) -> None:
        for _ in range(20):  # the API server may still be installing its default RBAC
            proc = self._run(("apply", "-f", "-"), stdin=manifest)
            if proc.returncode == 0:
                return
            time.sleep(0.5)
        raise LabError(f"kubectl apply failed: {proc.stderr.strip().splitlines()[-1:]}")

