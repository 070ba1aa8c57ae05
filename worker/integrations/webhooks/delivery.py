"""One delivery attempt: the exact body, signed headers, one POST to the checked address.

The body is rendered deterministically from the stored event (sorted keys, compact separators),
so every retry of one ``webhook-id`` sends the same bytes; only ``webhook-timestamp`` and the
signature change per attempt, as the spec intends.

The POST goes through :class:`PinnedTransport` (the target's checked addresses only, no
redirects, no proxy), the whole attempt ends by one deadline, and at most ``max_response_bytes``
of the answer are read: the status and ``Retry-After`` are all that matter, the rest of the
body is left unread.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpcore2
import httpx2

from worker.integrations.webhooks.signing import signature_headers
from worker.integrations.webhooks.targets import Resolver, Target, resolve_host
from worker.integrations.webhooks.transport import Deadline, PinnedTransport

__all__ = ["MAX_RESPONSE_BYTES", "Attempt", "Network", "attempt_delivery", "render_body"]

USER_AGENT = "MarketingMinds-Webhooks/1"
MAX_RESPONSE_BYTES = 64 * 1024
_EXCERPT_CHARS = 200


def render_body(event_type: str, timestamp: datetime, data: dict[str, Any]) -> bytes:
    """``{"type", "timestamp", "data"}`` as the bytes that are signed and sent."""
    document = {"type": event_type, "timestamp": timestamp.isoformat(), "data": data}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()


@dataclass(frozen=True)
class Network:
    """How deliveries reach the network: the resolver, the socket layer and the clock.

    Production uses the system resolver and sockets; tests pass fakes (a resolver answering
    differently on each call, a backend that records where it was asked to connect).
    """

    resolve: Resolver = resolve_host
    backend: httpcore2.NetworkBackend | None = None
    clock: Callable[[], float] = field(default=time.monotonic)


@dataclass(frozen=True)
class Attempt:
    """What happened to one attempt (never contains the secret)."""

    status: int | None
    retry_after: float | None
    error: str | None
    response_bytes: int = 0
    excerpt: str = ""


def _retry_after(response: httpx2.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _read_capped(response: httpx2.Response, limit: int) -> bytes:
    """Up to ``limit`` raw bytes of the answer; stops at the cap, the deadline or an error."""
    received = bytearray()
    try:
        for chunk in response.iter_raw():
            received += chunk[: limit - len(received)]
            if len(received) >= limit:
                break
    except httpx2.HTTPError:
        pass  # the status is known: a slow or broken body does not change the outcome
    return bytes(received)


def attempt_delivery(
    target: Target,
    *,
    secret: str,
    msg_id: str,
    body: bytes,
    now: datetime,
    timeout: float,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
    network: Network | None = None,
) -> Attempt:
    """POST ``body`` to the checked ``target`` once, all of it within ``timeout`` seconds."""
    network = network or Network()
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **signature_headers(secret, msg_id, int(now.timestamp()), body),
    }
    transport = PinnedTransport(target, Deadline(timeout, network.clock), backend=network.backend)
    try:
        with (
            httpx2.Client(
                transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
            ) as client,
            client.stream("POST", target.url, content=body, headers=headers) as response,
        ):
            answer = _read_capped(response, max_response_bytes)
    except httpx2.TimeoutException:
        return Attempt(status=None, retry_after=None, error="timeout")
    except httpx2.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:_EXCERPT_CHARS]
        return Attempt(status=None, retry_after=None, error=error)
    return Attempt(
        status=response.status_code,
        retry_after=_retry_after(response),
        error=None,
        response_bytes=len(answer),
        excerpt=answer[:_EXCERPT_CHARS].decode("utf-8", "replace"),
    )
