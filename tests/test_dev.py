"""`mmw dev --demo`: a newcomer sees every demo job finish, on the sandboxes, within a minute."""

from __future__ import annotations

import threading
import time

import pytest

from tests.processes import free_port
from worker.dev import DEMO_USER, run_dev

pytestmark = pytest.mark.integration


def test_demo_jobs_complete_within_a_minute(db, settings, capsys):
    settings = settings.model_copy(
        update={"metrics_port": free_port(), "web_port": free_port(), "poll_interval": 0.2}
    )
    stop = threading.Event()
    thread = threading.Thread(
        target=run_dev, args=(settings, stop), kwargs={"demo": True, "threads": 4}, daemon=True
    )
    started = time.monotonic()
    thread.start()

    def demo_jobs() -> dict[str, dict]:
        """The demo's own one-off jobs by type (not the recurring noop, not follow-up jobs)."""
        rows = db.scheduled_jobs.find(
            {"user_id": DEMO_USER, "schedule.recurring": {"$ne": True}},
            sort=[("created_at", -1)],
        )
        return {j["job_type"]: j for j in rows if not j.get("idempotency_key")}

    def settled() -> bool:
        jobs = demo_jobs()
        return len(jobs) >= 7 and all(j["status"] in ("completed", "failed") for j in jobs.values())

    try:
        while not settled() and time.monotonic() - started < 60:
            time.sleep(0.5)
    finally:
        stop.set()
        thread.join(timeout=30)
    jobs = demo_jobs()
    for job_type in ("sync_analytics", "post_social", "zoho_sync", "send_email", "run_campaign"):
        assert jobs[job_type]["status"] == "completed", (job_type, jobs[job_type].get("error"))
    assert jobs["post_to_myspace"]["error"].startswith("unknown job_type 'post_to_myspace'")
    post = db.social_posts.find_one({"user_id": DEMO_USER})
    assert {t["status"] for t in post["platforms"]} == {"published"}
    assert db.approval_requests.count_documents({"user_id": DEMO_USER, "status": "pending"}) >= 1
    err = capsys.readouterr().err
    assert "metrics:" in err and "mmw approvals approve" in err
    assert f"console:   http://127.0.0.1:{settings.web_port}/" in err
