"""The scheduler's poll on a real Redis broker, time driven by hand."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import job_doc
from worker.api import pause, resume
from worker.broker import Dispatch, message_exists
from worker.clock import wall_clock
from worker.db.jobs import JobStore, run_key_for
from worker.scheduler import Scheduler


@pytest.fixture
def scheduler(db, redis_broker, settings, clock):
    return Scheduler(db, redis_broker, settings, clock=clock, owner="s1")


def queued(broker, queue="default") -> list[str]:
    """Job ids of the messages waiting in a Redis queue, in order."""
    import json

    ids = broker.client.lrange(f"{broker.namespace}:{queue}", 0, -1)
    raw = broker.client.hmget(f"{broker.namespace}:{queue}.msgs", ids) if ids else []
    return [json.loads(r)["args"][0] for r in raw]


def insert(db, clock, n=1, **fields):
    docs = [job_doc(at=clock.now - dt.timedelta(seconds=i), **fields) for i in range(n)]
    db.scheduled_jobs.insert_many(docs)
    return docs


def status(db, doc):
    return db.scheduled_jobs.find_one({"job_id": doc["job_id"]})


def test_claims_due_jobs_oldest_first_in_batches(db, scheduler, redis_broker, clock, settings):
    settings.claim_batch_size = 3
    docs = insert(db, clock, n=5)
    future = insert(db, clock, schedule={"execute_at": clock.now + dt.timedelta(minutes=5)})
    report = scheduler.tick()
    assert (report.claimed, report.dispatched) == (3, 3)
    oldest_first = [d["job_id"] for d in sorted(docs, key=lambda d: d["schedule"]["execute_at"])]
    assert queued(redis_broker) == oldest_first[:3]
    assert scheduler.tick().claimed == 2
    assert scheduler.tick().claimed == 0
    assert status(db, future[0])["status"] == "pending"
    job = status(db, docs[0])
    assert job["status"] == "processing" and job["epoch"] == 1 and job["lease"]["owner"] == "s1"


def test_second_replica_gets_nothing_twice(db, redis_broker, settings, clock):
    insert(db, clock, n=10)
    a = Scheduler(db, redis_broker, settings, clock=clock, owner="a")
    b = Scheduler(db, redis_broker, settings, clock=clock, owner="b")
    assert a.tick().claimed + b.tick().claimed == 10
    assert len(set(queued(redis_broker))) == 10 == len(queued(redis_broker))


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"job_type": "post_to_myspace"}, "unknown job_type 'post_to_myspace'"),
        ({"user_id": None}, "field 'user_id' must be a non-empty string, got missing"),
        ({"user_id": 42}, "field 'user_id' must be a non-empty string, got int 42"),
        ({"payload": "hello"}, "field 'payload' must be an object, got str"),
        ({"job_type": "post_social", "payload": {}}, "payload.post_id: Field required"),
        ({"payload": {"sleep_secs": 1}}, "payload.sleep_secs: Extra inputs are not permitted"),
        ({"max_attempts": "three"}, "field 'max_attempts' must be a whole number from 1 to 100"),
        ({"schedule": "tomorrow"}, "field 'schedule' must be an object"),
        (
            {"schedule": {"execute_at": None, "cron_expression": "61 * * * *"}},
            "invalid cron expression '61 * * * *'",
        ),
        (
            {
                "schedule": {
                    "execute_at": None,
                    "cron_expression": "0 9 * * *",
                    "timezone": "Mars/Base",
                }
            },
            "unknown time zone 'Mars/Base'",
        ),
        ({"payload": {"blob": "x" * 1_048_576}}, "payload is 1,048,"),
        (
            {"schedule": {"execute_at": None, "max_lateness_seconds": 1e300}},
            "field 'schedule.max_lateness_seconds' must be a number of seconds from 0",
        ),
        ({"attempts": -1}, "field 'attempts' must be a whole number from 0"),
        ({"max_attempts": 1000}, "field 'max_attempts' must be a whole number from 1 to 100"),
        (
            {
                "job_type": "deliver_webhook",
                "payload": {"webhook_id": "w", "event": "e", "event_id": "x"},
            },
            "job_type 'deliver_webhook' is internal",
        ),
    ],
)
def test_bad_documents_fail_with_a_readable_error(db, scheduler, clock, fields, error):
    healthy = insert(db, clock, n=3)
    bad = job_doc(at=clock.now - dt.timedelta(hours=1), **fields)
    if isinstance(bad.get("schedule"), dict) and bad["schedule"].get("execute_at") is None:
        bad["schedule"]["execute_at"] = clock.now - dt.timedelta(hours=1)
    db.scheduled_jobs.insert_one(bad)
    report = scheduler.tick()
    assert report.invalid == 1 and report.dispatched == 3
    failed = status(db, bad)
    assert failed["status"] == "failed"
    assert error in failed["error"]
    assert all(status(db, d)["status"] == "processing" for d in healthy)


def test_hand_written_documents_without_status_or_due_time(db, scheduler, clock):
    no_status = job_doc(at=clock.now)
    del no_status["status"]
    no_due = job_doc(at=clock.now)
    no_due["schedule"] = {"recurring": False}
    recurring = job_doc(at=clock.now)
    recurring["schedule"] = {"cron_expression": "*/5 * * * *"}
    weird_status = job_doc(at=clock.now, status="PENDING")
    db.scheduled_jobs.insert_many([no_status, no_due, recurring, weird_status])
    report = scheduler.tick()
    assert status(db, no_due)["status"] == "failed"
    assert "schedule.execute_at" in status(db, no_due)["error"]
    assert status(db, weird_status)["status"] == "failed"
    assert "'PENDING' cannot be scheduled" in status(db, weird_status)["error"]
    adopted = status(db, recurring)
    assert adopted["status"] == "pending"
    assert adopted["schedule"]["execute_at"] == clock.now + dt.timedelta(minutes=5)
    assert adopted["schedule"]["timezone"] == "UTC"
    assert status(db, no_status)["status"] == "pending"
    assert report.dispatched == 0
    assert scheduler.tick().dispatched == 1  # the adopted one-off runs on the next poll


def test_a_hand_written_document_with_huge_numbers_does_not_stop_intake(db, scheduler, clock):
    huge = job_doc(at=clock.now)
    del huge["status"]
    huge["schedule"]["max_lateness_seconds"] = 1e300
    healthy = job_doc(at=clock.now)
    del healthy["status"]
    db.scheduled_jobs.insert_many([huge, healthy])
    report = scheduler.tick()
    assert report.invalid == 1 and report.adopted == 1
    assert "schedule.max_lateness_seconds" in status(db, huge)["error"]
    assert status(db, healthy)["status"] == "pending"


def test_recurring_job_without_timezone_uses_the_users(db, scheduler, clock):
    db.users.insert_one({"user_id": "user_1", "preferences": {"timezone": "America/New_York"}})
    job = job_doc(at=clock.now)
    job["schedule"] = {"cron_expression": "0 9 * * *"}
    db.scheduled_jobs.insert_one(job)
    scheduler.tick()
    adopted = status(db, job)
    assert adopted["schedule"]["timezone"] == "America/New_York"
    local = clock.now.astimezone(ZoneInfo("America/New_York"))
    nine = local.replace(hour=9, minute=0, second=0, microsecond=0)
    nine += dt.timedelta(days=1) if nine <= local else dt.timedelta(0)  # wall-clock days
    assert adopted["schedule"]["execute_at"] == nine.astimezone(dt.UTC)


def test_late_one_off_fails_instead_of_running(db, scheduler, clock):
    late = job_doc("post_social", at=clock.now - dt.timedelta(hours=6), payload={"post_id": "p1"})
    allowed = job_doc(
        "post_social",
        at=clock.now - dt.timedelta(hours=6),
        payload={"post_id": "p2"},
        schedule={"execute_at": clock.now - dt.timedelta(hours=6), "max_lateness_seconds": 86400},
    )
    db.scheduled_jobs.insert_many([late, allowed])
    report = scheduler.tick()
    assert (report.too_late, report.dispatched) == (1, 1)
    due = (clock.now - dt.timedelta(hours=6)).isoformat()
    assert status(db, late)["error"].startswith(f"too late: due at {due}")
    assert status(db, allowed)["status"] == "processing"


def test_missed_fires_after_downtime_run_once_by_default(db, scheduler, clock):
    job = job_doc(
        at=clock.now,
        schedule={
            "execute_at": clock.now - dt.timedelta(hours=5),
            "cron_expression": "0 * * * *",
            "recurring": True,
        },
    )
    db.scheduled_jobs.insert_one(job)
    assert scheduler.tick().dispatched == 1
    claimed = status(db, job)
    assert claimed["run_at"] == clock.now  # the latest missed fire (12:00), once
    assert claimed["missed_runs"] == 5


def test_skip_policy_runs_nothing_and_waits_for_next_fire(db, scheduler, clock):
    job = job_doc(
        at=clock.now,
        schedule={
            "execute_at": clock.now - dt.timedelta(hours=2),
            "cron_expression": "30 * * * *",
            "catch_up": "skip",
        },
    )
    db.scheduled_jobs.insert_one(job)
    report = scheduler.tick()
    assert (report.skipped, report.dispatched) == (1, 0)
    waiting = status(db, job)
    assert waiting["status"] == "pending"
    assert waiting["schedule"]["execute_at"] == clock.now + dt.timedelta(minutes=30)


def test_overlap_allow_spawns_one_run_per_fire(db, scheduler, clock, redis_broker):
    job = job_doc(
        at=clock.now,
        schedule={"execute_at": clock.now, "cron_expression": "*/10 * * * *", "overlap": "allow"},
    )
    db.scheduled_jobs.insert_one(job)
    assert scheduler.tick().spawned == 1
    parent = status(db, job)
    assert parent["status"] == "pending"
    assert parent["schedule"]["execute_at"] == clock.now + dt.timedelta(minutes=10)
    child = db.scheduled_jobs.find_one({"parent_job_id": job["job_id"]})
    assert child["job_id"] == f"{job['job_id']}@{clock.now:%Y-%m-%dT%H:%M:%S}.000Z"
    assert scheduler.tick().dispatched == 1
    assert queued(redis_broker) == [child["job_id"]]


def test_paused_jobs_users_and_types_are_not_claimed(db, scheduler, clock):
    a, _ = insert(db, clock, n=2)
    other_user = insert(db, clock, user_id="user_2")[0]
    pause(db, job_id=a["job_id"])
    pause(db, user_id="user_2")
    assert scheduler.tick().claimed == 1  # only b
    pause(db, job_type="noop")
    resume(db, user_id="user_2")
    assert scheduler.tick().claimed == 0
    resume(db, job_type="noop")
    assert scheduler.tick().claimed == 1  # other_user
    assert status(db, other_user)["status"] == "processing"
    resume(db, job_id=a["job_id"])
    assert scheduler.tick().claimed == 1


def test_lost_message_is_sent_again_but_a_queued_one_waits(
    db, scheduler, redis_broker, clock, settings
):
    lost, waiting = insert(db, clock, n=2)
    assert scheduler.tick().dispatched == 2
    lost_job = status(db, lost)
    item = Dispatch("noop", "default", lost["job_id"], run_key_for(lost_job), lost_job["epoch"])
    assert message_exists(redis_broker, [item]) == [True]
    redis_broker.client.hdel(f"{redis_broker.namespace}:default.msgs", item.redis_id)  # lost
    clock.advance(seconds=settings.queued_lease_seconds + 1)
    report = scheduler.tick()
    assert (report.recovered, report.extended) == (1, 1)
    # Sent again under the same epoch: a copy that still existed somewhere would not be stale.
    assert status(db, lost)["epoch"] == 1 and status(db, waiting)["epoch"] == 1
    assert message_exists(redis_broker, [item]) == [True]
    assert status(db, waiting)["lease"]["until"] > clock.now


def test_run_lost_with_its_worker_is_retried_then_failed(db, scheduler, clock, settings):
    from worker.db.jobs import JobStore

    doc = insert(db, clock, max_attempts=2)[0]
    store = JobStore(db)
    lease = dt.timedelta(seconds=settings.lease_seconds)
    for _ in range(2):
        scheduler.tick()
        job = status(db, doc)
        assert store.start(doc["job_id"], job["epoch"], worker="w", now=clock.now, lease=lease)
        clock.advance(seconds=settings.lease_seconds + 1)  # the worker died: no heartbeat
    report = scheduler.tick()
    job = status(db, doc)
    assert job["status"] == "failed"
    assert "worker lost during the run (lease expired) after 2 attempts" in job["error"]
    assert report.recovered == 0


def test_broker_down_releases_the_batch(db, settings, clock):
    import redis as redis_lib
    from dramatiq.brokers.redis import RedisBroker

    from worker.broker import broker_middleware

    dead = RedisBroker(
        client=redis_lib.Redis(port=1, socket_connect_timeout=0.2), middleware=broker_middleware()
    )
    docs = insert(db, clock, n=3)
    report = Scheduler(db, dead, settings, clock=clock).tick()
    assert (report.dispatched, report.released) == (0, 3)
    assert all(status(db, d)["status"] == "pending" for d in docs)


def test_retention_purges_finished_one_offs(db):
    # Wall time only: MongoDB's TTL monitor also purges by the wall clock, so documents stamped
    # on a hand clock a year away could vanish before the assertions.
    now = wall_clock()
    old = job_doc(at=now, status="completed", purge_at=now + dt.timedelta(hours=1))
    fresh = job_doc(at=now, status="completed", purge_at=now + dt.timedelta(days=1))
    db.scheduled_jobs.insert_many([old, fresh])
    assert JobStore(db).purge_finished(now + dt.timedelta(hours=2)) == 1
    assert status(db, old) is None and status(db, fresh) is not None


def test_paused_jobs_do_not_count_as_due_but_not_dispatched(db, scheduler, clock):
    from worker import metrics

    insert(db, clock, n=2)
    insert(db, clock, user_id="user_2")
    pause(db, user_id="user_2")
    scheduler.refresh_gauges(clock.now)
    assert metrics.DUE_NOT_DISPATCHED._value.get() == 2  # the paused user's job is held, not stuck


# ------------------------------------------------------------------ every document judged alone
def test_claimed_document_without_job_id_fails_alone(db, scheduler, redis_broker, clock):
    healthy = insert(db, clock, n=3)
    bad = job_doc(at=clock.now - dt.timedelta(hours=1))
    del bad["job_id"]
    db.scheduled_jobs.insert_one(bad)
    report = scheduler.tick()
    assert (report.claimed, report.invalid, report.dispatched) == (4, 1, 3)
    assert db.scheduled_jobs.find_one({"_id": bad["_id"]})["status"] == "failed"
    assert sorted(queued(redis_broker)) == sorted(d["job_id"] for d in healthy)
    dispatched = {a["resource_id"] for a in db.audit_log.find({"action": "job_dispatched"})}
    assert dispatched == {d["job_id"] for d in healthy}  # the poll went on to its audit


def test_any_exception_while_judging_fails_that_document_only(
    db, scheduler, redis_broker, clock, monkeypatch
):
    import worker.decide as module  # the scheduler's pure verdict

    healthy = insert(db, clock, n=2)
    bad = insert(db, clock)[0]
    real = module.validate_job

    def explode(job, **kwargs):
        if job.get("job_id") == bad["job_id"]:
            raise OverflowError("cannot convert float infinity to integer")
        return real(job, **kwargs)

    monkeypatch.setattr(module, "validate_job", explode)
    report = scheduler.tick()
    assert report.dispatched == 2 and report.errors == [bad["job_id"]]
    failed = status(db, bad)
    assert failed["status"] == "failed"
    assert (
        failed["error"]
        == "scheduler error: OverflowError: cannot convert float infinity to integer"
    )
    assert sorted(queued(redis_broker)) == sorted(d["job_id"] for d in healthy)


def test_intake_survives_any_exception_from_one_document(db, scheduler, clock, monkeypatch):
    import worker.scheduler as module

    huge = job_doc(at=clock.now)
    huge["schedule"]["max_lateness_seconds"] = 1e300
    broken, fine = job_doc(at=clock.now), job_doc(at=clock.now)
    for doc in (huge, broken, fine):
        del doc["status"]
    db.scheduled_jobs.insert_many([huge, broken, fine])
    real = module.validate_job

    def explode(job, **kwargs):
        if job.get("job_id") == broken["job_id"]:
            raise RuntimeError("a bug")
        return real(job, **kwargs)

    monkeypatch.setattr(module, "validate_job", explode)
    scheduler.intake(clock.now, report := module.TickReport())
    assert status(db, fine)["status"] == "pending" and report.adopted >= 1
    assert status(db, broken)["status"] == "failed"
    assert status(db, broken)["error"] == "scheduler error: RuntimeError: a bug"
    assert status(db, huge)["status"] in ("failed", "pending")  # judged, never stuck


# ------------------------------------------------------------------ recovery
def lose_messages(redis_broker) -> None:
    """What a FLUSHDB does to this test's broker: every key of its namespace is gone."""
    from tests.conftest import delete_namespace

    delete_namespace(redis_broker.client, redis_broker.namespace)


