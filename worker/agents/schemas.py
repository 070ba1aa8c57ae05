"""The structured answers each agent asks an LLM for (pydantic models, sent as strict JSON schema).

Every field is required and no model allows extra keys, so the same class is both the
``response_format`` sent to an OpenAI-compatible server and the validator of its answer. Dates are
relative offsets in hours: models are poor at absolute timestamps, the worker turns offsets into
datetimes from the job's clock.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AGENTS",
    "AnalysisReport",
    "CampaignPlan",
    "ContentBatch",
    "ContentPiece",
    "EmailDraft",
    "EmailPlan",
    "Kpi",
    "Milestone",
    "PlannedTask",
    "SocialPostDraft",
    "SocialSchedule",
    "StrategyBrief",
    "Timeline",
]

#: The agents a plan may assign tasks to.
AGENTS: tuple[str, ...] = (
    "strategist",
    "content_writer",
    "social_media_manager",
    "email_marketer",
    "analyst",
)

SocialPlatform = Literal["facebook", "instagram", "twitter", "linkedin"]
ContentType = Literal["social_post", "email", "blog", "ad_copy"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlannedTask(Strict):
    task_id: str = Field(description="Short unique id, e.g. t1.")
    agent_assigned: str = Field(description="One of: " + ", ".join(AGENTS))
    description: str
    requirements: list[str]
    dependencies: list[str] = Field(description="task_ids that must complete first.")
    estimated_duration: str = Field(description="e.g. '2h' or '1 day'.")


class Milestone(Strict):
    name: str
    due_in_days: int = Field(ge=0)


class Timeline(Strict):
    duration_days: int = Field(ge=1)
    milestones: list[Milestone]


class Kpi(Strict):
    name: str
    target: float
    unit: str


class CampaignPlan(Strict):
    """The planner's answer: stored as ``campaigns.plan``."""

    strategy: str
    tasks: list[PlannedTask] = Field(min_length=1)
    timeline: Timeline
    kpis: list[Kpi]


class StrategyBrief(Strict):
    """The strategist's research task: positioning the other agents write from."""

    positioning: str
    key_messages: list[str] = Field(min_length=1)
    audience_insights: list[str]
    insight: str = Field(description="One reusable learning about this user's marketing.")


class ContentPiece(Strict):
    content_type: ContentType
    platform: str = Field(description="facebook, instagram, twitter, linkedin, email, blog or ads")
    title: str
    text: str
    hashtags: list[str]


class ContentBatch(Strict):
    """The content writer's answer: one ``content_library`` item per piece."""

    pieces: list[ContentPiece] = Field(min_length=1)


class SocialPostDraft(Strict):
    platform: SocialPlatform
    message: str
    hashtags: list[str]
    publish_in_hours: int = Field(ge=0, le=24 * 90)


class SocialSchedule(Strict):
    """The social media manager's answer: one ``social_posts`` draft per post."""

    posts: list[SocialPostDraft] = Field(min_length=1)


class EmailDraft(Strict):
    name: str
    subject: str
    html_content: str
    text_content: str
    send_in_hours: int = Field(ge=0, le=24 * 90)


class EmailPlan(Strict):
    """The email marketer's answer: one ``email_campaigns`` draft per email."""

    emails: list[EmailDraft] = Field(min_length=1)


class AnalysisReport(Strict):
    """The analyst's answer; the numbers (roi, totals) are computed by the worker, not the model."""

    performance_summary: str
    insights: list[str]
    recommendations: list[str]
