"""Zoho CRM records API (v8): list records page by page, optionally only those modified since.

Paging: ``page``/``per_page`` reach only the first 2,000 records; past that the ``page_token``
from ``info.next_page_token`` must be used (:func:`next_cursor`). Errors come as
``{"code","details","message","status":"error"}`` with a 4xx/5xx status and are mapped onto the
outcome hierarchy by :func:`crm_error`. Exhausted API credits and the concurrency limit are
transient (:class:`RetryLater`); a page token that expired or no longer matches is
:class:`PageTokenInvalid` so a sync can restart its pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx2

from worker.errors import JobError, PermanentFailure, RetryLater, TokenExpired

__all__ = [
    "CREDITS_DELAY_SECONDS",
    "DEFAULT_FIELDS",
    "DISCRETE_PAGING_LIMIT",
    "CrmClient",
    "Cursor",
    "PageTokenInvalid",
    "RecordPage",
    "crm_error",
    "next_cursor",
]

DISCRETE_PAGING_LIMIT = 2000
"""Records reachable with ``page``/``per_page``; beyond it only ``page_token`` works."""

CREDITS_DELAY_SECONDS = 3600.0
"""Credits are counted over a rolling 24 h window: an hour frees some of them again."""

DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "Contacts": (
        "First_Name", "Last_Name", "Email", "Phone", "Account_Name", "Lead_Source",
        "Owner", "Created_Time", "Modified_Time",
    ),
    "Leads": (
        "First_Name", "Last_Name", "Email", "Phone", "Company", "Lead_Source", "Lead_Status",
        "Owner", "Created_Time", "Modified_Time",
    ),
    "Deals": (
        "Deal_Name", "Amount", "Stage", "Closing_Date", "Account_Name", "Contact_Name",
        "Owner", "Created_Time", "Modified_Time",
    ),
    "Accounts": (
        "Account_Name", "Website", "Industry", "Phone", "Owner", "Created_Time", "Modified_Time",
    ),
    "Campaigns": (
        "Campaign_Name", "Type", "Status", "Start_Date", "End_Date", "Budgeted_Cost",
        "Owner", "Created_Time", "Modified_Time",
    ),
}  # fmt: skip


class PageTokenInvalid(PermanentFailure):
    """The ``page_token`` expired (``EXPIRED_VALUE``) or was bound to other parameters."""


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: a 1-based page number, or a page token past 2,000 records."""

    page: int = 1
    page_token: str | None = None


@dataclass(frozen=True)
class RecordPage:
    """One page of records and the paging ``info`` Zoho sent with it."""

    records: list[dict[str, Any]]
    more_records: bool
    next_page_token: str | None


def next_cursor(current: Cursor, page: RecordPage, per_page: int) -> Cursor | None:
    """The cursor after ``page``, or None when the listing is complete.

    Page numbers are used while they stay within the first 2,000 records (they need no server
    state); from there on the page token is required.
    """
    if not page.more_records:
        return None
    following = current.page + 1
    if current.page_token is None and following * per_page <= DISCRETE_PAGING_LIMIT:
        return Cursor(page=following)
    if not page.next_page_token:
        raise PermanentFailure("Zoho CRM has more records but sent no next_page_token")
    return Cursor(page=following, page_token=page.next_page_token)


def _retry_after(headers: httpx2.Headers, details: dict[str, Any]) -> float | None:
    for raw in (details.get("retry_after"), headers.get("retry-after")):
        try:
            return float(raw)
        except (TypeError, ValueError):
            continue
    return None


def crm_error(status: int, body: Any, headers: httpx2.Headers) -> JobError:
    """The outcome for an error answer of the CRM API (status >= 400)."""
    envelope = body if isinstance(body, dict) else {}
    code = str(envelope.get("code", "")).upper()
    details = envelope.get("details") if isinstance(envelope.get("details"), dict) else {}
    label = f"Zoho CRM {code or 'error'} (HTTP {status})"
    if code == "LIMIT_REACHED":
        return RetryLater(f"{label}: API credits exhausted", delay=CREDITS_DELAY_SECONDS)
    if status == 429 or code == "TOO_MANY_REQUESTS":
        return RetryLater(f"{label}: rate limited", delay=_retry_after(headers, details))
    if status >= 500:
        return RetryLater(label)
    if code == "INVALID_TOKEN" or (status == 401 and not code):
        return TokenExpired(f"{label}: access token rejected after a refresh")
    if code in {"EXPIRED_VALUE", "TOKEN_BOUND_DATA_MISMATCH"}:
        return PageTokenInvalid(label)
    message = str(envelope.get("message", ""))[:200]
    return PermanentFailure(f"{label}: {message}" if message else label)


class CrmClient:
    """Reads records of one user's CRM at ``api_domain`` (from the token grant or an override)."""

    def __init__(
        self,
        api_domain: str,
        *,
        auth: httpx2.Auth,
        timeout: float = 20.0,
        version: str = "v8",
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self._client = httpx2.Client(
            base_url=f"{api_domain.rstrip('/')}/crm/{version}",
            auth=auth,
            timeout=timeout,
            # Connection failures happen before anything is sent: safe to retry even writes.
            transport=transport or httpx2.HTTPTransport(retries=2),
            trust_env=False,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> CrmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def list_records(
        self,
        module: str,
        *,
        fields: tuple[str, ...] | list[str],
        cursor: Cursor | None = None,
        per_page: int = 200,
        modified_since: datetime | None = None,
        sort_by: str = "id",
        sort_order: str = "asc",
    ) -> RecordPage:
        """One page of ``module`` (only records modified after ``modified_since`` if given)."""
        params: dict[str, str | int] = {
            "fields": ",".join(fields),
            "per_page": per_page,
            "sort_by": sort_by,
            "sort_order": sort_order,
        }
        cursor = cursor or Cursor()
        if cursor.page_token:
            params["page_token"] = cursor.page_token
        else:
            params["page"] = cursor.page
        headers = {}
        if modified_since is not None:
            headers["If-Modified-Since"] = modified_since.isoformat(timespec="seconds")
        try:
            response = self._client.get(f"/{module}", params=params, headers=headers)
        except httpx2.TimeoutException:
            raise RetryLater(f"Zoho CRM timed out listing {module}") from None
        except httpx2.HTTPError as exc:
            raise RetryLater(f"Zoho CRM unreachable ({type(exc).__name__})") from None
        if response.status_code in (204, 304):
            return RecordPage(records=[], more_records=False, next_page_token=None)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            raise crm_error(response.status_code, body, response.headers)
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise RetryLater(f"Zoho CRM sent an unreadable page of {module}")
        info = body.get("info") or {}
        return RecordPage(
            records=body["data"],
            more_records=bool(info.get("more_records")),
            next_page_token=info.get("next_page_token"),
        )
