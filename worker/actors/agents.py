"""``run_campaign`` and ``agent_task``: the AI agent team as jobs (worker.agents.orchestrator)."""

from __future__ import annotations

from typing import Any

from worker.actors.lifecycle import JobContext, job_actor
from worker.agents.orchestrator import Orchestrator
from worker.jobtypes import AgentTaskPayload, RunCampaignPayload


@job_actor("run_campaign")
def run_campaign(ctx: JobContext) -> dict[str, Any]:
    payload = ctx.payload
    assert isinstance(payload, RunCampaignPayload)
    return Orchestrator(ctx, payload.campaign_id).run_campaign()


@job_actor("agent_task")
def agent_task(ctx: JobContext) -> dict[str, Any]:
    payload = ctx.payload
    assert isinstance(payload, AgentTaskPayload)
    return Orchestrator(ctx, payload.campaign_id).agent_task(payload.task_id)
