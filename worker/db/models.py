"""Pydantic models of every MongoDB collection (docs/schema: /work/shared/reference/schema.md).

They describe documents as they are stored, so that code reading a collection gets typed values and
a clear error when a document is malformed. Every model allows unknown keys (``extra="allow"``) and
keeps them on dump: documents written by newer code, or by the upstream apps, must still load and
must not lose fields when written back. Only the identifiers a collection is keyed by are required;
everything else is optional, because the upstream apps write partial documents.

Dates load as timezone-aware UTC (a naive value is taken as UTC, as BSON stores it).
``_id`` is exposed as ``id`` (alias ``"_id"``, any type: usually a ``bson.ObjectId``). Dump with
``model_dump(by_alias=True, exclude_none=True)`` to get a document back. Secrets (tokens, API keys,
webhook secrets) are excluded from ``repr`` so that logging a model never shows them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from worker.db import names

__all__ = [
    "COLLECTION_MODELS",
    "AgentEvent",
    "AgentMemory",
    "AgentMemoryMetadata",
    "AgentTask",
    "AnalyticsData",
    "AnalyticsMetrics",
    "ApiKeys",
    "ApprovalRequest",
    "AuditLogEntry",
    "AuditOutboxEntry",
    "Branding",
    "Brief",
    "Campaign",
    "CampaignPlan",
    "CampaignResults",
    "ContentItem",
    "ContentMetadata",
    "ContentPayload",
    "Conversation",
    "ConversationContext",
    "CrmMetrics",
    "EmailAnalytics",
    "EmailCampaign",
    "EmailContent",
    "EmailMetrics",
    "EmailRecipients",
    "EmailSchedule",
    "GlobalMemory",
    "GlobalMemoryMetadata",
    "Integrations",
    "JobControl",
    "JobRun",
    "JobSchedule",
    "Lease",
    "Message",
    "MongoDocument",
    "NotificationSettings",
    "PlanTask",
    "PlatformBreakdown",
    "PostAnalytics",
    "PostContent",
    "PostSchedule",
    "PpcMetrics",
    "ScheduledJob",
    "SeoMetrics",
    "SocialAccount",
    "SocialAccountCredentials",
    "SocialAccountInfo",
    "SocialMetrics",
    "SocialPost",
    "SocialPostAttempt",
    "SocialPostPlatform",
    "Subscription",
    "User",
    "UserMemory",
    "UserMemoryMetadata",
    "UserPreferences",
    "UserSettings",
    "UtcDatetime",
    "Webhook",
    "ZohoCrmRecord",
    "ZohoToken",
]


def _as_utc(value: dt.datetime) -> dt.datetime:
    """BSON dates are UTC instants: a naive value (pymongo without tz_aware) is UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


#: An ISODate: always timezone-aware UTC, so it compares with ``ctx.now()`` without TypeError.
UtcDatetime = Annotated[dt.datetime, AfterValidator(_as_utc)]

SocialPlatform = Literal["facebook", "instagram", "twitter", "linkedin"]
TaskStatus = Literal["pending", "in_progress", "completed", "failed"]
JobStatusValue = Literal["pending", "processing", "completed", "failed", "cancelled"]


