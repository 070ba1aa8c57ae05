"""An httpx2 transport that connects only to a checked :class:`Target`, within one deadline.

httpx2 hands its connection pool the URL's host name. :class:`PinnedBackend`, the pool's
httpcore2 network backend, never resolves it: it opens the TCP connection to the addresses the
SSRF check approved, and refuses any other host or port. Everything above the socket keeps the
original name, so the ``Host`` header, the TLS server name (SNI) and the certificate check are
those of the URL.

Every socket operation's timeout is clamped to the attempt's :class:`Deadline`, so the whole
attempt (connect, TLS, send, answer) ends by then: a receiver that trickles one byte per second
cannot hold a worker longer than the per-read timeout would suggest.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpcore2
import httpx2

from worker.integrations.webhooks.targets import Target

__all__ = ["Deadline", "PinnedBackend", "PinnedTransport"]


class Deadline:
    """A point in (monotonic) time that every network operation of one attempt must respect."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._at = clock() + seconds

    def remaining(self) -> float:
        return self._at - self._clock()

    def clamp(self, timeout: float | None, expired: type[Exception]) -> float:
        """``timeout`` shortened to the time left; raises ``expired`` when none is left."""
        left = self.remaining()
        if left <= 0:
            raise expired("webhook attempt deadline exceeded")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore2.NetworkStream):
    """A network stream whose every read, write and TLS handshake ends by the deadline."""

    def __init__(self, stream: httpcore2.NetworkStream, deadline: Deadline) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.clamp(timeout, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.clamp(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.NetworkStream:
        clamped = self._deadline.clamp(timeout, httpcore2.ConnectTimeout)
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, clamped), self._deadline
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class PinnedBackend(httpcore2.NetworkBackend):
    """Connects to the target's checked addresses, in order; never to anything else."""

    def __init__(
        self,
        target: Target,
        deadline: Deadline,
        inner: httpcore2.NetworkBackend | None = None,
    ) -> None:
        self._target = target
        self._deadline = deadline
        self._inner = inner or httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        if (host, port) != (self._target.host, self._target.port):
            raise httpcore2.ConnectError(f"{host}:{port} is not the checked webhook target")
        failure: Exception | None = None
        for address in self._target.addresses:
            clamped = self._deadline.clamp(timeout, httpcore2.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(
                    address, port, clamped, local_address, socket_options
                )
            except httpcore2.ConnectError as exc:  # refused/unreachable: try the next address
                failure = exc
                continue
            return _DeadlineStream(stream, self._deadline)
        raise failure or httpcore2.ConnectError("webhook target has no address")

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        raise httpcore2.ConnectError("webhooks never connect to unix sockets")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class PinnedTransport(httpx2.HTTPTransport):
    """httpx2's own transport (exception mapping, streaming) over a :class:`PinnedBackend`.

    No proxy and no environment: the pool is replaced by one whose only way out is the
    pinned backend. ``verify`` is httpx2's (system CA bundle by default).
    """

    def __init__(
        self,
        target: Target,
        deadline: Deadline,
        *,
        backend: httpcore2.NetworkBackend | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        ssl_context = httpx2.create_ssl_context(verify=verify, trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = httpcore2.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=1,
            max_keepalive_connections=0,
            network_backend=PinnedBackend(target, deadline, backend),
        )
