"""``sync_analytics``: the daily rollup (one-off, or recurring with a cron expression)."""

from __future__ import annotations

from typing import Any

from worker.actors.lifecycle import JobContext, job_actor
from worker.analytics import rollup
from worker.jobtypes import SyncAnalyticsPayload


@job_actor("sync_analytics")
def sync_analytics(ctx: JobContext) -> dict[str, Any]:
    payload = ctx.payload
    assert isinstance(payload, SyncAnalyticsPayload)
    return rollup(
        ctx.db,
        ctx.user_id,
        end_day=payload.date or ctx.now().date(),
        days=payload.days,
        campaign_id=payload.campaign_id,
        now=ctx.now(),
    )
