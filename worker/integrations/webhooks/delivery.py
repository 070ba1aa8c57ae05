"""One delivery attempt: the exact body, signed headers, a POST with a timeout and no redirects.

The body is rendered deterministically from the stored event (sorted keys, compact separators),
so every retry of one ``webhook-id`` sends the same bytes; only ``webhook-timestamp`` and the
signature change per attempt, as the spec intends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx2

from worker.integrations.webhooks.signing import signature_headers

__all__ = ["Attempt", "attempt_delivery", "render_body"]

USER_AGENT = "MarketingMinds-Webhooks/1"


def render_body(event_type: str, timestamp: datetime, data: dict[str, Any]) -> bytes:
    """``{"type", "timestamp", "data"}`` as the bytes that are signed and sent."""
    document = {"type": event_type, "timestamp": timestamp.isoformat(), "data": data}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()


@dataclass(frozen=True)
class Attempt:
    """What happened to one attempt (never contains the secret)."""

    status: int | None
    retry_after: float | None
    error: str | None


def _retry_after(response: httpx2.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def attempt_delivery(
    client: httpx2.Client,
    url: str,
    *,
    secret: str,
    msg_id: str,
    body: bytes,
    now: datetime,
) -> Attempt:
    """POST ``body`` to ``url`` once (the client holds the timeout and never follows redirects)."""
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **signature_headers(secret, msg_id, int(now.timestamp()), body),
    }
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx2.TimeoutException:
        return Attempt(status=None, retry_after=None, error="timeout")
    except httpx2.HTTPError as exc:
        return Attempt(status=None, retry_after=None, error=type(exc).__name__)
    return Attempt(status=response.status_code, retry_after=_retry_after(response), error=None)