class _Model(BaseModel):
    """Base of nested objects: unknown keys are kept, fields are filled by name or alias."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class MongoDocument(_Model):
    """Base of top-level documents: adds ``_id``, exposed as ``id``."""

    id: Any = Field(default=None, alias="_id")


# --- users --------------------------------------------------------------------------------------


class UserPreferences(_Model):
    """``users.preferences``."""

    language: str | None = None
    timezone: str | None = None
    notifications: bool | None = None


class Subscription(_Model):
    """``users.subscription``."""

    plan: Literal["free", "basic", "pro", "enterprise"] | None = None
    status: Literal["active", "suspended", "cancelled"] | None = None
    expires_at: UtcDatetime | None = None


class User(MongoDocument):
    """A user account (collection ``users``)."""

    user_id: str
    email: str | None = None
    name: str | None = None
    company: str | None = None
    role: Literal["admin", "user", "viewer"] | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    last_login: UtcDatetime | None = None
    preferences: UserPreferences | None = None
    subscription: Subscription | None = None


# --- conversations ------------------------------------------------------------------------------


class Message(_Model):
    """One entry of ``conversations.messages``."""

    role: Literal["user", "assistant", "system"] | None = None
    content: str | None = None
    timestamp: UtcDatetime | None = None
    metadata: dict[str, Any] | None = None


class ConversationContext(_Model):
    """``conversations.context``: what the chat has gathered towards a campaign brief."""

    campaign_brief: dict[str, Any] | None = None
    collected_info: dict[str, Any] | None = None
    ready_to_plan: bool | None = None


class Conversation(MongoDocument):
    """Chat history and state of the conversational interface (collection ``conversations``)."""

    conversation_id: str
    user_id: str | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    messages: list[Message] | None = None
    context: ConversationContext | None = None


# --- campaigns ----------------------------------------------------------------------------------


class Brief(_Model):
    """``campaigns.brief``: what the user asked for."""

    product: str | None = None
    target_audience: str | None = None
    objective: str | None = None
    budget: str | None = None
    timeline: str | None = None
    channels: list[str] | None = None
    additional_context: str | None = None


class PlanTask(_Model):
    """One entry of ``campaigns.plan.tasks``: a unit of work for one agent."""

    task_id: str | None = None
    agent_assigned: str | None = None
    description: str | None = None
    requirements: list[str] | None = None
    dependencies: list[str] | None = None
    status: TaskStatus | None = None
    estimated_duration: str | None = None


class CampaignPlan(_Model):
    """``campaigns.plan``."""

    strategy: str | None = None
    tasks: list[PlanTask] | None = None
    timeline: dict[str, Any] | None = None
    kpis: list[dict[str, Any]] | None = None


class CampaignResults(_Model):
    """``campaigns.results``."""

    task_results: dict[str, Any] | None = None
    analytics: dict[str, Any] | None = None
    roi: float | None = None
    performance_summary: str | None = None


class Campaign(MongoDocument):
    """A marketing campaign (collection ``campaigns``)."""

    campaign_id: str
    user_id: str | None = None
    conversation_id: str | None = None
    name: str | None = None
    brief: Brief | None = None
    status: Literal["draft", "planning", "executing", "completed", "failed"] | None = None
    plan: CampaignPlan | None = None
    results: CampaignResults | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None


# --- zoho_tokens --------------------------------------------------------------------------------


class ZohoToken(MongoDocument):
    """Zoho OAuth credentials of one user (collection ``zoho_tokens``).

    ``data_center`` accepts the schema's values plus the other Zoho data centers of the API
    contracts (jp, ca, sa, com.cn, uk), so a user on any of them loads.
    """

    user_id: str
    access_token: str | None = Field(default=None, repr=False)
    refresh_token: str | None = Field(default=None, repr=False)
    token_type: str | None = None
    expires_in: int | None = None
    expires_at: UtcDatetime | None = None
    scope: str | None = None
    data_center: Literal["com", "in", "eu", "com.au", "jp", "ca", "sa", "com.cn", "uk"] | None = (
        None
    )
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


# --- social_accounts ----------------------------------------------------------------------------


class SocialAccountCredentials(_Model):
    """``social_accounts.credentials``: common tokens plus platform-specific ids and keys."""

    access_token: str | None = Field(default=None, repr=False)
    refresh_token: str | None = Field(default=None, repr=False)
    token_expires_at: UtcDatetime | None = None
    page_id: str | None = None
    instagram_business_id: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    api_secret: str | None = Field(default=None, repr=False)


class SocialAccountInfo(_Model):
    """``social_accounts.account_info``: profile figures as last read from the platform."""

    followers: int | None = None
    following: int | None = None
    posts_count: int | None = None
    verified: bool | None = None
    business_account: bool | None = None


class SocialAccount(MongoDocument):
    """A connected social media account (collection ``social_accounts``)."""

    user_id: str
    platform: SocialPlatform | None = None
    account_id: str | None = None
    account_name: str | None = None
    account_username: str | None = None
    profile_picture: str | None = None
    auth_type: Literal["oauth", "api_token"] | None = None
    credentials: SocialAccountCredentials | None = None
    account_info: SocialAccountInfo | None = None
    status: Literal["active", "expired", "disconnected"] | None = None
    connected_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    last_used: UtcDatetime | None = None


# --- social_posts -------------------------------------------------------------------------------


class SocialPostAttempt(_Model):
    """``social_posts.platforms[].attempt``: the intent recorded before calling the platform.

    Added by the worker (publish-once protocol, docs/social.md).
    """

    run_key: str | None = None
    intent_id: str | None = None
    number: int | None = None
    started_at: UtcDatetime | None = None
    lookups: int | None = None
    outcome: Literal["published", "refused", "absent", "failed", "unknown"] | None = None


class SocialPostPlatform(_Model):
    """One entry of ``social_posts.platforms``: the post's fate on one account.

    The worker adds the statuses ``publishing`` (intent recorded, outcome unknown),
    ``retrying`` (refused for now) and ``needs_review`` (a person decides), and the fields
    ``attempt``, ``url``, ``reconciled_at`` and ``metrics``.
    """

    platform: SocialPlatform | None = None
    account_id: str | None = None
    platform_post_id: str | None = None
    status: (
        Literal["published", "failed", "scheduled", "publishing", "retrying", "needs_review"] | None
    ) = None
    published_at: UtcDatetime | None = None
    error: str | None = None
    attempt: SocialPostAttempt | None = None
    url: str | None = None
    reconciled_at: UtcDatetime | None = None
    metrics: dict[str, int] | None = None


class PostContent(_Model):
    """``social_posts.content``."""

    message: str | None = None
    images: list[str] | None = None
    videos: list[str] | None = None
    link: str | None = None
    hashtags: list[str] | None = None


class PostSchedule(_Model):
    """``social_posts.schedule``."""

    scheduled: bool | None = None
    publish_at: UtcDatetime | None = None


class PostAnalytics(_Model):
    """``social_posts.analytics``: metrics summed over the post's platforms."""

    impressions: int | None = None
    reach: int | None = None
    engagement: int | None = None
    likes: int | None = None
    comments: int | None = None
    shares: int | None = None
    clicks: int | None = None
    last_synced: UtcDatetime | None = None


