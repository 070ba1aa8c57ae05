"""``sync_analytics``: the daily rollup (one-off, or recurring with a cron expression).

With ``campaign_id`` the campaign (``campaigns``) must be the job's user's.
"""

from __future__ import annotations

from typing import Any

from worker.actors.lifecycle import JobContext, job_actor
from worker.analytics import rollup
from worker.db import names
from worker.jobtypes import SyncAnalyticsPayload
from worker.tenancy import require_owner


@job_actor("sync_analytics")
def sync_analytics(ctx: JobContext) -> dict[str, Any]:
    payload = ctx.payload
    assert isinstance(payload, SyncAnalyticsPayload)
    if payload.campaign_id is not None:
        require_owner(
            ctx.db[names.CAMPAIGNS].find_one({"campaign_id": payload.campaign_id}, {"user_id": 1}),
            ctx.user_id,
            f"campaign {payload.campaign_id}",
        )
    return rollup(
        ctx.db,
        ctx.user_id,
        end_day=payload.date or ctx.now().date(),
        days=payload.days,
        campaign_id=payload.campaign_id,
        now=ctx.now(),
    )
