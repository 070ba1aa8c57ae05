"""``noop``: does nothing (optionally sleeps); canaries, smoke tests and the benchmark."""

from __future__ import annotations

import time
from typing import Any

from worker.actors.lifecycle import JobContext, job_actor
from worker.jobtypes import NoopPayload


@job_actor("noop")
def noop(ctx: JobContext) -> dict[str, Any]:
    payload = ctx.payload
    assert isinstance(payload, NoopPayload)
    if payload.sleep_seconds:
        time.sleep(payload.sleep_seconds)
    return {"ok": True}