class SocialPost(MongoDocument):
    """A published or scheduled social media post (collection ``social_posts``)."""

    post_id: str
    user_id: str | None = None
    campaign_id: str | None = None
    platforms: list[SocialPostPlatform] | None = None
    content: PostContent | None = None
    schedule: PostSchedule | None = None
    analytics: PostAnalytics | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


# --- zoho_crm_records ---------------------------------------------------------------------------


class ZohoCrmRecord(MongoDocument):
    """A cached Zoho CRM record (collection ``zoho_crm_records``)."""

    user_id: str
    module: Literal["Contacts", "Leads", "Deals", "Accounts", "Campaigns"] | None = None
    record_id: str | None = None
    data: dict[str, Any] | None = None
    synced_at: UtcDatetime | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


# --- email_campaigns ----------------------------------------------------------------------------


class EmailRecipients(_Model):
    """``email_campaigns.recipients``."""

    list_key: str | None = None
    segment: dict[str, Any] | None = None
    count: int | None = None


class EmailContent(_Model):
    """``email_campaigns.content``."""

    subject: str | None = None
    from_email: str | None = None
    from_name: str | None = None
    reply_to: str | None = None
    html_content: str | None = None
    text_content: str | None = None
    attachments: list[str] | None = None


class EmailSchedule(_Model):
    """``email_campaigns.schedule``."""

    scheduled: bool | None = None
    send_at: UtcDatetime | None = None


