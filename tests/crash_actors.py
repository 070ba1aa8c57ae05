"""A plugin for the crash tests: the job type ``record`` logs every start and finish.

The worker processes import it through ``MMW_PLUGINS``; the ``executions`` collection then tells
how often each job's body ran and completed (and in which process), which is what "exactly
once" is measured on.
"""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import Field

from worker.actors.lifecycle import JobContext, job_actor
from worker.jobtypes import JobType, Payload, register_job_type

EXECUTIONS = "test_executions"


class RecordPayload(Payload):
    sleep_seconds: float = Field(default=0.0, ge=0)


register_job_type(
    JobType("record", RecordPayload, "default", max_attempts=5, time_limit_seconds=60)
)


@job_actor("record")
def record(ctx: JobContext) -> dict[str, Any]:
    log = ctx.db[EXECUTIONS]
    seen = {"job_id": ctx.job_id, "run_key": ctx.run_key, "pid": os.getpid()}
    log.insert_one({**seen, "event": "start"})
    payload = ctx.payload
    assert isinstance(payload, RecordPayload)
    time.sleep(payload.sleep_seconds)
    ctx.ensure_owner()
    log.insert_one({**seen, "event": "done"})
    return {"recorded": True}