def test_recovery_applies_the_claims_decisions(db, scheduler, redis_broker, clock):
    late = insert(db, clock, schedule={"execute_at": clock.now, "max_lateness_seconds": 60})[0]
    held = insert(db, clock)[0]
    assert scheduler.tick().dispatched == 2
    pause(db, job_id=held["job_id"])
    lose_messages(redis_broker)
    clock.advance(seconds=120)
    report = scheduler.tick()
    assert report.recovered == 2 and report.dispatched == 0 and queued(redis_broker) == []
    assert status(db, late)["status"] == "failed" and "too late" in status(db, late)["error"]
    assert status(db, held)["status"] == "pending"  # back to the queue of claims, paused
    resume(db, job_id=held["job_id"])
    assert scheduler.tick().dispatched == 1


def test_recovered_recurring_run_follows_its_catch_up_policy(db, scheduler, redis_broker, clock):
    # Fires at :30 (clock starts at 12:00); claimed on time at 12:30, then its message is lost.
    clock.advance(minutes=30)
    job = job_doc(
        at=clock.now,
        schedule={"execute_at": clock.now, "cron_expression": "30 * * * *", "catch_up": "skip"},
    )
    db.scheduled_jobs.insert_one(job)
    assert scheduler.tick().dispatched == 1
    lose_messages(redis_broker)
    clock.advance(hours=2)  # recovered long after its fire: "skip" says do not run it late
    report = scheduler.tick()
    assert (report.recovered, report.skipped, report.dispatched) == (1, 1, 0)
    waiting = status(db, job)
    assert waiting["status"] == "pending"
    assert waiting["schedule"]["execute_at"] == clock.now + dt.timedelta(minutes=60)


