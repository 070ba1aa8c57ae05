"""The `mmw` command line against the test database: operator flows and clear errors."""

from __future__ import annotations

import datetime as dt
import json
import re

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

    def run(*args: str, ok: bool = True, code: int | None = None, input: str | None = None):
        result = runner.invoke(main, list(args), catch_exceptions=False, input=input)
        if code is not None:
            assert result.exit_code == code, result.output
        else:
            assert (result.exit_code == 0) == ok, result.output
        return result.output

    def as_json(*args: str) -> dict:
        """A read command's --json: exactly one JSON document on stdout."""
        result = runner.invoke(main, [*args, "--json"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def streams(*args: str, code: int = 0) -> tuple[str, str]:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.stdout, result.stderr

    run.json = as_json  # type: ignore[attr-defined]
    run.streams = streams  # type: ignore[attr-defined]
    yield run
    get_settings.cache_clear()


def test_submit_list_show_cancel(mmw, db):
    job_id = mmw("jobs", "submit", "noop", "--user", "u1", "--at", "2030-01-01T09:00:00Z").strip()
    assert db.scheduled_jobs.find_one({"job_id": job_id})["status"] == "pending"
    listing = mmw("jobs", "list", "--user", "u1")
    assert job_id in listing and "2030-01-01T09:00:00Z" in listing
    shown = mmw.json("jobs", "show", job_id)
    assert shown["job"]["job_type"] == "noop"
    assert re.search(r"^due +2030-01-01T09:00:00Z$", mmw("jobs", "show", job_id), re.M)
    assert f"cancelled {job_id}" in mmw("jobs", "cancel", job_id, "--reason", "not needed")
    assert "is cancelled" in mmw("jobs", "cancel", job_id, "--reason", "again", ok=False)


def test_clear_errors_for_bad_input(mmw):
    assert "unknown job_type 'nope'" in mmw("jobs", "submit", "nope", "--user", "u", ok=False)
    assert "--payload is not JSON" in mmw(
        "jobs", "submit", "noop", "--user", "u", "--payload", "{bad", ok=False
    )
    assert "not an ISO 8601 time" in mmw(
        "jobs", "submit", "noop", "--user", "u", "--at", "tomorrow", ok=False
    )
    assert "no job 'missing'" in mmw("jobs", "show", "missing", ok=False)
    assert "name exactly one" in mmw("jobs", "pause", "--reason", "r", ok=False)
    assert "Missing option '--reason'" in mmw("jobs", "cancel", "job_1", code=2)
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
    mmw("jobs", "pause", "--type", "noop", "--reason", "X outage")
    assert db.job_controls.find_one({"kind": "job_type", "value": "noop"})["paused"] is True
    mmw("jobs", "resume", "--type", "noop", "--reason", "over")
    assert db.job_controls.find_one({"kind": "job_type", "value": "noop"})["paused"] is False
    db.scheduled_jobs.update_one({"job_id": job_id}, {"$set": {"status": "failed"}})
    assert "requeued 1 of 1" in mmw("jobs", "retry", "--all-failed", "--reason", "fixed", "--yes")
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
    output = mmw("jobs", "retry", "--all-failed", "--reason", "r", "--yes", ok=False)  # 1 skipped
    assert "2 failed jobs match" in output and "requeued 1 of 2" in output
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
    assert "approved apr_1" in mmw("approvals", "approve", "apr_1", "--reason", "looks right")
    assert db.approval_requests.find_one({"request_id": "apr_1"})["status"] == "approved"
    assert "no approval request 'nope'" in mmw(
        "approvals", "approve", "nope", "--reason", "r", ok=False
    )
    assert "apr_1" in mmw("approvals", "list", "--status", "approved")
    assert "(no pending approval requests)" in mmw("approvals", "list")
    trail = mmw.json("audit", "apr_1")["items"]
    assert trail[0]["action"] == "approval_approved"
    assert trail[0]["details"]["reason"] == "looks right"
    assert trail[0]["details"]["actor"].startswith("cli:")


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


# ------------------------------------------------------------------------- scriptable output
def _iso(value: str) -> dt.datetime:
    assert "T" in value, value
    return dt.datetime.fromisoformat(value)


def _seed_failed(db, n: int, job_type: str = "noop", error: str = "boom") -> list[str]:
    """``n`` failed jobs due a minute apart, newest first in the list."""
    base = dt.datetime(2030, 1, 1, 9, tzinfo=dt.UTC)
    ids = [f"job_failed_{job_type}_{i:02d}" for i in range(n)]
    db.scheduled_jobs.insert_many(
        [
            {
                "job_id": job_id,
                "user_id": "u1",
                "job_type": job_type,
                "payload": {},
                "schedule": {"execute_at": base + dt.timedelta(minutes=i), "recurring": False},
                "status": "failed",
                "attempts": 3,
                "max_attempts": 3,
                "error": error,
                "epoch": 1,
            }
            for i, job_id in enumerate(ids)
        ]
    )
    return ids


def test_every_read_command_prints_one_json_document_with_iso_times(mmw, db):
    recurring = mmw(
        "jobs", "submit", "noop", "--user", "u1", "--cron", "0 9 * * *", "--tz", "Europe/Berlin"
    ).strip()
    (failed,) = _seed_failed(db, 1)
    mmw("jobs", "pause", "--user", "u1", "--reason", "holiday")
    db.approval_requests.insert_one(
        {
            "request_id": "apr_1",
            "user_id": "u1",
            "status": "pending",
            "created_at": dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        }
    )

    listed = mmw.json("jobs", "list")
    assert {j["job_id"] for j in listed["items"]} == {recurring, failed}
    assert listed["next_cursor"] is None
    assert all(j["held_by"] == ["user"] for j in listed["items"])
    _iso(listed["items"][0]["schedule"]["execute_at"])
    assert [j["job_id"] for j in mmw.json("jobs", "failed")["items"]] == [failed]
    page = mmw.json("jobs", "show", recurring)
    assert page["zone"] == "Europe/Berlin" and page["job"]["job_id"] == recurring
    assert _iso(page["next_fires"][0]["local"]).utcoffset() in (
        dt.timedelta(hours=1),
        dt.timedelta(hours=2),
    )
    fires = mmw.json("jobs", "next", recurring, "-n", "2")["items"]
    assert len(fires) == 2 and _iso(fires[0]["utc"]) == _iso(fires[0]["local"])
    assert mmw.json("approvals", "list")["items"][0]["request_id"] == "apr_1"
    _iso(mmw.json("approvals", "list")["items"][0]["created_at"])
    pauses = mmw.json("pauses", "list")["items"]
    assert [(p["kind"], p["value"], p["reason"]) for p in pauses] == [("user", "u1", "holiday")]
    _iso(pauses[0]["at"])
    trail = mmw.json("audit", "user:u1")
    assert trail["items"][0]["action"] == "jobs_paused" and "next_cursor" in trail
    status = mmw.json("db", "status")
    assert status["jobs_by_status"]["failed"] == 1 and status["jobs_by_status"]["pending"] == 1
    dry = mmw.json("scheduler", "--once", "--dry-run")
    assert dry["would_claim"] == 0  # u1 is paused: the claim would take nothing
    assert dry["held_by_pauses"] == 0  # its jobs are not due yet
    assert mmw.json("jobs", "check-cron") == []  # its --json: one document too
    _iso(dry["now"])


def test_human_output_iso_local_time_whole_errors_and_id_last(mmw, db):
    recurring = mmw(
        "jobs", "submit", "noop", "--user", "u1", "--cron", "0 9 * * *", "--tz", "Asia/Tokyo"
    ).strip()
    error = "HTTP 500 from the X API: " + "the upstream said something long " * 6 + "THE END"
    db.scheduled_jobs.insert_one(
        {
            "job_id": "job_" + "x" * 70,  # longer than any fixed column
            "user_id": "u2",
            "job_type": "noop",
            "schedule": {"execute_at": dt.datetime(2030, 1, 1, tzinfo=dt.UTC)},
            "status": "failed",
            "error": error,
        }
    )
    lines = mmw("jobs", "list").splitlines()
    header, rows = lines[0], [line for line in lines[1:] if not line.startswith("    ")]
    assert header.split()[:3] == ["DUE", "(UTC)", "LOCAL"] and header.endswith("JOB_ID")
    assert all(len(row.split()) >= 6 for row in rows)
    tokyo = next(row for row in rows if recurring in row)
    assert "T09:00:00+09:00 Asia/Tokyo" in tokyo and "T00:00:00Z" in tokyo
    starts = {row.index("noop") for row in rows}
    assert len(starts) == 1  # the TYPE column is aligned whatever the id length
    wrapped = " ".join(line.strip() for line in lines if line.startswith("    "))
    assert error in wrapped.removeprefix("error: ")
    assert "THE END" in mmw("jobs", "show", "job_" + "x" * 70)
    assert "THE END" in mmw("jobs", "failed")


def test_options_are_validated(mmw, db):
    assert "'bogus' is not one of" in mmw("jobs", "list", "--status", "bogus", code=2)
    for limit in ("0", "-1", "501"):
        assert "Invalid value for '--limit'" in mmw("jobs", "list", "--limit", limit, code=2)
    refused = mmw("jobs", "list", "--type", "bogus_type", code=2)
    assert "'bogus_type' is not a registered job type" in refused and "post_social" in refused
    assert "not a registered job type" in mmw(
        "jobs", "retry", "--all-failed", "--type", "bogus_type", "--reason", "r", code=2
    )
    assert "not an ISO 8601 time" in mmw("jobs", "list", "--due-after", "tomorrow", code=2)
    assert "due_after must be before due_before" in mmw(
        "jobs", "list", "--due-after", "2030-01-02", "--due-before", "2030-01-01", code=2
    )
    assert "invalid cursor" in mmw("jobs", "list", "--after", "not-a-cursor", code=2)
    assert "--dry-run goes with --once" in mmw("scheduler", "--dry-run", code=2)
    # a failed document of a type nobody registered can still be found (and is noted)
    (stray,) = _seed_failed(db, 1, job_type="bogus_type")
    out, err = mmw.streams("jobs", "failed", "--type", "bogus_type")
    assert stray in out and "not a registered job type" in err


def test_paging_walks_every_job_once(mmw, db):
    ids = set(_seed_failed(db, 7))
    seen, cursor, pages = [], None, 0
    while True:
        page = mmw.json("jobs", "list", "--limit", "3", *(["--after", cursor] if cursor else []))
        seen += [j["job_id"] for j in page["items"]]
        pages, cursor = pages + 1, page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 7 and set(seen) == ids
    assert seen == sorted(ids, reverse=True)  # newest due first
    out, err = mmw.streams("jobs", "failed", "--limit", "5")
    assert out.count("job_failed_noop_") == 5 and "more: add --after " in err
    cursor = err.split("--after ")[1].split()[0]
    assert mmw("jobs", "failed", "--limit", "5", "--after", cursor).count("job_failed_") == 2


def test_bulk_retry_previews_asks_and_records_the_operator(mmw, db, monkeypatch):
    noop = _seed_failed(db, 3)
    other = _seed_failed(db, 1, job_type="sync_analytics")
    before = db.scheduled_jobs.find({}, sort=[("job_id", 1)])

    dry = mmw("jobs", "retry", "--all-failed", "--type", "noop", "--dry-run")
    assert "3 failed jobs match (type=noop)" in dry and "dry run: nothing changed" in dry
    assert all(job_id in dry for job_id in noop) and other[0] not in dry
    asked = mmw(
        "jobs", "retry", "--all-failed", "--type", "noop", "--reason", "r", input="n\n", code=1
    )
    assert "requeue these 3 jobs? [y/N]" in asked and "Aborted" in asked
    assert mmw("jobs", "retry", "--all-failed", "--reason", "r", code=1)  # no tty, no --yes
    assert db.scheduled_jobs.find({}, sort=[("job_id", 1)]) == before
    assert "Missing option '--reason'" in mmw("jobs", "retry", "--all-failed", "--yes", code=2)
    assert "not both" in mmw("jobs", "retry", noop[0], "--all-failed", "--reason", "r", code=2)

    monkeypatch.setenv("MMW_OPERATOR", "alice")
    get_settings.cache_clear()
    done = mmw("jobs", "retry", "--all-failed", "--type", "noop", "--reason", "X is back", "--yes")
    assert "requeued 3 of 3" in done
    statuses = {j["job_id"]: j["status"] for j in db.scheduled_jobs.find({})}
    assert [statuses[j] for j in noop] == ["pending"] * 3 and statuses[other[0]] == "failed"
    entry = mmw.json("audit", noop[0])["items"][0]
    assert entry["action"] == "job_requeued"
    assert entry["details"] == {"job_type": "noop", "actor": "alice", "reason": "X is back"}
    assert "requeued 1 of 1" in mmw("jobs", "retry", "--all-failed", "--reason", "r", input="y\n")


def test_audit_and_pauses_show_who_and_why(mmw, db):
    job_id = mmw("jobs", "submit", "noop", "--user", "u1", "--at", "2030-01-01T09:00:00Z").strip()
    mmw("jobs", "pause", job_id, "--reason", "customer asked")
    mmw("jobs", "pause", "--type", "post_social", "--reason", "X outage")
    listed = mmw("pauses", "list").splitlines()
    assert listed[0].split()[:2] == ["KIND", "SINCE"]
    job_row = next(line for line in listed if job_id in line)
    assert job_row.startswith("job ") and "customer asked" in job_row and "cli:" in job_row
    assert any(line.startswith("job_type") and "X outage" in line for line in listed)
    assert "job" in mmw.json("jobs", "list")["items"][0]["held_by"]

    mmw("jobs", "resume", job_id, "--reason", "customer is ready")
    mmw("jobs", "cancel", job_id, "--reason", "duplicate")
    trail = mmw("audit", job_id).splitlines()
    assert trail[0].split() == ["TIME", "(UTC)", "ACTION", "ACTOR", "REASON", "DETAILS"]
    actions = [line.split()[1] for line in trail[1:]]
    assert actions == ["job_cancelled", "jobs_resumed", "jobs_paused"]  # newest first
    assert "duplicate" in trail[1] and "cli:" in trail[1]
    assert "(no audit entries for 'nope')" in mmw("audit", "nope")
    assert "(nothing is paused)" not in mmw("pauses", "list")
    mmw("jobs", "resume", "--type", "post_social", "--reason", "over")
    assert "(nothing is paused)" in mmw("pauses", "list")


def test_scheduler_dry_run_judges_like_a_poll_and_changes_nothing(mmw, db, settings):
    now = dt.datetime.now(dt.UTC)
    due = {"status": "pending", "user_id": "u1", "attempts": 0, "epoch": 0, "payload": {}}
    db.scheduled_jobs.insert_many(
        [
            {
                **due,
                "job_id": "on_time",
                "job_type": "noop",
                "schedule": {"execute_at": now - dt.timedelta(seconds=5)},
            },
            {
                **due,
                "job_id": "stale",
                "job_type": "noop",
                "schedule": {"execute_at": now - dt.timedelta(days=2), "max_lateness_seconds": 60},
            },
            {
                **due,
                "job_id": "typo",
                "job_type": "bogus_type",
                "schedule": {"execute_at": now - dt.timedelta(seconds=5)},
            },
            {
                **due,
                "job_id": "missed",
                "job_type": "noop",
                "schedule": {
                    "execute_at": now - dt.timedelta(days=3),
                    "recurring": True,
                    "cron_expression": "*/5 * * * *",
                    "timezone": "UTC",
                    "catch_up": "skip",
                },
            },
            {
                **due,
                "job_id": "held",
                "job_type": "noop",
                "paused": True,
                "schedule": {"execute_at": now - dt.timedelta(seconds=5)},
            },
            {
                **due,
                "job_id": "future",
                "job_type": "noop",
                "schedule": {"execute_at": now + dt.timedelta(days=1)},
            },
        ]
    )
    before = db.scheduled_jobs.find({}, sort=[("job_id", 1)])
    report = mmw.json("scheduler", "--once", "--dry-run")
    decided = {v["job_id"]: v for v in report["items"]}
    assert set(decided) == {"on_time", "stale", "typo", "missed"}
    assert [v["job_id"] for v in report["items"]][:2] == ["missed", "stale"]  # oldest due first
    assert decided["on_time"]["decision"] == "dispatch" and decided["on_time"]["queue"]
    assert decided["stale"]["decision"] == "too_late"
    assert decided["typo"]["decision"] == "invalid" and "bogus_type" in decided["typo"]["reason"]
    assert decided["missed"]["decision"] == "skip" and decided["missed"]["missed"] > 800
    assert _iso(decided["missed"]["next_due"]) > now
    assert report["decisions"] == {"dispatch": 1, "too_late": 1, "invalid": 1, "skip": 1}
    assert report["held_by_pauses"] == 1
    human = mmw("scheduler", "--once", "--dry-run")
    assert "would claim 4" in human and "nothing was changed" in human
    assert "typo: " in human and "too_late 1" in human
    assert db.scheduled_jobs.find({}, sort=[("job_id", 1)]) == before
    assert db.audit_log.count_documents({}) == 0


def test_dry_run_judge_matches_the_scheduler(db, settings, clock):
    """The preview's pure judge and a real poll decide the same for the same documents."""
    from worker.broker import build_broker
    from worker.poll_preview import preview_poll
    from worker.scheduler import Scheduler

    now = clock()
    docs = [
        ("ok", {"execute_at": now - dt.timedelta(seconds=1)}, "noop"),
        ("late", {"execute_at": now - dt.timedelta(days=1), "max_lateness_seconds": 5}, "noop"),
        ("bad", {"execute_at": now - dt.timedelta(seconds=1)}, "bogus_type"),
        (
            "skip",
            {
                "execute_at": now - dt.timedelta(days=1),
                "recurring": True,
                "cron_expression": "0 * * * *",
                "timezone": "UTC",
                "catch_up": "skip",
            },
            "noop",
        ),
        (
            "once",
            {
                "execute_at": now - dt.timedelta(days=1),
                "recurring": True,
                "cron_expression": "0 * * * *",
                "timezone": "UTC",
            },
            "noop",
        ),
    ]
    db.scheduled_jobs.insert_many(
        [
            {
                "job_id": job_id,
                "user_id": "u1",
                "job_type": job_type,
                "payload": {},
                "schedule": schedule,
                "status": "pending",
                "attempts": 0,
                "epoch": 0,
            }
            for job_id, schedule, job_type in docs
        ]
    )
    preview = {v.job_id: v.decision for v in preview_poll(db, settings, now).verdicts}
    broker = build_broker(settings)
    report = Scheduler(db, broker, settings, clock=clock).tick(now)
    assert report.claimed == len(docs)
    assert sum(d == "dispatch" for d in preview.values()) == report.dispatched
    assert sum(d == "too_late" for d in preview.values()) == report.too_late
    assert sum(d == "invalid" for d in preview.values()) == report.invalid
    assert sum(d == "skip" for d in preview.values()) == report.skipped
    assert preview == {
        "ok": "dispatch",
        "late": "too_late",
        "bad": "invalid",
        "skip": "skip",
        "once": "dispatch",
    }


def _commands(group, path=()):
    for name, command in group.commands.items():
        yield (*path, name)
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))


