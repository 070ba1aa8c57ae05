"""Keep secrets out of everything the worker writes: logs, job results, errors, audit_log."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["REDACTED", "redact", "redact_text"]

REDACTED = "[redacted]"

_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|credential|api_key|apikey|authorization|signature|cookie)",
    re.IGNORECASE,
)
_SECRET_TEXT = re.compile(
    r"(?i)(bearer\s+|zoho-oauthtoken\s+|(?:access_token|refresh_token|client_secret|api_key)=)"
    r"[^\s&\"',;]+"
)


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret-looking key's value replaced (recursively)."""
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_text(text: str) -> str:
    """Mask bearer tokens and ``key=value`` credentials inside free text (error messages)."""
    return _SECRET_TEXT.sub(lambda m: m.group(1) + REDACTED, text)
