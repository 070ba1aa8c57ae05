"""Outbound webhooks: Standard Webhooks signing, delivery decisions, SSRF guard, one attempt."""

from worker.integrations.webhooks.delivery import Attempt, attempt_delivery, render_body
from worker.integrations.webhooks.policy import (
    DEACTIVATE_AFTER,
    RETRY_SCHEDULE,
    Verdict,
    classify,
    retry_delay,
    should_deactivate,
)
from worker.integrations.webhooks.signing import (
    SECRET_PREFIX,
    generate_secret,
    secret_key,
    sign,
    signature_headers,
)
from worker.integrations.webhooks.targets import (
    TargetRefused,
    check_target,
    is_public_address,
    resolve_host,
)

__all__ = [
    "DEACTIVATE_AFTER",
    "RETRY_SCHEDULE",
    "SECRET_PREFIX",
    "Attempt",
    "TargetRefused",
    "Verdict",
    "attempt_delivery",
    "check_target",
    "classify",
    "generate_secret",
    "is_public_address",
    "render_body",
    "resolve_host",
    "retry_delay",
    "secret_key",
    "should_deactivate",
    "sign",
    "signature_headers",
]
