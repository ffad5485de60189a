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

    def _follow(self, pods: dict[str, dict[str, Any]], seconds: float,
                changed: Callable[[str], bool]) -> bool:
        """Apply the run's pod changes to ``pods`` (name: object) from one watch starting at
        the last list's or watch's resourceVersion, for at most ``seconds`` or until
        ``changed(name)``, called after each change, says that was enough. False when the
        watch failed (410 Gone, a dropped connection): the caller lists again. One request
        however many pods change, where a list per change would carry every pod each time
        (2,000 at 1,000 nodes)."""
        if seconds <= 0:
            return True
        w = kube().watch.Watch()
        timeout = self.api.timeout
        begin = time.monotonic()
        try:
            for event in w.stream(self.api.core.list_namespaced_pod, self.names.namespace,
                                  label_selector=self.names.selector,
                                  resource_version=self._pods_rv or None,
                                  allow_watch_bookmarks=True,
                                  timeout_seconds=max(1, int(seconds)),
                                  _request_timeout=(timeout, seconds + timeout),
                                  # plain dicts for .status: no model object per change
                                  deserialize=False):
                obj = event.get("object") or {}
                meta = obj.get("metadata") or {}
                if meta.get("resourceVersion"):
                    self._pods_rv = str(meta["resourceVersion"])
                name = str(meta.get("name") or "")
                if event.get("type") == "DELETED":
                    pods.pop(name, None)
                elif event.get("type") in ("ADDED", "MODIFIED") and name:
                    pods[name] = obj
                else:
                    continue  # a bookmark: only the resourceVersion moved
                if changed(name):
                    break
        except Exception:  # noqa: BLE001 - 410 Gone or a dropped watch: list again
            if time.monotonic() - begin < 0.05:
                time.sleep(min(seconds, 0.5))  # not a hot loop against a failing API
            return False
        finally:
            w.stop()
        return True

    def wait(self, wait_for: set[str], everything: set[str], deadline: float,
             setup_timeout: float
             ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """List the run's pods once, then follow them with watches, until ``wait_for`` are
        ready or hopeless, or the deadline; then the namespace's events if any of
        ``everything`` is not ready. Says how far it got every few seconds
        (:attr:`progress`)."""
        self._pods_rv = ""
        begin = last_said = time.monotonic()
        said = ""
        pods = {str(p["metadata"]["name"]): p for p in self.pods()}

        def settled(name: str) -> bool:
            return name in pods and (pod_is_ready(pods[name]) or pod_gave_up(pods[name]))

        # kept per change: recomputing it over 2,000 pods at each of 2,000 events is slow
        waiting = {n for n in wait_for if not settled(n)}

        def changed(name: str) -> bool:
            if name in wait_for:
                if settled(name):
                    waiting.discard(name)
                else:
                    waiting.add(name)
            return not waiting

        while True:
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
            # at least a second per watch (its server-side timeout is whole seconds), even
            # when progress is said at every look (every=0)
            window = min(max(self.progress.every, 1.0), remaining)
            if not self._follow(pods, window, changed):
                pods.clear()
                pods.update((str(p["metadata"]["name"]), p) for p in self.pods())
                waiting = {n for n in wait_for if not settled(n)}
        unready = any(n not in pods or not pod_is_ready(pods[n]) for n in everything)
        return pods, self.events() if unready else []
