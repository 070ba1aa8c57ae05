"""Zoho Accounts: the refresh-token grant, and when a cached access token is still good.

The token endpoint answers most errors with HTTP 200 and an ``error`` key, so the body decides,
never the status alone. ``invalid_code`` / ``invalid_client*`` mean the refresh token (or the app)
is no longer usable: only a new consent helps (:class:`TokenExpired`). "Access Denied / too many
requests" is Zoho's throttle of 10 access tokens per refresh token in 10 minutes: retry later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx2

from worker.errors import PermanentFailure, RetryLater, TokenExpired

__all__ = [
    "FRESHNESS_MARGIN",
    "THROTTLE_DELAY_SECONDS",
    "TokenGrant",
    "is_token_fresh",
    "parse_token_response",
    "refresh_access_token",
]

FRESHNESS_MARGIN = timedelta(minutes=5)
"""A token this close to expiry counts as expired: a call started now must not outlive it."""

THROTTLE_DELAY_SECONDS = 600.0
"""Zoho's token throttle clears after its ten-minute window."""

_REVOKED = {"invalid_code", "invalid_client", "invalid_client_secret", "unauthorized_client"}


@dataclass(frozen=True)
class TokenGrant:
    """A new access token and where to use it. ``repr`` hides the token."""

    access_token: str
    api_domain: str | None
    expires_in: float
    expires_at: datetime
    token_type: str
    scope: str | None

    def __repr__(self) -> str:
        return f"TokenGrant(api_domain={self.api_domain!r}, expires_at={self.expires_at!r})"


def is_token_fresh(
    expires_at: datetime | None, now: datetime, margin: timedelta = FRESHNESS_MARGIN
) -> bool:
    """True when a token expiring at ``expires_at`` may still be used for a call started ``now``."""
    return expires_at is not None and now + margin < expires_at


def _lifetime_seconds(body: dict[str, Any]) -> float:
    """``expires_in`` in seconds; old responses with ``expires_in_sec`` gave milliseconds."""
    if "expires_in_sec" in body:
        return float(body["expires_in_sec"])
    return float(body.get("expires_in", 3600))


def parse_token_response(status: int, body: Any, now: datetime) -> TokenGrant:
    """Decide the outcome of one token-endpoint answer (status and decoded JSON body)."""
    if not isinstance(body, dict):
        if status >= 500:
            raise RetryLater(f"Zoho accounts server error (HTTP {status})")
        raise PermanentFailure(f"Zoho accounts answered HTTP {status} without a JSON body")
    error = body.get("error")
    if error:
        code = str(error)
        if code in _REVOKED:
            raise TokenExpired(f"Zoho refresh token rejected ({code}): reconnect Zoho")
        description = str(body.get("error_description", "")).lower()
        if code.lower() == "access denied" or "too many requests" in description:
            raise RetryLater("Zoho token requests throttled", delay=THROTTLE_DELAY_SECONDS)
        if status >= 500:
            raise RetryLater(f"Zoho accounts server error ({code})")
        raise PermanentFailure(f"Zoho token refresh failed ({code})")
    if status == 429 or status >= 500:
        raise RetryLater(f"Zoho accounts server unavailable (HTTP {status})")
    token = body.get("access_token")
    if status != 200 or not token:
        raise PermanentFailure(f"Zoho token refresh gave no access token (HTTP {status})")
    lifetime = _lifetime_seconds(body)
    return TokenGrant(
        access_token=str(token),
        api_domain=body.get("api_domain"),
        expires_in=lifetime,
        expires_at=now + timedelta(seconds=lifetime),
        token_type=str(body.get("token_type", "Bearer")),
        scope=body.get("scope"),
    )


def refresh_access_token(
    client: httpx2.Client,
    accounts_url: str,
    *,
    refresh_token: str,
    client_id: str,
    client_secret: str,
    now: datetime,
) -> TokenGrant:
    """One refresh-token grant on ``accounts_url`` (the user's data center or an override)."""
    try:
        response = client.post(
            accounts_url.rstrip("/") + "/oauth/v2/token",
            data={
                "refresh_token": refresh_token,
                "client_id": client_id,
                "client_secret": client_secret,
                "grant_type": "refresh_token",
            },
        )
    except httpx2.TimeoutException:
        raise RetryLater("Zoho accounts server timed out") from None
    except httpx2.HTTPError as exc:
        raise RetryLater(f"Zoho accounts server unreachable ({type(exc).__name__})") from None
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    return parse_token_response(response.status_code, body, now)
