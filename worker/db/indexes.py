"""Every index: the schema's initialization script plus what the worker's queries need.

``ensure_indexes`` is idempotent (``create_index`` with the same spec is a no-op), so
``mmw db init`` can run on every deploy; an index whose options changed here (the sparse
``idempotency_key`` index that became partial) is dropped and created again.

Rules for unique indexes (MongoDB indexes a missing field as null, so without a filter two
documents lacking the field collide):

* every upsert's key has a unique index, so two workers upserting at once make one document
  (the loser's DuplicateKeyError is retried by :func:`worker.db.writes.upsert_retrying`);
* a unique index on a field other writers may leave out is partial on ``{field: {$type:
  "string"}}`` (:func:`_only_strings`), never sparse: a sparse index still indexes an explicit
  null, so two documents with ``field: null`` collide there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pymongo.errors import OperationFailure
from pymongo.operations import IndexModel

from worker.db import names
from worker.db.engine import Database

__all__ = ["INDEXES", "RETIRED_INDEXES", "IndexSpec", "ensure_indexes"]

ASC, DESC = 1, -1


@dataclass(frozen=True)
class IndexSpec:
    collection: str
    keys: tuple[tuple[str, int], ...]
    options: dict[str, Any] = field(default_factory=dict)
    why: str = "schema"


def _ix(collection: str, *keys: tuple[str, int], why: str = "schema", **options: Any) -> IndexSpec:
    return IndexSpec(collection, tuple(keys), options, why)


def _only_strings(*fields: str) -> dict[str, Any]:
    """The partial filter of a unique index on optional fields: only documents holding strings."""
    return {"partialFilterExpression": {f: {"$type": "string"} for f in fields}}


#: MongoDB's codes for "an index of this name (or these keys) exists with other options".
_OPTIONS_CONFLICT = {85, 86}


INDEXES: tuple[IndexSpec, ...] = (
    # --- the schema's initialization script ----------------------------------------------------
    _ix(names.USERS, ("user_id", ASC), unique=True),
    _ix(names.USERS, ("email", ASC), unique=True),
    _ix(names.CONVERSATIONS, ("conversation_id", ASC), unique=True),
    _ix(names.CONVERSATIONS, ("user_id", ASC)),
    _ix(names.CONVERSATIONS, ("updated_at", DESC)),
    _ix(names.CAMPAIGNS, ("campaign_id", ASC), unique=True),
    _ix(names.CAMPAIGNS, ("user_id", ASC)),
    _ix(names.CAMPAIGNS, ("status", ASC)),
    _ix(names.CAMPAIGNS, ("created_at", DESC)),
    _ix(names.ZOHO_TOKENS, ("user_id", ASC), unique=True),
    _ix(names.ZOHO_TOKENS, ("expires_at", ASC)),
    _ix(names.SOCIAL_ACCOUNTS, ("user_id", ASC), ("platform", ASC)),
    _ix(names.SOCIAL_ACCOUNTS, ("account_id", ASC)),
    _ix(names.SOCIAL_POSTS, ("post_id", ASC), unique=True),
    _ix(names.SOCIAL_POSTS, ("user_id", ASC)),
    _ix(names.SOCIAL_POSTS, ("campaign_id", ASC)),
    _ix(names.SOCIAL_POSTS, ("schedule.publish_at", ASC)),
    _ix(names.SOCIAL_POSTS, ("created_at", DESC)),
    _ix(names.ZOHO_CRM_RECORDS, ("user_id", ASC), ("module", ASC)),
    _ix(names.ZOHO_CRM_RECORDS, ("record_id", ASC)),
    _ix(names.EMAIL_CAMPAIGNS, ("campaign_id", ASC), unique=True),
    _ix(names.EMAIL_CAMPAIGNS, ("user_id", ASC)),
    _ix(names.EMAIL_CAMPAIGNS, ("status", ASC)),
    _ix(names.CONTENT_LIBRARY, ("content_id", ASC), unique=True),
    _ix(names.CONTENT_LIBRARY, ("user_id", ASC)),
    _ix(names.CONTENT_LIBRARY, ("type", ASC)),
    _ix(names.CONTENT_LIBRARY, ("created_at", DESC)),
    _ix(names.USER_MEMORY, ("user_id", ASC)),
    _ix(names.USER_MEMORY, ("memory_type", ASC)),
    _ix(names.USER_MEMORY, ("created_at", DESC)),
    _ix(names.AGENT_MEMORY, ("agent_name", ASC)),
    _ix(names.AGENT_MEMORY, ("memory_type", ASC)),
    _ix(names.GLOBAL_MEMORY, ("memory_type", ASC)),
    _ix(names.AGENT_EVENTS, ("conversation_id", ASC), ("timestamp", DESC)),
    _ix(names.AGENT_EVENTS, ("agent_name", ASC)),
    _ix(names.AGENT_TASKS, ("task_id", ASC), unique=True),
    _ix(names.AGENT_TASKS, ("campaign_id", ASC)),
    _ix(names.AGENT_TASKS, ("status", ASC)),
    _ix(names.APPROVAL_REQUESTS, ("request_id", ASC), unique=True),
    _ix(names.APPROVAL_REQUESTS, ("user_id", ASC)),
    _ix(names.APPROVAL_REQUESTS, ("status", ASC)),
    _ix(names.APPROVAL_REQUESTS, ("created_at", DESC)),
    _ix(names.ANALYTICS_DATA, ("user_id", ASC), ("date", DESC)),
    _ix(names.ANALYTICS_DATA, ("campaign_id", ASC)),
    _ix(names.SETTINGS, ("user_id", ASC), unique=True),
    _ix(names.WEBHOOKS, ("webhook_id", ASC), unique=True),
    _ix(names.WEBHOOKS, ("user_id", ASC)),
    _ix(names.SCHEDULED_JOBS, ("job_id", ASC), unique=True),
    _ix(names.SCHEDULED_JOBS, ("status", ASC)),
    _ix(names.SCHEDULED_JOBS, ("schedule.execute_at", ASC)),
    _ix(names.AUDIT_LOG, ("user_id", ASC)),
    _ix(names.AUDIT_LOG, ("timestamp", DESC)),
    # --- added by the worker ---------------------------------------------------------------------
    _ix(
        names.SCHEDULED_JOBS,
        ("status", ASC),
        ("schedule.execute_at", ASC),
        why="the claim query: pending jobs in due order",
    ),
    _ix(
        names.SCHEDULED_JOBS,
        ("status", ASC),
        ("lease.until", ASC),
        why="lease recovery: processing jobs whose lease ran out",
    ),
    _ix(names.SCHEDULED_JOBS, ("claim_id", ASC), sparse=True, why="reading back a claimed batch"),
    _ix(
        names.SCHEDULED_JOBS,
        ("user_id", ASC),
        ("idempotency_key", ASC),
        unique=True,
        **_only_strings("idempotency_key"),
        why="a retried submit creates one job; keys are per user (optional field: partial)",
    ),
    _ix(
        names.SCHEDULED_JOBS,
        ("purge_at", ASC),
        expireAfterSeconds=0,
        why="retention: finished one-off jobs leave the hot collection (TTL)",
    ),
    _ix(names.JOB_CONTROLS, ("kind", ASC), ("value", ASC), unique=True, why="operator pauses"),
    _ix(
        names.AUDIT_LOG,
        ("resource_type", ASC),
        ("resource_id", ASC),
        why="a job's audit trail in `mmw jobs show`",
    ),
    _ix(
        names.AUDIT_LOG,
        ("entry_id", ASC),
        unique=True,
        partialFilterExpression={"entry_id": {"$type": "string"}},
        why="an audit entry moved or flushed twice (crash, two schedulers) is written once",
    ),
    _ix(
        names.SCHEDULED_JOBS,
        (f"{names.AUDIT_OUTBOX}.id", ASC),
        partialFilterExpression={f"{names.AUDIT_OUTBOX}.id": {"$exists": True}},
        why="jobs whose audit outbox waits to be moved to audit_log",
    ),
    _ix(
        names.ZOHO_CRM_RECORDS,
        ("user_id", ASC),
        ("module", ASC),
        ("record_id", ASC),
        unique=True,
        why="CRM sync upserts by (user, module, record)",
    ),
    # --- the operators' console (worker/console/queries.py; tests/test_web_indexes.py) ----------
    *(
        _ix(
            names.SCHEDULED_JOBS,
            *prefix,
            ("schedule.execute_at", DESC),
            ("_id", DESC),
            why="console job lists: filter, then due time with a unique tie-break (cursor paging)",
        )
        for prefix in (
            (),
            (("status", ASC),),
            (("job_type", ASC),),
            (("user_id", ASC),),
            (("status", ASC), ("job_type", ASC)),
        )
    ),
    _ix(names.SCHEDULED_JOBS, ("paused", ASC), sparse=True, why="console: paused jobs"),
    _ix(names.JOB_CONTROLS, ("paused", ASC), why="console: active pauses"),
    _ix(names.SCHEDULERS, ("heartbeat_at", DESC), why="console: scheduler liveness, newest first"),
    _ix(
        names.SCHEDULED_JOBS,
        ("schedule.recurring", ASC),
        ("schedule.execute_at", ASC),
        ("_id", ASC),
        why="console: recurring schedules by next fire",
    ),
    _ix(
        names.AUDIT_LOG,
        ("resource_id", ASC),
        ("timestamp", DESC),
        why="console: a job's or a post's audit trail, newest first",
    ),
    _ix(
        names.AUDIT_LOG,
        ("action", ASC),
        ("timestamp", DESC),
        why="console: throughput and the last dispatch",
    ),
    _ix(
        names.APPROVAL_REQUESTS,
        ("status", ASC),
        ("created_at", DESC),
        why="console: pending approvals, newest first",
    ),
    _ix(
        names.SOCIAL_POSTS,
        ("platforms.status", ASC),
        why="console: review queue of targets whose outcome is unknown",
    ),
    _ix(
        names.EMAIL_CAMPAIGNS,
        ("send_intent.stage", ASC),
        sparse=True,
        why="console: review queue of sends not confirmed",
    ),
    _ix(
        names.ANALYTICS_DATA,
        ("user_id", ASC),
        ("campaign_id", ASC),
        ("date", ASC),
        unique=True,
        why="the rollup upserts one document per (user, campaign or null, day)",
    ),
    *(
        _ix(
            collection,
            ("memory_id", ASC),
            unique=True,
            **_only_strings("memory_id"),
            why="memories are upserted by a content-derived memory_id (apps may omit it)",
        )
        for collection in (names.USER_MEMORY, names.AGENT_MEMORY, names.GLOBAL_MEMORY)
    ),
    _ix(
        names.SOCIAL_ACCOUNTS,
        ("user_id", ASC),
        ("platform", ASC),
        ("account_id", ASC),
        unique=True,
        **_only_strings("user_id", "platform", "account_id"),
        why="connected accounts are upserted by (user, platform, account)",
    ),
)


#: (collection, index name) of indexes replaced by one above; dropped where they still exist.
RETIRED_INDEXES: tuple[tuple[str, str], ...] = (
    # global idempotency keys became per user: (user_id, idempotency_key), partial
    (names.SCHEDULED_JOBS, "idempotency_key_1"),
)


def ensure_indexes(db: Database) -> list[str]:
    """Create every index (idempotent); returns ``collection.index_name`` for each.

    On the embedded engine a TTL index becomes a plain one: its TTL emulation scans the whole
    collection on every document write (measured: a 200-job claim took 15 s instead of 0.2 s
    at 2,000 jobs), so the scheduler applies the same retention policy itself there.
    """
    for collection, name in RETIRED_INDEXES:
        if name in db[collection].index_information():
            db[collection].drop_index(name)
    created = []
    for spec in INDEXES:
        options = dict(spec.options)
        if db.kind == "embedded":
            options.pop("expireAfterSeconds", None)
        collection = db[spec.collection]
        try:
            name = collection.create_index(list(spec.keys), **options)
        except OperationFailure as exc:
            if exc.code not in _OPTIONS_CONFLICT and "different options" not in str(exc):
                raise
            collection.drop_index(IndexModel(list(spec.keys), **options).document["name"])
            name = collection.create_index(list(spec.keys), **options)
        created.append(f"{spec.collection}.{name}")
    return created
