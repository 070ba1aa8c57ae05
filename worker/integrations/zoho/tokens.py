"""Access tokens cached in ``zoho_tokens``, refreshed by one worker at a time per user.

Zoho grants only ten access tokens per refresh token in ten minutes, so concurrent jobs of one
user must not each refresh. The lock is a lease field on the user's ``zoho_tokens`` document
(``refresh_lease: {owner, until}``), taken with one atomic ``find_one_and_update``. MongoDB rather
than Redis because the token and its lock then live in one document: the winner writes the new
token and drops the lease in a single update, waiting jobs simply re-read that document, and it
works with every broker (RabbitMQ deployments have no Redis). A crashed refresher's lease expires
after ``lease_seconds``.

A refresh token Zoho rejects (``invalid_code``…) is remembered by fingerprint
(``refresh_failed``) so later jobs fail at once instead of calling Zoho again, and
``settings.integrations.zoho_connected`` becomes false. Storing a new refresh token (reconnect)
changes the fingerprint and clears the condition by itself.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from pymongo import ReturnDocument

from worker.db import names
from worker.db.writes import set_nested
from worker.errors import RetryLater, TokenExpired
from worker.integrations.zoho.datacenters import checked_api_domain, data_center
from worker.integrations.zoho.oauth import (
    FRESHNESS_MARGIN,
    TokenGrant,
    is_token_fresh,
    refresh_access_token,
)
from worker.settings import Settings

__all__ = ["ZohoDisconnected", "ZohoTokenStore", "fingerprint"]

OnDisconnect = Callable[[str, dict[str, Any]], None]


class ZohoDisconnected(TokenExpired):
    """The user's Zoho refresh token is revoked or invalid: they must reconnect Zoho."""


def fingerprint(refresh_token: str) -> str:
    """A non-reversible name of a refresh token (safe to store next to errors)."""
    return hashlib.sha256(refresh_token.encode()).hexdigest()[:16]


