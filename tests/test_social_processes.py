"""Real ``mmw`` processes: four worker processes share one account's publish limit."""

from __future__ import annotations

import datetime as dt
import json
import signal
from collections.abc import Iterator

import pytest

from tests.processes import kill, process_env, start, wait_until
from tests.test_social_actor import ACCOUNTS, USER, connect_accounts, new_post
from worker.api import submit
from worker.clock import wall_clock
from worker.sandbox.social import SocialSandboxServer, start_social_sandbox

pytestmark = [pytest.mark.integration, pytest.mark.crash]


@pytest.fixture
def sandbox() -> Iterator[SocialSandboxServer]:
    server = start_social_sandbox(clock=wall_clock)
    yield server
    server.stop()


def test_four_worker_processes_never_exceed_the_account_limit(
    db, settings, redis_broker, sandbox, tmp_path
):
    limit, window, count = 2, 1.0, 8
    connect_accounts(db, sandbox, ("twitter",))
    now = dt.datetime.now(dt.UTC)
    jobs = [
        submit(
            db,
            job_type="post_social",
            user_id=USER,
            payload={"post_id": new_post(db, now, platforms=("twitter",))},
            execute_at=now,
            max_attempts=40,
        )["job_id"]
        for _ in range(count)
    ]
    env = process_env(
        settings,
        **{f"MMW_{k.upper()}": v for k, v in sandbox.settings_overrides().items()},
        MMW_SOCIAL_POST_LIMITS=json.dumps({"twitter": [limit, window]}),
        MMW_SOCIAL_LIMIT_MARGIN_SECONDS="0.1",
        MMW_HTTP_TIMEOUT_SECONDS="5",
    )
    log = tmp_path / "run.log"
    procs = [start(["scheduler"], env, log)]
    procs += [start(["worker", "--processes", "1", "--threads", "2"], env, log) for _ in range(4)]
    try:
        wait_until(
            lambda: (
                db.scheduled_jobs.count_documents(
                    {"job_id": {"$in": jobs}, "status": {"$in": ["completed", "failed"]}}
                )
                == count
            ),
            120,
            f"{count} post_social jobs ended",
            log,
        )
    finally:
        for proc in procs:
            kill(proc, signal.SIGTERM)
    ended = list(db.scheduled_jobs.find({"job_id": {"$in": jobs}}))
    assert {j["status"] for j in ended} == {"completed"}, [j.get("error") for j in ended]
    times = sorted(p.created_at for p in sandbox.posts("twitter"))
    assert len(times) == count
    assert {p.account_id for p in sandbox.posts("twitter")} == {ACCOUNTS["twitter"]}
    for i, first in enumerate(times):
        assert len([t for t in times[i:] if t < first + window]) <= limit, times
