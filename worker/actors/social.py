"""``post_social`` (publish once to every target of a post) and ``sync_social_metrics``.

The publish-once protocol (decisions in :mod:`worker.integrations.social.publishing`):

1. A target that is ``published``, ``failed`` or ``needs_review`` is never touched again.
2. Before calling a platform, the target's intent is recorded with a compare-and-set on its
   ``attempt`` (``{run_key, intent_id, number, started_at, lookups, outcome}``) and status
   ``publishing``. Only then is the request sent.
3. The answer is written back at once: ``published`` (+ ``platform_post_id``, ``url``,
   ``published_at``), ``failed``, or ``retrying`` when the platform certainly refused it.
   A timeout or 5xx after sending leaves ``publishing``: the outcome is unknown.
4. A target found ``publishing`` (unknown outcome, or a crash between the platform's answer and
   step 3) is reconciled: ``find_recent`` looks for the text since the intent. Found: published.
   Absent after the grace period: published again. The lookup is impossible or keeps failing,
   or it is the job's last attempt: ``needs_review``, for a person; never a blind retry.

One target failing never blocks the others; the job retries (RetryLater) while a target is
open, and the retry only works on those. Credentials are read from ``social_accounts`` into
the clients and appear nowhere else.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from functools import lru_cache
from typing import Any, TypeVar

import redis

from worker.actors.lifecycle import JobContext, LeaseLost, job_actor
from worker.broker import embedded_redis
from worker.clock import Clock, epoch_seconds
from worker.db import names
from worker.errors import JobError, OutcomeUnknown, PermanentFailure, RetryLater, TokenExpired
from worker.integrations.social import (
    METRIC_KEYS,
    PLATFORMS,
    DuplicateContent,
    PostContent,
    SocialAccount,
    SocialClient,
    build_client,
)
from worker.integrations.social.publishing import (
    Settlement,
    Step,
    TargetStatus,
    final_status,
    job_outcome,
    next_step,
    settle_duplicate,
    settle_lookup,
    settle_lookup_failure,
    status_of,
    summarize,
)
from worker.integrations.social.ratelimit import PostLimit, PublishLimiter
from worker.jobtypes import PostSocialPayload, SyncSocialMetricsPayload
from worker.redact import redact_text
from worker.settings import Settings
from worker.tenancy import require_owner

__all__ = ["post_social", "publish_limiter", "sync_social_metrics"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Platforms' clocks and ours differ; a lookup starts this much before the intent.
LOOKUP_SKEW = dt.timedelta(seconds=120)


@lru_cache(maxsize=8)
def _limiter_client(url: str | None, embedded_path: str) -> redis.Redis:
    if url:
        return redis.Redis.from_url(url)
    return embedded_redis(Settings(embedded_redis_path=embedded_path))


def publish_limiter(settings: Settings, clock: Callable[[], float]) -> PublishLimiter:
    """The per-account limiter on the configured Redis (default: the broker's Redis).

    ``clock`` is the run's clock, so windows and back-offs follow the same time as retries.
    """
    url = settings.social_limits_redis_url
    if url is None and settings.broker_url and not settings.broker_url.startswith("amqp"):
        url = settings.broker_url
    client = _limiter_client(url, str(settings.embedded_redis_path))
    limits = {p: PostLimit(int(n), float(w)) for p, (n, w) in settings.social_post_limits.items()}
    return PublishLimiter(client, limits, prefix=f"{settings.broker_namespace}:social", clock=clock)


class _Clients:
    """One client per platform for the length of a run."""

    def __init__(self, settings: Settings, stack: ExitStack, clock: Clock) -> None:
        self._settings = settings
        self._stack = stack
        self._clock = epoch_seconds(clock)
        self._clients: dict[str, SocialClient] = {}

    def __call__(self, platform: str) -> SocialClient:
        if platform not in self._clients:
            client = build_client(platform, self._settings, clock=self._clock)
            self._clients[platform] = self._stack.enter_context(client)
        return self._clients[platform]


class PostPublisher:
    """Applies the protocol to one ``social_posts`` document during one run."""

    def __init__(
        self, ctx: JobContext, post: dict[str, Any], clients: _Clients, limiter: PublishLimiter
    ) -> None:
        self.ctx = ctx
        self.post = post
        self.clients = clients
        self.limiter = limiter
        self.content = PostContent.from_doc(post.get("content") or {})
        self.posts = ctx.db[names.SOCIAL_POSTS]
        self.accounts = ctx.db[names.SOCIAL_ACCOUNTS]
        self.delays: list[float] = []

    # --- storage -----------------------------------------------------------------------------
    def _write(
        self,
        index: int,
        target: dict[str, Any],
        fields: dict[str, Any],
        *,
        unset: tuple[str, ...] = (),
        expect: dict[str, Any] | None = None,
    ) -> bool:
        """Update ``platforms[index]`` if it is still this target (and matches ``expect``)."""
        where: dict[str, Any] = {
            "post_id": self.post["post_id"],
            "user_id": self.ctx.user_id,
            f"platforms.{index}.platform": target.get("platform"),
            f"platforms.{index}.account_id": target.get("account_id"),
        }
        where.update({f"platforms.{index}.{k}": v for k, v in (expect or {}).items()})
        update: dict[str, Any] = {
            "$set": {
                **{f"platforms.{index}.{k}": v for k, v in fields.items()},
                "updated_at": self.ctx.now(),
            }
        }
        if unset:
            update["$unset"] = {f"platforms.{index}.{k}": "" for k in unset}
        done = self.posts.update_one(where, update).modified_count == 1
        if done:
            target.update(fields)
            for key in unset:
                target.pop(key, None)
        return done

    def _audit(self, action: str, target: dict[str, Any], **details: Any) -> None:
        self.ctx.audit(
            action,
            "social_post",
            self.post["post_id"],
            {"platform": target.get("platform"), "account_id": target.get("account_id"), **details},
        )

    def _fail(self, index: int, target: dict[str, Any], status: TargetStatus, error: str) -> None:
        outcome = "unknown" if status is TargetStatus.NEEDS_REVIEW else "failed"
        attempt = {**(target.get("attempt") or {}), "outcome": outcome}
        fields: dict[str, Any] = {"status": status.value, "error": error}
        if target.get("attempt"):
            fields["attempt"] = attempt
        self._write(index, target, fields)
        self._audit("post_failed", target, status=status.value, error=error)

    def _published(
        self, index: int, target: dict[str, Any], post_id: str, url: str | None, **how: Any
    ) -> None:
        attempt = {**(target.get("attempt") or {}), "outcome": "published"}
        published_at = attempt.get("started_at") if how.get("reconciled") else self.ctx.now()
        fields: dict[str, Any] = {
            "status": TargetStatus.PUBLISHED.value,
            "platform_post_id": post_id,
            "published_at": published_at,
            "attempt": attempt,
        }
        if url:
            fields["url"] = url
        if how.get("reconciled"):
            fields["reconciled_at"] = self.ctx.now()
        self._write(index, target, fields, unset=("error",))
        self._audit("post_published", target, platform_post_id=post_id, **how)

    # --- accounts ------------------------------------------------------------------------------
    def _account(self, target: dict[str, Any]) -> dict[str, Any] | None:
        query: dict[str, Any] = {"user_id": self.ctx.user_id}  # the post's owner (checked)
        query["platform"] = target.get("platform")
        if target.get("account_id"):
            query["account_id"] = target["account_id"]
        else:
            query["status"] = "active"
        return self.accounts.find_one(query)

    def _expire(self, account: dict[str, Any]) -> None:
        self.accounts.update_one(
            {"_id": account["_id"]}, {"$set": {"status": "expired", "updated_at": self.ctx.now()}}
        )

    def _with_token(self, account: dict[str, Any], call: Callable[[SocialAccount], T]) -> T:
        """``call`` with the account's token; on TokenExpired refresh once and call again.

        Safe for publishing too: a 401 means the platform refused the request.
        """
        try:
            return call(SocialAccount.from_doc(account))
        except TokenExpired:
            fresh = self._refresh(account)
            if fresh is None:
                raise
            account.clear()
            account.update(fresh)
            return call(SocialAccount.from_doc(account))

    def _refresh(self, account: dict[str, Any]) -> dict[str, Any] | None:
        """New credentials for the account (rotated refresh token kept), or None if impossible.

        The write is a compare-and-set on the old refresh token: when another worker rotated
        it first, its fresh document is used instead.
        """
        client = self.clients(account["platform"])
        credentials = account.get("credentials") or {}
        refresh_token = credentials.get("refresh_token")
        if not client.can_refresh or not refresh_token:
            return None
        settings = self.ctx.settings
        try:
            grant = client.refresh(refresh_token, settings.x_client_id, settings.x_client_secret)
        except TokenExpired:
            current = self.accounts.find_one({"_id": account["_id"]}) or {}
            if (current.get("credentials") or {}).get("refresh_token") != refresh_token:
                return current  # rotated by another worker meanwhile
            raise
        now = self.ctx.now()
        fields: dict[str, Any] = {
            "credentials.access_token": grant.access_token,
            "credentials.refresh_token": grant.refresh_token,
            "updated_at": now,
        }
        if grant.expires_in:
            fields["credentials.token_expires_at"] = now + dt.timedelta(seconds=grant.expires_in)
        self.accounts.update_one(
            {"_id": account["_id"], "credentials.refresh_token": refresh_token}, {"$set": fields}
        )
        return self.accounts.find_one({"_id": account["_id"]})

    # --- the protocol --------------------------------------------------------------------------
    def run(self, index: int, target: dict[str, Any]) -> None:
        step = next_step(target)
        if step is Step.DONE:
            return
        if target.get("platform") not in PLATFORMS:
            self._fail(index, target, TargetStatus.FAILED, "unsupported platform")
            return
        account = self._account(target)
        if account is None or account.get("status") not in (None, "active"):
            state = "not connected" if account is None else account.get("status")
            reason = f"{target.get('platform')} account {state}"
            if step is Step.RECONCILE:
                self._fail(index, target, TargetStatus.NEEDS_REVIEW, f"{reason}; cannot look up")
            else:
                self._fail(index, target, TargetStatus.FAILED, reason)
            return
        if step is Step.RECONCILE and not self._reconcile(index, target, account):
            return
        self._publish(index, target, account)

    def _lookup(
        self, target: dict[str, Any], account: dict[str, Any], since: dt.datetime
    ) -> str | None:
        client = self.clients(target["platform"])
        text = client.published_text(self.content)
        return self._with_token(account, lambda acct: client.find_recent(acct, text, since))

    def _reconcile(self, index: int, target: dict[str, Any], account: dict[str, Any]) -> bool:
        """Settle an unknown outcome; True when the target may be published again now."""
        attempt = dict(target.get("attempt") or {})
        started = attempt.get("started_at") or self.ctx.now()
        try:
            found = self._lookup(target, account, started - LOOKUP_SKEW)
        except JobError as exc:
            if isinstance(exc, TokenExpired):
                self._expire(account)
            lookups = int(attempt.get("lookups") or 0) + 1
            settlement = settle_lookup_failure(
                exc, lookups=lookups, max_lookups=self.ctx.settings.social_reconcile_max_lookups
            )
            attempt["lookups"] = lookups
        else:
            settlement = settle_lookup(
                found=found,
                started_at=started,
                now=self.ctx.now(),
                grace_seconds=self.ctx.settings.social_reconcile_grace_seconds,
            )
        return self._apply(index, target, attempt, settlement)

    def _apply(
        self, index: int, target: dict[str, Any], attempt: dict[str, Any], settlement: Settlement
    ) -> bool:
        """Write what a settlement means; True when the target should be published again."""
        if settlement.kind == "published" and settlement.post_id:
            target["attempt"] = attempt
            self._published(index, target, settlement.post_id, None, reconciled=True)
        elif settlement.kind == "republish":
            attempt["outcome"] = "absent"
            fields = {"status": TargetStatus.RETRYING.value, "attempt": attempt}
            self._write(index, target, {**fields, "error": settlement.reason})
            return True
        elif settlement.kind == "wait":
            self._write(index, target, {"attempt": attempt, "error": settlement.reason})
            self.delays.append(settlement.delay or 0.0)
        elif settlement.kind == "review":
            target["attempt"] = attempt
            self._fail(index, target, TargetStatus.NEEDS_REVIEW, settlement.reason)
        else:
            self._fail(index, target, TargetStatus.FAILED, settlement.reason)
        return False

    def _publish(self, index: int, target: dict[str, Any], account: dict[str, Any]) -> None:
        platform, account_id = target["platform"], str(account["account_id"])
        previous = target.get("attempt") or {}
        try:
            slot = self.limiter.acquire(platform, account_id)
        except RetryLater as exc:
            self._write(index, target, {"status": TargetStatus.RETRYING.value, "error": str(exc)})
            self.delays.append(exc.delay or 0.0)
            return
        self.ctx.ensure_owner()
        intent = {
            "run_key": self.ctx.run_key,
            "intent_id": uuid.uuid4().hex,
            "number": int(previous.get("number") or 0) + 1,
            "started_at": self.ctx.now(),
            "lookups": 0,
            "outcome": None,
        }
        expect = {"status": target.get("status"), "attempt.intent_id": previous.get("intent_id")}
        if not self._write(
            index, target, {"status": "publishing", "attempt": intent}, expect=expect
        ):
            self.limiter.release(platform, account_id, slot)
            raise RetryLater(f"{platform} target of {self.post['post_id']} changed meanwhile")
        client = self.clients(platform)
        self.limiter.restamp(platform, account_id, slot)
        try:
            result = self._with_token(account, lambda acct: client.publish(self.content, acct))
        except DuplicateContent as exc:
            if not self._duplicate(index, target, account, exc, previous):
                self.limiter.release(platform, account_id, slot)
        except TokenExpired as exc:
            self.limiter.release(platform, account_id, slot)
            self._expire(account)
            self._fail(index, target, TargetStatus.FAILED, str(exc))
        except PermanentFailure as exc:
            self.limiter.release(platform, account_id, slot)
            self._fail(index, target, TargetStatus.FAILED, str(exc))
        except RetryLater as exc:  # refused before it took effect
            self.limiter.release(platform, account_id, slot)
            if exc.delay:
                self.limiter.back_off(platform, account_id, exc.delay)
            refused = {**intent, "outcome": "refused"}
            fields = {"status": TargetStatus.RETRYING.value, "error": str(exc), "attempt": refused}
            self._write(index, target, fields)
            self.delays.append(exc.delay or 0.0)
        except OutcomeUnknown as exc:  # stays "publishing": the next run reconciles
            self._write(index, target, {"error": str(exc)})
            self.delays.append(self.ctx.settings.social_reconcile_grace_seconds)
        else:
            self._published(index, target, result.platform_post_id, result.url)
            self.accounts.update_one(
                {"_id": account["_id"]}, {"$set": {"last_used": self.ctx.now()}}
            )

    def _duplicate(
        self,
        index: int,
        target: dict[str, Any],
        account: dict[str, Any],
        error: DuplicateContent,
        previous: dict[str, Any],
    ) -> bool:
        """The platform says "duplicate": look for our post before deciding.

        Returns whether the post is (or may be) on the platform, i.e. whether it used a slot.
        """
        earlier = previous.get("started_at")
        since = (earlier or target["attempt"]["started_at"]) - LOOKUP_SKEW
        try:
            found = self._lookup(target, account, since)
        except JobError as exc:
            reason = f"duplicate reported and lookup failed: {exc}"
            self._fail(index, target, TargetStatus.NEEDS_REVIEW, reason)
            return True
        # Only an earlier attempt that we reconciled as absent may secretly be the duplicate.
        earlier_intent = previous.get("outcome") == "absent"
        settlement = settle_duplicate(found=found, error=error, earlier_intent=earlier_intent)
        self._apply(index, target, dict(target["attempt"]), settlement)
        return settlement.kind != "fail"

    def note_error(self, index: int, target: dict[str, Any], exc: Exception) -> None:
        """Keep an unexpected error on the target; its status (and any intent) stays as is."""
        self._write(index, target, {"error": redact_text(f"{type(exc).__name__}: {exc}")})

    def close_out(self, index: int, target: dict[str, Any]) -> None:
        """On the last attempt, end an open target (unknown outcome: needs review)."""
        ending = final_status(status_of(target))
        if ending is not None:
            status, reason = ending
            last = target.get("error")
            self._fail(index, target, status, f"{reason}: {last}" if last else reason)


@job_actor("post_social")
def post_social(ctx: JobContext) -> dict[str, Any]:
    """Publish a ``social_posts`` document to each of its targets, once."""
    payload = ctx.payload
    assert isinstance(payload, PostSocialPayload)
    post = require_owner(
        ctx.db[names.SOCIAL_POSTS].find_one({"post_id": payload.post_id}),
        ctx.user_id,
        f"social post {payload.post_id}",
    )
    targets: list[dict[str, Any]] = post.get("platforms") or []
    if not targets:
        raise PermanentFailure(f"social post {payload.post_id} has no platforms")
    with ExitStack() as stack:
        publisher = PostPublisher(
            ctx,
            post,
            _Clients(ctx.settings, stack, ctx.now),
            publish_limiter(ctx.settings, epoch_seconds(ctx.now)),
        )
        for index, target in enumerate(targets):
            try:
                publisher.run(index, target)
            except LeaseLost:
                raise
            except RetryLater as exc:  # the target changed under us: read it again next run
                publisher.delays.append(exc.delay or 0.0)
            except Exception as exc:  # a bug on one platform must not block the others
                log.exception("post %s, %s target", payload.post_id, target.get("platform"))
                publisher.note_error(index, target, exc)
        if ctx.attempt >= ctx.spec.max_attempts:
            for index, target in enumerate(targets):
                publisher.close_out(index, target)
    summary = summarize(targets)
    outcome = job_outcome(targets)
    if outcome == "retry":
        delay = min(publisher.delays) if publisher.delays else None
        raise RetryLater(_line(summary), delay=delay or None)
    if outcome == "fail":
        raise PermanentFailure(_line(summary))
    return summary


def _line(summary: dict[str, Any]) -> str:
    """One line per job error: the counts and each open or failed target's reason."""
    parts = [f"{k}={v}" for k, v in summary["counts"].items()]
    reasons = [
        f"{t['platform']}: {t['error']}"
        for t in summary["targets"]
        if t["status"] != "published" and t["error"]
    ]
    return "; ".join([" ".join(parts), *reasons])


@job_actor("sync_social_metrics")
def sync_social_metrics(ctx: JobContext) -> dict[str, Any]:
    """Pull metrics of the user's posts published in the last ``days`` into ``analytics``.

    Each published target's metrics are kept in ``platforms[i].metrics``; ``analytics`` is their
    sum over the post's platforms, with ``last_synced``.
    """
    payload = ctx.payload
    assert isinstance(payload, SyncSocialMetricsPayload)
    since = ctx.now() - dt.timedelta(days=payload.days)
    posts = ctx.db[names.SOCIAL_POSTS].find(
        {
            "user_id": ctx.user_id,
            "platforms": {"$elemMatch": {"status": "published", "published_at": {"$gte": since}}},
        }
    )
    accounts = ctx.db[names.SOCIAL_ACCOUNTS]
    synced = errors = 0
    retry: list[RetryLater] = []
    with ExitStack() as stack:
        clients = _Clients(ctx.settings, stack, ctx.now)
        for post in posts:
            totals = dict.fromkeys(METRIC_KEYS, 0)
            fields: dict[str, Any] = {}
            for index, target in enumerate(post.get("platforms") or []):
                if target.get("status") != "published" or not target.get("platform_post_id"):
                    continue
                account = accounts.find_one(
                    {
                        "user_id": ctx.user_id,
                        "platform": target.get("platform"),
                        "account_id": target.get("account_id"),
                        "status": "active",
                    }
                )
                if account is None:
                    continue
                try:
                    metrics = clients(target["platform"]).fetch_metrics(
                        SocialAccount.from_doc(account), target["platform_post_id"]
                    )
                except TokenExpired:
                    accounts.update_one({"_id": account["_id"]}, {"$set": {"status": "expired"}})
                    errors += 1
                    continue
                except RetryLater as exc:
                    retry.append(exc)
                    errors += 1
                    continue
                except JobError as exc:
                    log.warning("metrics of %s: %s", target["platform_post_id"], exc)
                    errors += 1
                    continue
                fields[f"platforms.{index}.metrics"] = metrics
                for key in METRIC_KEYS:
                    totals[key] += metrics.get(key, 0)
            if fields:
                # The whole object: ``analytics`` may be null on a post written elsewhere, and
                # MongoDB refuses ``analytics.<key>`` under null (code 28).
                analytics = {**totals, "last_synced": ctx.now()}
                ctx.db[names.SOCIAL_POSTS].update_one(
                    {"_id": post["_id"]}, {"$set": {**fields, "analytics": analytics}}
                )
                synced += 1
    if retry and not synced:
        raise RetryLater(f"metrics unavailable: {retry[0]}", delay=retry[0].delay)
    return {"posts": len(posts), "synced": synced, "errors": errors}
