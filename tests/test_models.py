"""The collection models accept the schema's documents, keep unknown fields and reject bad enums."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from enum import StrEnum
from typing import Any, Literal, get_args, get_origin

import pytest
from bson import ObjectId
from pydantic import BaseModel, ValidationError

from worker.db import names
from worker.db.models import COLLECTION_MODELS, JobSchedule, ScheduledJob, SocialAccount
from worker.schedule import CatchUp, Overlap
from worker.states import JobStatus

T0 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)

#: One document per collection, shaped as the schema's examples, every declared field set.
SAMPLES: dict[str, dict[str, Any]] = {
    names.USERS: {
        "_id": ObjectId(),
        "user_id": "u1",
        "email": "ada@example.com",
        "name": "Ada",
        "company": "Acme",
        "role": "admin",
        "created_at": T0,
        "updated_at": T1,
        "last_login": T1,
        "preferences": {"language": "en", "timezone": "Europe/Berlin", "notifications": True},
        "subscription": {"plan": "pro", "status": "active", "expires_at": T1},
    },
    names.CONVERSATIONS: {
        "_id": ObjectId(),
        "conversation_id": "c1",
        "user_id": "u1",
        "created_at": T0,
        "updated_at": T1,
        "messages": [
            {"role": "user", "content": "Launch shoes", "timestamp": T0, "metadata": {"v": 1}},
        ],
        "context": {
            "campaign_brief": {"product": "shoes"},
            "collected_info": {"budget": "1k"},
            "ready_to_plan": False,
        },
    },
    names.CAMPAIGNS: {
        "_id": ObjectId(),
        "campaign_id": "camp1",
        "user_id": "u1",
        "conversation_id": "c1",
        "name": "Spring launch",
        "brief": {
            "product": "shoes",
            "target_audience": "runners",
            "objective": "awareness",
            "budget": "1000 EUR",
            "timeline": "4 weeks",
            "channels": ["facebook", "email"],
            "additional_context": "eco materials",
        },
        "status": "planning",
        "plan": {
            "strategy": "social first",
            "tasks": [
                {
                    "task_id": "t1",
                    "agent_assigned": "copywriter",
                    "description": "write posts",
                    "requirements": ["tone"],
                    "dependencies": [],
                    "status": "pending",
                    "estimated_duration": "1h",
                }
            ],
            "timeline": {"week1": "posts"},
            "kpis": [{"name": "reach", "target": 10000}],
        },
        "results": {
            "task_results": {"t1": "ok"},
            "analytics": {"reach": 5},
            "roi": 1.5,
            "performance_summary": "fine",
        },
        "created_at": T0,
        "updated_at": T1,
        "completed_at": T1,
    },
    names.ZOHO_TOKENS: {
        "_id": ObjectId(),
        "user_id": "u1",
        "access_token": "1000.access",
        "refresh_token": "1000.refresh",
        "token_type": "Bearer",
        "expires_in": 3600,
        "expires_at": T1,
        "scope": "ZohoCRM.modules.ALL",
        "data_center": "eu",
        "created_at": T0,
        "updated_at": T1,
    },
    names.SOCIAL_ACCOUNTS: {
        "_id": ObjectId(),
        "user_id": "u1",
        "platform": "facebook",
        "account_id": "fb-1",
        "account_name": "Acme",
        "account_username": "acme",
        "profile_picture": "https://cdn.example/p.png",
        "auth_type": "oauth",
        "credentials": {
            "access_token": "EAAG-secret",
            "refresh_token": "refresh-secret",
            "token_expires_at": T1,
            "page_id": "123",
            "instagram_business_id": "178",
            "api_key": "key-secret",
            "api_secret": "api-secret-value",
        },
        "account_info": {
            "followers": 10,
            "following": 2,
            "posts_count": 7,
            "verified": False,
            "business_account": True,
        },
        "status": "active",
        "connected_at": T0,
        "updated_at": T1,
        "last_used": T1,
    },
    names.SOCIAL_POSTS: {
        "_id": ObjectId(),
        "post_id": "p1",
        "user_id": "u1",
        "campaign_id": "camp1",
        "platforms": [
            {
                "platform": "twitter",
                "account_id": "x-1",
                "platform_post_id": "1799",
                "status": "failed",
                "published_at": T1,
                "error": "duplicate content",
                "attempt": {
                    "run_key": "job_1@2026-11-25T12:00:00.000Z",
                    "intent_id": "9f1c",
                    "number": 1,
                    "started_at": T0,
                    "lookups": 0,
                    "outcome": "failed",
                },
                "url": "https://x.com/i/web/status/1799",
                "reconciled_at": T1,
                "metrics": {"likes": 3},
            }
        ],
        "content": {
            "message": "New shoes!",
            "images": ["https://cdn.example/1.png"],
            "videos": [],
            "link": "https://acme.example",
            "hashtags": ["#run"],
        },
        "schedule": {"scheduled": True, "publish_at": T1},
        "analytics": {
            "impressions": 100,
            "reach": 80,
            "engagement": 12,
            "likes": 9,
            "comments": 2,
            "shares": 1,
            "clicks": 4,
            "last_synced": T1,
        },
        "created_at": T0,
        "updated_at": T1,
    },
    names.ZOHO_CRM_RECORDS: {
        "_id": ObjectId(),
        "user_id": "u1",
        "module": "Leads",
        "record_id": "4150868000000224005",
        "data": {"Last_Name": "Lovelace", "Email": "ada@example.com"},
        "synced_at": T1,
        "created_at": T0,
        "updated_at": T1,
    },
    names.EMAIL_CAMPAIGNS: {
        "_id": ObjectId(),
        "campaign_id": "e1",
        "user_id": "u1",
        "marketing_campaign_id": "camp1",
        "name": "Launch mail",
        "type": "one_time",
        "status": "scheduled",
        "recipients": {"list_key": "3z1a", "segment": {"tag": "vip"}, "count": 250},
        "content": {
            "subject": "New shoes",
            "from_email": "news@acme.example",
            "from_name": "Acme",
            "reply_to": "help@acme.example",
            "html_content": "<p>Hi</p>",
            "text_content": "Hi",
            "attachments": ["https://cdn.example/a.pdf"],
        },
        "schedule": {"scheduled": True, "send_at": T1},
        "zoho_campaign_key": "3z9c",
        "analytics": {
            "sent": 250,
            "delivered": 245,
            "opened": 100,
            "clicked": 20,
            "bounced": 5,
            "unsubscribed": 1,
            "open_rate": 0.408,
            "click_rate": 0.082,
            "last_synced": T1,
        },
        "created_at": T0,
        "updated_at": T1,
        "sent_at": T1,
    },
    names.CONTENT_LIBRARY: {
        "_id": ObjectId(),
        "content_id": "ct1",
        "user_id": "u1",
        "campaign_id": "camp1",
        "type": "image",
        "content_type": "social_post",
        "content": {
            "text": "caption",
            "image_url": "https://cdn.example/i.png",
            "image_base64": "aGk=",
            "video_url": "https://cdn.example/v.mp4",
            "video_base64": "aGk=",
            "audio_url": "https://cdn.example/a.mp3",
            "metadata": {
                "prompt": "a shoe",
                "model_used": "gpt-image-1",
                "generation_params": {"size": "1024x1024"},
            },
        },
        "platform": "instagram",
        "status": "approved",
        "tags": ["launch"],
        "created_by": "ai",
        "created_at": T0,
        "updated_at": T1,
        "used_in": ["p1"],
    },
    names.USER_MEMORY: {
        "_id": ObjectId(),
        "user_id": "u1",
        "memory_type": "preference",
        "content": "prefers short posts",
        "embedding": [0.1, -0.2, 0.3],
        "metadata": {
            "conversation_id": "c1",
            "timestamp": T0,
            "importance": 7,
            "category": "style",
        },
        "agent_name": "copywriter",
        "created_at": T0,
    },
    names.AGENT_MEMORY: {
        "_id": ObjectId(),
        "agent_name": "copywriter",
        "memory_type": "best_practice",
        "content": "questions raise engagement",
        "embedding": [0.5, 0.25],
        "metadata": {"use_count": 3, "success_rate": 0.66, "category": "social"},
        "created_at": T0,
        "updated_at": T1,
    },
    names.GLOBAL_MEMORY: {
        "_id": ObjectId(),
        "memory_type": "trend",
        "content": "short video grows",
        "embedding": [1.0],
        "metadata": {"industry": "retail", "effectiveness_score": 0.8, "usage_count": 12},
        "created_at": T0,
        "updated_at": T1,
    },
    names.AGENT_EVENTS: {
        "_id": ObjectId(),
        "event_id": "ev1",
        "conversation_id": "c1",
        "user_id": "u1",
        "agent_name": "planner",
        "event_type": "task_completed",
        "data": {"task_id": "t1"},
        "timestamp": T1,
    },
    names.AGENT_TASKS: {
        "_id": ObjectId(),
        "task_id": "t1",
        "campaign_id": "camp1",
        "agent_name": "copywriter",
        "status": "completed",
        "input": {"brief": "shoes"},
        "result": {"text": "New shoes!"},
        "error": "",
        "started_at": T0,
        "completed_at": T1,
        "duration_ms": 300000,
    },
    names.APPROVAL_REQUESTS: {
        "_id": ObjectId(),
        "request_id": "r1",
        "user_id": "u1",
        "campaign_id": "camp1",
        "conversation_id": "c1",
        "request_type": "publish",
        "content": {"post_id": "p1"},
        "status": "approved",
        "requested_by": "social_agent",
        "approved_by": "voice_approval",
        "approval_notes": "go",
        "rejection_reason": "",
        "created_at": T0,
        "resolved_at": T1,
    },
    names.ANALYTICS_DATA: {
        "_id": ObjectId(),
        "user_id": "u1",
        "campaign_id": "camp1",
        "date": T0,
        "metrics": {
            "social": {
                "posts_published": 3,
                "total_reach": 800,
                "total_engagement": 40,
                "total_impressions": 1200,
                "by_platform": {
                    "facebook": {"reach": 500},
                    "instagram": {"reach": 300},
                    "twitter": {},
                    "linkedin": {},
                },
            },
            "email": {
                "campaigns_sent": 1,
                "emails_delivered": 245,
                "open_rate": 0.4,
                "click_rate": 0.08,
                "conversions": 3,
            },
            "crm": {"new_leads": 4, "new_contacts": 2, "deals_closed": 1, "revenue": 1999.5},
            "seo": {"organic_traffic": 900, "keyword_rankings": {"shoes": 4}, "backlinks": 12},
            "ppc": {"ad_spend": 50.0, "clicks": 70, "conversions": 2, "roas": 3.2},
        },
        "created_at": T1,
    },
    names.SETTINGS: {
        "_id": ObjectId(),
        "user_id": "u1",
        "api_keys": {"openai_key": "enc:sk-secret", "custom_keys": {"serp": "enc:serp-secret"}},
        "integrations": {
            "zoho_connected": True,
            "social_platforms": ["facebook", "linkedin"],
            "analytics_enabled": True,
        },
        "notifications": {
            "email": True,
            "in_app": False,
            "webhook_url": "https://hooks.example/u1",
        },
        "branding": {
            "company_name": "Acme",
            "logo_url": "https://cdn.example/logo.png",
            "primary_color": "#ff6600",
            "tone_of_voice": "friendly",
        },
        "updated_at": T1,
    },
    names.WEBHOOKS: {
        "_id": ObjectId(),
        "user_id": "u1",
        "webhook_id": "w1",
        "name": "CRM bridge",
        "url": "https://hooks.example/w1",
        "events": ["post_published"],
        "secret": "whsec-secret",
        "active": True,
        "last_triggered": T1,
        "created_at": T0,
    },
    names.SCHEDULED_JOBS: {
        "_id": ObjectId(),
        "job_id": "j1",
        "user_id": "u1",
        "job_type": "post_social",
        "payload": {"post_id": "p1"},
        "schedule": {
            "execute_at": T0,
            "recurring": True,
            "cron_expression": "0 9 * * 1",
            "timezone": "Europe/Berlin",
            "catch_up": "once",
            "catch_up_window_seconds": 86400.0,
            "overlap": "skip",
            "max_lateness_seconds": 3600.0,
        },
        "status": "processing",
        "attempts": 1,
        "max_attempts": 6,
        "result": {"published": 1},
        "error": "",
        "created_at": T0,
        "executed_at": T1,
        "epoch": 3,
        "lease": {"owner": "claim-3", "until": T1, "worker": "host:42", "started_at": T0},
        "claim_id": "batch-9",
        "run_at": T0,
        "run_key": "j1:2026-11-25T12:00:00Z",
        "started_at": T0,
        "finished_at": T1,
        "purge_at": T1 + dt.timedelta(days=30),
        "updated_at": T1,
        "paused": False,
        "queue": "social",
        "idempotency_key": "app-req-7",
        "history": [
            {
                "run_key": "j1:2026-11-18T12:00:00Z",
                "run_at": T0 - dt.timedelta(days=7),
                "started_at": T0 - dt.timedelta(days=7),
                "finished_at": T0 - dt.timedelta(days=7),
                "status": "retry",
                "error": "HTTP 503",
                "attempts": 1,
                "duration_ms": 812.5,
            }
        ],
        "missed_runs": 2,
        "parent_job_id": "j0",
        "audit_outbox": [
            {"id": "e1", "action": "job_started", "timestamp": T1, "details": {"epoch": 3}}
        ],
    },
    names.AUDIT_LOG: {
        "_id": ObjectId(),
        "entry_id": "6b0f3371b2f529ed2fe4286a:e1",
        "user_id": "u1",
        "action": "post_published",
        "resource_type": "social_post",
        "resource_id": "p1",
        "details": {"platform": "facebook"},
        "ip_address": "203.0.113.9",
        "user_agent": "mmw-worker",
        "timestamp": T1,
    },
    names.JOB_CONTROLS: {
        "_id": ObjectId(),
        "kind": "job_type",
        "value": "post_social",
        "paused": True,
        "reason": "Facebook outage",
        "updated_at": T1,
    },
}

#: The fields a document cannot load without: the identifiers each collection is keyed by.
REQUIRED: dict[str, set[str]] = {
    names.USERS: {"user_id"},
    names.CONVERSATIONS: {"conversation_id"},
    names.CAMPAIGNS: {"campaign_id"},
    names.ZOHO_TOKENS: {"user_id"},
    names.SOCIAL_ACCOUNTS: {"user_id"},
    names.SOCIAL_POSTS: {"post_id"},
    names.ZOHO_CRM_RECORDS: {"user_id"},
    names.EMAIL_CAMPAIGNS: {"campaign_id"},
    names.CONTENT_LIBRARY: {"content_id"},
    names.USER_MEMORY: {"user_id"},
    names.AGENT_MEMORY: set(),
    names.GLOBAL_MEMORY: set(),
    names.AGENT_EVENTS: {"event_id"},
    names.AGENT_TASKS: {"task_id"},
    names.APPROVAL_REQUESTS: {"request_id"},
    names.ANALYTICS_DATA: {"user_id"},
    names.SETTINGS: {"user_id"},
    names.WEBHOOKS: {"webhook_id"},
    names.SCHEDULED_JOBS: {"job_id", "user_id"},
    names.AUDIT_LOG: set(),
    names.JOB_CONTROLS: {"kind", "value", "paused", "updated_at"},
}


def _walk(model: BaseModel) -> Iterator[BaseModel]:
    """The model and every model nested in it (directly or in lists)."""
    yield model
    for name in type(model).model_fields:
        value = getattr(model, name)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, BaseModel):
                yield from _walk(item)


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``doc`` with the dotted ``path`` (list indexes as numbers) set to ``value``."""
    out = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[last] = value
    return out


