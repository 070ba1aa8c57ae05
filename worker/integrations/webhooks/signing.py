"""Standard Webhooks (v1) signatures: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``.

The signed content is ``"{id}.{timestamp}.{body}"`` over the exact body bytes sent, signed with
HMAC-SHA256. Secrets follow the ``whsec_<base64>`` convention: the HMAC key is the base64-decoded
part after the prefix. A secret stored without the prefix is used as its UTF-8 bytes (receivers
then configure the same raw string).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["SECRET_PREFIX", "generate_secret", "secret_key", "sign", "signature_headers"]

SECRET_PREFIX = "whsec_"


def generate_secret(size: int = 32) -> str:
    """A new ``whsec_`` secret with ``size`` random bytes (the spec asks for 24-64)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(size)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a stored secret."""
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret[len(SECRET_PREFIX) :])
    return secret.encode()


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
