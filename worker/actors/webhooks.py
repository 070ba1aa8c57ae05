"""``deliver_webhook``: one event to one webhook, signed, with retries and deactivation.

Before anything reaches the network the webhook's secret must be valid (else the hook is
deactivated: a loose secret is a forgeable signature) and the event must carry the platform's
seal (else the job fails: only events ``emit_event`` created are signed). The URL is then checked
once (``check_target``: parse, resolve, public addresses, allowed port) and the attempt connects
to exactly the checked addresses. Each attempt re-renders the same body from the job payload
(same bytes, same ``webhook-id``) and ends by one deadline.

Every failed attempt counts toward ``webhook_deactivate_after`` (a refused or unresolvable URL
too): success resets the streak; a failure raises :class:`RetryLater` on the Standard Webhooks
schedule (or the receiver's ``Retry-After``) until the job's attempts run out. A 410, an invalid
secret, or the threshold switches the webhook off (``active: false``) with an ``audit_log`` entry.
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument

from worker import metrics
from worker.actors.lifecycle import JobContext, job_actor
from worker.db import names
from worker.errors import PermanentFailure, RetryLater
from worker.integrations.webhooks import (
    InvalidSecret,
    Network,
    Target,
    TargetRefused,
    TargetUnresolved,
    Verdict,
    attempt_delivery,
    check_target,
    classify,
    render_body,
    retry_delay,
    secret_key,
    should_deactivate,
    valid_seal,
)
from worker.jobtypes import DeliverWebhookPayload
from worker.tenancy import require_owner
from worker.webhooks import subscribed, webhook_secret

__all__ = ["NETWORK", "deliver_webhook"]

#: The resolver, sockets and clock of deliveries. Tests replace it with fakes; nothing else does.
NETWORK = Network()


def _deactivate(ctx: JobContext, hook: dict[str, Any], reason: str, kind: str) -> None:
    """Switch the hook off; counted and audited once, by whichever delivery did it."""
    updated = ctx.db[names.WEBHOOKS].update_one(
        {"webhook_id": hook["webhook_id"], "active": True},
        {"$set": {"active": False, "deactivated_at": ctx.now(), "deactivated_reason": reason}},
    )
    if updated.modified_count:
        metrics.WEBHOOKS_DEACTIVATED.labels(kind).inc()
        ctx.audit("webhook_deactivated", "webhook", hook["webhook_id"], {"reason": reason})


def _count_failure(ctx: JobContext, hook: dict[str, Any]) -> int:
    """One more failed attempt in the hook's streak; returns the streak."""
    updated = ctx.db[names.WEBHOOKS].find_one_and_update(
        {"webhook_id": hook["webhook_id"]},
        {"$set": {"last_triggered": ctx.now()}, "$inc": {"consecutive_failures": 1}},
        return_document=ReturnDocument.AFTER,
    )
    return int((updated or {}).get("consecutive_failures") or 0)


def _failure(ctx: JobContext, hook: dict[str, Any], outcome: str, error: Exception) -> Exception:
    """Count a failed attempt; the exception to raise (permanent once the hook is switched off)."""
    failures = _count_failure(ctx, hook)
    if should_deactivate(failures, ctx.settings.webhook_deactivate_after):
        reason = f"{failures} consecutive failed deliveries (last: {outcome})"
        _deactivate(ctx, hook, reason, "failures")
        return PermanentFailure(f"webhook deactivated after {failures} failures ({outcome})")
    return error


def _target(ctx: JobContext, hook: dict[str, Any]) -> Target:
    """The checked target of the hook's URL, or a counted failure with the reason."""
    url = hook.get("url")
    try:
        return check_target(
            url if isinstance(url, str) else "",
            allow_private=ctx.settings.webhook_allow_private,
            ports=ctx.settings.webhook_allowed_ports,
            resolve=NETWORK.resolve,
        )
    except TargetRefused as exc:
        ctx.audit("webhook_target_refused", "webhook", hook["webhook_id"], {"reason": str(exc)})
        raise _failure(ctx, hook, str(exc), exc) from None
    except TargetUnresolved as exc:
        retry = RetryLater(str(exc), delay=retry_delay(ctx.attempt))
        raise _failure(ctx, hook, str(exc), retry) from None


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
    secret = webhook_secret(hook)
    try:
        secret_key(secret)
    except InvalidSecret as exc:
        _count_failure(ctx, hook)
        _deactivate(ctx, hook, str(exc), "invalid_secret")
        raise PermanentFailure(f"{exc}; webhook deactivated") from None
    if not valid_seal(
        payload.seal, secret, hook["webhook_id"], payload.event, payload.event_id, payload.data
    ):
        ctx.audit("webhook_event_refused", "webhook", hook["webhook_id"],
                  {"event": payload.event, "event_id": payload.event_id})  # fmt: skip
        raise PermanentFailure(
            f"event {payload.event_id} was not emitted by the platform for this webhook "
            "(missing or wrong seal); nothing was sent"
        )
    target = _target(ctx, hook)
    body = render_body(payload.event, ctx.job.get("created_at") or ctx.now(), payload.data)
    ctx.ensure_owner()
    attempt = attempt_delivery(
        target, secret=secret, msg_id=payload.event_id, body=body, now=ctx.now(),
        timeout=ctx.settings.webhook_timeout_seconds,
        max_response_bytes=ctx.settings.webhook_max_response_bytes, network=NETWORK,
    )  # fmt: skip
    verdict = classify(attempt.status)
    outcome = f"HTTP {attempt.status}" if attempt.status is not None else str(attempt.error)
    if verdict is Verdict.DELIVERED:
        hooks.update_one(
            {"webhook_id": hook["webhook_id"]},
            {"$set": {"last_triggered": ctx.now(), "consecutive_failures": 0}},
        )
        return {"webhook_id": hook["webhook_id"], "event_id": payload.event_id,
                "status": attempt.status, "attempt": ctx.attempt}  # fmt: skip
    if verdict is Verdict.GONE:
        _count_failure(ctx, hook)
        _deactivate(ctx, hook, "receiver answered 410 Gone", "gone")
        raise PermanentFailure("webhook receiver answered 410 Gone; webhook deactivated")
    detail = f"{outcome}: {attempt.excerpt}" if attempt.excerpt else outcome
    delay = retry_delay(ctx.attempt, attempt.retry_after)
    raise _failure(
        ctx, hook, outcome, RetryLater(f"webhook delivery failed ({detail})", delay=delay)
    )
