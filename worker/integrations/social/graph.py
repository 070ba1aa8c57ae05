"""The Graph API error envelope and paging, shared by the Facebook and Instagram clients.

Graph answers most errors with HTTP 400 and an ``{"error": {"code": …}}`` body, so errors are
classified by ``code`` rather than by status (api-contracts §4.5).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2

from worker.errors import JobError, OutcomeUnknown, PermanentFailure, RetryLater, TokenExpired
from worker.integrations.social.base import (
    DuplicateContent,
    SocialAccount,
    SocialClient,
    json_body,
    retry_delay,
)

__all__ = ["GraphClient", "graph_error"]

RATE_LIMIT_CODES = frozenset({4, 17, 32, 341, 613, 80001, 80002})
TOKEN_CODES = frozenset({102, 190})
TRANSIENT_CODES = frozenset({1, 2})
NOT_READY_CODE = 9007  # Instagram: container not FINISHED yet
POLICY_BLOCK_CODE = 368
POLICY_BLOCK_SECONDS = 3600.0
DUPLICATE_CODE = 506


def graph_error(
    platform: str, status: int, body: dict[str, Any], headers: Any, now: float, *, effect: bool
) -> JobError | None:
    """Map a Graph error envelope onto our outcomes; None when the body has no envelope."""
    error = body.get("error")
    if not isinstance(error, dict):
        return None
    code = error.get("code")
    subcode = error.get("error_subcode")
    text = f"{platform}: ({code}{f'/{subcode}' if subcode else ''}) {error.get('message', '')}"
    if code in TOKEN_CODES:
        return TokenExpired(text)
    if code in RATE_LIMIT_CODES:
        return RetryLater(text, delay=retry_delay(headers, now))
    if code == POLICY_BLOCK_CODE:
        return RetryLater(text, delay=max(POLICY_BLOCK_SECONDS, retry_delay(headers, now)))
    if code == NOT_READY_CODE:
        return RetryLater(text, delay=retry_delay(headers, now))
    if code == DUPLICATE_CODE:
        return DuplicateContent(text)
    if code in TRANSIENT_CODES or status >= 500:
        return OutcomeUnknown(text) if effect else RetryLater(text)
    return PermanentFailure(text)


class GraphClient(SocialClient):
    """Adds Graph error classification and ``paging.next`` iteration."""

    max_pages = 10

    def classify(self, response: httpx2.Response, *, effect: bool) -> JobError | None:
        return graph_error(
            self.platform,
            response.status_code,
            json_body(response),
            response.headers,
            self._clock(),
            effect=effect,
        )

    def _pages(
        self, path: str, account: SocialAccount, params: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        """Items of a paged edge, following ``paging.next`` up to ``max_pages`` pages."""
        url: str | None = path
        query: dict[str, Any] | None = params
        for _ in range(self.max_pages):
            if url is None:
                return
            body = json_body(self._request("GET", url, account, params=query))
            yield from body.get("data") or []
            url = (body.get("paging") or {}).get("next")
            query = None  # the next link carries the full query
