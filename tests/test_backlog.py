"""Backlog per queue, oldest due age, paused jobs and jobs needing review: queries and gauges."""

from __future__ import annotations

import datetime as dt

from prometheus_client import REGISTRY, generate_latest

from tests.helpers import job_doc
from worker import metrics
from worker.api import pause
from worker.backlog import jobs_needing_review, paused_jobs, queue_backlog
from worker.broker import broker_middleware
from worker.console.queries import review_queue
from worker.scheduler import Scheduler


def test_backlog_counts_due_and_unstarted_per_queue(db, clock):
    now = clock.now
    hour = dt.timedelta(hours=1)
    db.scheduled_jobs.insert_many(
        [
            job_doc("post_social", at=now - hour, payload={"post_id": "p"}),
            job_doc("send_email", at=now - 2 * hour, payload={"campaign_id": "c"}),
            job_doc("noop", at=now - 3 * hour, queue="priority"),  # its own queue
            job_doc("noop", at=now + hour),  # not due yet
            job_doc("noop", at=now - 5 * hour, paused=True),  # held by an operator
            job_doc("noop", at=now - 5 * hour, user_id="held_user"),
            job_doc("post_to_myspace", at=now - hour),  # a hand-written unknown type
            job_doc(
                "post_social",
                at=now - 4 * hour,
                status="processing",
                lease={"owner": "s", "until": now, "started_at": None},
            ),
            job_doc(  # running: not waiting
                "post_social",
                at=now - 6 * hour,
                status="processing",
                lease={"owner": "s", "until": now, "started_at": now},
            ),
        ]
    )
    rows = {r.queue: r for r in queue_backlog(db, now, paused_users=["held_user"])}
    assert set(rows) == {"social", "email", "priority", "unknown"}
    assert (rows["social"].due, rows["social"].unstarted) == (1, 1)
    assert rows["social"].oldest_age(now) == 4 * 3600
    assert (rows["email"].due, rows["email"].oldest_age(now)) == (1, 2 * 3600)
    assert rows["priority"].due == 1 and rows["unknown"].due == 1
    assert paused_jobs(db, paused_users=["held_user"]) == 2
    assert paused_jobs(db) == 1


def test_needing_review_counts_posts_with_an_unconfirmed_target(db, clock):
    db.social_posts.insert_many(
        [
            {"post_id": "a", "platforms": [{"platform": "x", "status": "needs_review"}]},
            {
                "post_id": "b",
                "platforms": [
                    {"platform": "x", "status": "published"},
                    {"platform": "linkedin", "status": "needs_review"},
                ],
            },
            {"post_id": "c", "platforms": [{"platform": "x", "status": "published"}]},
        ]
    )
    now = clock.now
    db.email_campaigns.insert_many(
        [
            {"campaign_id": "e1", "status": "draft", "send_intent": {"stage": "created",
             "at": now - dt.timedelta(minutes=10)}},
            {"campaign_id": "e2", "status": "draft", "send_intent": {"stage": "create",
             "at": now - dt.timedelta(minutes=1)}},  # may still be in flight
            {"campaign_id": "e3", "status": "sent", "send_intent": {"stage": "created",
             "at": now - dt.timedelta(hours=1)}},  # confirmed after all
            {"campaign_id": "e4", "status": "draft", "send_intent": {"stage": "done"}},
        ]
    )  # fmt: skip
    assert jobs_needing_review(db, now) == {"social_post": 2, "email_send": 1}
    kinds = sorted(item.kind for item in review_queue(db, now))
    assert kinds == ["email_send", "social_target", "social_target"]  # the console's same list


def test_scheduler_exports_the_gauges_and_no_created_series(db, settings, clock):
    from dramatiq.brokers.stub import StubBroker

    now = clock.now
    db.scheduled_jobs.insert_many(
        [
            job_doc("send_email", at=now - dt.timedelta(minutes=10), payload={"campaign_id": "c"}),
            job_doc("noop", at=now - dt.timedelta(minutes=1)),
        ]
    )
    pause(db, job_type="noop", now=now)
    scheduler = Scheduler(db, StubBroker(middleware=broker_middleware()), settings, clock=clock)
    scheduler.refresh_gauges(now)
    assert metrics.QUEUE_BACKLOG.labels("email", "due")._value.get() == 1
    assert metrics.QUEUE_BACKLOG.labels("default", "due")._value.get() == 0  # paused type
    assert metrics.QUEUE_BACKLOG.labels("agents", "due")._value.get() == 0  # nothing waits
    assert metrics.OLDEST_DUE_AGE.labels("email")._value.get() == 600
    assert metrics.JOBS_PAUSED._value.get() == 1
    assert metrics.DUE_NOT_DISPATCHED._value.get() == 1
    exposition = generate_latest(REGISTRY).decode()
    assert "_created" not in exposition
    assert 'mmw_build_info{dramatiq="' in exposition