def test_dead_schedulers_unsent_claims_are_sent_in_seconds(db, scheduler, redis_broker, clock):
    from worker.db.jobs import JobStore
    from worker.db.schedulers import SchedulerRegistry

    scheduler.tick()  # this scheduler's first poll checks (and marks) the Redis data
    docs = insert(db, clock, n=3)
    SchedulerRegistry(db).beat("dead-one", clock.now)
    claimed = JobStore(db).claim_due(
        clock.now, owner="dead-one", limit=10, queued_lease=dt.timedelta(minutes=10)
    )
    assert len(claimed) == 3  # ... and then it was killed before sending
    clock.advance(seconds=10)
    assert scheduler.tick().recovered == 0  # still alive as far as anyone knows
    clock.advance(seconds=scheduler.settings.scheduler_dead_after_seconds)
    report = scheduler.tick()
    assert (report.recovered, report.dispatched) == (3, 3)
    assert sorted(queued(redis_broker)) == sorted(d["job_id"] for d in docs)
    assert {status(db, d)["epoch"] for d in docs} == {1}
    assert {status(db, d)["lease"]["owner"] for d in docs} == {"s1"}
    assert [r["_id"] for r in db.schedulers.find({})] == ["s1"]  # the dead one is forgotten


def test_sent_claims_of_a_dead_scheduler_are_left_queued(db, redis_broker, settings, clock):
    settings.queued_lease_seconds = 600  # the leases are far from expiring
    first = Scheduler(db, redis_broker, settings, clock=clock, owner="first")
    docs = insert(db, clock, n=2)
    assert first.tick().dispatched == 2  # sent, then the scheduler died
    clock.advance(seconds=settings.scheduler_dead_after_seconds + 1)
    other = Scheduler(db, redis_broker, settings, clock=clock, owner="other")
    report = other.tick()
    assert (report.recovered, report.extended) == (0, 2) and len(queued(redis_broker)) == 2
    assert {status(db, d)["lease"]["owner"] for d in docs} == {"other"}
    assert {status(db, d)["epoch"] for d in docs} == {1}
    assert [r["_id"] for r in db.schedulers.find({})] == ["other"]


