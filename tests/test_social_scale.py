"""500 posts over four platforms with 20% injected faults: each target once, or a clear failure.

The sandbox accepts duplicate texts here (no duplicate detection), so a double post would be
visible in its records instead of being refused for us.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from tests.test_lifecycle import message_args
from tests.test_social_actor import ACCOUNTS, LIMITER_REDIS
from worker.actors.lifecycle import Runner
from worker.api import submit
from worker.broker import declare_queues
from worker.jobtypes import JOB_TYPES
from worker.sandbox.server import Faults
from worker.sandbox.social import SocialSandboxServer, start_social_sandbox
from worker.scheduler import Scheduler
from worker.settings import Settings

pytestmark = pytest.mark.integration

#: 500 as the issue asks on a real server (MONGODB_TEST_URL). The embedded engine checks unique
#: indexes by scanning the collection on every update (quadratic in the number of jobs), so its
#: default run uses 60 posts; MMW_SOCIAL_SCALE_POSTS overrides either.
POSTS = int(
    os.environ.get("MMW_SOCIAL_SCALE_POSTS", "500" if os.environ.get("MONGODB_TEST_URL") else "60")
)
USERS = max(POSTS // 20, 1)


def faults() -> Faults:
    """20% of requests fail: rate limited, 500, slow answer, answer lost after the effect."""
    return Faults(
        rate_limit=0.05,
        server_error=0.05,
        timeout=0.05,
        after_effect_timeout=0.05,
        timeout_seconds=0.3,
        seed=7,
    )


@pytest.fixture
def sandbox(clock) -> Iterator[SocialSandboxServer]:
    server = start_social_sandbox(clock=clock, duplicate_platforms=(), ig_processing_polls=1)
    yield server
    server.stop()


@pytest.fixture
def scale_settings(settings: Settings, sandbox: SocialSandboxServer) -> Iterator[Settings]:
    """Settings pointing at the sandbox; the limiter's keys live in this test's namespace."""
    yield settings.model_copy(
        update={
            **sandbox.settings_overrides(),
            "social_limits_redis_url": LIMITER_REDIS,
            "http_timeout_seconds": 0.15,
            "instagram_poll_interval": 0.0,
            "social_reconcile_grace_seconds": 0.0,
            "claim_batch_size": POSTS,
        }
    )
    client = redis.Redis.from_url(LIMITER_REDIS)
    keys = list(client.scan_iter(match=f"{settings.broker_namespace}:social:*"))
    if keys:
        client.delete(*keys)


@pytest.mark.timeout(3000)
def test_500_posts_with_faults_publish_exactly_once(
    db, sandbox, scale_settings, stub_broker, clock
):
    settings = scale_settings
    for user in range(USERS):  # 20 posts per user: within every platform's daily limit
        for platform, account_id in ACCOUNTS.items():
            token = sandbox.state.add_account(platform, f"{account_id}{user:02d}")
            db.social_accounts.insert_one(
                {
                    "user_id": f"user_{user:02d}",
                    "platform": platform,
                    "account_id": f"{account_id}{user:02d}",
                    "credentials": {"access_token": token},
                    "status": "active",
                }
            )
    posts = []
    for i in range(POSTS):
        user = i % USERS
        image = i % 2 == 1  # X and LinkedIn take text; Instagram needs an image
        platforms = ["facebook", "instagram"] if image else ["facebook", "twitter", "linkedin"]
        post_id = f"scale_{i:03d}"
        db.social_posts.insert_one(
            {
                "post_id": post_id,
                "user_id": f"user_{user:02d}",
                "platforms": [
                    {"platform": p, "account_id": f"{ACCOUNTS[p]}{user:02d}"} for p in platforms
                ],
                "content": {
                    "message": f"Post number {i} of the scale run",
                    "images": ["https://cdn.example/p.jpg"] if image else [],
                },
            }
        )
        submit(
            db,
            job_type="post_social",
            user_id=f"user_{user:02d}",
            payload={"post_id": post_id},
            execute_at=clock.now,
            now=clock.now,
            max_attempts=10,
        )
        posts.append(post_id)
    sandbox.faults = faults()

    declare_queues(stub_broker, (t.queue for t in JOB_TYPES.values()))
    scheduler = Scheduler(db, stub_broker, settings, clock=clock)
    runner = Runner(db, settings, clock=clock)
    try:
        with ThreadPoolExecutor(int(os.environ.get("MMW_SCALE_THREADS", "6"))) as pool:
            for _ in range(40):
                scheduler.tick()
                running = db.scheduled_jobs.find({"status": "processing"})
                list(
                    pool.map(lambda job: runner.execute("post_social", *message_args(job)), running)
                )
                # The reconcile grace, in real time: a request the client gave up on (the
                # sandbox's slow answers) still takes effect up to timeout_seconds later, and the
                # next round's lookups must see it (grace_seconds is 0 on the hand clock here).
                time.sleep(faults().timeout_seconds)
                pending = db.scheduled_jobs.find(
                    {"status": "pending"}, sort=[("schedule.execute_at", -1)], limit=1
                )
                if not pending:
                    break
                latest = pending[0]["schedule"]["execute_at"]  # every retry is due next round
                clock.now = max(clock.now, latest) + dt.timedelta(seconds=1)
    finally:
        runner.close()
        sandbox.faults = Faults()

    jobs = db.scheduled_jobs.find({"job_type": "post_social"})
    assert Counter(j["status"] for j in jobs).keys() <= {"completed", "failed"}
    copies = Counter((p.platform, p.text) for p in sandbox.posts())
    assert max(copies.values()) == 1, [k for k, n in copies.items() if n > 1][:5]
    by_id = {p.post_id: p for p in sandbox.posts()}
    statuses: Counter[str] = Counter()
    for doc in db.social_posts.find({"post_id": {"$in": posts}}):
        text = doc["content"]["message"]
        for target in doc["platforms"]:
            status = target["status"]
            statuses[status] += 1
            on_platform = copies[(target["platform"], text)]
            if status == "published":
                assert by_id[target["platform_post_id"]].text == text
            elif status == "failed":
                assert target["error"] and on_platform == 0
            else:
                assert status == "needs_review" and target["error"]
    reasons = Counter(
        (t["platform"], t["status"], (t.get("error") or "")[:70])
        for doc in db.social_posts.find({"post_id": {"$in": posts}})
        for t in doc["platforms"]
        if t["status"] != "published"
    )
    print(reasons.most_common(8))
    total = sum(statuses.values())
    assert total == POSTS // 2 * 3 + POSTS // 2 * 2
    assert statuses["published"] >= total * 0.95, statuses
    print(dict(statuses), len(sandbox.requests), "requests")
