"""Exec through the API server: one websocket per command, bounded by its timeout."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

from .. import ExecResult
from .client import kube
from .manifests import CONTAINER, EXIT_CANNOT_RUN, EXIT_EXEC_FAILED, EXIT_NOT_FOUND, EXIT_TIMEOUT
from .status import one_line, exit_code_from_status, status_message, without_kubelet_url


def _exec_error(exc: BaseException) -> str:
    """The apiserver's message from a failed exec handshake, else the exception's text."""
    text = str(getattr(exc, "reason", None) or exc)
    match = re.search(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
    if match:
        try:
            text = json.loads(f'"{match.group(1)}"')
        except ValueError:
            text = match.group(1)
    return one_line(without_kubelet_url(text))


def _close_ws(ws: Any) -> None:
    """Close an exec stream and its socket (websocket-client leaves the socket open when
    the server closed first)."""
    try:
        ws.close(timeout=0.5)
    except Exception:  # noqa: BLE001 - closing a broken stream
        pass
    sock = getattr(ws, "sock", None)
    if sock is not None:
        sock.shutdown()


def exec_in_pod(configuration: Any, namespace: str, pod: str, argv: Sequence[str],
                timeout: float) -> ExecResult:
    """Run ``argv`` in ``pod`` through the exec API; the result, never an exception.

    A fresh ApiClient per call: ``kubernetes.stream.stream`` swaps the client's transport
    while it runs, which must not leak into concurrent calls. The websocket connect runs in
    a daemon thread so that an API server waiting on an unreachable kubelet cannot hold
    the caller past ``timeout``.
    """
    k = kube()
    error_channel = k.stream.ws_client.ERROR_CHANNEL

    args = tuple(argv)
    start = time.monotonic()
    deadline = start + timeout
    box: dict[str, Any] = {}
    lock = threading.Lock()

    def open_stream() -> None:
        api = k.client.ApiClient(configuration)
        try:
            ws = k.stream.stream(k.client.CoreV1Api(api).connect_get_namespaced_pod_exec, pod,
                                 namespace, command=list(args), container=CONTAINER,
                                 stderr=True, stdin=False, stdout=True, tty=False,
                                 _preload_content=False)
        except BaseException as exc:  # noqa: BLE001 - reported as the result
            box["error"] = exc
            ws = None
        finally:
            api.close()
        with lock:
            if box.get("abandoned") and ws is not None:
                _close_ws(ws)
            else:
                box["ws"] = ws

    thread = threading.Thread(target=open_stream, name=f"k8snet-exec-{pod}", daemon=True)
    thread.start()
    thread.join(max(0.0, timeout))
    with lock:
        if thread.is_alive():
            box["abandoned"] = True
            return ExecResult(args, EXIT_TIMEOUT, "", f"exec in {pod}: no connection within "
                              f"{timeout:g}s", time.monotonic() - start, True)
    if box.get("ws") is None:
        return ExecResult(args, EXIT_EXEC_FAILED, "",
                          "exec in {} failed: {}".format(
                              pod, _exec_error(box.get("error") or RuntimeError("no stream"))),
                          time.monotonic() - start)
    ws = box["ws"]
    out: list[str] = []
    err: list[str] = []
    status = ""
    timed_out = False
    try:
        while ws.is_open():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            ws.update(timeout=min(remaining, 1.0))
            out.append(ws.read_stdout(timeout=0))
            err.append(ws.read_stderr(timeout=0))
        out.append(ws.read_stdout(timeout=0))
        err.append(ws.read_stderr(timeout=0))
        status = ws.read_channel(error_channel, timeout=0) or ""
    except Exception as exc:  # noqa: BLE001 - a broken stream is a failed command
        err.append(f"\nexec in {pod}: stream error: {one_line(exc)}")
        status = status or ""
    finally:
        _close_ws(ws)
    seconds = time.monotonic() - start
    stdout, stderr = "".join(out), "".join(err)
    if timed_out:
        return ExecResult(args, EXIT_TIMEOUT, stdout, stderr, seconds, True)
    code = exit_code_from_status(status)
    extra = status_message(status)
    if code in (EXIT_CANNOT_RUN, EXIT_NOT_FOUND, EXIT_EXEC_FAILED) and extra:
        stderr = (stderr + ("\n" if stderr and not stderr.endswith("\n") else "") + extra)
    return ExecResult(args, code, stdout, stderr, seconds)