class ZohoTokenStore:
    """The :class:`~worker.integrations.zoho.auth.TokenProvider` of one user, over MongoDB."""

    def __init__(
        self,
        db: Any,
        settings: Settings,
        user_id: str,
        *,
        clock: Callable[[], datetime],
        http: httpx2.Client | None = None,
        lease_seconds: float = 30.0,
        wait_seconds: float = 20.0,
        margin: timedelta = FRESHNESS_MARGIN,
        on_disconnect: OnDisconnect | None = None,
    ) -> None:
        self._tokens = db[names.ZOHO_TOKENS]
        self._settings_col = db[names.SETTINGS]
        self._settings = settings
        self.user_id = user_id
        self._clock = clock
        self._http = http
        self._lease = timedelta(seconds=lease_seconds)
        self._wait = wait_seconds
        self._margin = margin
        self._on_disconnect = on_disconnect
        self._owner = uuid.uuid4().hex

    # --- reading -------------------------------------------------------------------------------
    def document(self) -> dict[str, Any]:
        doc = self._tokens.find_one({"user_id": self.user_id})
        if doc is None or not doc.get("refresh_token"):
            raise ZohoDisconnected("Zoho is not connected for this user")
        failed = doc.get("refresh_failed") or {}
        if failed.get("fingerprint") == fingerprint(doc["refresh_token"]):
            raise ZohoDisconnected(
                f"Zoho connection broken ({failed.get('code', 'rejected')}): reconnect Zoho"
            )
        return doc

    def _fresh(self, doc: dict[str, Any], margin: timedelta | None = None) -> bool:
        return bool(doc.get("access_token")) and is_token_fresh(
            _aware(doc.get("expires_at")), self._clock(), self._margin if margin is None else margin
        )

    def api_domain(self) -> str:
        """Where CRM calls go: the override, else the grant's api_domain if it is one of the data
        center's (``checked_api_domain``), else the DC's.

        The api_domain arrives with a grant, so a stale token is refreshed before answering.
        """
        if self._settings.zoho_api_domain:
            return self._settings.zoho_api_domain
        self.access_token()
        doc = self.document()
        return checked_api_domain(data_center(doc.get("data_center")), doc.get("api_domain"))

    def campaigns_url(self) -> str:
        if self._settings.zoho_campaigns_url:
            return self._settings.zoho_campaigns_url
        return data_center(self.document().get("data_center")).campaigns_url

    # --- TokenProvider -------------------------------------------------------------------------
    def access_token(self) -> str:
        doc = self.document()
        if self._fresh(doc):
            return str(doc["access_token"])
        return self._refresh_unless_changed(doc.get("access_token"))

    def refresh(self, rejected: str) -> str:
        doc = self.document()
        if doc.get("access_token") != rejected and self._fresh(doc):
            return str(doc["access_token"])
        return self._refresh_unless_changed(rejected)

    def refresh_if_expiring(self, margin: timedelta) -> bool:
        """Refresh when the token expires within ``margin`` (the recurring job); True if done."""
        doc = self.document()
        if self._fresh(doc, margin):
            return False
        before = doc.get("access_token")
        return self._refresh_unless_changed(before, margin=margin) != before

    # --- the lease -----------------------------------------------------------------------------
    def _refresh_unless_changed(self, stale: str | None, margin: timedelta | None = None) -> str:
        """Refresh under the lease, unless another worker replaced ``stale`` meanwhile."""
        deadline = time.monotonic() + self._wait
        pause = 0.02
        while True:
            now = self._clock()
            held = self._tokens.find_one_and_update(
                {
                    "user_id": self.user_id,
                    "$or": [{"refresh_lease": None}, {"refresh_lease.until": {"$lt": now}}],
                },
                {"$set": {"refresh_lease": {"owner": self._owner, "until": now + self._lease}}},
                return_document=ReturnDocument.AFTER,
            )
            if held is not None:
                return self._refresh_holding(held, stale, margin)
            doc = self.document()
            if doc.get("access_token") != stale and self._fresh(doc, margin):
                return str(doc["access_token"])
            if time.monotonic() > deadline:
                raise RetryLater("another worker is still refreshing the Zoho token", delay=10)
            time.sleep(pause)
            pause = min(pause * 2, 0.25)

    def _refresh_holding(
        self, doc: dict[str, Any], stale: str | None, margin: timedelta | None
    ) -> str:
        try:
            if doc.get("access_token") != stale and self._fresh(doc, margin):
                self._release()
                return str(doc["access_token"])  # refreshed while we waited for the lease
            self.document()  # raises if this refresh token is known to be broken
            grant = self._grant(doc)
        except BaseException:
            self._release()
            raise
        self._store(grant)
        return grant.access_token

    def _grant(self, doc: dict[str, Any]) -> TokenGrant:
        accounts = (
            self._settings.zoho_accounts_url or data_center(doc.get("data_center")).accounts_url
        )
        try:
            if self._http is not None:
                return self._refresh_with(self._http, accounts, doc)
            timeout = self._settings.http_timeout_seconds
            with httpx2.Client(timeout=timeout, trust_env=False) as http:
                return self._refresh_with(http, accounts, doc)
        except TokenExpired as exc:
            self._mark_broken(doc, str(exc))
            raise ZohoDisconnected(str(exc)) from None

    def _refresh_with(self, http: httpx2.Client, accounts: str, doc: dict[str, Any]) -> TokenGrant:
        return refresh_access_token(
            http,
            accounts,
            refresh_token=doc["refresh_token"],
            client_id=self._settings.zoho_client_id,
            client_secret=self._settings.zoho_client_secret,
            now=self._clock(),
        )

    def _store(self, grant: TokenGrant) -> None:
        fields: dict[str, Any] = {
            "access_token": grant.access_token,
            "expires_in": grant.expires_in,
            "expires_at": grant.expires_at,
            "token_type": grant.token_type,
            "updated_at": self._clock(),
        }
        if grant.api_domain:
            fields["api_domain"] = grant.api_domain
        if grant.scope:
            fields["scope"] = grant.scope
        self._tokens.update_one(
            {"user_id": self.user_id, "refresh_lease.owner": self._owner},
            {"$set": fields, "$unset": {"refresh_lease": ""}},
        )

    def _release(self) -> None:
        self._tokens.update_one(
            {"user_id": self.user_id, "refresh_lease.owner": self._owner},
            {"$unset": {"refresh_lease": ""}},
        )

    def _mark_broken(self, doc: dict[str, Any], reason: str) -> None:
        now = self._clock()
        code = reason.split("(", 1)[-1].split(")", 1)[0] if "(" in reason else "rejected"
        self._tokens.update_one(
            {"user_id": self.user_id, "refresh_token": doc["refresh_token"]},
            {
                "$set": {
                    "refresh_failed": {
                        "fingerprint": fingerprint(doc["refresh_token"]),
                        "code": code,
                        "at": now,
                    }
                }
            },
        )
        set_nested(
            self._settings_col,
            {"user_id": self.user_id},
            "integrations.zoho_connected",
            False,
            also={"updated_at": now},
            upsert=True,
        )
        if self._on_disconnect is not None:
            self._on_disconnect("zoho_disconnected", {"reason": code})


def _aware(value: datetime | None) -> datetime | None:
    """Stored datetimes come back naive from some servers: they are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
