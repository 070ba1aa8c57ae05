"""``refresh_zoho_tokens`` and ``zoho_sync``: Zoho tokens kept fresh, the CRM mirrored.

``zoho_sync`` reads each module page by page (``page`` up to 2,000 records, then ``page_token``)
and upserts by (user_id, module, record_id) into ``zoho_crm_records``. After every page the
module's checkpoint in ``zoho_tokens.crm_sync.<module>`` records the next cursor, so a run that
dies resumes at that page; a finished pass records ``synced_until`` (the pass's start minus an
overlap) and the next run asks only for records modified since (``If-Modified-Since``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx2
from pymongo.errors import BulkWriteError, DuplicateKeyError

from worker.actors.lifecycle import JobContext, job_actor
from worker.db import names
from worker.errors import PermanentFailure
from worker.integrations.zoho.auth import ZohoAuth
from worker.integrations.zoho.campaigns import CampaignsClient
from worker.integrations.zoho.crm import (
    DEFAULT_FIELDS,
    CrmClient,
    Cursor,
    PageTokenInvalid,
    next_cursor,
)
from worker.integrations.zoho.tokens import ZohoTokenStore
from worker.jobtypes import RefreshZohoTokensPayload, ZohoSyncPayload
from worker.validation import PLATFORM_USER

__all__ = [
    "SYNC_OVERLAP",
    "campaigns_client",
    "crm_client",
    "refresh_zoho_tokens",
    "token_store",
    "upsert_records",
    "zoho_sync",
]

SYNC_OVERLAP = timedelta(minutes=2)
"""Incremental reads start this long before the previous pass began (clock skew with Zoho)."""

PER_PAGE = 200


def token_store(
    ctx: JobContext, user_id: str | None = None, http: httpx2.Client | None = None
) -> ZohoTokenStore:
    """The token provider of a user; a broken connection is audited once, when found."""
    user = user_id or ctx.user_id

    def disconnected(action: str, details: dict[str, Any]) -> None:
        ctx.audit_log.record(
            user_id=user,
            action=action,
            resource_type="zoho_tokens",
            resource_id=user,
            details={"job_id": ctx.job_id, **details},
            timestamp=ctx.now(),
        )

    return ZohoTokenStore(
        ctx.db, ctx.settings, user, clock=ctx.now, http=http, on_disconnect=disconnected
    )


def crm_client(store: ZohoTokenStore, ctx: JobContext) -> CrmClient:
    return CrmClient(
        store.api_domain(), auth=ZohoAuth(store), timeout=ctx.settings.http_timeout_seconds
    )


def campaigns_client(store: ZohoTokenStore, ctx: JobContext) -> CampaignsClient:
    return CampaignsClient(
        store.campaigns_url(), auth=ZohoAuth(store), timeout=ctx.settings.http_timeout_seconds
    )


@job_actor("refresh_zoho_tokens")
def refresh_zoho_tokens(ctx: JobContext) -> dict[str, Any]:
    """Refresh the tokens that expire within the payload's margin: every connected user's for
    the platform's own job (``user_id`` ``PLATFORM_USER``), else only the job's user's."""
    payload = ctx.payload
    assert isinstance(payload, RefreshZohoTokensPayload)
    margin = timedelta(seconds=payload.margin_seconds)
    scope = {} if ctx.user_id == PLATFORM_USER else {"user_id": ctx.user_id}
    due = ctx.db[names.ZOHO_TOKENS].find(
        {**scope, "expires_at": {"$lt": ctx.now() + margin}}, projection={"user_id": 1, "_id": 0}
    )
    refreshed, skipped, disconnected, deferred = 0, 0, 0, 0
    with httpx2.Client(timeout=ctx.settings.http_timeout_seconds, trust_env=False) as http:
        for doc in due:
            ctx.ensure_owner()
            store = token_store(ctx, doc["user_id"], http)
            try:
                if store.refresh_if_expiring(margin):
                    refreshed += 1
                else:
                    skipped += 1
            except PermanentFailure:  # ZohoDisconnected included: already marked and audited
                disconnected += 1
            except Exception:  # one user's throttle or outage must not stop the others
                deferred += 1
    return {
        "refreshed": refreshed,
        "skipped": skipped,
        "disconnected": disconnected,
        "deferred": deferred,
    }


