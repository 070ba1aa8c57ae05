"""Access tokens as an ``httpx2`` auth flow: add the header, refresh once on rejection, resend.

A :class:`TokenProvider` hides where tokens come from (memory in tests, ``zoho_tokens`` with a
cross-process lease in the worker). :class:`ZohoAuth` asks it for a token per request; when Zoho
rejects the token (expired early, revoked, from another data center) it asks for a token newer
than the rejected one and resends the request exactly once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from datetime import datetime
from typing import Any, Protocol

import httpx2

from worker.integrations.zoho.oauth import TokenGrant, is_token_fresh

__all__ = ["MemoryTokenProvider", "TokenProvider", "ZohoAuth", "is_token_rejected"]

# CRM answers HTTP 401 INVALID_TOKEN; Campaigns answers HTTP 200 with code 1007 (unauthorized).
_REJECTED_CODES = {"INVALID_TOKEN", "INVALID_OAUTHTOKEN", "1007"}


class TokenProvider(Protocol):
    """Where :class:`ZohoAuth` gets access tokens."""

    def access_token(self) -> str:
        """A token believed valid now (refreshing first if the cached one is stale)."""
        ...

    def refresh(self, rejected: str) -> str:
        """A token other than ``rejected``; refreshes only if the cache still holds it."""
        ...


def is_token_rejected(status: int, body: Any) -> bool:
    """Did Zoho refuse the access token itself (so a new token may help)?"""
    code = None
    if isinstance(body, dict):
        code = body.get("code", body.get("Code"))
        if code is None and isinstance(body.get("response"), dict):
            code = body["response"].get("code")
    if code is not None and str(code).upper() in _REJECTED_CODES:
        return True
    # A bare 401 without a Zoho envelope (e.g. a gateway) is a token problem too; 401 with
    # another code (OAUTH_SCOPE_MISMATCH, AUTHENTICATION_FAILURE) is not fixed by refreshing.
    return status == 401 and code is None


def _decoded(response: httpx2.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class ZohoAuth(httpx2.Auth):
    """``Authorization: Zoho-oauthtoken <token>`` with one refresh-and-resend on rejection."""

    requires_response_body = True

    def __init__(self, provider: TokenProvider) -> None:
        self.provider = provider

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        token = self.provider.access_token()
        request.headers["Authorization"] = f"Zoho-oauthtoken {token}"
        response = yield request
        if is_token_rejected(response.status_code, _decoded(response)):
            token = self.provider.refresh(token)
            request.headers["Authorization"] = f"Zoho-oauthtoken {token}"
            yield request


class MemoryTokenProvider:
    """A token cached in memory, refreshed under a lock; for one process (tests, ``mmw dev``)."""

    def __init__(self, refresh: Callable[[], TokenGrant], clock: Callable[[], datetime]) -> None:
        self._refresh = refresh
        self._clock = clock
        self._lock = threading.Lock()
        self._grant: TokenGrant | None = None
        self.refreshes = 0

    @property
    def api_domain(self) -> str | None:
        """The API domain of the current grant (fetches one if none yet)."""
        self.access_token()
        return self._grant.api_domain if self._grant else None

    def _renew(self) -> str:
        self._grant = self._refresh()
        self.refreshes += 1
        return self._grant.access_token

    def access_token(self) -> str:
        with self._lock:
            grant = self._grant
            if grant is not None and is_token_fresh(grant.expires_at, self._clock()):
                return grant.access_token
            return self._renew()

    def refresh(self, rejected: str) -> str:
        with self._lock:
            if self._grant is not None and self._grant.access_token != rejected:
                return self._grant.access_token
            return self._renew()