def test_every_schema_collection_has_a_model() -> None:
    assert len(names.SCHEMA_COLLECTIONS) == 20
    assert set(COLLECTION_MODELS) == {*names.SCHEMA_COLLECTIONS, names.JOB_CONTROLS}
    assert set(SAMPLES) == set(COLLECTION_MODELS) == set(REQUIRED)


@pytest.mark.parametrize("collection", sorted(SAMPLES))
def test_sample_document_round_trips(collection: str) -> None:
    doc = SAMPLES[collection]
    model = COLLECTION_MODELS[collection].model_validate(doc)
    assert model.model_dump(by_alias=True, exclude_none=True) == doc


@pytest.mark.parametrize("collection", sorted(SAMPLES))
def test_sample_document_matches_declared_fields_exactly(collection: str) -> None:
    """No sample key lands in ``extra`` (a misspelt field) and every declared field is exercised."""
    model = COLLECTION_MODELS[collection].model_validate(SAMPLES[collection])
    for node in _walk(model):
        assert node.model_extra == {}, type(node).__name__
        assert node.model_fields_set == set(type(node).model_fields), type(node).__name__


@pytest.mark.parametrize("collection", sorted(SAMPLES))
def test_required_fields_are_the_collection_identifiers(collection: str) -> None:
    model_type = COLLECTION_MODELS[collection]
    required = {name for name, field in model_type.model_fields.items() if field.is_required()}
    assert required == REQUIRED[collection]
    for name in required:
        doc = {k: v for k, v in SAMPLES[collection].items() if k != name}
        with pytest.raises(ValidationError, match=name):
            model_type.model_validate(doc)