class EmailAnalytics(_Model):
    """``email_campaigns.analytics``: counts and rates as last read from Zoho Campaigns."""

    sent: int | None = None
    delivered: int | None = None
    opened: int | None = None
    clicked: int | None = None
    bounced: int | None = None
    unsubscribed: int | None = None
    open_rate: float | None = None
    click_rate: float | None = None
    last_synced: UtcDatetime | None = None


class EmailCampaign(MongoDocument):
    """An email campaign sent through Zoho Campaigns (collection ``email_campaigns``)."""

    campaign_id: str
    user_id: str | None = None
    marketing_campaign_id: str | None = None
    name: str | None = None
    type: Literal["one_time", "drip", "automated"] | None = None
    status: Literal["draft", "scheduled", "sent", "cancelled"] | None = None
    recipients: EmailRecipients | None = None
    content: EmailContent | None = None
    schedule: EmailSchedule | None = None
    zoho_campaign_key: str | None = None
    analytics: EmailAnalytics | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    sent_at: UtcDatetime | None = None


# --- content_library ----------------------------------------------------------------------------


class ContentMetadata(_Model):
    """``content_library.content.metadata``: how the content was generated."""

    prompt: str | None = None
    model_used: str | None = None
    generation_params: dict[str, Any] | None = None


class ContentPayload(_Model):
    """``content_library.content``: the text or media (by URL or base64)."""

    text: str | None = None
    image_url: str | None = None
    image_base64: str | None = None
    video_url: str | None = None
    video_base64: str | None = None
    audio_url: str | None = None
    metadata: ContentMetadata | None = None


class ContentItem(MongoDocument):
    """A generated piece of content (collection ``content_library``).

    ``platform`` accepts the schema's values plus ``twitter`` and ``linkedin``, the other
    platforms content is generated for. ``created_by`` is "ai", "user" or an agent's name.
    """

    content_id: str
    user_id: str | None = None
    campaign_id: str | None = None
    type: Literal["text", "image", "video", "audio"] | None = None
    content_type: Literal["blog", "social_post", "ad_copy", "email", "seo_content"] | None = None
    content: ContentPayload | None = None
    platform: Literal["facebook", "instagram", "twitter", "linkedin", "blog", "email"] | None = None
    status: Literal["draft", "approved", "published", "archived"] | None = None
    tags: list[str] | None = None
    created_by: str | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    used_in: list[str] | None = None


# --- memories -----------------------------------------------------------------------------------


class UserMemoryMetadata(_Model):
    """``user_memory.metadata``."""

    conversation_id: str | None = None
    timestamp: UtcDatetime | None = None
    importance: float | None = Field(default=None, ge=1, le=10)
    category: str | None = None


class UserMemory(MongoDocument):
    """One vector memory of a user, for personalisation (collection ``user_memory``)."""

    user_id: str
    memory_type: Literal["user_message", "agent_response", "preference", "insight"] | None = None
    content: str | None = None
    embedding: list[float] | None = None
    metadata: UserMemoryMetadata | None = None
    agent_name: str | None = None
    created_at: UtcDatetime | None = None


class AgentMemoryMetadata(_Model):
    """``agent_memory.metadata``."""

    use_count: int | None = None
    success_rate: float | None = None
    category: str | None = None


class AgentMemory(MongoDocument):
    """A learning shared between agents (collection ``agent_memory``)."""

    agent_name: str | None = None
    memory_type: Literal["pattern", "best_practice", "learning"] | None = None
    content: str | None = None
    embedding: list[float] | None = None
    metadata: AgentMemoryMetadata | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


class GlobalMemoryMetadata(_Model):
    """``global_memory.metadata``."""

    industry: str | None = None
    effectiveness_score: float | None = None
    usage_count: int | None = None


class GlobalMemory(MongoDocument):
    """A platform-wide insight or pattern (collection ``global_memory``)."""

    memory_type: Literal["trend", "insight", "pattern"] | None = None
    content: str | None = None
    embedding: list[float] | None = None
    metadata: GlobalMemoryMetadata | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


