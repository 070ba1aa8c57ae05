"""Console benchmark: answer times of the job list, a job page and the overview at N jobs.

Run ``python ops/bench/console.py`` (embedded engine, 10,000 and 100,000 jobs) or with
``--mongodb-url mongodb://…``. Jobs are seeded in bulk (``insert_many``) with a realistic mix:
statuses, eleven job types, 200 users, due times spread over 30 days, a run history on finished
jobs and three audit entries per job. Each answer is timed through the HTTP API in-process
(Starlette's test client: routing, auth, JSON encoding included), median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bson import ObjectId
from starlette.testclient import TestClient

from worker.console.auth import hash_token
from worker.db import names
from worker.db.client import open_embedded, open_mongodb
from worker.db.engine import Database
from worker.db.indexes import ensure_indexes
from worker.jobtypes import JOB_TYPES
from worker.settings import Settings
from worker.web.app import create_app

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
TOKEN = "bench-token"
CHUNK = 5_000
STATUSES = (
    ["completed"] * 60 + ["pending"] * 25 + ["failed"] * 10 + ["processing"] * 4 + ["cancelled"]
)


def seed(db: Database, n: int, rng: random.Random) -> str:
    """Insert ``n`` jobs (and their audit entries) in bulk; returns one failed job's id."""
    types = sorted(JOB_TYPES)
    sample_failed = ""
    for start in range(0, n, CHUNK):
        jobs, audit = [], []
        for i in range(start, min(n, start + CHUNK)):
            status = rng.choice(STATUSES)
            due = NOW + dt.timedelta(minutes=rng.randint(-30 * 1440, 3 * 1440))
            job_id = f"job_{i:07d}_{uuid.uuid4().hex[:8]}"
            doc: dict[str, Any] = {
                "_id": ObjectId(),
                "job_id": job_id,
                "user_id": f"user_{rng.randrange(200)}",
                "job_type": rng.choice(types),
                "payload": {},
                "status": status,
                "schedule": {"execute_at": due, "recurring": False},
                "attempts": 1,
                "max_attempts": 3,
                "created_at": due,
                "updated_at": due,
                "epoch": 1,
            }
            if status in ("completed", "failed"):
                doc["history"] = [
                    {
                        "run_key": f"{job_id}@x",
                        "run_at": due,
                        "started_at": due,
                        "finished_at": due,
                        "status": status,
                        "attempts": 1,
                        "duration_ms": 40,
                    }
                ]
            if status == "failed":
                doc["error"] = "boom"
                sample_failed = job_id
            jobs.append(doc)
            for action in ("job_dispatched", "job_started", f"job_{status}"):
                audit.append(
                    {
                        "user_id": doc["user_id"],
                        "action": action,
                        "resource_type": "scheduled_job",
                        "resource_id": job_id,
                        "details": {},
                        "user_agent": "bench",
                        "timestamp": due,
                    }
                )
        db[names.SCHEDULED_JOBS].insert_many(jobs, ordered=False)
        db[names.AUDIT_LOG].insert_many(audit, ordered=False)
    return sample_failed


def timed(call: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = call()
        times.append(time.perf_counter() - began)
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
    return statistics.median(times)


def measure(db: Database, n: int, repeat: int) -> dict[str, Any]:
    rng = random.Random(n)
    began = time.perf_counter()
    failed_id = seed(db, n, rng)
    seeded = time.perf_counter() - began
    settings = Settings(
        web_secret_key="bench", web_tokens={hash_token(TOKEN): {"name": "bench", "role": "viewer"}}
    )
    with TestClient(create_app(db, settings, clock=lambda: NOW)) as client:
        return _answers(client, n, seeded, failed_id, db, repeat)


def _answers(
    client: TestClient, n: int, seeded: float, failed_id: str, db: Database, repeat: int
) -> dict[str, Any]:
    """One event loop for every request, as under uvicorn (its worker threads are reused)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def get(path: str, **params: Any) -> Callable[[], Any]:
        return lambda: client.get(path, params=params, headers=headers)

    first = client.get("/api/v1/jobs", params={"status": "failed", "limit": 25}, headers=headers)
    cursor = first.json()["next_cursor"]
    if cursor is None:
        raise RuntimeError("too few failed jobs for a second page; raise --n")
    answers = {
        "job list (first page, 50)": get("/api/v1/jobs"),
        "job list (failed, page 2 of 25)": get(
            "/api/v1/jobs", status="failed", cursor=cursor, limit=25
        ),
        "job list (type + user)": get("/api/v1/jobs", job_type="noop", user_id="user_7"),
        "job page": get(f"/api/v1/jobs/{failed_id}"),
        "overview": get("/api/v1/overview"),
    }
    return {
        "jobs": n,
        "engine": db.server_info()["engine"],
        "seed_seconds": round(seeded, 1),
        "answers_ms": {
            name: round(timed(call, repeat) * 1000, 1) for name, call in answers.items()
        },
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mongodb-url", help="A real server (a scratch database is used).")
    parser.add_argument("--json", action="store_true", help="Print JSON only.")
    args = parser.parse_args(argv)
    results = []
    for n in args.n:
        folder = Path(tempfile.mkdtemp(prefix="mmw-bench-console-"))
        if args.mongodb_url:
            db = open_mongodb(args.mongodb_url, f"mmw_bench_console_{uuid.uuid4().hex[:8]}")
        else:
            db = open_embedded(str(folder), "bench")
        try:
            ensure_indexes(db)
            result = measure(db, n, args.repeat)
        finally:
            if args.mongodb_url:
                db.drop()
            shutil.rmtree(folder, ignore_errors=True)
        results.append(result)
        if not args.json:
            print(
                f"{result['jobs']:>7} jobs on {result['engine']} (seeded in "
                f"{result['seed_seconds']} s):"
            )
            for name, ms in result["answers_ms"].items():
                print(f"    {name:<28} {ms:>9.1f} ms")
            sys.stdout.flush()
    if args.json:
        print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
