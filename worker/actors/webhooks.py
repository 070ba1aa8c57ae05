"""``deliver_webhook``: one event to one webhook, signed, with retries and deactivation.

Each attempt re-renders the same body from the job payload (same bytes, same ``webhook-id``),
signs it with the webhook's secret and POSTs it with a short timeout and no redirects. Success
resets the webhook's failure streak; a failure raises :class:`RetryLater` on the Standard
Webhooks schedule (or the receiver's ``Retry-After``) until the job's attempts run out. A 410,
or ``webhook_deactivate_after`` failures in a row across deliveries, switches the webhook off
(``active: false``) with an ``audit_log`` entry.
"""

from __future__ import annotations

from typing import Any

import httpx2
from pymongo import ReturnDocument

from worker.actors.lifecycle import JobContext, job_actor
from worker.db import names
from worker.errors import PermanentFailure, RetryLater
from worker.integrations.webhooks import (
    TargetRefused,
    Verdict,
    attempt_delivery,
    check_target,
    classify,
    render_body,
    retry_delay,
    should_deactivate,
)
from worker.jobtypes import DeliverWebhookPayload
from worker.tenancy import require_owner
from worker.webhooks import subscribed

__all__ = ["deliver_webhook"]


def _deactivate(ctx: JobContext, hook: dict[str, Any], reason: str) -> None:
    ctx.db[names.WEBHOOKS].update_one(
        {"webhook_id": hook["webhook_id"], "active": True},
        {"$set": {"active": False, "deactivated_at": ctx.now(), "deactivated_reason": reason}},
    )
    ctx.audit("webhook_deactivated", "webhook", hook["webhook_id"], {"reason": reason})


@job_actor("deliver_webhook")
def deliver_webhook(ctx: JobContext) -> dict[str, Any]:
    payload = ctx.payload
    assert isinstance(payload, DeliverWebhookPayload)
    hooks = ctx.db[names.WEBHOOKS]
    hook = require_owner(
        hooks.find_one({"webhook_id": payload.webhook_id}),
        ctx.user_id,
        f"webhook {payload.webhook_id}",
    )
    if not hook.get("active") or not subscribed(hook.get("events"), payload.event):
        return {"webhook_id": payload.webhook_id, "skipped": "inactive or unsubscribed"}
    if not hook.get("secret"):
        raise PermanentFailure(f"webhook {payload.webhook_id} has no secret")
    try:
        check_target(hook["url"], allow_private=ctx.settings.webhook_allow_private)
    except TargetRefused as exc:
        ctx.audit("webhook_target_refused", "webhook", hook["webhook_id"], {"reason": str(exc)})
        raise
    body = render_body(payload.event, ctx.job.get("created_at") or ctx.now(), payload.data)
    ctx.ensure_owner()
    with httpx2.Client(
        timeout=ctx.settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
    ) as client:
        attempt = attempt_delivery(
            client, hook["url"], secret=hook["secret"], msg_id=payload.event_id, body=body,
            now=ctx.now(),
        )  # fmt: skip
    verdict = classify(attempt.status)
    outcome = f"HTTP {attempt.status}" if attempt.status is not None else attempt.error
    if verdict is Verdict.DELIVERED:
        hooks.update_one(
            {"webhook_id": hook["webhook_id"]},
            {"$set": {"last_triggered": ctx.now(), "consecutive_failures": 0}},
        )
        return {"webhook_id": hook["webhook_id"], "event_id": payload.event_id,
                "status": attempt.status, "attempt": ctx.attempt}  # fmt: skip
    updated = hooks.find_one_and_update(
        {"webhook_id": hook["webhook_id"]},
        {"$set": {"last_triggered": ctx.now()}, "$inc": {"consecutive_failures": 1}},
        return_document=ReturnDocument.AFTER,
    )
    failures = int((updated or {}).get("consecutive_failures") or 0)
    if verdict is Verdict.GONE:
        _deactivate(ctx, hook, "receiver answered 410 Gone")
        raise PermanentFailure("webhook receiver answered 410 Gone; webhook deactivated")
    if should_deactivate(failures, ctx.settings.webhook_deactivate_after):
        _deactivate(ctx, hook, f"{failures} consecutive failed deliveries (last: {outcome})")
        raise PermanentFailure(f"webhook deactivated after {failures} failures ({outcome})")
    delay = retry_delay(ctx.attempt, attempt.retry_after)
    raise RetryLater(f"webhook delivery failed ({outcome})", delay=delay)