# --- agents -------------------------------------------------------------------------------------


class AgentEvent(MongoDocument):
    """One entry of the agents' activity log (collection ``agent_events``)."""

    event_id: str
    conversation_id: str | None = None
    user_id: str | None = None
    agent_name: str | None = None
    event_type: Literal["task_started", "task_completed", "message", "collaboration"] | None = None
    data: dict[str, Any] | None = None
    timestamp: UtcDatetime | None = None


class AgentTask(MongoDocument):
    """The execution record of one agent task (collection ``agent_tasks``)."""

    task_id: str
    campaign_id: str | None = None
    agent_name: str | None = None
    status: TaskStatus | None = None
    input: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    started_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None
    duration_ms: float | None = None


class ApprovalRequest(MongoDocument):
    """A request for the user to approve content, a plan, a budget or a publication.

    Collection ``approval_requests``. ``requested_by`` is an agent's name; ``approved_by`` a
    user_id or "voice_approval".
    """

    request_id: str
    user_id: str | None = None
    campaign_id: str | None = None
    conversation_id: str | None = None
    request_type: Literal["campaign_plan", "content", "budget", "publish"] | None = None
    content: dict[str, Any] | None = None
    status: Literal["pending", "approved", "rejected"] | None = None
    requested_by: str | None = None
    approved_by: str | None = None
    approval_notes: str | None = None
    rejection_reason: str | None = None
    created_at: UtcDatetime | None = None
    resolved_at: UtcDatetime | None = None


# --- analytics_data -----------------------------------------------------------------------------


class PlatformBreakdown(_Model):
    """``analytics_data.metrics.social.by_platform``: free-form metrics per platform."""

    facebook: dict[str, Any] | None = None
    instagram: dict[str, Any] | None = None
    twitter: dict[str, Any] | None = None
    linkedin: dict[str, Any] | None = None


class SocialMetrics(_Model):
    """``analytics_data.metrics.social``."""

    posts_published: int | None = None
    total_reach: int | None = None
    total_engagement: int | None = None
    total_impressions: int | None = None
    by_platform: PlatformBreakdown | None = None


class EmailMetrics(_Model):
    """``analytics_data.metrics.email``."""

    campaigns_sent: int | None = None
    emails_delivered: int | None = None
    open_rate: float | None = None
    click_rate: float | None = None
    conversions: int | None = None


class CrmMetrics(_Model):
    """``analytics_data.metrics.crm``."""

    new_leads: int | None = None
    new_contacts: int | None = None
    deals_closed: int | None = None
    revenue: float | None = None


class SeoMetrics(_Model):
    """``analytics_data.metrics.seo``."""

    organic_traffic: int | None = None
    keyword_rankings: dict[str, Any] | None = None
    backlinks: int | None = None


class PpcMetrics(_Model):
    """``analytics_data.metrics.ppc``."""

    ad_spend: float | None = None
    clicks: int | None = None
    conversions: int | None = None
    roas: float | None = None


class AnalyticsMetrics(_Model):
    """``analytics_data.metrics``."""

    social: SocialMetrics | None = None
    email: EmailMetrics | None = None
    crm: CrmMetrics | None = None
    seo: SeoMetrics | None = None
    ppc: PpcMetrics | None = None


class AnalyticsData(MongoDocument):
    """Aggregated metrics of one user (and campaign) for one day (collection ``analytics_data``)."""

    user_id: str
    campaign_id: str | None = None
    date: UtcDatetime | None = None
    metrics: AnalyticsMetrics | None = None
    created_at: UtcDatetime | None = None


# --- settings -----------------------------------------------------------------------------------


class ApiKeys(_Model):
    """``settings.api_keys``: the user's own keys (stored encrypted)."""

    openai_key: str | None = Field(default=None, repr=False)
    custom_keys: dict[str, Any] | None = Field(default=None, repr=False)


