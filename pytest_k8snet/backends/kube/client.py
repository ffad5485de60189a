"""The API client: connecting (kubeconfig or in-cluster), retries, one-line errors.

The client itself never retries (``urllib3.Retry(total=0)``: an unreachable API fails at
once, each request bounded by ``_request_timeout``); :func:`call_with_retries` retries what
is worth retrying -- 429, 500, 502, 503, 504 and a connection reset mid-request -- with
backoff, honouring ``Retry-After``, and never a 4xx that will not change.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import urllib3

from .. import BackendError
from .status import one_line, api_error_message, connection_error_reason

T = TypeVar("T")
IN_CLUSTER = "in-cluster"  # the context name reported for a pod's service account
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_ATTEMPTS = 8
RETRY_BUDGET_S = 60.0  # all waits of one call together
MAX_DELAY_S = 10.0


def kube() -> Any:
    """The ``kubernetes`` package, imported on first use and typed loosely (its generated
    annotations want model objects where this module passes plain JSON dicts)."""
    import kubernetes.client
    import kubernetes.config
    import kubernetes.stream
    import kubernetes.watch

    return kubernetes


def release_response(resp: Any) -> None:
    """Finish with a raw response: read what is left, then give the connection back (an
    unread body on a pooled connection would be taken for the next response)."""
    try:
        resp.drain_conn()
    finally:
        resp.release_conn()


def _kubeconfig_files(path: str) -> list[str]:
    return [p for p in path.split(os.pathsep) if p]


def kubeconfig_context(kubeconfig: str, context: str | None) -> str:
    """The name of the context a run uses in ``kubeconfig`` (``:``-separated files merge):
    ``context`` when the file has it, else the current one. Reads only the files, never
    the cluster; a missing file, an unknown context, no current context or a broken file
    raise :class:`BackendError` saying which."""
    files = _kubeconfig_files(kubeconfig)
    if not files or not any(Path(f).is_file() for f in files):
        raise BackendError(f"kubeconfig {kubeconfig} not found "
                           "(--k8s-kubeconfig, KUBECONFIG or ~/.kube/config)")
    with _one_line_kubeconfig_errors(kubeconfig):
        contexts, current = kube().config.list_kube_config_contexts(config_file=kubeconfig)
    names = [str(c.get("name")) for c in contexts or []]
    if context is not None and context not in names:
        raise BackendError(f"context {context!r} not found in kubeconfig {kubeconfig} "
                           f"(it has: {', '.join(names) or 'none'})")
    if context is None and not current:
        raise BackendError(f"kubeconfig {kubeconfig} has no current context; "
                           "pass --k8s-context")
    return context or str((current or {}).get("name") or "")


@contextlib.contextmanager
def _one_line_kubeconfig_errors(kubeconfig: str) -> Iterator[None]:
    """Whatever loading ``kubeconfig`` raises, as one BackendError line (no traceback)."""
    ConfigException = kube().config.config_exception.ConfigException  # noqa: N806
    try:
        yield
    except BackendError:
        raise
    except (ConfigException, OSError, ValueError, KeyError, TypeError) as exc:
        raise BackendError(f"kubeconfig {kubeconfig}: {one_line(exc, 200)}") from None
    except Exception as exc:  # noqa: BLE001 - exec plugins and friends
        raise BackendError(f"kubeconfig {kubeconfig}: {type(exc).__name__}: "
                           f"{one_line(exc, 200)}") from None


def connect(kubeconfig: str, context: str | None,
            in_cluster: bool = False) -> tuple[Any, str, str]:
    """An API client for ``kubeconfig`` (``:``-separated files merge) and ``context``, or
    for the pod's service account when ``in_cluster`` or ``kubeconfig`` is ``""`` (what
    ``settings.kubeconfig_path`` gives for an in-cluster run).

    Returns the client, the server URL and the context's name (``in-cluster``). A missing
    file, an unknown context or a broken kubeconfig raise :class:`BackendError` (see
    :func:`kubeconfig_context`). The client never retries by itself: see
    :func:`call_with_retries`.
    """
    if in_cluster or not kubeconfig:
        return connect_in_cluster()
    name = kubeconfig_context(kubeconfig, context)
    conf = kube().client.Configuration()
    # No retries: an unreachable API fails at once; each request is bounded by timeout.
    conf.retries = urllib3.Retry(total=0, backoff_factor=0)
    conf.connection_pool_maxsize = 32
    with _one_line_kubeconfig_errors(kubeconfig):
        api = kube().config.new_client_from_config(
            config_file=kubeconfig, context=context, persist_config=False,
            client_configuration=conf)
    return api, str(api.configuration.host), name


def connect_in_cluster(token_file: str | None = None, cert_file: str | None = None
                       ) -> tuple[Any, str, str]:
    """An API client from the pod's service account (``KUBERNETES_SERVICE_HOST``/``PORT``,
    the mounted token and CA), the way client-go's ``rest.InClusterConfig`` does; the
    token is re-read when the kubelet rotates it."""
    k = kube()
    ConfigException = k.config.config_exception.ConfigException  # noqa: N806
    conf = k.client.Configuration()
    try:
        kwargs: dict[str, str] = {}
        if token_file:
            kwargs["token_filename"] = token_file
        if cert_file:
            kwargs["cert_filename"] = cert_file
        if kwargs:  # tests point at other files; the loader class takes them
            loader = k.config.incluster_config.InClusterConfigLoader
            loader(**kwargs, try_refresh_token=True).load_and_set(conf)
        else:
            k.config.load_incluster_config(client_configuration=conf)
    except (ConfigException, OSError, ValueError) as exc:
        raise BackendError(f"no kubeconfig and no in-cluster service account: "
                           f"{one_line(exc, 200)} (give --k8s-kubeconfig, or run in a pod "
                           "with a service account token mounted)") from None
    conf.retries = urllib3.Retry(total=0, backoff_factor=0)
    conf.connection_pool_maxsize = 32
    return k.client.ApiClient(conf), str(conf.host), IN_CLUSTER


def kubectl_flags(kubeconfig: str, context: str | None) -> str:
    """The ``kubectl`` flags (leading space) that reach the same cluster, for the commands
    printed to remove what a run left; none for the defaults kubectl picks itself."""
    if not kubeconfig:
        return ""  # in a pod, kubectl finds the service account itself
    default = str(Path("~/.kube/config").expanduser())
    flags = "" if kubeconfig in (default, os.environ.get("KUBECONFIG")) \
        else f" --kubeconfig {kubeconfig}"
    return flags + (f" --context {context}" if context else "")


def api_failure(exc: BaseException, what: str, server: str, timeout: float) -> BackendError:
    """The BackendError for any exception raised by an API call."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, ApiException) and exc.status:
        return BackendError(api_error_message(exc.status, exc.body, exc.reason, what, server))
    if isinstance(exc, ApiException):  # status 0: TLS and transport errors
        return BackendError(f"cannot reach the Kubernetes API at {server}: "
                            f"{connection_error_reason(Exception(exc.reason), timeout)}")
    if isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
        return BackendError(f"cannot reach the Kubernetes API at {server}: "
                            f"{connection_error_reason(exc, timeout)}")
    return BackendError(f"cannot {what}: {type(exc).__name__}: {one_line(exc, 200)}")