def upsert_records(
    db: Any, user_id: str, module: str, records: list[dict[str, Any]], now: datetime
) -> None:
    """Insert new records and update known ones (one lookup per page, not per record)."""
    col = db[names.ZOHO_CRM_RECORDS]
    ids = [str(r["id"]) for r in records]
    known = {
        d["record_id"]
        for d in col.find(
            {"user_id": user_id, "module": module, "record_id": {"$in": ids}},
            projection={"record_id": 1, "_id": 0},
        )
    }
    fresh = [
        {
            "user_id": user_id, "module": module, "record_id": str(r["id"]), "data": r,
            "synced_at": now, "created_at": now, "updated_at": now,
        }
        for r in records
        if str(r["id"]) not in known
    ]  # fmt: skip
    raced: set[str] = set()
    if fresh:
        try:
            col.insert_many(fresh, ordered=False)
        except (BulkWriteError, DuplicateKeyError):  # another run inserted some meanwhile
            raced = {d["record_id"] for d in fresh}
    for record in records:
        record_id = str(record["id"])
        if record_id in known or record_id in raced:
            col.update_one(
                {"user_id": user_id, "module": module, "record_id": record_id},
                {"$set": {"data": record, "synced_at": now, "updated_at": now}},
            )


def _checkpoint(ctx: JobContext, module: str, state: dict[str, Any]) -> None:
    ctx.db[names.ZOHO_TOKENS].update_one(
        {"user_id": ctx.user_id}, {"$set": {f"crm_sync.{module}": state}}
    )


def _sync_module(
    ctx: JobContext, client: CrmClient, module: str, state: dict[str, Any], full: bool
) -> dict[str, Any]:
    """Run (or resume) one pass over ``module``; returns the pass's counts."""
    current = state.get("pass")
    if current is None:
        since = None if full else state.get("synced_until")
        current = {
            "since": since,
            "started": ctx.now(),
            "page": 1,
            "page_token": None,
            "fetched": 0,
            "mode": "incremental" if since else "full",
        }
        state = {**state, "pass": current}
        _checkpoint(ctx, module, state)
    fields = DEFAULT_FIELDS[module]
    cursor: Cursor | None = Cursor(current["page"], current["page_token"])
    while cursor is not None:
        ctx.ensure_owner()
        try:
            page = client.list_records(
                module, fields=fields, cursor=cursor, per_page=PER_PAGE,
                modified_since=current["since"],
            )  # fmt: skip
        except PageTokenInvalid:
            # The token expired while we were away: the pass restarts; upserts are idempotent.
            current = {**current, "page": 1, "page_token": None, "fetched": 0}
            cursor = Cursor()
            continue
        upsert_records(ctx.db, ctx.user_id, module, page.records, ctx.now())
        cursor = next_cursor(cursor, page, PER_PAGE)
        current = {
            **current,
            "fetched": current["fetched"] + len(page.records),
            "page": cursor.page if cursor else current["page"],
            "page_token": cursor.page_token if cursor else None,
        }
        state = {**state, "pass": current if cursor else None}
        if cursor is None:
            state["synced_until"] = current["started"] - SYNC_OVERLAP
            state["last_completed"] = ctx.now()
            state["last_fetched"] = current["fetched"]
        _checkpoint(ctx, module, state)
    return {"mode": current["mode"], "fetched": current["fetched"]}


@job_actor("zoho_sync")
def zoho_sync(ctx: JobContext) -> dict[str, Any]:
    """Mirror the payload's CRM modules; counts per module in the result."""
    payload = ctx.payload
    assert isinstance(payload, ZohoSyncPayload)
    unknown = [m for m in payload.modules if m not in DEFAULT_FIELDS]
    if unknown:
        raise PermanentFailure(f"unsupported Zoho CRM modules: {', '.join(unknown)}")
    store = token_store(ctx)
    doc = store.document()
    counts: dict[str, Any] = {}
    with crm_client(store, ctx) as client:
        for module in payload.modules:
            state = (doc.get("crm_sync") or {}).get(module) or {}
            counts[module] = _sync_module(ctx, client, module, state, payload.full)
    total = ctx.db[names.ZOHO_CRM_RECORDS]
    stored = {m: total.count_documents({"user_id": ctx.user_id, "module": m}) for m in counts}
    return {"modules": counts, "stored": stored}
