"""``post_social`` / ``sync_social_metrics`` end to end: lifecycle, embedded MongoDB, sandbox."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import worker.actors  # noqa: F401 - registers handlers
from tests.conftest import clock_of
from tests.test_lifecycle import message_args
from worker.actors import social as social_actor
from worker.actors.lifecycle import Runner
from worker.api import submit
from worker.broker import declare_queues
from worker.clock import epoch_seconds, wall_clock
from worker.db.models import SocialPost
from worker.jobtypes import JOB_TYPES
from worker.sandbox.server import Faults
from worker.sandbox.social import SocialSandboxServer, start_social_sandbox
from worker.scheduler import Scheduler
from worker.settings import Settings

MONGODB_TEST_URL = os.environ.get("MONGODB_TEST_URL")

LIMITER_REDIS = "redis://127.0.0.1:6379/12"
USER = "user_1"
ACCOUNTS = {
    "facebook": "1000001",
    "instagram": "1784000001",
    "twitter": "2244994945",
    "linkedin": "urn:li:organization:5515715",
}


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[SocialSandboxServer]:
    server = start_social_sandbox(clock=wall_clock)  # each test sets its own clock
    yield server
    server.stop()


@pytest.fixture
def sandbox(shared_sandbox: SocialSandboxServer, request: pytest.FixtureRequest):
    """The shared sandbox, reset, on the test's clock: its hand clock if it takes one."""
    shared_sandbox.state.reset()
    shared_sandbox.state.clock = clock_of(request)
    shared_sandbox.faults = Faults()
    shared_sandbox.requests.clear()
    return shared_sandbox


