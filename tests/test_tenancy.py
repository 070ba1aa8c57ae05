"""Tenants stay apart: a job of user A naming user B's resource fails and changes nothing of B's.

One case per job type that names a resource in its payload, run through the real lifecycle;
plus the types without a resource id (their queries are scoped by the job's user), idempotency
keys per user and the platform's own jobs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from worker import api
from worker.actors.lifecycle import HANDLERS, Runner
from worker.db import names
from worker.errors import PermanentFailure
from worker.integrations.zoho.datacenters import checked_api_domain, data_center
from worker.integrations.zoho.tokens import ZohoTokenStore
from worker.sandbox import SandboxServer
from worker.sandbox.zoho import ZohoSandbox
from worker.settings import Settings
from worker.tenancy import belongs_to, require_owner
from worker.validation import PLATFORM_USER

from .test_zoho_actors import connect
from .zoho_support import claim_and_run, submit_and_run

A, B = "user_a", "user_b"
REFUSED = "does not exist or belongs to another user"


@pytest.fixture
def runner(db: Any, settings: Settings) -> Iterator[Runner]:
    import worker.actors  # noqa: F401 - registers the handlers

    run = Runner(db, settings, handlers=HANDLERS)
    yield run
    run.close()


def seed_user_b(db: Any) -> None:
    """One resource of user B in every collection a payload can name, plus an orphan post."""
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    db[names.SOCIAL_POSTS].insert_many(
        [
            {
                "post_id": post_id,
                **owner,
                "platforms": [{"platform": "facebook", "account_id": "1", "status": "scheduled"}],
                "content": {"message": "B's secret launch"},
                "schedule": {"scheduled": True, "publish_at": now},
            }
            for post_id, owner in (("post_b", {"user_id": B}), ("post_orphan", {}))
        ]
    )
    db[names.SOCIAL_ACCOUNTS].insert_one(
        {"user_id": B, "platform": "facebook", "account_id": "1", "status": "active",
         "credentials": {"access_token": "b-token"}}
    )  # fmt: skip
    db[names.EMAIL_CAMPAIGNS].insert_one(
        {"campaign_id": "ec_b", "user_id": B, "status": "sent", "zoho_campaign_key": "zk",
         "recipients": {"list_key": "l"}, "content": {"subject": "s", "from_email": "b@x.io"}}
    )  # fmt: skip
    db[names.CAMPAIGNS].insert_one(
        {"campaign_id": "camp_b", "user_id": B, "status": "draft",
         "brief": {"product": "B's secret product", "channels": ["facebook"]}}
    )  # fmt: skip
    db[names.WEBHOOKS].insert_one(
        {"webhook_id": "wh_b", "user_id": B, "url": "http://127.0.0.1:9/hook", "active": True,
         "events": ["*"], "secret": "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}
    )  # fmt: skip


def snapshot(db: Any) -> dict[str, list[dict[str, Any]]]:
    """Every document of user B and every document without an owner, per collection."""
    return {
        name: db[name].find(
            {"$or": [{"user_id": B}, {"user_id": {"$exists": False}}]}, sort=[("_id", 1)]
        )
        for name in names.SCHEMA_COLLECTIONS
        if name not in (names.SCHEDULED_JOBS, names.AUDIT_LOG)
    }


@pytest.mark.parametrize(
    ("job_type", "payload", "what"),
    [
        ("post_social", {"post_id": "post_b"}, "social post post_b"),
        ("post_social", {"post_id": "post_orphan"}, "social post post_orphan"),
        ("send_email", {"campaign_id": "ec_b"}, "email campaign ec_b"),
        ("sync_email_reports", {"campaign_id": "ec_b"}, "email campaign ec_b"),
        ("sync_analytics", {"campaign_id": "camp_b"}, "campaign camp_b"),
        ("run_campaign", {"campaign_id": "camp_b"}, "campaign 'camp_b'"),
        ("agent_task", {"campaign_id": "camp_b", "task_id": "t1"}, "campaign 'camp_b'"),
        (
            "deliver_webhook",
            {"webhook_id": "wh_b", "event": "job.completed", "event_id": "evt_1", "data": {}},
            "webhook wh_b",
        ),
    ],
)
def test_a_job_naming_another_users_resource_fails_and_changes_nothing(
    db: Any, runner: Runner, job_type: str, payload: dict[str, Any], what: str
) -> None:
    seed_user_b(db)
    before = snapshot(db)
    done = submit_and_run(runner, job_type, A, payload)
    assert done["status"] == "failed"
    assert done["error"].startswith(f"{what} {REFUSED}"), done["error"]
    assert done["attempts"] == 1  # permanent: no retry
    assert snapshot(db) == before
    assert db[names.SCHEDULED_JOBS].count_documents({"user_id": B}) == 0


@pytest.mark.parametrize(
    ("job_type", "payload"),
    [("sync_social_metrics", {"days": 90}), ("sync_email_reports", {}), ("noop", {})],
)
def test_jobs_without_a_resource_id_touch_only_their_users_documents(
    db: Any, runner: Runner, job_type: str, payload: dict[str, Any]
) -> None:
    seed_user_b(db)
    db[names.SOCIAL_POSTS].update_one(
        {"post_id": "post_b"},
        {"$set": {"platforms.0.status": "published", "platforms.0.platform_post_id": "9",
                  "platforms.0.published_at": dt.datetime.now(dt.UTC)}},
    )  # fmt: skip
    before = snapshot(db)
    done = submit_and_run(runner, job_type, A, payload)
    assert done["status"] in ("completed", "failed")
    assert snapshot(db) == before


def test_owner_check_is_exact() -> None:
    assert belongs_to({"user_id": "u1"}, "u1")
    for doc, user in [
        ({}, "u1"),
        ({"user_id": None}, "u1"),
        ({"user_id": ""}, ""),
        ({"user_id": "u1"}, None),
        ({"user_id": ["u1"]}, "u1"),
        ({"user_id": "u2"}, "u1"),
        (None, "u1"),
    ]:
        assert not belongs_to(doc, user)
        with pytest.raises(Exception, match=REFUSED):
            require_owner(doc, user, "thing")


def test_refresh_zoho_tokens_of_a_user_refreshes_only_that_user(
    db: Any, runner: Runner, zoho: tuple[SandboxServer, ZohoSandbox], settings: Settings
) -> None:
    server, state = zoho
    runner.settings = settings.model_copy(update=state.settings_overrides(server.url))
    connect(db, state, A)
    connect(db, state, B)
    b_before = db[names.ZOHO_TOKENS].find_one({"user_id": B})
    done = submit_and_run(runner, "refresh_zoho_tokens", A, {})
    assert done["result"] == {"refreshed": 1, "skipped": 0, "disconnected": 0, "deferred": 0}
    assert db[names.ZOHO_TOKENS].find_one({"user_id": B}) == b_before
    assert state.grants_for(db[names.ZOHO_TOKENS].find_one({"user_id": A})["refresh_token"]) == 1
    everyone = submit_and_run(runner, "refresh_zoho_tokens", PLATFORM_USER, {})
    assert everyone["result"]["refreshed"] == 1  # B's; A's is fresh now


def test_zoho_sync_touches_only_the_jobs_user(
    db: Any, runner: Runner, zoho: tuple[SandboxServer, ZohoSandbox], settings: Settings
) -> None:
    server, state = zoho
    runner.settings = settings.model_copy(update=state.settings_overrides(server.url))
    state.seed("Accounts", 3)
    connect(db, state, A)
    connect(db, state, B)
    before = snapshot(db)
    done = submit_and_run(runner, "zoho_sync", A, {"modules": ["Accounts"]})
    assert done["status"] == "completed", done.get("error")
    assert db[names.ZOHO_CRM_RECORDS].count_documents({"user_id": A}) == 3
    assert snapshot(db) == before


def test_idempotency_keys_are_per_user(db: Any) -> None:
    first = api.submit(db, job_type="noop", user_id=A, idempotency_key="k")
    other = api.submit(db, job_type="noop", user_id=B, idempotency_key="k")
    assert other["job_id"] != first["job_id"] and other["user_id"] == B
    again = api.submit(db, job_type="noop", user_id=B, idempotency_key="k")
    assert again["job_id"] == other["job_id"]
    assert db[names.SCHEDULED_JOBS].count_documents({}) == 2
    for _ in range(2):  # jobs without a key never collide on it
        api.submit(db, job_type="noop", user_id=A)


def test_platform_jobs_are_created_once(db: Any) -> None:
    assert api.ensure_platform_jobs(db) == ["platform:refresh_zoho_tokens"]
    assert api.ensure_platform_jobs(db) == []
    job = api.get(db, "platform:refresh_zoho_tokens")
    assert job["user_id"] == PLATFORM_USER and job["origin"] == "platform"
    assert job["schedule"]["cron_expression"] == "*/10 * * * *"


def test_a_hand_written_internal_job_is_refused(db: Any, runner: Runner) -> None:
    """An app writing ``deliver_webhook`` by hand (no platform origin) gets a failed job."""
    seed_user_b(db)
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    db[names.SCHEDULED_JOBS].insert_one(
        {"job_id": "forged", "user_id": B, "job_type": "deliver_webhook",
         "payload": {"webhook_id": "wh_b", "event": "x", "event_id": "e"},
         "schedule": {"execute_at": now}, "status": "pending", "attempts": 0, "epoch": 0}
    )  # fmt: skip
    done = claim_and_run(runner, "forged")
    assert done["status"] == "failed"
    assert "internal" in done["error"]


@pytest.mark.parametrize(
    ("dc", "stored", "used"),
    [
        ("com", None, "https://www.zohoapis.com"),
        ("com", "https://www.zohoapis.com", "https://www.zohoapis.com"),
        ("eu", "https://sandbox.zohoapis.eu/", "https://sandbox.zohoapis.eu"),
        ("ca", "https://developer.zohoapis.ca", "https://developer.zohoapis.ca"),
        ("com", "https://www.zohoapis.eu", None),  # another data center's
        ("com", "http://www.zohoapis.com", None),
        ("com", "https://www.zohoapis.com:8443", None),
        ("com", "https://www.zohoapis.com.evil.example", None),
        ("com", "https://user@www.zohoapis.com", None),
        ("com", "https://www.zohoapis.com/crm", None),
        ("com", "http://127.0.0.1:8080", None),
        ("com", ["https://www.zohoapis.com"], None),
    ],
)
def test_api_domain_must_be_one_of_the_data_centers(dc: str, stored: Any, used: str | None):
    center = data_center(dc)
    if used is not None:
        assert checked_api_domain(center, stored) == used
    else:
        with pytest.raises(PermanentFailure, match="is not an API domain of data center"):
            checked_api_domain(center, stored)


def test_a_tampered_token_document_does_not_send_the_token_elsewhere(
    db: Any, settings: Settings, zoho: tuple[SandboxServer, ZohoSandbox]
) -> None:
    server, state = zoho
    connect(db, state, A, expired=False)
    db[names.ZOHO_TOKENS].update_one({"user_id": A}, {"$set": {"api_domain": "http://127.0.0.1:9"}})
    store = ZohoTokenStore(db, settings, A, clock=lambda: dt.datetime.now(dt.UTC))
    with pytest.raises(PermanentFailure, match="refusing to send the token there"):
        store.api_domain()
    overridden = settings.model_copy(update=state.settings_overrides(server.url))
    loopback = ZohoTokenStore(db, overridden, A, clock=lambda: dt.datetime.now(dt.UTC))
    assert loopback.api_domain() == server.url  # dev and tests: only by explicit setting


def test_one_users_brief_never_reaches_another_users_agents(
    db: Any, tmp_path: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """User A's secret campaign text: not in B's LLM requests, tasks, drafts or any memory B's
    agents can read (user B's memory and the shared collections)."""
    from worker.agents.offline import OfflineLLM

    from .test_agents_campaign import drain, seed

    secret = "Project Nightjar 7Q"
    requests: list[tuple[str, str]] = []  # (user, everything the model would read)

    def recording(self: OfflineLLM, request: Any) -> Any:
        requests.append((current[0], request.instructions + request.prompt + repr(request.context)))
        return original(self, request)

    original = OfflineLLM.complete
    monkeypatch.setattr(OfflineLLM, "complete", recording)
    agent_settings = Settings(
        OPENAI_API_KEY=None, mongodb_db=db.name, embedded_path=tmp_path / "mongo",
        approval_steps=[], embedding_dimensions=128, lease_seconds=30,
    )  # fmt: skip
    runner = Runner(db, agent_settings, clock=clock)
    try:
        current = [A]
        seed(db, clock, campaign_id="camp_a", user=A, objective=f"launch {secret} quietly",
             product=f"{secret} boots")  # fmt: skip
        drain(db, runner, clock)
        assert db.campaigns.find_one({"campaign_id": "camp_a"})["status"] == "completed"
        assert any(secret in text for user, text in requests if user == A)
        current = [B]
        seed(db, clock, campaign_id="camp_b", user=B, objective="launch boots",
             product="Trail boots")  # fmt: skip
        drain(db, runner, clock)
    finally:
        runner.close()
    assert db.campaigns.find_one({"campaign_id": "camp_b"})["status"] == "completed"
    seen_by_b = [text for user, text in requests if user == B]
    assert seen_by_b and not [text for text in seen_by_b if secret in text]
    for name in (names.AGENT_TASKS, names.CONTENT_LIBRARY, names.SOCIAL_POSTS,
                 names.EMAIL_CAMPAIGNS, names.USER_MEMORY, names.AGENT_EVENTS):  # fmt: skip
        documents = repr(db[name].find({"user_id": B})) + repr(
            db[name].find({"campaign_id": "camp_b"})
        )
        assert secret not in documents, name
    for shared in (names.AGENT_MEMORY, names.GLOBAL_MEMORY):
        assert secret not in repr(db[shared].find({})), shared


@pytest.mark.parametrize(
    "module",
    ["worker.tenancy", "worker.validation", "worker.api", "worker.jobtypes", "worker.agents.brief",
     "worker.integrations.zoho.datacenters", "worker.agents.memory", "worker.agents.templates"],
)  # fmt: skip
def test_public_surfaces_name_only_what_exists(module: str) -> None:
    import importlib

    loaded = importlib.import_module(module)
    assert [name for name in loaded.__all__ if not hasattr(loaded, name)] == []


def test_unfinished_internal_jobs_from_before_the_rule_are_adopted_once(db: Any) -> None:
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    legacy = {
        "user_id": A,
        "job_type": "deliver_webhook",
        "schedule": {"execute_at": now},
        "payload": {"webhook_id": "w", "event": "e", "event_id": "x"},
        "attempts": 0,
    }
    db[names.SCHEDULED_JOBS].insert_many(
        [
            {**legacy, "job_id": "queued", "status": "pending"},
            {**legacy, "job_id": "done", "status": "completed"},
            {**legacy, "job_id": "noop", "job_type": "noop", "payload": {}, "status": "pending"},
        ]
    )
    assert api.adopt_legacy_internal_jobs(db, now=now) == 1
    assert api.get(db, "queued")["origin"] == "platform"
    assert "origin" not in api.get(db, "done") and "origin" not in api.get(db, "noop")
    assert api.adopt_legacy_internal_jobs(db, now=now) == 0
