"""Every read of the operators' console: index-backed queries with limits, as plain functions.

Each read is built from :class:`Query` values (collection, filter, sort, limit) by a builder
function; :func:`console_queries` lists one example of every builder, so a test can check each
against the indexes ``ensure_indexes`` creates (and, on a real server, with ``explain``). Nothing
here loads a whole collection: lists are paged with a cursor (the last row's due time and
``_id``), counts are index counts, and the review queue reads only flagged documents.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bson import ObjectId
from bson.errors import InvalidId

from worker import api
from worker.backlog import EMAIL_UNCONFIRMED, POST_NEEDS_REVIEW, REVIEW_HOLD
from worker.db import names
from worker.db.engine import Database
from worker.jobtypes import JOB_TYPES
from worker.states import JobStatus

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "REVIEW_HOLD",
    "JobFilter",
    "Page",
    "Query",
    "approvals",
    "audit_query",
    "audit_trail",
    "console_queries",
    "decode_cursor",
    "encode_cursor",
    "failed_count",
    "failed_query",
    "job_page",
    "list_jobs",
    "live_workers",
    "overview",
    "pauses",
    "review_queue",
    "schedules",
]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
#: Statuses of the per-family counts (finished jobs are counted in total only).
LIVE_STATUSES = (JobStatus.PENDING.value, JobStatus.PROCESSING.value, JobStatus.FAILED.value)
THROUGHPUT_WINDOW = dt.timedelta(minutes=5)
_DUE = "schedule.execute_at"
_LIST_SORT: tuple[tuple[str, int], ...] = ((_DUE, -1), ("_id", -1))
_LIST_PROJECTION = {"payload": 0, "history": 0, "result": 0}


@dataclass(frozen=True)
class Query:
    """One console read: what it asks MongoDB (the index test checks every one)."""

    name: str
    collection: str
    filter: dict[str, Any]
    sort: tuple[tuple[str, int], ...] = ()
    limit: int = 0
    projection: dict[str, Any] | None = None

    def find(self, db: Database) -> list[dict[str, Any]]:
        return db[self.collection].find(
            self.filter, self.projection, sort=list(self.sort) or None, limit=self.limit
        )

    def first(self, db: Database) -> dict[str, Any] | None:
        rows = db[self.collection].find(
            self.filter, self.projection, sort=list(self.sort) or None, limit=1
        )
        return rows[0] if rows else None

    def count(self, db: Database) -> int:
        if self.limit:
            return db[self.collection].count_documents(self.filter, limit=self.limit)
        return db[self.collection].count_documents(self.filter)


# ----------------------------------------------------------------------------- jobs and paging
@dataclass(frozen=True)
class JobFilter:
    """The jobs list's filters; :meth:`check` turns bad input into one clear ``ValueError``."""

    status: str | None = None
    job_type: str | None = None
    user_id: str | None = None
    due_after: dt.datetime | None = None
    due_before: dt.datetime | None = None

    def check(self) -> JobFilter:
        known = [s.value for s in JobStatus]
        if self.status is not None and self.status not in known:
            raise ValueError(f"unknown status {self.status!r}; one of {', '.join(known)}")
        for name in ("job_type", "user_id"):
            value = getattr(self, name)
            if value is not None and not value.strip():
                raise ValueError(f"{name} must not be empty")
        for moment in (self.due_after, self.due_before):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("times must carry a time zone (e.g. 2026-12-01T09:00:00Z)")
        if self.due_after and self.due_before and self.due_after >= self.due_before:
            raise ValueError("due_after must be before due_before")
        return self

    def mongo(self) -> dict[str, Any]:
        query: dict[str, Any] = {
            k: v
            for k, v in (
                ("status", self.status),
                ("job_type", self.job_type),
                ("user_id", self.user_id),
            )
            if v is not None
        }
        due: dict[str, Any] = {}
        if self.due_after is not None:
            due["$gte"] = self.due_after
        if self.due_before is not None:
            due["$lt"] = self.due_before
        if due:
            query[_DUE] = due
        return query


