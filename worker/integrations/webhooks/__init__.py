"""Outbound webhooks: Standard Webhooks signing, delivery decisions, SSRF guard, one attempt."""

from worker.integrations.webhooks.delivery import (
    MAX_RESPONSE_BYTES,
    Attempt,
    Network,
    attempt_delivery,
    render_body,
)
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
    InvalidSecret,
    event_seal,
    generate_secret,
    secret_key,
    sign,
    signature_headers,
    valid_seal,
)
from worker.integrations.webhooks.targets import (
    DEFAULT_PORTS,
    Target,
    TargetRefused,
    TargetUnresolved,
    check_target,
    is_public_address,
    parse_target,
    resolve_host,
)
from worker.integrations.webhooks.transport import Deadline, PinnedBackend, PinnedTransport

__all__ = [
    "DEACTIVATE_AFTER",
    "DEFAULT_PORTS",
    "MAX_RESPONSE_BYTES",
    "RETRY_SCHEDULE",
    "SECRET_PREFIX",
    "Attempt",
    "Deadline",
    "InvalidSecret",
    "Network",
    "PinnedBackend",
    "PinnedTransport",
    "Target",
    "TargetRefused",
    "TargetUnresolved",
    "Verdict",
    "attempt_delivery",
    "check_target",
    "classify",
    "event_seal",
    "generate_secret",
    "is_public_address",
    "parse_target",
    "render_body",
    "resolve_host",
    "retry_delay",
    "secret_key",
    "should_deactivate",
    "sign",
    "signature_headers",
    "valid_seal",
]