@pytest.mark.parametrize(
    ("collection", "path", "value"),
    [
        (names.USERS, "role", "owner"),
        (names.USERS, "subscription.plan", "gold"),
        (names.USERS, "subscription.status", "paused"),
        (names.CONVERSATIONS, "messages.0.role", "tool"),
        (names.CAMPAIGNS, "status", "running"),
        (names.CAMPAIGNS, "plan.tasks.0.status", "done"),
        (names.ZOHO_TOKENS, "data_center", "us"),
        (names.SOCIAL_ACCOUNTS, "platform", "tiktok"),
        (names.SOCIAL_ACCOUNTS, "auth_type", "password"),
        (names.SOCIAL_ACCOUNTS, "status", "revoked"),
        (names.SOCIAL_POSTS, "platforms.0.platform", "x"),
        (names.SOCIAL_POSTS, "platforms.0.status", "pending"),
        (names.ZOHO_CRM_RECORDS, "module", "Tasks"),
        (names.EMAIL_CAMPAIGNS, "type", "weekly"),
        (names.EMAIL_CAMPAIGNS, "status", "bounced"),
        (names.CONTENT_LIBRARY, "type", "pdf"),
        (names.CONTENT_LIBRARY, "content_type", "tweet"),
        (names.CONTENT_LIBRARY, "platform", "tiktok"),
        (names.CONTENT_LIBRARY, "status", "deleted"),
        (names.USER_MEMORY, "memory_type", "note"),
        (names.USER_MEMORY, "metadata.importance", 11),
        (names.AGENT_MEMORY, "memory_type", "trend"),
        (names.GLOBAL_MEMORY, "memory_type", "learning"),
        (names.AGENT_EVENTS, "event_type", "crash"),
        (names.AGENT_TASKS, "status", "processing"),
        (names.APPROVAL_REQUESTS, "request_type", "refund"),
        (names.APPROVAL_REQUESTS, "status", "maybe"),
        (names.SCHEDULED_JOBS, "status", "running"),
        (names.SCHEDULED_JOBS, "schedule.catch_up", "some"),
        (names.SCHEDULED_JOBS, "schedule.overlap", "queue"),
        (names.JOB_CONTROLS, "kind", "queue"),
    ],
)
def test_invalid_enum_values_are_rejected(collection: str, path: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=path.split(".")[-1]):
        COLLECTION_MODELS[collection].model_validate(_set(SAMPLES[collection], path, value))


