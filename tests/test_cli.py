"""The `mmw` command line against the test database: operator flows and clear errors."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from worker.cli import main
from worker.settings import get_settings


@pytest.fixture
def mmw(settings, monkeypatch):
    env = {
        "MMW_EMBEDDED_PATH": str(settings.embedded_path),
        "MMW_MONGODB_DB": settings.mongodb_db,
    }
    if settings.mongodb_url:
        env["MONGODB_URL"] = settings.mongodb_url
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, ok: bool = True):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    yield run
    get_settings.cache_clear()


def test_submit_list_show_cancel(mmw, db):
    job_id = mmw("jobs", "submit", "noop", "--user", "u1", "--at", "2030-01-01T09:00:00Z").strip()
    assert db.scheduled_jobs.find_one({"job_id": job_id})["status"] == "pending"
    listing = mmw("jobs", "list", "--user", "u1")
    assert job_id in listing and "2030-01-01 09:00:00" in listing
    shown = json.loads(mmw("jobs", "show", job_id))
    assert shown["job_type"] == "noop"
    assert f"cancelled {job_id}" in mmw("jobs", "cancel", job_id)
    assert "is cancelled" in mmw("jobs", "cancel", job_id, ok=False)


def test_clear_errors_for_bad_input(mmw):
    assert "unknown job_type 'nope'" in mmw("jobs", "submit", "nope", "--user", "u", ok=False)
    assert "--payload is not JSON" in mmw(
        "jobs", "submit", "noop", "--user", "u", "--payload", "{bad", ok=False
    )
    assert "not an ISO 8601 time" in mmw(
        "jobs", "submit", "noop", "--user", "u", "--at", "tomorrow", ok=False
    )
    assert "no job 'missing'" in mmw("jobs", "show", "missing", ok=False)
    assert "name exactly one" in mmw("jobs", "pause", ok=False)
    assert "'refresh_zoho_tokens' is internal" in mmw(
        "jobs", "submit", "refresh_zoho_tokens", "--user", "u", ok=False
    )
    assert "field 'payload' must be an object, got list" in mmw(
        "jobs", "submit", "noop", "--user", "u", "--payload", "[]", ok=False
    )


def test_next_fires_pause_resume_retry(mmw, db):
    job_id = mmw(
        "jobs", "submit", "noop", "--user", "u1", "--cron", "0 9 * * *", "--tz", "Europe/Berlin"
    ).strip()
    fires = mmw("jobs", "next", job_id, "-n", "3").splitlines()
    assert len(fires) == 3 and all("Europe/Berlin" in f and "T09:00:00+01:00" in f for f in fires)
    mmw("jobs", "pause", "--type", "noop")
    assert db.job_controls.find_one({"kind": "job_type", "value": "noop"})["paused"] is True
    mmw("jobs", "resume", "--type", "noop")
    assert db.job_controls.find_one({"kind": "job_type", "value": "noop"})["paused"] is False
    db.scheduled_jobs.update_one({"job_id": job_id}, {"$set": {"status": "failed"}})
    assert "requeued" in mmw("jobs", "retry", "--all-failed")
    assert db.scheduled_jobs.find_one({"job_id": job_id})["status"] == "pending"
    assert job_id in mmw("jobs", "list", "--status", "pending")


def test_retry_all_failed_skips_a_malformed_document_and_requeues_the_rest(mmw, db):
    good = mmw("jobs", "submit", "noop", "--user", "u1").strip()
    db.scheduled_jobs.update_one({"job_id": good}, {"$set": {"status": "failed"}})
    db.scheduled_jobs.insert_one(
        {
            "job_id": "hand-1",
            "user_id": "u1",
            "job_type": "noop",
            "status": "failed",
            "schedule": "tomorrow at nine",
            "error": "invalid schedule",
        }
    )
    output = mmw("jobs", "retry", "--all-failed", ok=False)  # exit 1: one was skipped
    assert f"requeued {good}" in output
    assert "job 'hand-1' has a malformed schedule (string, not an object)" in output
    assert db.scheduled_jobs.find_one({"job_id": good})["status"] == "pending"
    assert db.scheduled_jobs.find_one({"job_id": "hand-1"})["schedule"] == "tomorrow at nine"


def test_approvals_approve(mmw, db):
    db.approval_requests.insert_one(
        {
            "request_id": "apr_1",
            "user_id": "u1",
            "campaign_id": "c1",
            "request_type": "publish",
            "status": "pending",
            "created_at": dt.datetime.now(dt.UTC),
        }
    )
    assert "apr_1" in mmw("approvals", "list")
    assert "approved apr_1" in mmw("approvals", "approve", "apr_1")
    assert db.approval_requests.find_one({"request_id": "apr_1"})["status"] == "approved"
    assert "no approval request 'nope'" in mmw("approvals", "approve", "nope", ok=False)


def test_db_init_and_status(mmw):
    first = mmw("db", "init")
    assert "indexes ensured" in first and "platform:refresh_zoho_tokens" in first
    assert "none (all present)" in mmw("db", "init")
    assert "embedded" in mmw("db", "status") or "mongodb" in mmw("db", "status")


def test_short_help_option(mmw):
    assert "Usage:" in mmw("-h")
    assert "Usage:" in mmw("jobs", "list", "-h")


def test_away_from_the_embedded_folder_says_which_folder_and_creates_nothing(
    mmw, tmp_path, monkeypatch
):
    missing = tmp_path / "elsewhere" / ".mmw" / "db"
    monkeypatch.setenv("MMW_EMBEDDED_PATH", str(missing))
    get_settings.cache_clear()
    out = mmw("jobs", "list", ok=False)
    assert f"no embedded database at {missing}" in out and "Traceback" not in out
    assert not missing.exists()
    assert "indexes ensured on the embedded engine at" in mmw("db", "init")
    assert missing.is_dir()


def test_unreachable_mongodb_is_one_line(mmw, monkeypatch):
    monkeypatch.setenv("MONGODB_URL", "mongodb://operator:s3cret@127.0.0.1:1/")
    get_settings.cache_clear()
    out = mmw("db", "status", ok=False)
    assert out.startswith("Error: cannot reach MongoDB at mongodb://127.0.0.1:1/")
    assert len(out.strip().splitlines()) == 1 and "s3cret" not in out


def test_describe_names_the_setting_to_check():
    import errno

    from redis.exceptions import ConnectionError as RedisConnectionError

    from worker.cli_errors import describe, safe_url
    from worker.settings import Settings

    settings = Settings(broker_url="redis://:pw@10.0.0.9:6379/0")
    message = describe(RedisConnectionError("Connection refused"), settings)
    assert message and "redis://10.0.0.9:6379/0" in message and "BROKER_URL" in message
    busy = describe(OSError(errno.EADDRINUSE, "Address already in use"), settings)
    assert busy and "MMW_METRICS_PORT" in busy
    assert describe(KeyError("bug"), settings) is None  # real bugs keep their traceback
    assert safe_url("amqp://guest:guest@rabbit:5672/") == "amqp://rabbit:5672/"
