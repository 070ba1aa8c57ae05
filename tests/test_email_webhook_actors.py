"""send_email exactly once (crash between Zoho and the record), reports, webhook deliveries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

import worker.actors.email as email_actors
from worker.actors.lifecycle import HANDLERS, Runner
from worker.api import submit
from worker.db import names
from worker.integrations.webhooks import generate_secret
from worker.sandbox import Faults, SandboxServer
from worker.sandbox.zoho import ZohoSandbox
from worker.settings import Settings
from worker.webhooks import emit_event, job_event_listener

from .test_webhooks_actor import allow_port
from .test_webhooks_integration import Receiver
from .test_zoho_actors import USER, connect
from .zoho_support import Killed, claim_and_run, submit_and_run


@pytest.fixture
def zsettings(settings: Settings, zoho: tuple[SandboxServer, ZohoSandbox]) -> Settings:
    server, state = zoho
    return settings.model_copy(
        update={
            **state.settings_overrides(server.url),
            "http_timeout_seconds": 1.0, "lease_seconds": 30.0, "webhook_allow_private": True,
            "webhook_timeout_seconds": 0.5, "webhook_deactivate_after": 3,
        }
    )  # fmt: skip


@pytest.fixture
def runner(db: Any, zsettings: Settings) -> Iterator[Runner]:
    import worker.actors  # noqa: F401 - registers the handlers

    run = Runner(db, zsettings, handlers=HANDLERS)
    yield run
    run.close()


def email_doc(db: Any, state: ZohoSandbox, campaign_id: str = "ec_1", **extra: Any) -> None:
    now = dt.datetime.now(dt.UTC)
    db[names.EMAIL_CAMPAIGNS].insert_one(
        {
            "campaign_id": campaign_id, "user_id": USER, "name": "Winter launch",
            "type": "one_time", "status": "draft",
            "recipients": {"list_key": state.add_mailing_list("Customers", 120), "count": 120},
            "content": {"subject": "Hello", "from_email": "news@example.com",
                        "from_name": "News", "content_url": "https://example.com/m.html"},
            "schedule": {"scheduled": False, "send_at": None},
            "created_at": now, "updated_at": now, **extra,
        }
    )  # fmt: skip


def test_send_then_duplicate_job_sends_nothing(
    db: Any, runner: Runner, zoho: tuple[SandboxServer, ZohoSandbox]
) -> None:
    _, state = zoho
    connect(db, state)
    email_doc(db, state)
    first = submit_and_run(runner, "send_email", USER, {"campaign_id": "ec_1"})
    assert first["status"] == "completed", first.get("error")
    doc = db[names.EMAIL_CAMPAIGNS].find_one({"campaign_id": "ec_1"})
    assert doc["status"] == "sent" and doc["sent_at"] and doc["zoho_campaign_key"]
    assert state.sends_of(doc["zoho_campaign_key"]) == 1
    again = submit_and_run(runner, "send_email", USER, {"campaign_id": "ec_1"})
    assert again["result"]["already"] is True
    assert len(state.sends) == 1 and len(state.campaigns) == 1


def test_crash_between_zoho_accepting_and_the_record(
    db: Any, runner: Runner, zoho: tuple[SandboxServer, ZohoSandbox],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    _, state = zoho
    connect(db, state)
    email_doc(db, state)
    real = email_actors._record_sent

    def die(*args: Any, **kwargs: Any) -> None:
        raise Killed

    monkeypatch.setattr(email_actors, "_record_sent", die)
    job = submit(db, job_type="send_email", user_id=USER, payload={"campaign_id": "ec_1"})
    with pytest.raises(Killed):
        claim_and_run(runner, job["job_id"])
    assert len(state.sends) == 1
    assert db[names.EMAIL_CAMPAIGNS].find_one({"campaign_id": "ec_1"})["status"] == "draft"
    monkeypatch.setattr(email_actors, "_record_sent", real)
    db[names.SCHEDULED_JOBS].update_one({"job_id": job["job_id"]}, {"$set": {"status": "pending"}})
    done = claim_and_run(runner, job["job_id"])
    assert done["status"] == "completed", done.get("error")
    assert len(state.sends) == 1 and len(state.campaigns) == 1
    assert db[names.EMAIL_CAMPAIGNS].find_one({"campaign_id": "ec_1"})["status"] == "sent"


def test_lost_answer_to_create_is_reconciled_by_marker(
    db: Any, runner: Runner, zoho: tuple[SandboxServer, ZohoSandbox]
) -> None:
    server, state = zoho
    connect(db, state, expired=False)
    email_doc(db, state)
    server.faults = Faults(after_effect_timeout=1.0, timeout_seconds=1.5)
    job = submit(db, job_type="send_email", user_id=USER, payload={"campaign_id": "ec_1"})
    first = claim_and_run(runner, job["job_id"])
    assert first["status"] == "pending" and "will reconcile" in first["error"]
    assert len(state.campaigns) == 1 and state.sends == []
    server.faults = Faults()
    done = claim_and_run(runner, job["job_id"])
    assert done["status"] == "completed", done.get("error")
    assert len(state.campaigns) == 1 and len(state.sends) == 1


def test_future_send_is_scheduled_and_reports_flow_back(
    db: Any, runner: Runner, zoho: tuple[SandboxServer, ZohoSandbox]
) -> None:
    _, state = zoho
    connect(db, state)
    send_at = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    email_doc(db, state, schedule={"scheduled": True, "send_at": send_at})
    done = submit_and_run(runner, "send_email", USER, {"campaign_id": "ec_1"})
    assert done["result"]["status"] == "scheduled"
    assert state.sends[0]["scheduled_for"] is not None
    early = submit_and_run(runner, "sync_email_reports", USER, {})
    assert early["result"] == {"updated": 0, "not_ready": 1, "failed": 0}
    state.advance(2 * 86400)
    synced = submit_and_run(runner, "sync_email_reports", USER, {"campaign_id": "ec_1"})
    assert synced["result"] == {"updated": 1, "not_ready": 0, "failed": 0}
    db[names.EMAIL_CAMPAIGNS].insert_one(
        {"campaign_id": "ec_gone", "user_id": USER, "status": "sent",
         "zoho_campaign_key": "deleted-in-zoho"}
    )  # fmt: skip
    mixed = submit_and_run(runner, "sync_email_reports", USER, {})
    assert mixed["result"] == {"updated": 1, "not_ready": 0, "failed": 1}
    doc = db[names.EMAIL_CAMPAIGNS].find_one({"campaign_id": "ec_1"})
    assert doc["status"] == "sent"
    assert (doc["analytics"]["sent"], doc["analytics"]["delivered"]) == (120, 114)
    assert doc["analytics"]["open_rate"] == 40.0 and doc["analytics"]["last_synced"]


def webhook(db: Any, url: str, events: list[str], secret: str, hook_id: str = "wh_1") -> None:
    db[names.WEBHOOKS].insert_one(
        {"webhook_id": hook_id, "user_id": USER, "name": "ops", "url": url, "events": events,
         "secret": secret, "active": True, "created_at": dt.datetime.now(dt.UTC)}
    )  # fmt: skip


def test_job_events_are_delivered_signed_and_retried(db: Any, runner: Runner) -> None:
    secret = generate_secret()
    receiver = Receiver(secret, [503])
    with SandboxServer(receiver.router) as server:
        allow_port(runner, server.url)
        webhook(db, f"{server.url}/hook", ["job.*"], secret)
        webhook(db, f"{server.url}/hook", ["email.sent"], secret, hook_id="wh_other")
        listener = job_event_listener(db)
        job = {"job_id": "j1", "user_id": USER, "job_type": "noop", "run_at": "t"}
        listener(job, "completed", {"ok": True}, None)
        listener(job, "completed", {"ok": True}, None)  # twice: still one delivery job
        (delivery,) = db[names.SCHEDULED_JOBS].find({"job_type": "deliver_webhook"})
        first = claim_and_run(runner, delivery["job_id"])
        assert first["status"] == "pending" and "HTTP 503" in first["error"]
        second = claim_and_run(runner, delivery["job_id"])
    assert second["status"] == "completed"
    assert [ok for _, _, ok in receiver.received] == [True, True]
    (one, two) = receiver.received
    assert one[1] == two[1] and one[0]["webhook-id"] == two[0]["webhook-id"]
    hook = db[names.WEBHOOKS].find_one({"webhook_id": "wh_1"})
    assert hook["last_triggered"] and hook["consecutive_failures"] == 0
    assert secret not in str(second) and secret not in str(list(db[names.AUDIT_LOG].find()))


def test_repeated_failures_deactivate_the_webhook(db: Any, runner: Runner) -> None:
    receiver = Receiver(generate_secret(), [500] * 10)
    with SandboxServer(receiver.router) as server:
        allow_port(runner, server.url)
        webhook(db, f"{server.url}/hook", ["*"], receiver.secret)
        (job_id,) = emit_event(db, USER, "post.published", {"post_id": "p1"})
        statuses = [claim_and_run(runner, job_id)["status"] for _ in range(3)]
    assert statuses == ["pending", "pending", "failed"]
    hook = db[names.WEBHOOKS].find_one({"webhook_id": "wh_1"})
    assert hook["active"] is False and "3 consecutive" in hook["deactivated_reason"]
    assert db[names.AUDIT_LOG].count_documents({"action": "webhook_deactivated"}) == 1
    assert emit_event(db, USER, "post.published", {"post_id": "p2"}) == []


def test_gone_deactivates_at_once(db: Any, runner: Runner) -> None:
    receiver = Receiver(generate_secret(), [410])
    with SandboxServer(receiver.router) as server:
        allow_port(runner, server.url)
        webhook(db, f"{server.url}/hook", ["email.sent"], receiver.secret)
        (job_id,) = emit_event(db, USER, "email.sent", {"campaign_id": "c"})
        assert claim_and_run(runner, job_id)["status"] == "failed"
    assert db[names.WEBHOOKS].find_one({"webhook_id": "wh_1"})["active"] is False


def test_private_target_refused_unless_allowed(db: Any, runner: Runner) -> None:
    runner.settings = runner.settings.model_copy(update={"webhook_allow_private": False})
    webhook(db, "http://127.0.0.1/hook", ["*"], generate_secret())
    (job_id,) = emit_event(db, USER, "job.failed", {"job_id": "x"})
    done = claim_and_run(runner, job_id)
    assert done["status"] == "failed" and "non-public address" in done["error"]
    assert db[names.AUDIT_LOG].count_documents({"action": "webhook_target_refused"}) == 1
