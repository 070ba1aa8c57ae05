"""The console's JSON API and pages: every endpoint and action, and access control."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

from tests.web_support import (
    OPERATOR_TOKEN,
    USERS,
    VIEWER_TOKEN,
    console_settings,
    seed,
    sign_in,
)
from worker import api
from worker.console import queries
from worker.web.app import create_app, duration

OP = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
VIEW = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
REASON = {"reason": "checked the dashboard"}


@pytest.fixture
def app(db, clock):
    return create_app(db, console_settings(), clock=clock)


@pytest.fixture
def seeded(db, clock):
    return seed(db, clock.now)


@pytest.fixture
def client(app):
    return TestClient(app, base_url="http://console.test")


def _routes(app, method: str, schema_only: bool | None = None):
    for route in app.routes:
        in_schema = getattr(route, "include_in_schema", False)
        wanted = schema_only is None or in_schema == schema_only
        if method in getattr(route, "methods", ()) and route.path != "/healthz" and wanted:
            yield re.sub(r"\{[^}]+\}", "x", route.path)


# ----------------------------------------------------------------------------- access control
def test_health_is_the_only_anonymous_endpoint(app, client):
    assert client.get("/healthz").json() == {"status": "ok"}
    for path in _routes(app, "GET", schema_only=True):
        assert client.get(path).status_code == 401, path
    for path in _routes(app, "POST", schema_only=True):
        assert client.post(path, json=REASON).status_code == 401, path
    pages = [p for p in _routes(app, "GET", schema_only=False) if p.startswith(("/jobs", "/f"))]
    for path in [*pages, "/", "/pauses", "/schedules", "/approvals", "/review"]:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
    for path in _routes(app, "POST", schema_only=False):
        if path not in ("/login",):
            response = client.post(path, data=REASON, follow_redirects=False)
            assert response.status_code == 303 and "/login" in response.headers["location"]
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_sign_in_sets_a_secure_session_cookie_and_refuses_wrong_passwords(db, clock):
    app = create_app(db, console_settings(web_secure_cookies=True), clock=clock)
    client = TestClient(app, base_url="https://console.test")
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    wrong = client.post("/login", data={"csrf_token": token, "username": "ann", "password": "x"})
    assert wrong.status_code == 401 and "wrong name or password" in wrong.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', wrong.text).group(1)
    ok = client.post(
        "/login",
        data={"csrf_token": token, "username": "ann", "password": "ann-operator-pw"},
        follow_redirects=False,
    )
    cookie = ok.headers["set-cookie"]
    assert "mmw_session=" in cookie and "HttpOnly" in cookie and "Secure" in cookie
    assert "samesite=lax" in cookie.lower()
    assert client.get("/api/v1/me").json() == {"name": "ann", "role": "operator", "may_act": True}


def test_sign_in_needs_the_form_csrf_token(client):
    client.get("/login")
    response = client.post(
        "/login",
        data={"csrf_token": "forged", "username": "ann", "password": "ann-operator-pw"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert client.get("/api/v1/me").status_code == 401


def test_a_session_expires_and_follows_account_changes(db, clock, client):
    sign_in(client, "ann")
    assert client.get("/api/v1/me").status_code == 200
    clock.advance(hours=13)
    assert client.get("/api/v1/me").status_code == 401
    clock.advance(hours=-13)
    assert client.get("/api/v1/me").status_code == 200
    users = {**USERS, "ann": {**USERS["ann"], "role": "viewer"}}
    demoted = TestClient(
        create_app(db, console_settings(web_users=users), clock=clock),
        base_url="http://console.test",
        cookies=dict(client.cookies),
    )
    assert demoted.get("/api/v1/me").status_code == 401  # the cookie says operator: refused


def test_viewer_cannot_act(client, seeded, db):
    job_id = seeded.failed[0]
    assert client.get("/api/v1/jobs", headers=VIEW).status_code == 200
    response = client.post(f"/api/v1/jobs/{job_id}/retry", json=REASON, headers=VIEW)
    assert response.status_code == 403 and "viewer" in response.json()["detail"]
    csrf = sign_in(client, "vic")
    page = client.get(f"/jobs/{job_id}").text
    assert "Retry now" not in page  # no action buttons for a viewer
    form = client.post(f"/jobs/{job_id}/retry", data={**REASON, "csrf_token": csrf})
    assert form.status_code == 403
    api_post = client.post(
        f"/api/v1/jobs/{job_id}/retry", json=REASON, headers={"X-CSRF-Token": csrf}
    )
    assert api_post.status_code == 403
    assert api.get(db, job_id)["status"] == "failed"


def test_csrf_token_required_for_session_writes(client, seeded, db):
    job_id = seeded.failed[0]
    csrf = sign_in(client, "ann")
    assert client.post(f"/jobs/{job_id}/retry", data=REASON).status_code == 403
    wrong = {**REASON, "csrf_token": "nope"}
    assert client.post(f"/jobs/{job_id}/retry", data=wrong).status_code == 403
    assert client.post(f"/api/v1/jobs/{job_id}/retry", json=REASON).status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    assert api.get(db, job_id)["status"] == "failed"
    ok = client.post(f"/api/v1/jobs/{job_id}/retry", json=REASON, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200, ok.text
    assert api.get(db, job_id)["status"] == "pending"
    client.post("/logout", data={"csrf_token": csrf})
    assert client.get("/api/v1/me").status_code == 401


# ----------------------------------------------------------------------------- reads
def test_overview(client, seeded, clock):
    data = client.get("/api/v1/overview", headers=VIEW).json()
    assert data["by_status"]["failed"] == 3 and data["by_status"]["pending"] == 2
    default = next(f for f in data["families"] if f["queue"] == "default")
    assert default["failed"] == 3 and default["pending"] == 1 and default["backlog"] == 0
    assert data["workers"] is None and data["pauses"] == []
    clock.advance(hours=2)  # job_pending is due now, an hour late
    default = next(
        f
        for f in client.get("/api/v1/overview", headers=VIEW).json()["families"]
        if f["queue"] == "default"
    )
    assert default["backlog"] == 1 and default["oldest_job_id"] == "job_pending"
    assert default["lag_seconds"] == 3600.0


def test_job_list_filters_and_cursor_paging(client, db, clock, seeded):
    for i in range(7):  # several with the same due time: the _id breaks the tie
        api.submit(
            db,
            job_type="noop",
            user_id="pager",
            execute_at=clock.now,
            now=clock.now,
            job_id=f"job_page_{i}",
        )
    seen, cursor = [], None
    while True:
        params = {"user_id": "pager", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/jobs", params=params, headers=VIEW).json()
        seen += [j["job_id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"job_page_{i}" for i in range(7)] and len(seen) == 7
    failed = client.get("/api/v1/jobs", params={"status": "failed"}, headers=VIEW).json()
    assert [j["job_id"] for j in failed["items"]] == seeded.failed  # newest due first
    window = {
        "due_after": (clock.now - dt.timedelta(seconds=90)).isoformat(),
        "due_before": clock.now.isoformat(),
        "status": "failed",
    }
    assert [
        j["job_id"] for j in client.get("/api/v1/jobs", params=window, headers=VIEW).json()["items"]
    ] == ["job_failed_1"]
    assert "payload" not in failed["items"][0] and "history" not in failed["items"][0]
    bad = client.get("/api/v1/jobs", params={"status": "bogus"}, headers=VIEW)
    assert bad.status_code == 400 and "unknown status 'bogus'" in bad.json()["detail"]
    assert client.get("/api/v1/jobs", params={"cursor": "zz"}, headers=VIEW).status_code == 400
    assert client.get("/api/v1/jobs", params={"limit": 0}, headers=VIEW).status_code == 422


def test_search_by_id(client, seeded):
    found = client.get("/api/v1/search", params={"q": "job_failed"}, headers=VIEW).json()
    assert [j["job_id"] for j in found] == seeded.failed
    sign_in(client, "vic")
    exact = client.get("/jobs", params={"q": "job_pending"}, follow_redirects=False)
    assert exact.status_code == 303 and exact.headers["location"] == "/jobs/job_pending"
    assert "job_failed_2" in client.get("/jobs", params={"q": "job_failed"}).text


def test_job_page_has_document_history_audit_and_next_fires(client, seeded, clock):
    data = client.get(f"/api/v1/jobs/{seeded.failed[0]}", headers=VIEW).json()
    assert data["job"]["status"] == "failed" and data["history"][0]["status"] == "failed"
    assert data["audit"][0]["action"] == "job_failed"
    daily = client.get(f"/api/v1/jobs/{seeded.recurring}", headers=VIEW).json()
    assert daily["zone"] == "Europe/Berlin" and len(daily["next_fires"]) == 5
    # the clock stands at noon UTC, past 09:00 in Berlin: the next fire is tomorrow 09:00 there
    berlin = ZoneInfo("Europe/Berlin")
    tomorrow = dt.datetime.combine(clock.now.date() + dt.timedelta(days=1), dt.time(9), berlin)
    first = daily["next_fires"][0]
    assert first["local"] == tomorrow.isoformat()
    assert first["utc"] == tomorrow.astimezone(dt.UTC).isoformat()
    assert client.get("/api/v1/jobs/nope", headers=VIEW).status_code == 404
    sign_in(client, "ann")
    page = client.get(f"/jobs/{seeded.recurring}").text
    assert tomorrow.isoformat() in page and "Europe/Berlin" in page


def test_pages_render_for_a_signed_in_viewer(client, seeded):
    sign_in(client, "vic")
    expected = {
        "/": "Queues",
        "/jobs": "job_pending",
        "/failed": "job_failed_0",
        "/pauses": "Paused jobs",
        "/schedules": "0 9 * * *",
        "/approvals": "apr_1",
        "/review": "Spring launch!",
        f"/jobs/{seeded.failed[0]}": "boom: the sandbox said no",
    }
    for path, text in expected.items():
        response = client.get(path)
        assert response.status_code == 200 and text in response.text, path
    assert "htmx" in client.get("/static/htmx.min.js").text[:200]


def test_schedules_pauses_approvals_review_reads(client, seeded):
    schedules = client.get("/api/v1/schedules", headers=VIEW).json()
    assert [j["job_id"] for j in schedules["items"]] == [seeded.recurring]
    assert len(schedules["items"][0]["next_fires"]) == 3
    assert client.get("/api/v1/pauses", headers=VIEW).json() == {"controls": [], "jobs": []}
    approvals = client.get("/api/v1/approvals", headers=VIEW).json()
    assert [r["request_id"] for r in approvals] == ["apr_1"]
    assert client.get("/api/v1/approvals?status=nope", headers=VIEW).status_code == 400
    review = client.get("/api/v1/review", headers=VIEW).json()
    kinds = {(i["kind"], i["resource_id"]) for i in review}
    assert kinds == {("social_target", "post_1"), ("email_send", "ec_1")}
    social = next(i for i in review if i["kind"] == "social_target")
    assert social["target"] == {"platform": "twitter", "account_id": "tw1"}
    assert social["evidence"]["attempt"]["lookups"] == 3


def test_review_queue_leaves_out_sends_that_may_still_be_in_flight(db, clock):
    db.email_campaigns.insert_one(
        {
            "campaign_id": "ec_new",
            "user_id": "u1",
            "status": "draft",
            "send_intent": {"stage": "create", "at": clock.now - dt.timedelta(minutes=1)},
        }
    )
    assert queries.review_queue(db, clock.now) == []
    assert len(queries.review_queue(db, clock.now + dt.timedelta(minutes=5))) == 1


# ----------------------------------------------------------------------------- actions
def _audit(db, resource_id: str, action: str) -> dict:
    entry = db.audit_log.find_one({"resource_id": resource_id, "action": action})
    assert entry is not None, (resource_id, action)
    return entry


def test_retry_and_cancel_are_audited_with_operator_and_reason(client, db, seeded):
    job_id = seeded.failed[0]
    response = client.post(f"/api/v1/jobs/{job_id}/retry", json=REASON, headers=OP)
    assert response.status_code == 200 and api.get(db, job_id)["status"] == "pending"
    details = _audit(db, job_id, "job_requeued")["details"]
    assert details["actor"] == "ci-bot" and details["reason"] == REASON["reason"]
    again = client.post(f"/api/v1/jobs/{job_id}/retry", json=REASON, headers=OP)
    assert again.status_code == 409 and "only failed jobs retry" in again.json()["detail"]
    cancel = client.post(f"/api/v1/jobs/{seeded.pending}/cancel", json=REASON, headers=OP)
    assert cancel.status_code == 200 and api.get(db, seeded.pending)["status"] == "cancelled"
    assert _audit(db, seeded.pending, "job_cancelled")["details"]["actor"] == "ci-bot"
    empty = client.post(f"/api/v1/jobs/{job_id}/cancel", json={"reason": ""}, headers=OP)
    assert empty.status_code == 422


def test_retry_all_matching_with_preview(client, db, seeded):
    assert client.get("/api/v1/failed/preview", headers=VIEW).json()["count"] == 3
    other = client.get("/api/v1/failed/preview", params={"job_type": "zoho_sync"}, headers=VIEW)
    assert other.json()["count"] == 0
    refused = client.post("/api/v1/failed/retry", json={**REASON, "expected": 2}, headers=OP)
    assert refused.status_code == 409 and "preview again" in refused.json()["detail"]
    assert db.scheduled_jobs.count_documents({"status": "failed"}) == 3
    done = client.post("/api/v1/failed/retry", json={**REASON, "expected": 3}, headers=OP).json()
    assert done["result"] == {"matched": 3, "requeued": 3, "skipped": []}
    assert db.scheduled_jobs.count_documents({"status": "failed"}) == 0


def test_retry_all_matching_from_the_page(client, db, seeded):
    csrf = sign_in(client, "ann")
    preview = client.get("/failed/preview", params={"job_type": "noop"})
    assert "3 failed jobs match" in preview.text and 'name="expected" value="3"' in preview.text
    response = client.post(
        "/failed/retry",
        data={
            **REASON,
            "csrf_token": csrf,
            "job_type": "noop",
            "user_id": "",
            "expected": "3",
            "back": "/failed",
        },
    )
    assert response.status_code == 200 and "requeued 3 of 3 failed jobs" in response.text
    entry = _audit(db, seeded.failed[1], "job_requeued")
    assert entry["details"]["actor"] == "ann"


def test_pause_and_resume_record_who(client, db, seeded):
    body = {"kind": "user", "value": "u2", **REASON}
    assert client.post("/api/v1/pauses", json=body, headers=OP).status_code == 200
    pauses = client.get("/api/v1/pauses", headers=VIEW).json()
    assert pauses["controls"][0]["set_by"] == "ci-bot"
    assert pauses["controls"][0]["reason"] == REASON["reason"]
    assert client.get("/api/v1/overview", headers=VIEW).json()["pauses"][0]["value"] == "u2"
    job = {"kind": "job", "value": seeded.pending, **REASON}
    assert client.post("/api/v1/pauses", json=job, headers=OP).status_code == 200
    paused = client.get("/api/v1/pauses", headers=VIEW).json()["jobs"]
    assert paused[0]["job_id"] == seeded.pending and paused[0]["pause"]["set_by"] == "ci-bot"
    assert client.post("/api/v1/pauses/resume", json=body, headers=OP).status_code == 200
    assert client.post("/api/v1/pauses/resume", json=job, headers=OP).status_code == 200
    assert client.get("/api/v1/pauses", headers=VIEW).json() == {"controls": [], "jobs": []}
    assert _audit(db, "user:u2", "jobs_resumed")["details"]["actor"] == "ci-bot"
    bad = client.post("/api/v1/pauses", json={**body, "kind": "planet"}, headers=OP)
    assert bad.status_code == 409


def test_approve_and_reject(client, db, seeded, clock):
    response = client.post(f"/api/v1/approvals/{seeded.approval}/approve", json=REASON, headers=OP)
    assert response.status_code == 200
    request = db.approval_requests.find_one({"request_id": seeded.approval})
    assert request["status"] == "approved" and request["approved_by"] == "ci-bot"
    assert db.scheduled_jobs.find_one({"job_id": "run_campaign:apr_1:resolved"}) is not None
    assert _audit(db, seeded.approval, "approval_approved")["details"]["actor"] == "ci-bot"
    again = client.post(f"/api/v1/approvals/{seeded.approval}/reject", json=REASON, headers=OP)
    assert again.status_code == 409
    missing = client.post("/api/v1/approvals/nope/reject", json=REASON, headers=OP)
    assert missing.status_code == 409 and "no approval request" in missing.json()["detail"]


def test_review_actions_on_a_social_target(client, db, seeded, clock):
    target = {"platform": "twitter", "account_id": "tw1", **REASON}
    wrong = client.post(
        f"/api/v1/review/social/{seeded.post}/published",
        json={**target, "platform": "facebook", "account_id": "fb1"},
        headers=OP,
    )
    assert wrong.status_code == 409 and "not needs_review" in wrong.json()["detail"]
    retry = client.post(f"/api/v1/review/social/{seeded.post}/retry", json=target, headers=OP)
    assert retry.status_code == 200
    job = api.get(db, retry.json()["result"]["job_id"])
    assert job["job_type"] == "post_social" and job["payload"] == {"post_id": "post_1"}
    post = db.social_posts.find_one({"post_id": seeded.post})
    assert post["platforms"][1]["status"] == "retrying"
    assert post["platforms"][1]["attempt"]["outcome"] == "absent"
    assert _audit(db, seeded.post, "review_retried")["details"]["actor"] == "ci-bot"
    # back to needs_review; this time the operator found the post
    db.social_posts.update_one(
        {"post_id": "post_1"}, {"$set": {"platforms.1.status": "needs_review"}}
    )
    body = {**target, "url": "https://x.com/acme/status/1", "platform_post_id": "1"}
    done = client.post(f"/api/v1/review/social/{seeded.post}/published", json=body, headers=OP)
    assert done.status_code == 200
    twitter = db.social_posts.find_one({"post_id": seeded.post})["platforms"][1]
    assert twitter["status"] == "published" and twitter["url"] == body["url"]
    assert twitter["reviewed"]["by"] == "ci-bot"
    assert client.get("/api/v1/review", headers=VIEW).json()[0]["kind"] == "email_send"


def test_review_actions_on_an_email_send(client, db, seeded):
    retry = client.post(f"/api/v1/review/email/{seeded.email}/retry", json=REASON, headers=OP)
    assert retry.status_code == 200
    assert api.get(db, retry.json()["result"]["job_id"])["payload"] == {"campaign_id": "ec_1"}
    sent = client.post(f"/api/v1/review/email/{seeded.email}/sent", json=REASON, headers=OP)
    assert sent.status_code == 200
    doc = db.email_campaigns.find_one({"campaign_id": seeded.email})
    assert doc["status"] == "sent" and doc["send_intent"]["stage"] == "done"
    assert _audit(db, seeded.email, "review_marked_sent")["details"]["reason"] == REASON["reason"]
    again = client.post(f"/api/v1/review/email/{seeded.email}/sent", json=REASON, headers=OP)
    assert again.status_code == 409
    assert client.get("/api/v1/review", headers=VIEW).json()[0]["kind"] == "social_target"


def test_form_actions_redirect_back_with_a_message(client, db, seeded):
    csrf = sign_in(client, "ann")
    job_id = seeded.failed[2]
    response = client.post(
        f"/jobs/{job_id}/retry", data={**REASON, "csrf_token": csrf, "back": f"/jobs/{job_id}"}
    )
    assert response.status_code == 200 and f"requeued {job_id}" in response.text
    conflict = client.post(
        f"/jobs/{job_id}/retry", data={**REASON, "csrf_token": csrf, "back": "//evil.example/"}
    )
    assert conflict.url.path == "/" and "only failed jobs retry" in conflict.text
    no_reason = client.post(
        f"/approvals/{seeded.approval}/approve", data={"csrf_token": csrf, "reason": " "}
    )
    assert "give a reason" in no_reason.text
    approve = client.post(
        f"/approvals/{seeded.approval}/approve", data={**REASON, "csrf_token": csrf}
    )
    assert "approved apr_1" in approve.text
    assert _audit(db, seeded.approval, "approval_approved")["details"]["actor"] == "ann"


def test_embedded_windows_page_like_the_unbounded_query(db, clock):
    """Due times from years back to next month, some equal: windows and cursors lose nothing."""
    offsets = [-900, -400, -70, -65, -9, -9, -9, -2, -1, 0, 0, 3, 30] * 2
    for i, days in enumerate(offsets):
        api.submit(
            db,
            job_type="noop",
            user_id="w",
            now=clock.now,
            job_id=f"job_w_{i:02d}",
            execute_at=clock.now + dt.timedelta(days=days, minutes=i % 3),
        )
    everything = db.scheduled_jobs.find(
        {"user_id": "w"}, sort=[("schedule.execute_at", -1), ("_id", -1)]
    )
    seen, cursor = [], None
    while True:
        page = queries.list_jobs(
            db, queries.JobFilter(user_id="w"), cursor=cursor, limit=4, now=clock.now
        )
        seen += [j["job_id"] for j in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert seen == [j["job_id"] for j in everything]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, ""),
        (-3, "0 s"),
        (42.7, "42 s"),
        (185, "3 min 5 s"),
        (7200, "2 h"),
        (7800, "2 h 10 min"),
        (2_578_320, "29 d 20 h"),
    ],
)
def test_durations_read_like_a_person_would_say_them(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("/jobs?status=failed", "/jobs?status=failed"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("jobs", "/"),
    ],
)
def test_sign_in_returns_only_to_the_consoles_own_pages(client, target, kept):
    form = client.get("/login", params={"next": target})
    assert f'name="next" value="{kept}"' in form.text.replace("&amp;", "&")


def test_overview_shows_scheduler_liveness_and_live_workers(db, clock, settings):
    from worker.db.schedulers import SchedulerRegistry

    registry = SchedulerRegistry(db)
    registry.beat("host-a:1", clock.now - dt.timedelta(seconds=5))
    registry.beat("host-b:2", clock.now - dt.timedelta(seconds=300))
    beats = [("w-live", (clock.now.timestamp() - 2) * 1000), ("w-gone", 0.0)]

    def workers(now):
        return queries.live_workers(beats, now, settings.worker_heartbeat_timeout_ms)

    app = create_app(db, console_settings(), clock=clock, workers=workers)
    data = TestClient(app).get("/api/v1/overview", headers=VIEW).json()
    assert [(r["owner"], r["live"]) for r in data["schedulers"]] == [
        ("host-a:1", True),
        ("host-b:2", False),
    ]
    assert data["schedulers"][0]["seen_seconds_ago"] == 5.0 and data["last_dispatch"] is None
    assert data["workers"] == [{"worker_id": "w-live", "seen_seconds_ago": 2.0}]


def test_job_page_shows_audit_entries_still_in_the_jobs_outbox(client, db, seeded, clock):
    from worker.audit import outbox_entry
    from worker.db import names

    entry = outbox_entry("job_started", clock.now, run_key="r9")
    db.scheduled_jobs.update_one({"job_id": seeded.pending}, {"$push": {names.AUDIT_OUTBOX: entry}})
    audit = client.get(f"/api/v1/jobs/{seeded.pending}", headers=VIEW).json()["audit"]
    assert audit[0]["action"] == "job_started" and audit[0]["in_outbox"] is True