def test_invalid_types_are_rejected() -> None:
    job = SAMPLES[names.SCHEDULED_JOBS]
    for path, value in [
        ("schedule.execute_at", "tomorrow"),
        ("epoch", "three"),
        ("lease.until", None),
        ("history.0.attempts", "many"),
    ]:
        with pytest.raises(ValidationError):
            ScheduledJob.model_validate(_set(job, path, value))


def test_unknown_fields_are_kept_at_every_level() -> None:
    doc = _set(SAMPLES[names.SCHEDULED_JOBS], "trace_id", "abc")
    doc = _set(doc, "schedule.jitter_seconds", 5)
    doc = _set(doc, "lease.host", "w2")
    doc = _set(doc, "history.0.worker", "host:41")
    model = ScheduledJob.model_validate(doc)
    assert model.model_extra == {"trace_id": "abc"}
    assert model.schedule is not None and model.schedule.model_extra == {"jitter_seconds": 5}
    assert model.model_dump(by_alias=True, exclude_none=True) == doc


def test_upstream_job_without_worker_fields_loads_with_defaults() -> None:
    """A job as the apps insert it (schema fields only, naive datetimes as pymongo reads them)."""
    doc = {
        "_id": ObjectId(),
        "job_id": "j2",
        "user_id": "u1",
        "job_type": "send_email",
        "payload": {"campaign_id": "e1"},
        "schedule": {"execute_at": dt.datetime(2026, 11, 25, 12), "recurring": False},
        "status": "pending",
        "attempts": 0,
        "max_attempts": 3,
        "created_at": dt.datetime(2026, 11, 25, 11),
    }
    job = ScheduledJob.model_validate(doc)
    assert (job.epoch, job.paused, job.history, job.missed_runs) == (0, False, [], 0)
    assert job.lease is None and job.run_key is None
    assert job.id == doc["_id"]
    assert job.created_at == dt.datetime(2026, 11, 25, 11, tzinfo=dt.UTC)
    assert job.schedule is not None
    assert job.schedule.execute_at == dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
    dumped = job.model_dump(by_alias=True, exclude_unset=True)
    assert dumped.keys() == doc.keys()
    assert dumped["payload"] == doc["payload"]