def test_redis_data_loss_resends_queued_runs_at_once(db, scheduler, redis_broker, clock):
    docs = insert(db, clock, n=3)
    assert scheduler.tick().dispatched == 3
    assert scheduler.tick().recovered == 0  # the data was checked once: nothing to do
    lose_messages(redis_broker)
    report = scheduler.tick()  # same instant: no lease has expired
    assert (report.recovered, report.dispatched) == (3, 3)
    assert sorted(queued(redis_broker)) == sorted(d["job_id"] for d in docs)
    assert scheduler.tick().recovered == 0


def test_dead_workers_prefetch_goes_back_to_the_queue(db, scheduler, redis_broker, clock):
    from dramatiq.common import current_millis

    insert(db, clock, n=3)
    assert scheduler.tick().dispatched == 3
    # A worker fetched all three (its prefetch), then its heartbeat stopped long ago.
    stale = current_millis() - redis_broker.heartbeat_timeout - 1000
    redis_broker.scripts["dispatch"](
        keys=[redis_broker.namespace],
        args=["fetch", stale, "default", "deadworker", redis_broker.heartbeat_timeout,
              redis_broker.dead_message_ttl, 0, redis_broker._max_unpack_size(), 10],
    )  # fmt: skip
    assert queued(redis_broker) == []
    scheduler.tick()
    assert len(queued(redis_broker)) == 3  # handed back by the next recovery check, not in 600 s
    assert {status(db, d)["epoch"] for d in db.scheduled_jobs.find({})} == {1}