class Integrations(_Model):
    """``settings.integrations``."""

    zoho_connected: bool | None = None
    social_platforms: list[str] | None = None
    analytics_enabled: bool | None = None


class NotificationSettings(_Model):
    """``settings.notifications``."""

    email: bool | None = None
    in_app: bool | None = None
    webhook_url: str | None = None


class Branding(_Model):
    """``settings.branding``."""

    company_name: str | None = None
    logo_url: str | None = None
    primary_color: str | None = None
    tone_of_voice: str | None = None


class UserSettings(MongoDocument):
    """A user's configuration and preferences (collection ``settings``)."""

    user_id: str
    api_keys: ApiKeys | None = None
    integrations: Integrations | None = None
    notifications: NotificationSettings | None = None
    branding: Branding | None = None
    updated_at: UtcDatetime | None = None


# --- webhooks -----------------------------------------------------------------------------------


class Webhook(MongoDocument):
    """An outgoing webhook of a user (collection ``webhooks``)."""

    webhook_id: str
    user_id: str | None = None
    name: str | None = None
    url: str | None = None
    events: list[str] | None = None
    secret: str | None = Field(default=None, repr=False)
    active: bool | None = None
    last_triggered: UtcDatetime | None = None
    created_at: UtcDatetime | None = None


# --- scheduled_jobs -----------------------------------------------------------------------------


class JobSchedule(_Model):
    """``scheduled_jobs.schedule``: when a job runs.

    Schema fields: ``execute_at`` (first/only due time), ``recurring``, ``cron_expression``.
    Added by the worker:

    - ``timezone``: IANA name the cron expression is evaluated in (default UTC);
    - ``catch_up``: after downtime, run missed fires ``once``, ``skip`` them, or run ``all``;
    - ``catch_up_window_seconds``: missed fires older than this are not caught up;
    - ``overlap``: when a fire comes due while the previous run is still going: ``skip`` it,
      ``buffer`` it (run right after), or ``allow`` concurrent runs;
    - ``max_lateness_seconds``: a run later than this after its due time fails instead of running.
    """

    execute_at: UtcDatetime | None = None
    recurring: bool | None = None
    cron_expression: str | None = None
    timezone: str | None = None
    catch_up: Literal["once", "skip", "all"] | None = None
    catch_up_window_seconds: float | None = None
    overlap: Literal["skip", "buffer", "allow"] | None = None
    max_lateness_seconds: float | None = None


class Lease(_Model):
    """``scheduled_jobs.lease`` (added by the worker): who may change a processing job, until when.

    ``owner`` identifies the claim, ``worker`` the process that runs it; past ``until`` the lease
    may be taken over by a new claim (which increments the job's ``epoch``).
    """

    owner: str
    until: UtcDatetime
    worker: str | None = None
    started_at: UtcDatetime | None = None


class JobRun(_Model):
    """One entry of ``scheduled_jobs.history`` (added by the worker): the outcome of one run.

    ``run_key`` is the run's idempotency key (job_id + scheduled time); ``run_at`` its scheduled
    time; ``status`` the attempt's outcome ("completed", "retry", "failed", "lost": its worker
    died mid-run; left open so that new outcomes do not make old jobs unreadable).
    """

    run_key: str | None = None
    run_at: UtcDatetime | None = None
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    status: str | None = None
    error: str | None = None
    attempts: int | None = None
    duration_ms: float | None = None


class AuditOutboxEntry(_Model):
    """One element of ``scheduled_jobs.audit_outbox`` (added by the worker): the audit entry of a
    state change, written in the same update and moved to ``audit_log`` by the scheduler."""

    id: str
    action: str
    timestamp: UtcDatetime
    details: dict[str, Any] | None = None