def test_dates_load_as_aware_utc() -> None:
    plus_one = dt.timezone(dt.timedelta(hours=1))
    job_doc = SAMPLES[names.SCHEDULED_JOBS]
    doc = _set(job_doc, "run_at", dt.datetime(2026, 11, 25, 13, tzinfo=plus_one))
    doc = _set(doc, "lease.until", dt.datetime(2026, 11, 25, 12, 5))
    job = ScheduledJob.model_validate(doc)
    assert job.run_at is not None and job.lease is not None
    for value in (job.run_at, job.lease.until):
        assert value.utcoffset() == dt.timedelta(0)
    assert (job.run_at, job.lease.until) == (T0, T1)


def test_id_is_accepted_by_name_and_dumped_as_underscore_id() -> None:
    oid = ObjectId()
    job = ScheduledJob(id=oid, job_id="j3", user_id="u1")
    assert job.model_dump(by_alias=True, exclude_none=True)["_id"] == oid
    assert "id" not in job.model_dump(by_alias=True)


def test_secrets_stay_out_of_repr() -> None:
    secrets = ("1000.access", "1000.refresh", "EAAG-secret", "refresh-secret", "key-secret")
    secrets += ("api-secret-value", "enc:sk-secret", "enc:serp-secret", "whsec-secret")
    shown = " ".join(
        repr(COLLECTION_MODELS[c].model_validate(SAMPLES[c]))
        for c in (names.ZOHO_TOKENS, names.SOCIAL_ACCOUNTS, names.SETTINGS, names.WEBHOOKS)
    )
    assert "page_id='123'" in shown
    for secret in secrets:
        assert secret not in shown
    account = SocialAccount.model_validate(SAMPLES[names.SOCIAL_ACCOUNTS])
    assert account.credentials is not None
    assert account.credentials.access_token == "EAAG-secret"


def _literal_values(model: type[BaseModel], field: str) -> set[str]:
    (literal,) = [a for a in get_args(model.model_fields[field].annotation) if get_origin(a)]
    assert get_origin(literal) is Literal
    return set(get_args(literal))


@pytest.mark.parametrize(
    ("model", "field", "enum"),
    [
        (ScheduledJob, "status", JobStatus),
        (JobSchedule, "catch_up", CatchUp),
        (JobSchedule, "overlap", Overlap),
    ],
)
def test_job_enums_match_the_worker(
    model: type[BaseModel], field: str, enum: type[StrEnum]
) -> None:
    assert _literal_values(model, field) == {member.value for member in enum}
