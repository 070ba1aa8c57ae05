"""``send_email`` and ``sync_email_reports``: Zoho Campaigns sends, exactly once, and their reports.

Send once, by intent and reconciliation. Before the first call to Zoho the campaign document gets
``send_intent`` (with a marker derived from ``campaign_id`` that goes into the Zoho campaign
name). Any later attempt - a retry, a duplicate message, another job for the same campaign -
finds the intent and asks Zoho first (:func:`reconcile`): no campaign with the marker means it was
never created; a draft means created but not sent (sending a campaign key twice is refused by
Zoho, code 6600); any other status means sent or scheduled, and only the record is completed.
When Zoho cannot tell, the job ends as ``OutcomeUnknown`` (needs review), never a blind resend.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from worker.actors.lifecycle import JobContext, job_actor
from worker.actors.zoho import campaigns_client, token_store
from worker.db import names
from worker.errors import OutcomeUnknown, PermanentFailure, RetryLater
from worker.integrations.zoho.campaigns import (
    AlreadySent,
    CampaignsClient,
    CampaignsError,
    RemoteCampaign,
)
from worker.jobtypes import SendEmailPayload, SyncEmailReportsPayload
from worker.tenancy import require_owner
from worker.webhooks import emit_event

__all__ = ["Remote", "campaign_marker", "reconcile", "send_email", "sync_email_reports"]

SCHEDULE_AHEAD = timedelta(minutes=10)
"""A send time further ahead than this is scheduled in Zoho; anything sooner is sent now."""


INTENT_HOLD = timedelta(minutes=5)
"""Another run's intent younger than this (send_email's time limit is 3 min) may still be live."""


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def campaign_marker(campaign_id: str) -> str:
    """The tag in the Zoho campaign name that finds our campaign again after a crash."""
    return "[mmw:" + hashlib.sha256(campaign_id.encode()).hexdigest()[:12] + "]"


class Remote(StrEnum):
    """What Zoho says about our campaign."""

    ABSENT = "absent"  # never created
    DRAFT = "draft"  # created, not sent
    DONE = "done"  # sent, sending or scheduled


def reconcile(found: RemoteCampaign | None) -> Remote:
    """Classify the campaign found by marker (pure)."""
    if found is None:
        return Remote.ABSENT
    if found.status in ("draft", ""):
        return Remote.DRAFT
    return Remote.DONE


def _campaigns(ctx: JobContext) -> Any:
    return ctx.db[names.EMAIL_CAMPAIGNS]


def _record_sent(
    ctx: JobContext, doc: dict[str, Any], key: str, scheduled_for: datetime | None
) -> dict[str, Any]:
    """Write the final state; idempotent (a later attempt may write it again)."""
    now = ctx.now()
    fields: dict[str, Any] = {
        "zoho_campaign_key": key,
        "send_intent.stage": "done",
        "updated_at": now,
    }
    if scheduled_for is None:
        fields.update(status="sent", sent_at=doc.get("sent_at") or now)
    else:
        fields.update(status="scheduled", scheduled_at=scheduled_for)
    _campaigns(ctx).update_one(
        {"campaign_id": doc["campaign_id"], "user_id": ctx.user_id}, {"$set": fields}
    )
    status = fields["status"]
    ctx.audit(f"email_{status}", "email_campaign", doc["campaign_id"], {"zoho_campaign_key": key})
    emit_event(
        ctx.db,
        ctx.user_id,
        f"email.{status}",
        {"campaign_id": doc["campaign_id"], "zoho_campaign_key": key},
        event_id=f"evt_email_{status}_{doc['campaign_id']}",
        now=now,
    )
    return {"campaign_id": doc["campaign_id"], "status": status, "zoho_campaign_key": key}


def _send_or_schedule(client: CampaignsClient, key: str, when: datetime | None) -> None:
    try:
        if when is None:
            client.send_campaign(key)
        else:
            client.schedule_campaign(key, when)
    except AlreadySent:
        pass  # an earlier attempt's send went through
    except OutcomeUnknown as exc:
        # The next attempt looks the campaign up: a draft is sent again (Zoho refuses a second
        # send of one campaign), anything else is recorded as sent.
        raise RetryLater(f"send outcome unknown, will reconcile: {exc}") from None


def _content_url(doc: dict[str, Any]) -> str:
    url = (doc.get("content") or {}).get("content_url")
    if not url:
        raise PermanentFailure(
            "email_campaigns.content.content_url is required: Zoho Campaigns fetches the HTML"
            " from a public URL"
        )
    return str(url)


@job_actor("send_email")
def send_email(ctx: JobContext) -> dict[str, Any]:
    """Create the campaign in Zoho Campaigns and send or schedule it, exactly once."""
    payload = ctx.payload
    assert isinstance(payload, SendEmailPayload)
    doc = require_owner(
        _campaigns(ctx).find_one({"campaign_id": payload.campaign_id}),
        ctx.user_id,
        f"email campaign {payload.campaign_id}",
    )
    store = token_store(ctx)
    store.document()  # a broken Zoho connection fails here, before anything is sent
    intent = doc.get("send_intent") or {}
    if doc.get("status") in ("sent", "scheduled") and intent.get("stage", "done") == "done":
        return {"campaign_id": doc["campaign_id"], "status": doc["status"], "already": True}
    if doc.get("status") == "cancelled":
        raise PermanentFailure(f"email campaign {payload.campaign_id} is cancelled")
    list_key = (doc.get("recipients") or {}).get("list_key")
    content = doc.get("content") or {}
    if not list_key or not content.get("subject") or not content.get("from_email"):
        raise PermanentFailure("email campaign needs recipients.list_key, subject and from_email")
    schedule = doc.get("schedule") or {}
    send_at = schedule.get("send_at") if schedule.get("scheduled") else None
    when = send_at if send_at is not None and send_at > ctx.now() + SCHEDULE_AHEAD else None
    marker = campaign_marker(doc["campaign_id"])

    with campaigns_client(store, ctx) as client:
        key = doc.get("zoho_campaign_key")
        if intent:
            held_by_other = intent.get("run_key") != ctx.run_key
            at = intent.get("at")
            if held_by_other and at is not None and ctx.now() - _aware(at) < INTENT_HOLD:
                raise RetryLater("another run is sending this campaign", delay=60)
            state = Remote.DRAFT if key and intent.get("stage") == "created" else None
            if state is None:
                found = client.find_campaign(marker)  # OutcomeUnknown if undecidable
                state = reconcile(found)
                key = found.key if found else None
            if state is Remote.DONE:
                return _record_sent(ctx, doc, str(key), when)
        else:
            claimed = _campaigns(ctx).update_one(
                {"campaign_id": doc["campaign_id"], "user_id": ctx.user_id, "send_intent": None},
                {"$set": {"send_intent": {"stage": "create", "marker": marker,
                                          "run_key": ctx.run_key, "at": ctx.now()}}},
            )  # fmt: skip
            if claimed.matched_count == 0:
                raise RetryLater("another attempt is sending this campaign", delay=30)
        if key is None:
            ctx.ensure_owner()
            try:
                key = client.create_campaign(
                    name=f"{doc.get('name') or 'Campaign'} {marker}",
                    subject=content["subject"],
                    from_email=content["from_email"],
                    from_name=content.get("from_name"),
                    list_key=list_key,
                    content_url=_content_url(doc),
                )
            except OutcomeUnknown as exc:
                raise RetryLater(f"create outcome unknown, will reconcile: {exc}") from None
            _campaigns(ctx).update_one(
                {"campaign_id": doc["campaign_id"], "user_id": ctx.user_id},
                {"$set": {"zoho_campaign_key": key, "send_intent.stage": "created"}},
            )
        ctx.ensure_owner()
        _send_or_schedule(client, key, when)
    return _record_sent(ctx, doc, key, when)


@job_actor("sync_email_reports")
def sync_email_reports(ctx: JobContext) -> dict[str, Any]:
    """Copy Zoho's report figures into ``email_campaigns.analytics`` (one or all sent)."""
    payload = ctx.payload
    assert isinstance(payload, SyncEmailReportsPayload)
    query: dict[str, Any] = {
        "user_id": ctx.user_id,
        "status": {"$in": ["sent", "scheduled"]},
        "zoho_campaign_key": {"$ne": None},
    }
    if payload.campaign_id:
        require_owner(
            _campaigns(ctx).find_one({"campaign_id": payload.campaign_id}, {"user_id": 1}),
            ctx.user_id,
            f"email campaign {payload.campaign_id}",
        )
        query["campaign_id"] = payload.campaign_id
    docs = _campaigns(ctx).find(
        query, projection={"campaign_id": 1, "zoho_campaign_key": 1, "status": 1, "scheduled_at": 1}
    )
    store = token_store(ctx)
    updated, pending, failed = 0, 0, 0
    with campaigns_client(store, ctx) as client:
        for doc in docs:
            try:
                report = client.campaign_report(doc["zoho_campaign_key"])
            except CampaignsError as exc:  # e.g. deleted in Zoho: the other reports still sync
                ctx.audit("email_report_failed", "email_campaign", doc["campaign_id"],
                          {"code": exc.code})  # fmt: skip
                failed += 1
                continue
            if report is None:
                pending += 1
                continue
            fields: dict[str, Any] = {
                "analytics": {**report, "last_synced": ctx.now()},
                "updated_at": ctx.now(),
            }
            if doc.get("status") == "scheduled":  # a report exists: the scheduled send went out
                fields.update(status="sent", sent_at=doc.get("scheduled_at") or ctx.now())
            _campaigns(ctx).update_one(
                {"campaign_id": doc["campaign_id"], "user_id": ctx.user_id}, {"$set": fields}
            )
            updated += 1
    return {"updated": updated, "not_ready": pending, "failed": failed}