def test_every_command_takes_h(mmw):
    paths = list(_commands(main))
    assert ("pauses", "list") in paths and ("audit",) in paths
    for path in paths:
        assert "Usage:" in mmw(*path, "-h"), path


def test_shell_completion_script_generates():
    runner = CliRunner()
    for shell, marker in (("bash", "_mmw_completion"), ("zsh", "#compdef mmw"), ("fish", "mmw")):
        result = runner.invoke(main, [], prog_name="mmw", env={"_MMW_COMPLETE": f"{shell}_source"})
        assert result.exit_code == 0 and marker in result.output, result.output
    result = runner.invoke(
        main,
        [],
        prog_name="mmw",
        env={
            "_MMW_COMPLETE": "bash_complete",
            "COMP_WORDS": "mmw jobs list --status ",
            "COMP_CWORD": "4",
        },
    )
    assert "plain,failed" in result.output
    result = runner.invoke(
        main,
        [],
        prog_name="mmw",
        env={
            "_MMW_COMPLETE": "bash_complete",
            "COMP_WORDS": "mmw jobs failed --type sy",
            "COMP_CWORD": "4",
        },
    )
    assert "plain,sync_analytics" in result.output and "noop" not in result.output


def test_importing_the_cli_does_not_load_prometheus_client():
    """`mmw worker` sets the metrics folder before prometheus_client is first imported; a CLI
    that imported it earlier would keep its gauges in memory (the supervisor's read 0)."""
    import subprocess
    import sys

    probe = "import sys, worker.cli; print('prometheus_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
