"""Standard Webhooks (v1) signatures, and the seal that proves the platform emitted an event.

The signed content is ``"{id}.{timestamp}.{body}"`` over the exact body bytes sent, signed with
HMAC-SHA256. A secret is ``whsec_<base64>`` (the prefix is optional, as in the reference
libraries): the HMAC key is the strictly decoded base64, 24 to 64 bytes as the spec asks.
Anything else (``whsec_``, ``whsec_!!!!``, a short or raw string) raises :class:`InvalidSecret`:
a loose decoder would turn those into an empty or guessable key that anyone could sign with.

The seal is an HMAC, under a key derived from the webhook's secret, over the event the platform
emitted (webhook, type, id, data). ``deliver_webhook`` signs only sealed events, so a job written
by hand with made-up data is never signed with the customer's real secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from typing import Any

from worker.errors import PermanentFailure

__all__ = [
    "MAX_SECRET_BYTES",
    "MIN_SECRET_BYTES",
    "SECRET_PREFIX",
    "InvalidSecret",
    "event_seal",
    "generate_secret",
    "secret_key",
    "sign",
    "signature_headers",
    "valid_seal",
]

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
_SEAL_LABEL = b"mmw webhook event seal v1"


class InvalidSecret(PermanentFailure):
    """A stored webhook secret that is not strict base64 of 24-64 bytes."""


def generate_secret(size: int = 32) -> str:
    """A new ``whsec_`` secret with ``size`` random bytes (24-64)."""
    if not MIN_SECRET_BYTES <= size <= MAX_SECRET_BYTES:
        raise ValueError(f"secret size must be {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(size)).decode()


def secret_key(secret: object) -> bytes:
    """The HMAC key of a stored secret; :class:`InvalidSecret` (saying why) if it has none."""
    if not isinstance(secret, str) or not secret:
        raise InvalidSecret("webhook secret is missing")
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("webhook secret is not valid base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise InvalidSecret(
            f"webhook secret decodes to {len(key)} bytes "
            f"({MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} required)"
        )
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of one message attempt."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt (timestamp = time of the attempt)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def event_seal(secret: str, webhook_id: str, event: str, event_id: str, data: Any) -> str:
    """The platform's seal of one emitted event for one webhook (hex HMAC-SHA256)."""
    seal_key = hmac.new(secret_key(secret), _SEAL_LABEL, hashlib.sha256).digest()
    content = json.dumps(
        [webhook_id, event, event_id, data], sort_keys=True, separators=(",", ":"), default=str
    ).encode()
    return hmac.new(seal_key, content, hashlib.sha256).hexdigest()


def valid_seal(
    seal: str, secret: str, webhook_id: str, event: str, event_id: str, data: Any
) -> bool:
    """Was this event emitted by the platform for this webhook, unchanged?"""
    if not isinstance(seal, str) or not seal.isascii():
        return False
    expected = event_seal(secret, webhook_id, event, event_id, data)
    return hmac.compare_digest(seal, expected)