def encode_cursor(row: dict[str, Any]) -> str:
    """The position after ``row`` in a list sorted by (due time, _id), descending."""
    due = (row.get("schedule") or {}).get("execute_at")
    raw = json.dumps(
        {"t": due.isoformat() if isinstance(due, dt.datetime) else None, "id": str(row["_id"])}
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime | None, ObjectId]:
    """Inverse of :func:`encode_cursor`; a damaged cursor is a ``ValueError``."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        due = dt.datetime.fromisoformat(raw["t"]) if raw["t"] is not None else None
        return due, ObjectId(raw["id"])
    except (ValueError, KeyError, TypeError, InvalidId, binascii.Error):
        raise ValueError("invalid cursor") from None


def _after(cursor: str | None) -> dict[str, Any]:
    if cursor is None:
        return {}
    due, oid = decode_cursor(cursor)
    if due is None:  # rows without a due time sort last (after every dated row)
        return {_DUE: None, "_id": {"$lt": oid}}
    # the range on the due time bounds the index scan; the $or only breaks ties at ``due``
    return {_DUE: {"$lte": due}, "$or": [{_DUE: {"$lt": due}}, {"_id": {"$lt": oid}}]}


def job_list_query(filt: JobFilter, cursor: str | None, limit: int) -> Query:
    base = filt.mongo()
    after = _after(cursor)
    query = {"$and": [base, after]} if base and after else (base or after)
    return Query("jobs", names.SCHEDULED_JOBS, query, _LIST_SORT, limit + 1, _LIST_PROJECTION)


@dataclass
class Page:
    """One page of a list; ``next_cursor`` is None on the last page."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def _paged(rows: list[dict[str, Any]], limit: int) -> Page:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1]) if more and rows else None)


#: Embedded engine: due-time windows tried before the whole range (see :func:`_windowed`).
_WINDOWS = tuple(dt.timedelta(days=d) for d in (1, 8, 64, 512))


def _windowed(db: Database, query: Query, anchor: dt.datetime) -> list[dict[str, Any]]:
    """The embedded engine sorts every candidate in Python (about 0.2 ms a document), so a page
    of a large list is read from a due-time window below ``anchor`` first, widened until it
    fills the page. Everything above the window's lower bound is in it, so the page is the
    same as the unbounded query's; MongoDB walks the index instead and needs none of this."""
    for width in _WINDOWS:
        bounded = {"$and": [query.filter, {_DUE: {"$gte": anchor - width}}]}
        rows = Query(
            query.name, query.collection, bounded, query.sort, query.limit, query.projection
        ).find(db)
        if len(rows) >= query.limit:
            return rows
    return query.find(db)


def list_jobs(
    db: Database,
    filt: JobFilter,
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
    now: dt.datetime | None = None,
) -> Page:
    """Jobs matching ``filt``, newest due first, one page after ``cursor``."""
    limit = _limit(limit)
    query = job_list_query(filt.check(), cursor, limit)
    anchor = (decode_cursor(cursor)[0] if cursor else None) or now
    if db.kind == "embedded" and anchor is not None:
        return _paged(_windowed(db, query, anchor), limit)
    return _paged(query.find(db), limit)


def find_by_id_prefix(db: Database, prefix: str, limit: int = 20) -> list[dict[str, Any]]:
    """Search by id: the job itself, or jobs whose id starts with ``prefix`` (index range)."""
    return id_prefix_query(prefix, limit).find(db)


def id_prefix_query(prefix: str, limit: int) -> Query:
    prefix = prefix.strip()
    if not prefix:
        raise ValueError("search needs an id (or its beginning)")
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return Query(
        "job_id_prefix",
        names.SCHEDULED_JOBS,
        {"job_id": {"$gte": prefix, "$lt": upper}},
        (("job_id", 1),),
        limit,
        _LIST_PROJECTION,
    )


