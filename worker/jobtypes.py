"""The job type registry: what each ``job_type`` accepts and how it runs.

A :class:`JobType` names its payload model (validated at submit time and again when the scheduler
first sees a hand-written document), its Dramatiq queue (one per job family, so that slow LLM calls
never starve a post that is due), its attempt budget, time limit and optional maximum lateness.
Actors are bound to job types by name in ``worker.actors``; this module imports no actor, so the
submission API and the scheduler stay light.

Every text field of a payload has a length limit (ids: ``MAX_ID_CHARS``), so a payload is
bounded field by field as well as in total (``validation.MAX_PAYLOAD_BYTES``). An ``internal``
job type is created by the platform only (``api.submit_platform_job``), never for a user through
``api.submit`` or ``mmw jobs submit``: types that act on many users or sign data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "JOB_TYPES",
    "MAX_ID_CHARS",
    "JobType",
    "Payload",
    "get_job_type",
    "register_job_type",
]


#: Ids in payloads (post_id, campaign_id, webhook_id, ...): at most this many characters.
MAX_ID_CHARS = 200

#: A reference to a document by its id.
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]


class Payload(BaseModel):
    """Base of every payload model: unknown keys are errors, so typos fail loudly."""

    model_config = ConfigDict(extra="forbid")


class NoopPayload(Payload):
    """A job that does nothing: canaries, benchmarks, smoke tests."""

    sleep_seconds: float = Field(default=0.0, ge=0, le=3600)


class SyncAnalyticsPayload(Payload):
    """Roll up one UTC day (default: yesterday and today) into ``analytics_data``."""

    date: dt.date | None = None
    days: int = Field(default=2, ge=1, le=90)
    campaign_id: Id | None = None


class PostSocialPayload(Payload):
    post_id: Id


class SyncSocialMetricsPayload(Payload):
    days: int = Field(default=7, ge=1, le=90)


class SendEmailPayload(Payload):
    campaign_id: Id


class SyncEmailReportsPayload(Payload):
    campaign_id: Id | None = None


class ZohoSyncPayload(Payload):
    modules: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=lambda: ["Contacts", "Leads", "Deals", "Accounts", "Campaigns"],
        max_length=20,
    )
    full: bool = False


class RefreshZohoTokensPayload(Payload):
    margin_seconds: int = Field(default=900, ge=60, le=86400)


class DeliverWebhookPayload(Payload):
    webhook_id: Id
    event: Annotated[str, Field(min_length=1, max_length=100)]
    event_id: Annotated[str, Field(min_length=1, max_length=2 * MAX_ID_CHARS)]
    data: dict = Field(default_factory=dict)
    #: HMAC by which ``emit_event`` proves the event is the platform's (worker.webhooks).
    seal: str = Field(default="", max_length=64)


class RunCampaignPayload(Payload):
    campaign_id: Id


class AgentTaskPayload(Payload):
    campaign_id: Id
    task_id: Id


@dataclass(frozen=True)
class JobType:
    """How one ``job_type`` is validated and run."""

    name: str
    payload: type[Payload]
    queue: str
    max_attempts: int = 5
    time_limit_seconds: float = 300.0
    #: A one-off job later than this after its due time fails instead of running (None: never).
    max_lateness_seconds: float | None = None
    #: Created by the platform only (``api.submit_platform_job``), never for a user.
    internal: bool = False


JOB_TYPES: dict[str, JobType] = {
    t.name: t
    for t in (
        JobType("noop", NoopPayload, "default", max_attempts=3, time_limit_seconds=3600),
        JobType("sync_analytics", SyncAnalyticsPayload, "analytics", time_limit_seconds=600),
        JobType(
            "post_social",
            PostSocialPayload,
            "social",
            max_attempts=6,
            time_limit_seconds=180,
            max_lateness_seconds=3600,
        ),
        JobType("sync_social_metrics", SyncSocialMetricsPayload, "social", time_limit_seconds=600),
        JobType(
            "send_email",
            SendEmailPayload,
            "email",
            max_attempts=6,
            time_limit_seconds=180,
            max_lateness_seconds=3600,
        ),
        JobType("sync_email_reports", SyncEmailReportsPayload, "email", time_limit_seconds=600),
        JobType("zoho_sync", ZohoSyncPayload, "zoho", max_attempts=8, time_limit_seconds=1800),
        JobType(
            "refresh_zoho_tokens",
            RefreshZohoTokensPayload,
            "zoho",
            time_limit_seconds=300,
            internal=True,
        ),
        JobType(
            "deliver_webhook",
            DeliverWebhookPayload,
            "webhooks",
            max_attempts=8,
            time_limit_seconds=60,
            internal=True,
        ),
        JobType(
            "run_campaign", RunCampaignPayload, "agents", max_attempts=3, time_limit_seconds=900
        ),
        JobType("agent_task", AgentTaskPayload, "agents", max_attempts=3, time_limit_seconds=900),
    )
}


def get_job_type(name: str) -> JobType | None:
    return JOB_TYPES.get(name)


def register_job_type(job_type: JobType) -> JobType:
    """Add or replace a job type (plugins and tests); returns it for chaining."""
    JOB_TYPES[job_type.name] = job_type
    return job_type


def with_queue(job_type: JobType, queue: str) -> JobType:
    """The same job type on another queue (per-type queue overrides from settings)."""
    return replace(job_type, queue=queue)