# -- retries ----------------------------------------------------------------------------------


def retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), else None."""
    if not headers:
        return None
    value = next((str(v) for k, v in headers.items() if str(k).lower() == "retry-after"), "")
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _retry_after_seconds(body: object) -> float | None:
    """``details.retryAfterSeconds`` of a Status body (set where the header may be lost)."""
    try:
        data = json.loads(str(body or "")) if body else None
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    seconds = (data.get("details") or {}).get("retryAfterSeconds")
    return float(seconds) if isinstance(seconds, (int, float)) and seconds > 0 else None


def _transport_reset(exc: BaseException) -> bool:
    """A connection the server (or something between) dropped mid-request: worth one more
    try. Not a refused or timed-out connection: an unreachable API must fail at once."""
    inner: BaseException | None = exc
    while isinstance(inner, urllib3.exceptions.MaxRetryError):
        inner = inner.reason
    if isinstance(inner, urllib3.exceptions.ProtocolError):
        return True
    if isinstance(inner, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
                          http.client.RemoteDisconnected)):
        return True
    text = str(inner or "").lower()
    return "connection reset" in text or "connection aborted" in text


def retry_delay(exc: BaseException, attempt: int) -> float | None:
    """How long to wait before trying again after ``exc`` (attempt 0 is the first retry),
    or None when retrying cannot help (every other 4xx, refused, timed out, bad TLS)."""
    from kubernetes.client.exceptions import ApiException

    backoff: float = min(MAX_DELAY_S, 0.25 * 2 ** attempt) * (1 + 0.2 * random.random())
    if isinstance(exc, ApiException) and exc.status:
        if exc.status not in TRANSIENT_STATUSES:
            return None
        asked = retry_after(exc.headers)
        if asked is None:
            asked = _retry_after_seconds(exc.body)
        return backoff if asked is None else min(max(asked, 0.05), 30.0)
    if _transport_reset(exc):
        return backoff
    return None


def call_with_retries(fn: Callable[[], T], *, attempts: int = RETRY_ATTEMPTS,
                      budget: float = RETRY_BUDGET_S,
                      sleep: Callable[[float], None] = time.sleep,
                      on_retry: Callable[[BaseException, float], None] | None = None) -> T:
    """``fn()``, again after a transient failure (see :func:`retry_delay`), at most
    ``attempts`` times and ``budget`` seconds of waiting; the last failure is raised."""
    waited = 0.0
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified below, re-raised if not transient
            delay = retry_delay(exc, attempt)
            if delay is None or attempt + 1 >= attempts or waited + delay > budget:
                raise
            if on_retry is not None:
                on_retry(exc, delay)
            sleep(delay)
            waited += delay
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
