"""Every collection name in one place (as arq's constants.py does for Redis keys)."""

from __future__ import annotations

USERS = "users"
CONVERSATIONS = "conversations"
CAMPAIGNS = "campaigns"
ZOHO_TOKENS = "zoho_tokens"
SOCIAL_ACCOUNTS = "social_accounts"
SOCIAL_POSTS = "social_posts"
ZOHO_CRM_RECORDS = "zoho_crm_records"
EMAIL_CAMPAIGNS = "email_campaigns"
CONTENT_LIBRARY = "content_library"
USER_MEMORY = "user_memory"
AGENT_MEMORY = "agent_memory"
GLOBAL_MEMORY = "global_memory"
AGENT_EVENTS = "agent_events"
AGENT_TASKS = "agent_tasks"
APPROVAL_REQUESTS = "approval_requests"
ANALYTICS_DATA = "analytics_data"
SETTINGS = "settings"
WEBHOOKS = "webhooks"
SCHEDULED_JOBS = "scheduled_jobs"
AUDIT_LOG = "audit_log"

#: Added by the worker (documented in docs/architecture.md): operator pauses by user or job type.
JOB_CONTROLS = "job_controls"
#: Added by the worker: each scheduler's liveness (heartbeat), so a dead one's claims are recovered.
SCHEDULERS = "schedulers"
#: Field of ``scheduled_jobs``: audit entries of state changes waiting to move to ``audit_log``.
AUDIT_OUTBOX = "audit_outbox"

SCHEMA_COLLECTIONS: tuple[str, ...] = (
    USERS,
    CONVERSATIONS,
    CAMPAIGNS,
    ZOHO_TOKENS,
    SOCIAL_ACCOUNTS,
    SOCIAL_POSTS,
    ZOHO_CRM_RECORDS,
    EMAIL_CAMPAIGNS,
    CONTENT_LIBRARY,
    USER_MEMORY,
    AGENT_MEMORY,
    GLOBAL_MEMORY,
    AGENT_EVENTS,
    AGENT_TASKS,
    APPROVAL_REQUESTS,
    ANALYTICS_DATA,
    SETTINGS,
    WEBHOOKS,
    SCHEDULED_JOBS,
    AUDIT_LOG,
)