@pytest.fixture
def social_settings(settings: Settings, sandbox: SocialSandboxServer) -> Iterator[Settings]:
    try:
        redis.Redis.from_url(LIMITER_REDIS, socket_connect_timeout=0.5).ping()
        limiter_url: str | None = LIMITER_REDIS
    except redis.RedisError:
        limiter_url = None  # the test's broker Redis (embedded)
    configured = settings.model_copy(
        update={
            **sandbox.settings_overrides(),
            "social_limits_redis_url": limiter_url,
            "http_timeout_seconds": 0.25,
            "instagram_poll_interval": 0.0,
            "social_reconcile_grace_seconds": 0.0,
        }
    )
    yield configured
    client = redis.Redis.from_url(limiter_url or settings.broker_url)
    keys = list(client.scan_iter(match=f"{settings.broker_namespace}:social:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def scheduler(db, stub_broker, social_settings, clock) -> Scheduler:
    declare_queues(stub_broker, (t.queue for t in JOB_TYPES.values()))
    return Scheduler(db, stub_broker, social_settings, clock=clock)


@pytest.fixture
def runner(db, social_settings, clock) -> Iterator[Runner]:
    r = Runner(db, social_settings, clock=clock)
    yield r
    r.close()


def connect_accounts(db, sandbox: SocialSandboxServer, platforms=tuple(ACCOUNTS)) -> dict:
    """Insert one active ``social_accounts`` entry per platform with a sandbox token."""
    tokens = {}
    for platform in platforms:
        token = sandbox.state.add_account(platform, ACCOUNTS[platform], f"secret-{platform}")
        credentials: dict[str, Any] = {"access_token": token, "refresh_token": "rt-secret"}
        db.social_accounts.insert_one(
            {
                "user_id": USER,
                "platform": platform,
                "account_id": ACCOUNTS[platform],
                "credentials": credentials,
                "status": "active",
            }
        )
        tokens[platform] = token
    return tokens


def new_post(db, now: dt.datetime, platforms=tuple(ACCOUNTS), message: str | None = None) -> str:
    post_id = f"post_{uuid.uuid4().hex[:10]}"
    db.social_posts.insert_one(
        {
            "post_id": post_id,
            "user_id": USER,
            "platforms": [
                {"platform": p, "account_id": ACCOUNTS[p], "status": "scheduled"} for p in platforms
            ],
            "content": {
                "message": message or f"Launch day {post_id}",
                "images": [],
                "hashtags": ["launch"],
            },
            "schedule": {"scheduled": True, "publish_at": now},
            "created_at": now,
        }
    )
    return post_id


def submit_post(db, clock, post_id: str, **options: Any) -> str:
    job = submit(
        db,
        job_type="post_social",
        user_id=USER,
        payload={"post_id": post_id},
        execute_at=clock.now,
        now=clock.now,
        **options,
    )
    return job["job_id"]


def drive(db, scheduler, runner, clock, job_id: str, rounds: int = 12) -> dict:
    """Claim, run and retry the job (moving the clock) until it ends."""
    for _ in range(rounds):
        scheduler.tick()
        job = db.scheduled_jobs.find_one({"job_id": job_id})
        if job["status"] == "processing":
            runner.execute(job["job_type"], *message_args(job))
            job = db.scheduled_jobs.find_one({"job_id": job_id})
        if job["status"] in ("completed", "failed"):
            return job
        clock.now = max(clock.now, job["schedule"]["execute_at"]) + dt.timedelta(seconds=1)
    raise AssertionError(f"job {job_id} did not finish: {job['status']} {job.get('error')}")


def targets(db, post_id: str) -> dict[str, dict]:
    return {t["platform"]: t for t in db.social_posts.find_one({"post_id": post_id})["platforms"]}


def instagram_image(db, post_id: str) -> None:
    """Instagram needs media; the other clients refuse media uploads, so give IG its own post."""
    db.social_posts.update_one(
        {"post_id": post_id}, {"$set": {"content.images": ["https://cdn.example/i.jpg"]}}
    )


# --- publish once -------------------------------------------------------------------------------


def test_publishes_every_target_once_and_records_it(db, sandbox, scheduler, runner, clock):
    connect_accounts(db, sandbox)
    post_id = new_post(db, clock.now, platforms=("facebook", "twitter", "linkedin"))
    job_id = submit_post(db, clock, post_id)
    job = drive(db, scheduler, runner, clock, job_id)
    assert job["status"] == "completed", job.get("error")
    assert job["result"]["status"] == "published"
    assert job["result"]["counts"] == {"published": 3}
    recorded = targets(db, post_id)
    for platform in ("facebook", "twitter", "linkedin"):
        (accepted,) = sandbox.posts(platform)
        target = recorded[platform]
        assert target["platform_post_id"] == accepted.post_id
        assert target["status"] == "published" and target["published_at"] == clock.now
        assert target["attempt"]["run_key"] == message_args(job)[1]
        assert target["attempt"]["outcome"] == "published"
        assert "error" not in target
    SocialPost.model_validate(db.social_posts.find_one({"post_id": post_id}))  # schema + additions
    runner.audit_log.flush()
    audits = list(db.audit_log.find({"action": "post_published", "resource_id": post_id}))
    assert len(audits) == 3
    assert "secret" not in repr(audits) + repr(job["result"])


def test_instagram_target_goes_through_the_container(db, sandbox, scheduler, runner, clock):
    sandbox.state.ig_processing_polls = 2
    connect_accounts(db, sandbox, ("instagram",))
    post_id = new_post(db, clock.now, platforms=("instagram",))
    instagram_image(db, post_id)
    job = drive(db, scheduler, runner, clock, submit_post(db, clock, post_id))
    assert job["status"] == "completed", job.get("error")
    (accepted,) = sandbox.posts("instagram")
    assert targets(db, post_id)["instagram"]["platform_post_id"] == accepted.post_id


def test_duplicate_message_and_second_job_post_nothing_new(db, sandbox, scheduler, runner, clock):
    connect_accounts(db, sandbox)
    post_id = new_post(db, clock.now, platforms=("facebook", "twitter", "linkedin"))
    job_id = submit_post(db, clock, post_id)
    scheduler.tick()
    job = db.scheduled_jobs.find_one({"job_id": job_id})
    args = message_args(job)
    runner.execute("post_social", *args)
    runner.execute("post_social", *args)  # the broker delivered the message twice
    second = drive(db, scheduler, runner, clock, submit_post(db, clock, post_id))
    assert second["status"] == "completed"
    assert second["result"]["status"] == "published"
    assert len(sandbox.posts()) == 3


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, the lifecycle records no outcome."""


def kill_after_publish(monkeypatch, platforms: set[str]) -> list[str]:
    """Make the real client publish, then 'die' before the result is written."""
    killed: list[str] = []
    real_build = social_actor.build_client

    def build(platform: str, settings: Settings, **kwargs: Any):
        client = real_build(platform, settings, **kwargs)
        real_publish = client.publish

        def publish(content, account):
            result = real_publish(content, account)
            if platform in platforms and platform not in killed:
                killed.append(platform)
                raise Killed(platform)
            return result

        client.publish = publish  # type: ignore[method-assign]
        return client

    monkeypatch.setattr(social_actor, "build_client", build)
    return killed


def test_crash_after_platform_accepted_reconciles_to_one_copy(
    db, sandbox, scheduler, runner, clock, monkeypatch, social_settings
):
    connect_accounts(db, sandbox)
    post_id = new_post(db, clock.now, platforms=("facebook", "twitter", "linkedin"))
    job_id = submit_post(db, clock, post_id)
    killed = kill_after_publish(monkeypatch, {"twitter"})
    scheduler.tick()
    job = db.scheduled_jobs.find_one({"job_id": job_id})
    with pytest.raises(Killed):
        runner.execute("post_social", *message_args(job))
    assert killed == ["twitter"]
    assert targets(db, post_id)["twitter"]["status"] == "publishing"  # intent, no outcome
    # The lease runs out; the scheduler's recovery claims the run again.
    clock.advance(seconds=social_settings.lease_seconds + 1)
    job = drive(db, scheduler, runner, clock, job_id)
    assert job["status"] == "completed", job.get("error")
    (accepted,) = sandbox.posts("twitter")
    twitter = targets(db, post_id)["twitter"]
    assert twitter["status"] == "published"
    assert twitter["platform_post_id"] == accepted.post_id
    assert "reconciled_at" in twitter
    assert len(sandbox.posts()) == 3


def wait_for_posts(sandbox: SocialSandboxServer, platform: str, count: int) -> None:
    """Let a slow sandbox handler (the ``timeout`` fault) finish creating its post."""
    deadline = time.monotonic() + 3
    while len(sandbox.posts(platform)) < count and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.parametrize(
    "fault",
    [
        "after_effect_timeout",  # posted, then no answer
        "timeout",  # slow answer: posted after the client gave up
        "server_error",  # 5xx: not posted, but the client cannot know
    ],
)
def test_unknown_outcome_is_reconciled_before_posting_again(
    db, sandbox, scheduler, runner, clock, fault
):
    connect_accounts(db, sandbox, ("twitter",))
    post_id = new_post(db, clock.now, platforms=("twitter",))
    job_id = submit_post(db, clock, post_id)
    setattr(sandbox.faults, fault, 1.0)
    sandbox.faults.timeout_seconds = 0.5
    scheduler.tick()
    runner.execute("post_social", *message_args(db.scheduled_jobs.find_one({"job_id": job_id})))
    target = targets(db, post_id)["twitter"]
    assert target["status"] == "publishing" and target["error"]
    setattr(sandbox.faults, fault, 0.0)
    if fault != "server_error":
        wait_for_posts(sandbox, "twitter", 1)
    job = drive(db, scheduler, runner, clock, job_id)
    assert job["status"] == "completed"
    (accepted,) = sandbox.posts("twitter")
    assert targets(db, post_id)["twitter"]["platform_post_id"] == accepted.post_id
    assert ("reconciled_at" in targets(db, post_id)["twitter"]) is (fault != "server_error")


def test_lookup_ignores_a_same_text_post_older_than_the_window(
    db, sandbox, scheduler, runner, clock
):
    """The lookup's lower bound: an earlier identical post of the account is not our attempt."""
    from worker.sandbox.social import SandboxPost

    sandbox.state.duplicate_platforms = set()
    connect_accounts(db, sandbox, ("twitter",))
    post_id = new_post(db, clock.now, platforms=("twitter",), message="Weekly tip")
    text = "Weekly tip #launch"
    before_window = clock.now - social_actor.LOOKUP_SKEW - dt.timedelta(seconds=1)
    old = SandboxPost("twitter", ACCOUNTS["twitter"], "old-1", text, before_window.timestamp())
    sandbox.state.accept(old)
    job_id = submit_post(db, clock, post_id)
    sandbox.faults.server_error = 1.0  # the attempt's outcome is unknown; nothing was posted
    scheduler.tick()
    runner.execute("post_social", *message_args(db.scheduled_jobs.find_one({"job_id": job_id})))
    sandbox.faults.server_error = 0.0
    job = drive(db, scheduler, runner, clock, job_id)
    assert job["status"] == "completed", job.get("error")
    target = targets(db, post_id)["twitter"]
    assert target["status"] == "published" and target["platform_post_id"] != "old-1"
    assert sandbox.posts("twitter")[0].post_id == "old-1"
    assert len(sandbox.posts("twitter")) == 2


def test_unsettled_outcome_needs_review_and_is_never_reposted(
    db, sandbox, scheduler, runner, clock
):
    tokens = connect_accounts(db, sandbox, ("twitter", "facebook"))
    post_id = new_post(db, clock.now, platforms=("twitter", "facebook"))
    job_id = submit_post(db, clock, post_id)
    sandbox.faults.timeout = 1.0
    sandbox.faults.timeout_seconds = 0.5
    scheduler.tick()
    runner.execute("post_social", *message_args(db.scheduled_jobs.find_one({"job_id": job_id})))
    sandbox.faults.timeout = 0.0
    wait_for_posts(sandbox, "twitter", 1)  # the slow request did post
    sandbox.state.expire_token(tokens["twitter"])  # the lookup becomes impossible
    job = drive(db, scheduler, runner, clock, job_id)
    assert job["status"] == "completed"
    assert job["result"]["status"] == "needs_review"
    recorded = targets(db, post_id)
    assert recorded["twitter"]["status"] == "needs_review"
    assert "cannot look the post up" in recorded["twitter"]["error"]
    assert recorded["facebook"]["status"] == "published"
    assert len(sandbox.posts("twitter")) == 1
    account = db.social_accounts.find_one({"platform": "twitter"})
    assert account["status"] == "expired"
    again = drive(db, scheduler, runner, clock, submit_post(db, clock, post_id))
    assert again["result"]["status"] == "needs_review"
    assert len(sandbox.posts("twitter")) == 1 and len(sandbox.posts("facebook")) == 1
    SocialPost.model_validate(db.social_posts.find_one({"post_id": post_id}))


def test_last_attempt_leaves_unknown_outcome_for_review(db, sandbox, scheduler, runner, clock):
    connect_accounts(db, sandbox, ("linkedin",))
    post_id = new_post(db, clock.now, platforms=("linkedin",))
    sandbox.faults.server_error = 1.0  # every call: 500, publish outcome unknown
    job = drive(db, scheduler, runner, clock, submit_post(db, clock, post_id, max_attempts=2))
    assert job["status"] == "completed"
    target = targets(db, post_id)["linkedin"]
    assert target["status"] == "needs_review"
    assert "no attempts left" in target["error"]


# --- failures -----------------------------------------------------------------------------------


def test_expired_token_fails_that_target_only_and_marks_the_account(
    db, sandbox, scheduler, runner, clock
):
    tokens = connect_accounts(db, sandbox, ("facebook", "linkedin"))
    sandbox.state.expire_token(tokens["linkedin"])
    post_id = new_post(db, clock.now, platforms=("facebook", "linkedin"))
    job = drive(db, scheduler, runner, clock, submit_post(db, clock, post_id))
    assert job["status"] == "completed"
    assert job["result"]["status"] == "partial"
    recorded = targets(db, post_id)
    assert recorded["facebook"]["status"] == "published"
    assert recorded["linkedin"]["status"] == "failed"
    assert "401" in recorded["linkedin"]["error"]
    assert db.social_accounts.find_one({"platform": "linkedin"})["status"] == "expired"
    runner.audit_log.flush()
    (failed,) = db.audit_log.find({"action": "post_failed", "resource_id": post_id})
    assert failed["details"]["platform"] == "linkedin"
    everything = repr(list(db.audit_log.find())) + repr(job)
    assert tokens["linkedin"] not in everything and "rt-secret" not in everything


def test_all_targets_failing_fails_the_job(db, sandbox, scheduler, runner, clock):
    post_id = new_post(db, clock.now, platforms=("twitter",))  # no account connected
    job = drive(db, scheduler, runner, clock, submit_post(db, clock, post_id))
    assert job["status"] == "failed"
    assert "twitter account not connected" in job["error"]


def test_duplicate_refusal_of_someone_elses_post_fails(
    db, sandbox, scheduler, runner, clock, social_settings
):
    from worker.sandbox.social import SandboxPost

    connect_accounts(db, sandbox, ("twitter",))
    post_id = new_post(db, clock.now, platforms=("twitter",), message="Same old text")
    day_ago = clock.now.timestamp() - 86_400
    text = "Same old text #launch"
    sandbox.state.accept(SandboxPost("twitter", ACCOUNTS["twitter"], "77", text, day_ago))
    job = drive(db, scheduler, runner, clock, submit_post(db, clock, post_id))
    assert job["status"] == "failed"
    assert "duplicate content" in targets(db, post_id)["twitter"]["error"]
    assert len(sandbox.posts("twitter")) == 1
    limiter = social_actor.publish_limiter(social_settings, epoch_seconds(clock))
    assert limiter.client.zcard(f"{limiter.prefix}:posts:twitter:{ACCOUNTS['twitter']}") == 0


def test_rate_limit_backs_off_the_account_in_redis(
    db, sandbox, scheduler, runner, clock, social_settings
):
    connect_accounts(db, sandbox, ("twitter",))
    sandbox.state.set_rate_limit("twitter", 1, 900)
    first = new_post(db, clock.now, platforms=("twitter",))
    assert drive(db, scheduler, runner, clock, submit_post(db, clock, first))["status"] == (
        "completed"
    )
    second = new_post(db, clock.now, platforms=("twitter",))
    job_id = submit_post(db, clock, second)
    scheduler.tick()
    runner.execute("post_social", *message_args(db.scheduled_jobs.find_one({"job_id": job_id})))
    job = db.scheduled_jobs.find_one({"job_id": job_id})
    assert job["status"] == "pending"
    assert job["schedule"]["execute_at"] - clock.now >= dt.timedelta(seconds=890)
    assert targets(db, second)["twitter"]["status"] == "retrying"
    limiter = social_actor.publish_limiter(social_settings, epoch_seconds(clock))
    assert limiter.backoff_remaining("twitter", ACCOUNTS["twitter"]) > 890
    assert len(sandbox.posts("twitter")) == 1


# --- metrics --------------------------------------------------------------------------------------


def test_sync_social_metrics_sums_platform_metrics(db, sandbox, scheduler, runner, clock):
    connect_accounts(db, sandbox)
    post_id = new_post(db, clock.now, platforms=("facebook", "twitter", "linkedin"))
    drive(db, scheduler, runner, clock, submit_post(db, clock, post_id))
    # A post written elsewhere may hold analytics: null (MongoDB refuses analytics.x under it).
    db.social_posts.update_one({"post_id": post_id}, {"$set": {"analytics": None}})
    job = submit(
        db,
        job_type="sync_social_metrics",
        user_id=USER,
        payload={"days": 7},
        execute_at=clock.now,
        now=clock.now,
    )
    done = drive(db, scheduler, runner, clock, job["job_id"])
    assert done["status"] == "completed"
    assert done["result"] == {"posts": 1, "synced": 1, "errors": 0}
    post = db.social_posts.find_one({"post_id": post_id})
    expected_likes = sum(p.metrics["likes"] for p in sandbox.posts())
    assert post["analytics"]["likes"] == expected_likes
    assert post["analytics"]["last_synced"] == clock.now
    assert all("metrics" in t for t in post["platforms"])


# --- the shared limiter under concurrent workers --------------------------------------------------


@pytest.mark.integration
def test_four_worker_threads_never_exceed_the_account_limit(
    db, sandbox, social_settings, redis_broker
):
    """Real clock, real Dramatiq worker with 4 threads: at most N posts per window reach X."""
    import threading

    import dramatiq

    from worker.actors.lifecycle import declare_job_actors, set_runner

    limit, window, count = 2, 1.0, 6
    settings = social_settings.model_copy(
        update={
            "social_post_limits": {"twitter": (limit, window)},
            "social_limit_margin_seconds": 0.1,
            "backoff_max_seconds": 1.0,
        }
    )
    connect_accounts(db, sandbox, ("twitter",))
    now = dt.datetime.now(dt.UTC)
    jobs = []
    for _ in range(count):
        post_id = new_post(db, now, platforms=("twitter",))
        jobs.append(
            submit(
                db,
                job_type="post_social",
                user_id=USER,
                payload={"post_id": post_id},
                execute_at=now,
                max_attempts=30,
            )["job_id"]
        )
    runner = Runner(db, settings)
    set_runner(runner)
    declare_job_actors(redis_broker)
    worker = dramatiq.Worker(redis_broker, worker_threads=4, worker_timeout=50)
    worker.start()
    scheduler = Scheduler(db, redis_broker, settings)
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            scheduler.tick()
            stop.wait(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = db.scheduled_jobs.count_documents(
                {"job_id": {"$in": jobs}, "status": {"$in": ["completed", "failed"]}}
            )
            if done == count:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        poller.join()
        worker.stop()
        runner.close()
        set_runner(None)
    ended = [db.scheduled_jobs.find_one({"job_id": j}) for j in jobs]
    assert [j["status"] for j in ended] == ["completed"] * count, [j.get("error") for j in ended]
    times = sorted(p.created_at for p in sandbox.posts("twitter"))
    assert len(times) == count
    for i, start in enumerate(times):
        assert len([t for t in times[i:] if t < start + window]) <= limit


@pytest.mark.crash
@pytest.mark.skipif(MONGODB_TEST_URL is not None, reason="the child opens the embedded engine")
def test_sigkill_after_platform_accepted_then_rerun_leaves_one_copy(
    db, db_location, sandbox, scheduler, runner, clock, social_settings
):
    """A real worker process is SIGKILLed right after the platform took the post."""
    import subprocess
    import sys

    connect_accounts(db, sandbox, ("linkedin",))
    post_id = new_post(db, clock.now, platforms=("linkedin",))
    clock.now = dt.datetime.now(dt.UTC)  # the child runs on the real clock
    job_id = submit_post(db, clock, post_id)
    scheduler.tick()
    job_id, run_key, epoch = message_args(db.scheduled_jobs.find_one({"job_id": job_id}))
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.social_crash_child",
            db_location["folder"],
            social_settings.model_dump_json(),
            job_id,
            run_key,
            str(epoch),
        ],
        capture_output=True,
        timeout=60,
    )
    assert child.returncode == -9, child.stderr.decode()[-2000:]
    assert len(sandbox.posts("linkedin")) == 1
    assert targets(db, post_id)["linkedin"]["status"] == "publishing"
    clock.now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=social_settings.lease_seconds + 1)
    job = drive(db, scheduler, runner, clock, job_id)
    assert job["status"] == "completed", job.get("error")
    (accepted,) = sandbox.posts("linkedin")
    target = targets(db, post_id)["linkedin"]
    assert target["status"] == "published" and target["platform_post_id"] == accepted.post_id
    assert job["attempts"] == 2