def test_attempt_lost_with_its_worker_stays_in_the_history(db, scheduler, clock, settings):
    from worker.audit import move_outbox
    from worker.db.jobs import JobStore

    doc = insert(db, clock, max_attempts=3)[0]
    scheduler.tick()
    job = status(db, doc)
    lease = dt.timedelta(seconds=settings.lease_seconds)
    assert JobStore(db).start(doc["job_id"], job["epoch"], worker="w", now=clock.now, lease=lease)
    clock.advance(seconds=settings.lease_seconds + 1)
    assert scheduler.tick().recovered == 1
    job = status(db, doc)
    assert job["epoch"] == 2 and job["attempts"] == 1
    (lost,) = job["history"]
    assert lost["status"] == "lost" and "worker lost" in lost["error"]
    assert lost["run_key"] == run_key_for(job)  # the retry is the same run
    move_outbox(db)
    recovered = db.audit_log.find_one({"action": "job_recovered"})
    assert recovered["details"]["reason"] == "worker_lost"


def test_a_failing_step_does_not_lose_the_poll(db, scheduler, redis_broker, clock, monkeypatch):
    import worker.scheduler as module

    def down(*args, **kwargs):
        raise ConnectionError("audit_log unreachable")

    monkeypatch.setattr(module, "move_outbox", down)
    insert(db, clock, n=2)
    report = scheduler.tick()
    assert report.dispatched == 2 and report.errors == [
        "audit: ConnectionError: audit_log unreachable"
    ]
    assert db.audit_log.count_documents({"action": "job_dispatched"}) == 2  # the buffer still went
    monkeypatch.undo()
    assert scheduler.flush_audit() == 2  # the claims' entries waited on their jobs


def test_each_start_is_a_new_owner_even_with_a_fixed_scheduler_id(db, redis_broker, settings):
    settings.scheduler_id = "sched-a"
    first, second = (Scheduler(db, redis_broker, settings) for _ in range(2))
    assert first.owner.startswith("sched-a#") and second.owner.startswith("sched-a#")
    assert first.owner != second.owner  # a restart never hides its predecessor's claims