def failed_query(filt: JobFilter, limit: int = 10_000) -> Query:
    """The failed jobs matching ``filt`` (``retry all matching`` counts and walks these)."""
    query = (
        JobFilter(
            JobStatus.FAILED.value, filt.job_type, filt.user_id, filt.due_after, filt.due_before
        )
        .check()
        .mongo()
    )
    return Query("failed_matching", names.SCHEDULED_JOBS, query, _LIST_SORT, limit, {"job_id": 1})


def failed_count(db: Database, filt: JobFilter, limit: int = 10_000) -> int:
    """How many failed jobs match (at most ``limit``): the preview of ``retry all matching``."""
    return failed_query(filt, limit).count(db)


# ----------------------------------------------------------------------------- one job
def audit_query(resource_id: str, limit: int = 100) -> Query:
    return Query(
        "audit_trail",
        names.AUDIT_LOG,
        {"resource_id": resource_id},
        (("timestamp", -1),),
        limit,
        {"_id": 0},
    )


def audit_trail(
    db: Database, resource_id: str, *, limit: int = 100, job: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """A resource's audit entries, newest first (``mmw audit``, the job page): for a job, also
    the entries of state changes not yet moved from its outbox to ``audit_log`` (worker.audit).
    ``job`` is the job's document when the caller has read it already."""
    if job is None:
        job = Query(
            "job_outbox",
            names.SCHEDULED_JOBS,
            {"job_id": resource_id},
            limit=1,
            projection={names.AUDIT_OUTBOX: 1},
        ).first(db)
    waiting = [
        {**entry, "resource_id": resource_id, "in_outbox": True}
        for entry in reversed((job or {}).get(names.AUDIT_OUTBOX) or [])
    ]
    return (waiting + audit_query(resource_id, limit).find(db))[:limit]


def zone_of(job: dict[str, Any]) -> ZoneInfo:
    try:
        return ZoneInfo((job.get("schedule") or {}).get("timezone") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def next_fires(job: dict[str, Any], now: dt.datetime, n: int = 5) -> list[dict[str, str]]:
    """The next fires of a recurring job, in UTC and in the job's zone (empty for one-offs)."""
    if not (job.get("schedule") or {}).get("cron_expression"):
        return []
    try:
        fires = api.preview_fires(job, n, now=now)
    except api.InvalidJob:
        return []
    tz = zone_of(job)
    return [
        {"utc": f.isoformat(), "local": f.astimezone(tz).isoformat(), "zone": tz.key} for f in fires
    ]


def job_page(db: Database, job_id: str, now: dt.datetime) -> dict[str, Any] | None:
    """A job's document, run history (newest first), audit trail and next fires."""
    job = Query("job", names.SCHEDULED_JOBS, {"job_id": job_id}, limit=1).first(db)
    if job is None:
        return None
    history = list(reversed(job.get("history") or []))
    return {
        "job": job,
        "history": history,
        "audit": audit_trail(db, job_id, job=job),
        "next_fires": next_fires(job, now),
        "zone": zone_of(job).key,
    }


# ----------------------------------------------------------------------------- overview
#: A scheduler silent this long is shown as dead unless the caller says otherwise (the
#: scheduler's own ``scheduler_dead_after_seconds``; records: ``worker.db.schedulers``).
SCHEDULER_DEAD_AFTER = dt.timedelta(seconds=30)


def families() -> dict[str, list[str]]:
    """Job types by queue (a family is one Dramatiq queue)."""
    found: dict[str, list[str]] = {}
    for name, job_type in sorted(JOB_TYPES.items()):
        found.setdefault(job_type.queue, []).append(name)
    return found


def _types(job_types: list[str]) -> Any:
    return job_types[0] if len(job_types) == 1 else {"$in": job_types}


def _backlog_queries(job_types: list[str], now: dt.datetime) -> tuple[Query, Query]:
    due = {"status": JobStatus.PENDING.value, "job_type": _types(job_types), _DUE: {"$lte": now}}
    return (
        Query("backlog", names.SCHEDULED_JOBS, due, limit=100_000),
        Query("oldest_due", names.SCHEDULED_JOBS, due, ((_DUE, 1),), 1, {_DUE: 1, "job_id": 1}),
    )


def _count_query(status: str, job_types: list[str] | None = None) -> Query:
    query: dict[str, Any] = {"status": status}
    if job_types is not None:
        query["job_type"] = _types(job_types)
    return Query("count", names.SCHEDULED_JOBS, query)


def _recent_query(action: str, since: dt.datetime) -> Query:
    return Query("recent_action", names.AUDIT_LOG, {"action": action, "timestamp": {"$gte": since}})


def _last_query(action: str, since: dt.datetime) -> Query:
    return Query(
        "last_action",
        names.AUDIT_LOG,
        {"action": action, "timestamp": {"$gte": since}},
        (("timestamp", -1),),
        1,
        {"timestamp": 1},
    )


def _schedulers_query(limit: int = 50) -> Query:
    return Query("schedulers", names.SCHEDULERS, {}, (("heartbeat_at", -1),), limit)


def _control_query(limit: int = 200) -> Query:
    return Query("pauses", names.JOB_CONTROLS, {"paused": True}, limit=limit, projection={"_id": 0})


def _paused_jobs_query(limit: int = 200) -> Query:
    return Query(
        "paused_jobs",
        names.SCHEDULED_JOBS,
        {"paused": True},
        limit=limit,
        projection=_LIST_PROJECTION,
    )


def live_workers(
    heartbeats: Iterable[tuple[str, float]], now: dt.datetime, timeout_ms: float
) -> list[dict[str, Any]]:
    """Dramatiq workers whose Redis heartbeat (worker id, ms) is younger than ``timeout_ms``."""
    now_ms = now.timestamp() * 1000
    return sorted(
        (
            {"worker_id": wid, "seen_seconds_ago": round(max(0.0, now_ms - ms) / 1000, 1)}
            for wid, ms in heartbeats
            if now_ms - ms < timeout_ms
        ),
        key=lambda w: w["seen_seconds_ago"],
    )


def scheduler_rows(
    records: Iterable[dict[str, Any]],
    now: dt.datetime,
    dead_after: dt.timedelta = SCHEDULER_DEAD_AFTER,
) -> list[dict[str, Any]]:
    """Scheduler liveness records with their age and whether they still beat (pure)."""
    rows = []
    for record in records:
        beat = record.get("heartbeat_at")
        age = (now - beat).total_seconds() if isinstance(beat, dt.datetime) else None
        rows.append(
            {
                "owner": str(record.get("_id")),
                "host": record.get("host"),
                "pid": record.get("pid"),
                "heartbeat_at": beat,
                "seen_seconds_ago": None if age is None else round(max(age, 0.0), 1),
                "live": age is not None and age < dead_after.total_seconds(),
            }
        )
    return rows


def overview(
    db: Database,
    now: dt.datetime,
    *,
    workers: Callable[[dt.datetime], list[dict[str, Any]]] | None = None,
    dead_after: dt.timedelta = SCHEDULER_DEAD_AFTER,
) -> dict[str, Any]:
    """Counts by status and family, backlog and oldest due per queue, lag, throughput,
    liveness (schedulers' records, else the last dispatch; live workers when the broker
    tells) and pauses. About 30 index counts and lookups, whatever the number of jobs."""
    by_status = {s.value: _count_query(s.value).count(db) for s in JobStatus}
    rows = []
    for queue, job_types in families().items():
        row: dict[str, Any] = {
            "queue": queue,
            "job_types": job_types,
            "backlog": 0,
            "oldest_due": None,
            "oldest_job_id": None,
            "lag_seconds": 0.0,
        }
        for status in LIVE_STATUSES:
            row[status] = _count_query(status, job_types).count(db) if by_status[status] else 0
        if row["pending"]:
            backlog, oldest = _backlog_queries(job_types, now)
            row["backlog"] = backlog.count(db)
            first = oldest.first(db) if row["backlog"] else None
            if first is not None:
                due = first["schedule"]["execute_at"]
                row.update(
                    oldest_due=due,
                    oldest_job_id=first["job_id"],
                    lag_seconds=round((now - due).total_seconds(), 1),
                )
        rows.append(row)
    since = now - THROUGHPUT_WINDOW
    minutes = THROUGHPUT_WINDOW.total_seconds() / 60
    throughput = {
        action: round(_recent_query(action, since).count(db) / minutes, 2)
        for action in ("job_completed", "job_failed")
    }
    schedulers = scheduler_rows(_schedulers_query().find(db), now, dead_after)
    last = None if schedulers else (_last_query("job_dispatched", since).first(db) or {})
    return {
        "now": now,
        "by_status": by_status,
        "families": rows,
        "lag_seconds": max((r["lag_seconds"] for r in rows), default=0.0),
        "throughput_per_minute": throughput,
        "throughput_window_seconds": THROUGHPUT_WINDOW.total_seconds(),
        "schedulers": schedulers,
        "last_dispatch": None if last is None else last.get("timestamp"),
        "workers": workers(now) if workers is not None else None,
        "pauses": _control_query().find(db),
    }


# ----------------------------------------------------------------------------- other pages
def pauses(db: Database, limit: int = 200) -> dict[str, Any]:
    """Pauses by user or job type (``job_controls``) and paused single jobs, who set them."""
    return {"controls": _control_query(limit).find(db), "jobs": _paused_jobs_query(limit).find(db)}


def schedules_query(cursor: str | None, limit: int) -> Query:
    query: dict[str, Any] = {"schedule.recurring": True}
    if cursor is not None:
        due, oid = decode_cursor(cursor)
        after = {_DUE: {"$gte": due}, "$or": [{_DUE: {"$gt": due}}, {"_id": {"$gt": oid}}]}
        query = {"$and": [query, after]}
    return Query(
        "schedules",
        names.SCHEDULED_JOBS,
        query,
        ((_DUE, 1), ("_id", 1)),
        limit + 1,
        _LIST_PROJECTION,
    )


def schedules(
    db: Database, now: dt.datetime, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT
) -> Page:
    """Recurring jobs, soonest next fire first, each with its next three fires."""
    limit = _limit(limit)
    page = _paged(schedules_query(cursor, limit).find(db), limit)
    for job in page.items:
        job["next_fires"] = next_fires(job, now, 3)
    return page


APPROVAL_STATUSES = ("pending", "approved", "rejected")


def approvals_query(status: str, limit: int) -> Query:
    if status not in APPROVAL_STATUSES:
        raise ValueError(f"unknown approval status {status!r}; one of {APPROVAL_STATUSES}")
    return Query(
        "approvals",
        names.APPROVAL_REQUESTS,
        {"status": status},
        (("created_at", -1),),
        _limit(limit),
        {"_id": 0},
    )


def approvals(db: Database, status: str = "pending", limit: int = 100) -> list[dict[str, Any]]:
    """Approval requests of the AI agents in ``status``, newest first."""
    return approvals_query(status, limit).find(db)


@dataclass
class ReviewItem:
    """An effect whose outcome is unknown, with what is known about it."""

    kind: str  # "social_target" | "email_send"
    resource_id: str
    user_id: str | None
    title: str
    target: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    audit: list[dict[str, Any]] = field(default_factory=list)


def review_posts_query(limit: int) -> Query:
    return Query(
        "review_posts",
        names.SOCIAL_POSTS,
        POST_NEEDS_REVIEW,
        limit=limit,
        projection={"_id": 0},
    )


def review_emails_query(limit: int) -> Query:
    return Query(
        "review_emails",
        names.EMAIL_CAMPAIGNS,
        EMAIL_UNCONFIRMED,
        limit=limit,
        projection={"_id": 0, "content": 0},
    )


def review_queue(db: Database, now: dt.datetime, limit: int = 100) -> list[ReviewItem]:
    """``needs_review`` targets of social posts and email sends whose intent was never
    confirmed (older than :data:`REVIEW_HOLD`), each with its evidence and audit trail."""
    items: list[ReviewItem] = []
    for post in review_posts_query(limit).find(db):
        text = ((post.get("content") or {}).get("message") or "")[:120]
        for target in post.get("platforms") or []:
            if target.get("status") != "needs_review":
                continue
            items.append(
                ReviewItem(
                    kind="social_target",
                    resource_id=post["post_id"],
                    user_id=post.get("user_id"),
                    title=f"{target.get('platform')} post: {text}",
                    target={
                        "platform": target.get("platform"),
                        "account_id": target.get("account_id"),
                    },
                    evidence={
                        "error": target.get("error"),
                        "attempt": target.get("attempt"),
                        "message": text,
                    },
                    audit=audit_query(post["post_id"], 20).find(db),
                )
            )
    for campaign in review_emails_query(limit).find(db):
        intent = campaign.get("send_intent") or {}
        at = intent.get("at")
        if campaign.get("status") in ("sent", "scheduled") or (at and now - at < REVIEW_HOLD):
            continue
        items.append(
            ReviewItem(
                kind="email_send",
                resource_id=campaign["campaign_id"],
                user_id=campaign.get("user_id"),
                title=f"email campaign: {campaign.get('name') or campaign['campaign_id']}",
                evidence={
                    "send_intent": intent,
                    "status": campaign.get("status"),
                    "zoho_campaign_key": campaign.get("zoho_campaign_key"),
                },
                audit=audit_query(campaign["campaign_id"], 20).find(db),
            )
        )
    return items


# ----------------------------------------------------------------------------- the index check
def console_queries(now: dt.datetime) -> list[Query]:
    """One example of every query shape the console sends (the index test checks each)."""
    cursor = encode_cursor({"_id": ObjectId(), "schedule": {"execute_at": now}})
    some_type = next(iter(JOB_TYPES))
    shapes: list[Query] = []
    for filt in (
        JobFilter(),
        JobFilter(status="failed"),
        JobFilter(job_type=some_type),
        JobFilter(user_id="u1"),
        JobFilter(status="failed", job_type=some_type),
        JobFilter(status="pending", user_id="u1"),
        JobFilter(job_type=some_type, user_id="u1", due_after=now - dt.timedelta(days=1)),
        JobFilter(due_after=now - dt.timedelta(days=1), due_before=now),
    ):
        shapes.append(job_list_query(filt, None, DEFAULT_LIMIT))
        shapes.append(job_list_query(filt, cursor, DEFAULT_LIMIT))
    shapes += [
        failed_query(JobFilter(job_type=some_type)),
        failed_query(JobFilter()),
        id_prefix_query("job_", 20),
        Query("job", names.SCHEDULED_JOBS, {"job_id": "job_1"}, limit=1),
        audit_query("job_1"),
        _count_query("pending"),
        _count_query("failed", [some_type]),
        _count_query("failed", families()["social"]),
        *_backlog_queries([some_type], now),
        *_backlog_queries(families()["social"], now),
        _recent_query("job_completed", now),
        _last_query("job_dispatched", now),
        _schedulers_query(),
        _control_query(),
        _paused_jobs_query(),
        schedules_query(None, DEFAULT_LIMIT),
        schedules_query(cursor, DEFAULT_LIMIT),
        approvals_query("pending", 100),
        review_posts_query(100),
        review_emails_query(100),
    ]
    return shapes