def test_a_bug_on_one_platform_does_not_block_the_others(
    db, sandbox, scheduler, runner, clock, monkeypatch
):
    connect_accounts(db, sandbox, ("facebook", "linkedin"))
    post_id = new_post(db, clock.now, platforms=("facebook", "linkedin"))
    db.social_posts.update_one(
        {"post_id": post_id}, {"$push": {"platforms": {"platform": "tiktok"}}}
    )
    real_build = social_actor.build_client
    calls: list[str] = []

    def build(platform: str, settings: Settings, **kwargs: Any):
        client = real_build(platform, settings, **kwargs)
        if platform == "facebook" and not calls:
            calls.append(platform)

            def broken(content, account):
                raise KeyError("unexpected answer shape")

            client.publish = broken  # type: ignore[method-assign]
        return client

    monkeypatch.setattr(social_actor, "build_client", build)
    job = drive(db, scheduler, runner, clock, submit_post(db, clock, post_id))
    assert job["status"] == "completed", job.get("error")
    recorded = targets(db, post_id)
    assert recorded["linkedin"]["status"] == "published"
    assert recorded["tiktok"]["status"] == "failed"
    # The broken call may have reached Facebook: reconciled on the retry, then published once.
    assert recorded["facebook"]["status"] == "published"
    assert len(sandbox.posts("facebook")) == 1 and job["attempts"] == 2


