"""Console test data and signed-in clients, shared by the API, schemathesis and browser tests."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from worker import api
from worker.console.auth import hash_password, hash_token
from worker.db.engine import Database
from worker.settings import Settings

# scrypt is slow on purpose: hash once per test session.
PASSWORDS = {"ann": "ann-operator-pw", "vic": "vic-viewer-pw"}
USERS = {
    "ann": {"hash": hash_password(PASSWORDS["ann"]), "role": "operator"},
    "vic": {"hash": hash_password(PASSWORDS["vic"]), "role": "viewer"},
}
OPERATOR_TOKEN, VIEWER_TOKEN = "mmw_test_operator_token", "mmw_test_viewer_token"
TOKENS = {
    hash_token(OPERATOR_TOKEN): {"name": "ci-bot", "role": "operator"},
    hash_token(VIEWER_TOKEN): {"name": "dash", "role": "viewer"},
}


def console_settings(settings: Settings | None = None, **extra: Any) -> Settings:
    base = settings or Settings()
    return base.model_copy(
        update={
            "web_secret_key": "test-secret-" + "k" * 32,
            "web_users": USERS,
            "web_tokens": TOKENS,
            **extra,
        }
    )


@dataclass
class Seeded:
    failed: list[str]
    pending: str
    recurring: str
    approval: str
    post: str
    email: str


def failed_job(db: Database, now: dt.datetime, job_id: str, job_type: str = "noop") -> str:
    """A job that ran once and failed, with its history entry (as the lifecycle writes it)."""
    payload = {"post_id": "p_x"} if job_type == "post_social" else {}
    api.submit(
        db, job_type=job_type, user_id="u1", payload=payload, execute_at=now, job_id=job_id, now=now
    )
    run_key = f"{job_id}@{now.strftime('%Y-%m-%dT%H:%M:%S.000Z')}"
    db.scheduled_jobs.update_one(
        {"job_id": job_id},
        {
            "$set": {
                "status": "failed",
                "attempts": 3,
                "error": "boom: the sandbox said no",
                "finished_at": now,
                "history": [
                    {
                        "run_key": run_key,
                        "run_at": now,
                        "started_at": now,
                        "finished_at": now,
                        "status": "failed",
                        "attempts": 3,
                        "duration_ms": 12,
                        "error": "boom: the sandbox said no",
                    }
                ],
            }
        },
    )
    db.audit_log.insert_one(
        {
            "user_id": "u1",
            "action": "job_failed",
            "resource_type": "scheduled_job",
            "resource_id": job_id,
            "details": {"error": "boom"},
            "user_agent": "mmw-worker",
            "timestamp": now,
        }
    )
    return job_id


def seed(db: Database, now: dt.datetime) -> Seeded:
    """Three failed jobs, a pending one, a recurring one in Berlin, a pending approval, a post
    with a needs_review target and an email send that was never confirmed."""
    failed = [failed_job(db, now - dt.timedelta(minutes=i), f"job_failed_{i}") for i in range(3)]
    pending = api.submit(
        db,
        job_type="noop",
        user_id="u2",
        execute_at=now + dt.timedelta(hours=1),
        job_id="job_pending",
        now=now,
    )["job_id"]
    recurring = api.submit(
        db,
        job_type="sync_analytics",
        user_id="u2",
        cron="0 9 * * *",
        timezone="Europe/Berlin",
        job_id="job_daily",
        now=now,
    )["job_id"]
    db.approval_requests.insert_one(
        {
            "request_id": "apr_1",
            "user_id": "u1",
            "campaign_id": "cmp_1",
            "request_type": "campaign_plan",
            "content": {"plan": "four weeks of posts"},
            "status": "pending",
            "requested_by": "orchestrator",
            "created_at": now,
            "expires_at": now + dt.timedelta(days=3),
            "resume": {"job_type": "run_campaign", "payload": {"campaign_id": "cmp_1"}},
        }
    )
    started = now - dt.timedelta(hours=1)
    db.social_posts.insert_one(
        {
            "post_id": "post_1",
            "user_id": "u1",
            "content": {"message": "Spring launch!"},
            "platforms": [
                {
                    "platform": "facebook",
                    "account_id": "fb1",
                    "status": "published",
                    "platform_post_id": "fb_9",
                },
                {
                    "platform": "twitter",
                    "account_id": "tw1",
                    "status": "needs_review",
                    "error": "lookup failed 3 times: 503",
                    "attempt": {
                        "run_key": "r1",
                        "intent_id": "i1",
                        "number": 1,
                        "started_at": started,
                        "lookups": 3,
                        "outcome": "unknown",
                    },
                },
            ],
            "created_at": started,
        }
    )
    db.email_campaigns.insert_one(
        {
            "campaign_id": "ec_1",
            "user_id": "u1",
            "name": "Newsletter",
            "status": "draft",
            "send_intent": {
                "stage": "created",
                "marker": "[mmw:abc]",
                "run_key": "r2",
                "at": started,
            },
            "zoho_campaign_key": "zk_1",
            "created_at": started,
        }
    )
    return Seeded(failed, pending, recurring, "apr_1", "post_1", "ec_1")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def sign_in(client: Any, name: str) -> str:
    """Sign ``client`` in through the form; returns the session's CSRF token."""
    form = client.get("/login")
    response = client.post(
        "/login",
        data={
            "csrf_token": csrf_of(form.text),
            "username": name,
            "password": PASSWORDS[name],
            "next": "/",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)
