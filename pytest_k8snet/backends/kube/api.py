"""One cluster's API as the backend calls it: bounded, retried when transient, one-line errors.

Objects are read as plain JSON dicts (``_preload_content=False``) for the pure readers of
:mod:`.status`; every failure becomes a :class:`BackendError` naming what was tried.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from .. import BackendError
from .client import api_failure, call_with_retries, kube, release_response


class KubeApi:
    """An API client and the server it talks to, with the run's timeout applied to every
    request and a count of the transient failures it retried."""

    def __init__(self, client: Any, server: str, timeout: float) -> None:
        self.client = client  # a kubernetes.client.ApiClient
        self.core: Any = kube().client.CoreV1Api(client)
        self.server = server
        self.timeout = timeout
        # Each wait before a retry, in seconds (how often and how long the API was busy).
        self.retry_waits: list[float] = []
        self._lock = threading.Lock()  # calls come from many threads at once

    @property
    def retries(self) -> int:
        """Transient failures retried so far."""
        return len(self.retry_waits)

    @property
    def request_timeout(self) -> tuple[float, float]:
        """(connect incl. TLS handshake, read): an unreachable API fails within timeout; a
        slow answer (a big node list) gets a little longer."""
        return (self.timeout, max(2 * self.timeout, 10.0))

    def discovery(self) -> Any:
        """The discovery.k8s.io/v1 API (EndpointSlices) on the same client."""
        return kube().client.DiscoveryV1Api(self.client)

    def error(self, exc: BaseException, what: str) -> BackendError:
        """The one-line BackendError for ``exc`` raised while trying to ``what``."""
        return api_failure(exc, what, self.server, self.timeout)

    def _count_retry(self, exc: BaseException, delay: float) -> None:
        with self._lock:
            self.retry_waits.append(delay)

    def retrying(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` with the request timeout, retried when transient; API
        exceptions pass through for the caller to read."""
        return call_with_retries(
            lambda: fn(*args, _request_timeout=kwargs.pop("_request_timeout", None)
                       or self.request_timeout, **kwargs),
            on_retry=self._count_retry)

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """:meth:`retrying`, any failure raised as one BackendError about ``what``."""
        try:
            return self.retrying(fn, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line
            raise self.error(exc, what) from None

    def read(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any
             ) -> dict[str, Any]:
        """The JSON object ``fn`` answers ({} when the answer is not an object)."""
        resp = self.call(what, fn, *args, _preload_content=False, **kwargs)
        try:
            data = json.loads(resp.data)
        finally:
            resp.release_conn()
        return data if isinstance(data, dict) else {}

    def create(self, what: str, fn: Callable[..., Any], *args: Any) -> bool:
        """Create an object; False if it already exists."""
        return self._answered(what, fn, *args, absent_status=409)

    def exists(self, what: str, fn: Callable[..., Any], *args: Any) -> bool:
        """Read an object: False if there is none."""
        return self._answered(what, fn, *args, absent_status=404)

    def _answered(self, what: str, fn: Callable[..., Any], *args: Any,
                  absent_status: int) -> bool:
        """True when ``fn`` succeeds, False when it fails with ``absent_status``."""
        from kubernetes.client.exceptions import ApiException

        try:
            release_response(self.retrying(fn, *args, _preload_content=False))
            return True
        except ApiException as exc:
            if exc.status == absent_status:
                return False
            raise self.error(exc, what) from None
        except Exception as exc:  # noqa: BLE001
            raise self.error(exc, what) from None

    def close(self) -> None:
        self.client.close()