def test_sync_social_metrics_marks_expired_accounts_and_keeps_the_rest(
    db, sandbox, scheduler, runner, clock
):
    tokens = connect_accounts(db, sandbox, ("facebook", "linkedin"))
    post_id = new_post(db, clock.now, platforms=("facebook", "linkedin"))
    drive(db, scheduler, runner, clock, submit_post(db, clock, post_id))
    sandbox.state.expire_token(tokens["linkedin"])
    job = submit(
        db,
        job_type="sync_social_metrics",
        user_id=USER,
        payload={"days": 1},
        execute_at=clock.now,
        now=clock.now,
    )
    done = drive(db, scheduler, runner, clock, job["job_id"])
    assert done["result"] == {"posts": 1, "synced": 1, "errors": 1}
    assert db.social_accounts.find_one({"platform": "linkedin"})["status"] == "expired"
    post = db.social_posts.find_one({"post_id": post_id})
    facebook = sandbox.posts("facebook")[0].metrics
    assert post["analytics"]["likes"] == facebook["likes"]
    assert "metrics" not in targets(db, post_id)["linkedin"]


def test_expired_x_token_is_refreshed_once_and_the_post_goes_out(
    db, sandbox, scheduler, runner, clock
):
    tokens = connect_accounts(db, sandbox, ("twitter",))
    sandbox.state.expire_token(tokens["twitter"])
    sandbox.state.add_refresh_token("twitter", ACCOUNTS["twitter"], "rt-secret")
    post_id = new_post(db, clock.now, platforms=("twitter",))
    job = drive(db, scheduler, runner, clock, submit_post(db, clock, post_id))
    assert job["status"] == "completed", job.get("error")
    assert len(sandbox.posts("twitter")) == 1
    account = db.social_accounts.find_one({"platform": "twitter"})
    assert account["status"] == "active"
    credentials = account["credentials"]
    assert credentials["access_token"] != tokens["twitter"]
    assert credentials["refresh_token"] != "rt-secret"  # rotated
    assert credentials["token_expires_at"] == clock.now + dt.timedelta(seconds=7200)
    runner.audit_log.flush()
    everything = repr(list(db.audit_log.find())) + repr(job)
    assert credentials["access_token"] not in everything
    assert credentials["refresh_token"] not in everything


def test_refused_refresh_fails_the_target_and_expires_the_account(
    db, sandbox, scheduler, runner, clock
):
    tokens = connect_accounts(db, sandbox, ("twitter",))  # refresh token "rt-secret" unknown
    sandbox.state.expire_token(tokens["twitter"])
    post_id = new_post(db, clock.now, platforms=("twitter",))
    job = drive(db, scheduler, runner, clock, submit_post(db, clock, post_id))
    assert job["status"] == "failed"
    assert "refresh token refused" in targets(db, post_id)["twitter"]["error"]
    assert db.social_accounts.find_one({"platform": "twitter"})["status"] == "expired"
    assert sandbox.posts() == []
