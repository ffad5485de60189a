"""Waiting for the run's probe pods, saying how far they got now and then."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import BackendError
from .api import KubeApi
from .client import kube
from .manifests import RunNames
from .status import pod_gave_up, pod_is_ready, progress_line

if TYPE_CHECKING:
    import pytest

PROGRESS_EVERY_S = 5.0


def terminal_progress(config: pytest.Config) -> Callable[[str], None] | None:
    """Progress lines through pytest's terminal reporter (public API), if there is one."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not hasattr(reporter, "write_line"):
        return None

    # Setup runs inside a fixture, whose output pytest captures: lift the capture for the
    # line, as pytest's own live logging does, or nobody sees the progress of a slow pull.
    capman = config.pluginmanager.get_plugin("capturemanager")

    def write(line: str) -> None:
        lifted = (capman.global_and_fixture_disabled() if capman is not None
                  else contextlib.nullcontext())
        with lifted:
            reporter.write_line(f"k8snet: {line}")

    return write


@dataclass
class Progress:
    """Where the lines saying how far the start got go ("waiting for probes: 4/6 running,
    2 pulling image"): ``write`` (None is silent), at most one line every ``every`` seconds."""

    write: Callable[[str], None] | None = None
    every: float = PROGRESS_EVERY_S

    def say(self, line: str) -> None:
        if self.write is not None:
            try:
                self.write(line)
            except Exception:  # noqa: BLE001 - progress is informative only
                pass


@dataclass
class PodWatch:
    """The run's pods and the namespace's events, listed and watched."""

    api: KubeApi
    names: RunNames
    progress: Progress = field(default_factory=Progress)
    _pods_rv: str = ""  # the last list's resourceVersion: the watch starts from there

    def pods(self) -> list[dict[str, Any]]:
        """The run's pods (by its label)."""
        data = self.api.read(f"list pods in {self.names.namespace}",
                             self.api.core.list_namespaced_pod, self.names.namespace,
                             label_selector=self.names.selector)
        self._pods_rv = str((data.get("metadata") or {}).get("resourceVersion") or "")
        return list(data.get("items") or [])

    def events(self) -> list[dict[str, Any]]:
        """Core/v1 Events of the namespace (not events.k8s.io); none if not allowed."""
        try:
            data = self.api.read(f"list events in {self.names.namespace}",
                                 self.api.core.list_namespaced_event, self.names.namespace)
        except BackendError:
            return []
        return list(data.get("items") or [])

    def _pause(self, seconds: float) -> None:
        """Return when a run pod changes, or after ``seconds``."""
        if seconds <= 0:
            return
        w = kube().watch.Watch()
        begin = time.monotonic()
        timeout = self.api.timeout
        try:
            for _ in w.stream(self.api.core.list_namespaced_pod, self.names.namespace,
                              label_selector=self.names.selector,
                              resource_version=self._pods_rv or None,
                              timeout_seconds=max(1, int(seconds)),
                              _request_timeout=(timeout, seconds + timeout)):
                break
        except Exception:  # noqa: BLE001 - a watch is only a faster poll
            pass
        finally:
            w.stop()
        left = seconds - (time.monotonic() - begin)
        if left > 0 and time.monotonic() - begin < 0.05:
            time.sleep(min(left, 0.5))  # the watch answered at once (e.g. 410 Gone): poll

    def wait(self, wait_for: set[str], everything: set[str], deadline: float,
             setup_timeout: float
             ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """List (and watch) the run's pods until ``wait_for`` are ready or hopeless, or the
        deadline; then the namespace's events if any of ``everything`` is not ready.
        Says how far it got every few seconds (:attr:`progress`)."""
        self._pods_rv = ""
        begin = last_said = time.monotonic()
        said = ""
        while True:
            pods = {str(p["metadata"]["name"]): p for p in self.pods()}
            waiting = {n for n in wait_for if n not in pods
                       or not (pod_is_ready(pods[n]) or pod_gave_up(pods[n]))}
            now = time.monotonic()
            remaining = deadline - now
            if not waiting or remaining <= 0:
                break
            if now - last_said >= self.progress.every:
                mine = {n: p for n, p in pods.items() if n in everything}
                line = progress_line(mine, len(everything), self.events()) \
                    + f" ({now - begin:.0f}s of {setup_timeout:.0f}s)"
                if line != said:
                    self.progress.say(line)
                    said = line
                last_said = now
            self._pause(min(2.0, remaining))
        unready = any(n not in pods or not pod_is_ready(pods[n]) for n in everything)
        return pods, self.events() if unready else []