class ScheduledJob(MongoDocument):
    """A background job (collection ``scheduled_jobs``), written by the apps, run by the worker.

    Schema fields: job_id, user_id, job_type, payload, schedule, status, attempts, max_attempts,
    result, error, created_at, executed_at. ``status`` also takes "cancelled". Added by the worker:

    - ``epoch``: fencing token, incremented by each claim; writes of an older claim are refused;
    - ``lease``: see :class:`Lease`; ``claim_id``: the scheduler's claim batch (while claimed);
    - ``run_at``: scheduled time of the current run, kept across its retries; ``run_key`` its
      idempotency key;
    - ``started_at``, ``finished_at``: of the current/last run; ``purge_at``: when a finished job
      may be deleted; ``updated_at``: last change by the worker;
    - ``paused``: an operator paused this job; ``queue``: Dramatiq queue override;
    - ``idempotency_key``: given at submit time, so a resubmission does not create a second job;
    - ``history``: bounded list of past runs (:class:`JobRun`); ``missed_runs``: recurring fires
      skipped by catch-up or overlap rules; ``parent_job_id``: job that spawned this one;
    - ``audit_outbox``: audit entries of state changes not yet moved to ``audit_log``.

    Defaults of ``epoch``, ``paused``, ``history`` and ``missed_runs`` describe a job the worker has
    not touched yet; dump with ``exclude_unset=True`` to avoid writing them back.
    """

    job_id: str
    user_id: str
    job_type: str | None = None
    payload: dict[str, Any] | None = None
    schedule: JobSchedule | None = None
    status: JobStatusValue | None = None
    attempts: int | None = None
    max_attempts: int | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: UtcDatetime | None = None
    executed_at: UtcDatetime | None = None
    epoch: int = 0
    lease: Lease | None = None
    claim_id: str | None = None
    run_at: UtcDatetime | None = None
    run_key: str | None = None
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    purge_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    paused: bool = False
    queue: str | None = None
    idempotency_key: str | None = None
    history: list[JobRun] = Field(default_factory=list)
    missed_runs: int = 0
    parent_job_id: str | None = None
    audit_outbox: list[AuditOutboxEntry] = Field(default_factory=list)


class JobControl(MongoDocument):
    """An operator pause of every job of a user or of a job type (collection ``job_controls``).

    Added by the worker; the scheduler does not claim jobs matched by a control with ``paused``.
    """

    kind: Literal["user", "job_type"]
    value: str
    paused: bool
    reason: str | None = None
    updated_at: UtcDatetime


# --- audit_log ----------------------------------------------------------------------------------


class AuditLogEntry(MongoDocument):
    """One security/compliance audit entry (collection ``audit_log``).

    ``action`` is open-ended ("login", "post_published", "campaign_created", ...). ``entry_id``
    (added by the worker; unique) makes a write that is retried or repeated land once.
    """

    entry_id: str | None = None
    user_id: str | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    details: dict[str, Any] | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    timestamp: UtcDatetime | None = None


COLLECTION_MODELS: dict[str, type[BaseModel]] = {
    names.USERS: User,
    names.CONVERSATIONS: Conversation,
    names.CAMPAIGNS: Campaign,
    names.ZOHO_TOKENS: ZohoToken,
    names.SOCIAL_ACCOUNTS: SocialAccount,
    names.SOCIAL_POSTS: SocialPost,
    names.ZOHO_CRM_RECORDS: ZohoCrmRecord,
    names.EMAIL_CAMPAIGNS: EmailCampaign,
    names.CONTENT_LIBRARY: ContentItem,
    names.USER_MEMORY: UserMemory,
    names.AGENT_MEMORY: AgentMemory,
    names.GLOBAL_MEMORY: GlobalMemory,
    names.AGENT_EVENTS: AgentEvent,
    names.AGENT_TASKS: AgentTask,
    names.APPROVAL_REQUESTS: ApprovalRequest,
    names.ANALYTICS_DATA: AnalyticsData,
    names.SETTINGS: UserSettings,
    names.WEBHOOKS: Webhook,
    names.SCHEDULED_JOBS: ScheduledJob,
    names.AUDIT_LOG: AuditLogEntry,
    names.JOB_CONTROLS: JobControl,
}
