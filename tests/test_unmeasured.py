"""A run that measured nothing (probe pods that never started, a run stopped before its
measurement): every report says so once, as one cause, and no message is cut mid-word.
Pure: documents and API objects built here, no lab (the real-cluster run is in
tests/test_realkube.py)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_k8snet.backends import kube as kb
from pytest_k8snet.text import ELLIPSIS, shorten, shorten_start

IMAGE = "registry.example.com/platform/netshoot:v0.13"
# containerd's words for a registry that does not answer: the end is what matters.
PULL_ERROR = (f'failed to pull and unpack image "{IMAGE}": failed to resolve reference '
              f'"{IMAGE}": failed to do request: Head "https://registry.example.com/v2/'
              'platform/netshoot/manifests/v0.13": dial tcp 203.0.113.5:443: i/o timeout')
BACK_OFF = f'Back-off pulling image "{IMAGE}": ErrImagePull: {PULL_ERROR}'


# -- no message cut mid-word ----------------------------------------------------------------

@pytest.mark.parametrize("limit", [10, 25, 40, 79, 200])
def test_shorten_cuts_at_a_word_boundary_with_an_ellipsis(limit: int) -> None:
    words = PULL_ERROR.split()
    short = shorten(PULL_ERROR, limit)
    assert len(short) <= limit and short.endswith(ELLIPSIS)
    kept = short[:-len(ELLIPSIS)].split()
    assert kept == words[:len(kept)], short  # whole words only, the last one too
    tail = shorten_start(PULL_ERROR, limit)
    assert len(tail) <= limit and tail.startswith(ELLIPSIS)
    end = tail[len(ELLIPSIS):].split()
    assert end == words[len(words) - len(end):], tail
    assert shorten(PULL_ERROR, len(PULL_ERROR)) == PULL_ERROR


def test_an_image_pull_error_is_kept_in_full() -> None:
    """The kubelet's message for an image it cannot pull goes into the node's problem (and
    so the results file) whole: cut, ``i/o timeout`` read ``i/o t...``."""
    pod = {"metadata": {"name": "k8snet-probe-node-1"}, "spec": {"nodeName": "node-1"},
           "status": {"phase": "Pending", "containerStatuses": [{
               "name": "probe", "image": IMAGE, "state": {"waiting": {
                   "reason": "ImagePullBackOff", "message": BACK_OFF}}}]}}
    assert len(BACK_OFF) > kb.DETAIL_CHARS  # longer than any other API message is kept
    problems = kb.pod_problems(pod, [])
    assert problems == [f"pod-network probe k8snet-probe-node-1 on node-1: ImagePullBackOff: "
                        f"image {IMAGE}: {BACK_OFF}"]
    long_event: dict[str, Any] = {
        "involvedObject": {"kind": "Pod", "name": "k8snet-probe-node-1"}, "type": "Warning",
        "reason": "FailedMount", "message": "x" * 10 + " " + PULL_ERROR * 2}
    other = kb.pod_problems({**pod, "status": {"phase": "Pending"}}, [long_event])
    assert other[0].endswith(ELLIPSIS) and "  " not in other[0]
    assert other[0][:-len(ELLIPSIS)].split()[-1] in PULL_ERROR.split()
