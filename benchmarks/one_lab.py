"""One lab kept up for many suite runs (the diagnosis benchmark's ``--kubernetes`` mode,
the healthy gate): brought up once, once more if that fails, and always taken down."""

from __future__ import annotations

import time

from pytest_k8snet import lab as labmod
from pytest_k8snet.lab import netns as ns


class OneLab:
    def __init__(self, name: str, nodes: int, kubernetes: bool) -> None:
        self.name, self.nodes, self.kubernetes = name, nodes, kubernetes
        self.lab: labmod.Lab | None = None
        self.started = False  # from the first bring-up on: down() also removes a half-built one
        self.up_down_s = 0.0

    @property
    def kind(self) -> str:
        return "cluster" if self.kubernetes else "lab"

    def up(self) -> labmod.Lab:
        """Bring the lab up; once more if the first bring-up fails (on a loaded machine a
        kubelet can miss the registration deadline)."""
        t = time.monotonic()
        self.started = True
        try:
            try:
                self.lab = labmod.up(self._spec())
            except labmod.LabError as exc:
                print(f"{self.kind} bring-up failed ({exc}); once more", flush=True)
                self.down()
                self.started = True
                self.lab = labmod.up(self._spec())
        finally:
            self.up_down_s += time.monotonic() - t
        print(f"{self.kind} {self.name} up in {time.monotonic() - t:.1f} s", flush=True)
        return self.lab

    def _spec(self) -> labmod.LabSpec:
        return labmod.LabSpec(name=self.name, nodes=self.nodes, kubernetes=self.kubernetes)

    def down(self) -> None:
        if not self.started:
            return
        t = time.monotonic()
        self.lab, self.started = None, False
        labmod.down(self.name)
        self.up_down_s += time.monotonic() - t
        left = ns.list_netns(f"k8snet-{self.name}-")
        if left:
            print(f"warning: lab {self.name} left namespaces behind: {left}", flush=True)
