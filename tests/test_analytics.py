"""The analytics rollup: aggregation into analytics_data, idempotent, through the lifecycle."""

from __future__ import annotations

import datetime as dt

import pytest

from worker.analytics import assemble, rollup

DAY = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)


@pytest.fixture
def data(db):
    at = DAY + dt.timedelta(hours=10)
    db.social_posts.insert_many(
        [
            {
                "post_id": "p1",
                "user_id": "u1",
                "campaign_id": "c1",
                "platforms": [
                    {
                        "platform": "facebook",
                        "status": "published",
                        "published_at": at,
                        "metrics": {"reach": 70, "engagement": 6, "impressions": 90, "likes": 5},
                    },
                    {
                        "platform": "twitter",
                        "status": "published",
                        "published_at": at,
                        "metrics": {"reach": 30, "engagement": 4, "impressions": 60, "likes": 3},
                    },
                    {"platform": "linkedin", "status": "failed", "error": "x"},
                ],
                # The sum over the post's platforms, as sync_social_metrics writes it.
                "analytics": {"reach": 100, "engagement": 10, "impressions": 150, "likes": 8},
            },
            {
                "post_id": "p2",
                "user_id": "u1",
                "platforms": [
                    {
                        "platform": "facebook",
                        "status": "published",
                        "published_at": at,
                        "metrics": {"reach": 50, "engagement": 5, "impressions": 60},
                    }
                ],
                "analytics": {"reach": 50, "engagement": 5, "impressions": 60},
            },
            {
                "post_id": "p3-not-synced-yet",
                "user_id": "u1",
                "platforms": [{"platform": "twitter", "status": "published", "published_at": at}],
                "analytics": None,
            },
            {
                "post_id": "other-user",
                "user_id": "u2",
                "platforms": [
                    {
                        "platform": "facebook",
                        "status": "published",
                        "published_at": at,
                        "metrics": {"reach": 999},
                    }
                ],
                "analytics": {"reach": 999},
            },
        ]
    )
    db.email_campaigns.insert_one(
        {
            "campaign_id": "e1",
            "user_id": "u1",
            "marketing_campaign_id": "c1",
            "status": "sent",
            "sent_at": at,
            "analytics": {"sent": 100, "delivered": 80, "opened": 20, "clicked": 8},
        }
    )
    db.zoho_crm_records.insert_many(
        [
            {"user_id": "u1", "module": "Leads", "record_id": "l1", "data": {}, "created_at": at},
            {
                "user_id": "u1",
                "module": "Contacts",
                "record_id": "c1",
                "data": {},
                "created_at": at,
            },
            {
                "user_id": "u1",
                "module": "Deals",
                "record_id": "d1",
                "data": {"Stage": "Closed Won", "Amount": 1200.5},
                "created_at": at,
            },
            {
                "user_id": "u1",
                "module": "Deals",
                "record_id": "d2",
                "data": {"Stage": "Negotiation", "Amount": 50},
                "created_at": at,
            },
        ]
    )


def test_rollup_writes_the_schema_metrics_and_is_idempotent(db, data, clock):
    summary = rollup(db, "u1", end_day=DAY.date(), days=1, campaign_id=None, now=clock.now)
    assert summary["posts_published"] == 4 and summary["campaigns_sent"] == 1
    first = db.analytics_data.find_one({"user_id": "u1", "date": DAY, "campaign_id": None})
    metrics = first["metrics"]
    social = metrics["social"]
    assert social["posts_published"] == 4  # publications: p1 twice, p2, p3
    facebook, twitter = social["by_platform"]["facebook"], social["by_platform"]["twitter"]
    assert facebook["posts_published"] == 2 and twitter["posts_published"] == 2
    # Each platform's own figures (p1's facebook + p2; p1's twitter + nothing synced for p3).
    assert (facebook["reach"], facebook["engagement"], facebook["likes"]) == (70 + 50, 11, 5)
    assert (twitter["reach"], twitter["impressions"], twitter["likes"]) == (30, 60, 3)
    assert social["by_platform"]["linkedin"] == {"posts_published": 0}
    # Every post's reach once: p1 100 (70 + 30), p2 50, p3 0; the other user's not at all.
    assert social["total_reach"] == 150
    assert social["total_engagement"] == 15 and social["total_impressions"] == 210
    assert metrics["email"] == {
        "campaigns_sent": 1,
        "emails_delivered": 80,
        "open_rate": 0.25,
        "click_rate": 0.1,
        "conversions": 0,
    }
    assert metrics["crm"] == {
        "new_leads": 1,
        "new_contacts": 1,
        "deals_closed": 1,
        "revenue": 1200.5,
    }
    rollup(db, "u1", end_day=DAY.date(), days=1, campaign_id=None, now=clock.advance(hours=1))
    assert db.analytics_data.count_documents({"user_id": "u1"}) == 1
    again = db.analytics_data.find_one({"user_id": "u1"})
    assert again["metrics"] == metrics and again["created_at"] == first["created_at"]


def test_rollup_per_campaign(db, data, clock):
    rollup(db, "u1", end_day=DAY.date(), days=1, campaign_id="c1", now=clock.now)
    doc = db.analytics_data.find_one({"user_id": "u1", "campaign_id": "c1"})
    assert doc["metrics"]["social"]["posts_published"] == 2
    assert doc["metrics"]["social"]["total_reach"] == 100  # p1 only, once
    assert doc["metrics"]["email"]["campaigns_sent"] == 1


def test_days_without_data_get_zero_documents():
    days = ["2026-11-23", "2026-11-24"]
    result = assemble(days, [], [], [])
    assert set(result) == set(days)
    assert result["2026-11-23"]["social"]["posts_published"] == 0
    assert result["2026-11-23"]["email"]["open_rate"] == 0.0


def test_sync_analytics_runs_as_a_job(db, data, settings, clock, stub_broker):
    from worker.actors.analytics import sync_analytics
    from worker.actors.lifecycle import Runner
    from worker.api import submit
    from worker.broker import declare_queues
    from worker.db.jobs import run_key_for
    from worker.scheduler import Scheduler

    declare_queues(stub_broker, ["analytics"])
    job = submit(
        db,
        job_type="sync_analytics",
        user_id="u1",
        payload={"date": "2026-11-24", "days": 1},
        now=clock.now,
    )
    Scheduler(db, stub_broker, settings, clock=clock).tick()
    claimed = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
    runner = Runner(db, settings, clock=clock, handlers={"sync_analytics": sync_analytics})
    runner.execute("sync_analytics", job["job_id"], run_key_for(claimed), claimed["epoch"])
    runner.close()
    done = db.scheduled_jobs.find_one({"job_id": job["job_id"]})
    assert done["status"] == "completed"
    assert done["result"]["posts_published"] == 4


def test_concurrent_rollups_make_one_document_per_day(db, data, clock):
    """Workers racing on the same rollup (unique index + retried upsert): one document a day."""
    import threading

    barrier = threading.Barrier(4)
    errors = []

    def run():
        barrier.wait()
        try:
            rollup(db, "u1", end_day=DAY.date(), days=3, campaign_id=None, now=clock.now)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert db.analytics_data.count_documents({"user_id": "u1", "campaign_id": None}) == 3
