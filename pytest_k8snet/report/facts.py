"""What the reports may know of a run: a read-only view that the run provides.

The reports draw from the run's document and its one judgement, never from live state,
and never import the run: the run puts an object with this shape in ``config.stash``
under :data:`FACTS_KEY` at configure time (the controller's under xdist too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from ..judge import Judgement
    from ..options import Settings


class RunFacts(Protocol):
    @property
    def settings(self) -> "Settings": ...

    @property
    def worker(self) -> str | None:
        """The xdist worker id; None in the controller or without xdist."""

    @property
    def started(self) -> float:
        """time.time() at configure."""

    @property
    def outcomes(self) -> dict[str, str]:
        """Test node id -> outcome, as the controller saw the reports."""

    @property
    def diagnoses(self) -> list[dict[str, Any]]:
        """The failures' diagnoses, as the tests recorded them (JUnit ``k8snet_diagnosis``)."""

    def identity(self) -> dict[str, Any]:
        """The cluster's identity and the one-line target (noted while it was up)."""

    def coverage(self) -> dict[str, Any] | None:
        """What the run tested (see ``Run.coverage``); None when no test asked for nodes."""

    def measured(self) -> tuple[dict[str, Any] | None, "Judgement | None"]:
        """The run's measurement document and its judgement (judged once per process), from
        this process or from the xdist workers; (None, None) when nothing was measured."""

    def raw_measurements(self) -> dict[str, Any]:
        """The measurement caches of a run that took no document (user tests that called
        ``k8s_cluster.ping()`` and so on), from this process or the xdist workers."""


FACTS_KEY = pytest.StashKey[RunFacts]()
