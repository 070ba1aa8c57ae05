"""Zoho actors on the embedded engine and the sandbox: token lease, broken connection, CRM sync."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

import worker.actors.zoho as zoho_actors
from worker.actors.lifecycle import HANDLERS, Runner
from worker.api import submit
from worker.db import names
from worker.errors import RetryLater
from worker.integrations.zoho.tokens import ZohoDisconnected, ZohoTokenStore
from worker.sandbox import SandboxServer
from worker.sandbox.zoho import ZohoSandbox
from worker.settings import Settings
from worker.validation import PLATFORM_USER

from .zoho_support import Killed, claim_and_run, submit_and_run

USER = "user_z"


@pytest.fixture
def zsettings(settings: Settings, zoho: tuple[SandboxServer, ZohoSandbox]) -> Settings:
    server, state = zoho
    return settings.model_copy(
        update={
            **state.settings_overrides(server.url),
            "http_timeout_seconds": 5.0,
            "lease_seconds": 30.0,
        }
    )


@pytest.fixture
def runner(db: Any, zsettings: Settings) -> Iterator[Runner]:
    import worker.actors  # noqa: F401 - registers the handlers

    run = Runner(db, zsettings, handlers=HANDLERS)
    yield run
    run.close()


def connect(db: Any, state: ZohoSandbox, user: str = USER, *, expired: bool = True) -> str:
    """Store a Zoho connection as the upstream app does after consent; returns the refresh token."""
    refresh_token = state.add_refresh_token(user)
    now = dt.datetime.now(dt.UTC)
    db[names.ZOHO_TOKENS].insert_one(
        {
            "user_id": user, "refresh_token": refresh_token,
            "access_token": "1000.expired.token" if expired else state.issue_access_token(),
            "token_type": "Bearer", "expires_in": 3600, "scope": "ZohoCRM.modules.ALL",
            "expires_at": now - dt.timedelta(minutes=1) if expired else now + dt.timedelta(hours=1),
            "data_center": "com", "created_at": now, "updated_at": now,
        }
    )  # fmt: skip
    db[names.SETTINGS].update_one(
        {"user_id": user}, {"$set": {"integrations.zoho_connected": True}}, upsert=True
    )
    return refresh_token


def test_twenty_concurrent_jobs_cause_one_refresh(
    db: Any, runner: Runner, zoho: tuple[SandboxServer, ZohoSandbox]
) -> None:
    server, state = zoho
    state.seed("Accounts", 3)
    refresh_token = connect(db, state)
    jobs = [
        submit(db, job_type="zoho_sync", user_id=USER, payload={"modules": ["Accounts"]})
        for _ in range(20)
    ]
    done: list[dict[str, Any]] = []
    threads = [
        threading.Thread(target=lambda j=j: done.append(claim_and_run(runner, j["job_id"])))
        for j in jobs
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [d["status"] for d in done] == ["completed"] * 20, {d.get("error") for d in done}
    assert state.grants_for(refresh_token) == 1
    token = db[names.ZOHO_TOKENS].find_one({"user_id": USER})
    assert token["access_token"] != "1000.expired.token" and "refresh_lease" not in token
    assert token["api_domain"] == server.url
    assert db[names.ZOHO_CRM_RECORDS].count_documents({"user_id": USER}) == 3


def test_revoked_refresh_token_breaks_the_connection(
    db: Any, runner: Runner, zoho: tuple[SandboxServer, ZohoSandbox]
) -> None:
    server, state = zoho
    refresh_token = connect(db, state)
    state.revoke(refresh_token)
    # Another app may store integrations: null (MongoDB refuses integrations.x under it).
    db[names.SETTINGS].update_one({"user_id": USER}, {"$set": {"integrations": None}})
    first = submit_and_run(runner, "zoho_sync", USER, {"modules": ["Contacts"]})
    assert first["status"] == "failed" and "reconnect Zoho" in first["error"]
    assert refresh_token not in first["error"]
    settings_doc = db[names.SETTINGS].find_one({"user_id": USER})
    assert settings_doc["integrations"]["zoho_connected"] is False
    (entry,) = db[names.AUDIT_LOG].find({"action": "zoho_disconnected"})
    assert entry["user_id"] == USER and refresh_token not in str(entry)
    token_calls = sum(1 for r in server.requests if r.path == "/oauth/v2/token")
    second = submit_and_run(runner, "send_email", USER, {"campaign_id": "whatever"})
    assert second["status"] == "failed"
    assert sum(1 for r in server.requests if r.path == "/oauth/v2/token") == token_calls
    # Reconnecting (a new refresh token) heals the connection without any manual flag.
    db[names.ZOHO_TOKENS].delete_many({"user_id": USER})
    connect(db, state)
    third = submit_and_run(runner, "zoho_sync", USER, {"modules": ["Contacts"]})
    assert third["status"] == "completed"


def test_refresh_zoho_tokens_refreshes_only_expiring(
    db: Any, runner: Runner, zoho: tuple[SandboxServer, ZohoSandbox]
) -> None:
    _, state = zoho
    soon = connect(db, state, "u_soon")
    fresh = connect(db, state, "u_fresh", expired=False)
    gone = connect(db, state, "u_gone")
    state.revoke(gone)
    done = submit_and_run(runner, "refresh_zoho_tokens", PLATFORM_USER, {"margin_seconds": 900})
    assert done["status"] == "completed"
    assert done["result"] == {"refreshed": 1, "skipped": 0, "disconnected": 1, "deferred": 0}
    assert (state.grants_for(soon), state.grants_for(fresh)) == (1, 0)


def test_refresh_zoho_tokens_defers_a_throttled_user(
    db: Any, runner: Runner, zoho: tuple[SandboxServer, ZohoSandbox]
) -> None:
    _, state = zoho
    state.throttle_limit = 0  # every grant answers "Access Denied, too many requests"
    connect(db, state, "u_throttled")
    done = submit_and_run(runner, "refresh_zoho_tokens", PLATFORM_USER, {})
    assert done["result"] == {"refreshed": 0, "skipped": 0, "disconnected": 0, "deferred": 1}
    token = db[names.ZOHO_TOKENS].find_one({"user_id": "u_throttled"})
    assert "refresh_lease" not in token and "refresh_failed" not in token


def test_data_center_picks_the_accounts_server(db: Any, settings: Settings) -> None:
    seen: list[str] = []

    def accounts(request: httpx2.Request) -> httpx2.Response:
        seen.append(str(request.url))
        return httpx2.Response(200, json={"access_token": "t", "expires_in": 3600})

    now = dt.datetime.now(dt.UTC)
    for user, dc in (("u_eu", "eu"), ("u_ca", "ca"), ("u_au", "com.au")):
        db[names.ZOHO_TOKENS].insert_one(
            {"user_id": user, "refresh_token": "r", "data_center": dc, "expires_at": now}
        )
        store = ZohoTokenStore(
            db, settings, user, clock=lambda: now,
            http=httpx2.Client(transport=httpx2.MockTransport(accounts)),
        )  # fmt: skip
        store.access_token()
        assert store.api_domain() == f"https://www.zohoapis.{dc}"
    assert seen == [
        "https://accounts.zoho.eu/oauth/v2/token",
        "https://accounts.zohocloud.ca/oauth/v2/token",
        "https://accounts.zoho.com.au/oauth/v2/token",
    ]


def test_waiting_for_a_stuck_refresher_is_retry_later(
    db: Any, zsettings: Settings, zoho: tuple[SandboxServer, ZohoSandbox]
) -> None:
    _, state = zoho
    connect(db, state)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    db[names.ZOHO_TOKENS].update_one(
        {"user_id": USER}, {"$set": {"refresh_lease": {"owner": "other", "until": until}}}
    )
    store = ZohoTokenStore(
        db, zsettings, USER, clock=lambda: dt.datetime.now(dt.UTC), wait_seconds=0.2
    )
    with pytest.raises(RetryLater):
        store.access_token()
    db[names.ZOHO_TOKENS].update_one(
        {"user_id": USER},
        {"$set": {"refresh_lease.until": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)}},
    )
    assert store.access_token().startswith("1000.")  # an expired lease is taken over


def test_not_connected_is_a_clear_failure(db: Any, zsettings: Settings) -> None:
    store = ZohoTokenStore(db, zsettings, "nobody", clock=lambda: dt.datetime.now(dt.UTC))
    with pytest.raises(ZohoDisconnected, match="not connected"):
        store.access_token()


def test_full_then_incremental_sync(
    db: Any, runner: Runner, zoho: tuple[SandboxServer, ZohoSandbox]
) -> None:
    _, state = zoho
    contacts = state.seed("Contacts", 5000)
    deals = state.seed("Deals", 3000)
    connect(db, state)
    first = submit_and_run(runner, "zoho_sync", USER, {"modules": ["Contacts", "Deals"]})
    assert first["status"] == "completed", first.get("error")
    assert first["result"]["modules"] == {
        "Contacts": {"mode": "full", "fetched": 5000},
        "Deals": {"mode": "full", "fetched": 3000},
    }
    assert first["result"]["stored"] == {"Contacts": 5000, "Deals": 3000}
    served = dict(state.records_served)
    state.modify("Contacts", contacts[100:130])
    state.modify("Deals", deals[2900:2920])
    second = submit_and_run(runner, "zoho_sync", USER, {"modules": ["Contacts", "Deals"]})
    assert second["result"]["modules"] == {
        "Contacts": {"mode": "incremental", "fetched": 30},
        "Deals": {"mode": "incremental", "fetched": 20},
    }
    assert state.records_served["Contacts"] - served["Contacts"] == 30
    assert state.records_served["Deals"] - served["Deals"] == 20
    changed = db[names.ZOHO_CRM_RECORDS].find_one(
        {"user_id": USER, "module": "Contacts", "record_id": contacts[100]}
    )
    assert changed["data"]["Modified_Time"] != changed["created_at"].isoformat()
    assert db[names.ZOHO_CRM_RECORDS].count_documents({"user_id": USER}) == 8000


def test_killed_sync_resumes_from_its_checkpoint(
    db: Any, runner: Runner, zoho: tuple[SandboxServer, ZohoSandbox],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    _, state = zoho
    state.seed("Contacts", 2600)
    connect(db, state)
    real = zoho_actors.upsert_records
    calls = {"n": 0}

    def dying(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 12:  # page 12: past 2,000, so the checkpoint holds a page_token
            raise Killed
        real(*args, **kwargs)

    monkeypatch.setattr(zoho_actors, "upsert_records", dying)
    job = submit(db, job_type="zoho_sync", user_id=USER, payload={"modules": ["Contacts"]})
    with pytest.raises(Killed):
        claim_and_run(runner, job["job_id"])
    checkpoint = db[names.ZOHO_TOKENS].find_one({"user_id": USER})["crm_sync"]["Contacts"]
    assert checkpoint["pass"]["page"] == 12 and checkpoint["pass"]["page_token"]
    assert checkpoint["pass"]["fetched"] == 2200
    monkeypatch.setattr(zoho_actors, "upsert_records", real)
    db[names.SCHEDULED_JOBS].update_one({"job_id": job["job_id"]}, {"$set": {"status": "pending"}})
    done = claim_and_run(runner, job["job_id"])
    assert done["status"] == "completed"
    assert done["result"]["modules"]["Contacts"] == {"mode": "full", "fetched": 2600}
    assert state.records_served["Contacts"] == 2600 + 200  # only the killed page came again
    ids = [d["record_id"] for d in db[names.ZOHO_CRM_RECORDS].find({"user_id": USER})]
    assert len(ids) == len(set(ids)) == 2600


def test_sandbox_connection_document_works_end_to_end(
    db: Any, runner: Runner, zoho: tuple[SandboxServer, ZohoSandbox]
) -> None:
    server, state = zoho
    assert runner.settings.model_dump(include=set(state.settings_overrides(server.url))) == (
        state.settings_overrides(server.url)
    )
    state.seed("Leads", 2)
    db[names.ZOHO_TOKENS].insert_one(state.connection_document("u_dev"))
    done = submit_and_run(runner, "zoho_sync", "u_dev", {"modules": ["Leads"]})
    assert done["result"]["stored"] == {"Leads": 2}
