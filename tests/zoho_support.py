"""Running Zoho/email/webhook actors through the real lifecycle, one run at a time."""

from __future__ import annotations

import datetime as dt
from typing import Any

from worker.actors.lifecycle import Runner
from worker.api import submit, submit_platform_job
from worker.db import names
from worker.db.jobs import run_key_for
from worker.jobtypes import JOB_TYPES


class Killed(BaseException):
    """Stands for SIGKILL inside a test: escapes the lifecycle like a dead process would."""


def claim_and_run(runner: Runner, job_id: str) -> dict[str, Any]:
    """Claim ``job_id`` (whatever its due time), execute it once, return the stored document."""
    jobs = runner.db[names.SCHEDULED_JOBS]
    now = runner.clock()
    jobs.update_one(
        {"job_id": job_id, "status": {"$in": ["pending", "processing"]}},
        {
            "$set": {
                "status": "processing",
                "lease": {"owner": "test", "until": now + dt.timedelta(minutes=5),
                          "started_at": None},
                "updated_at": now,
            },
            "$inc": {"epoch": 1},
        },
    )  # fmt: skip
    job = jobs.find_one({"job_id": job_id})
    runner.execute(job["job_type"], job_id, run_key_for(job), job["epoch"])
    runner.audit_log.flush()
    return jobs.find_one({"job_id": job_id})


def submit_and_run(
    runner: Runner, job_type: str, user_id: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """Internal job types are created as the platform creates them."""
    create = submit_platform_job if JOB_TYPES[job_type].internal else submit
    job = create(runner.db, job_type=job_type, user_id=user_id, payload=payload)
    return claim_and_run(runner, job["job_id"])
