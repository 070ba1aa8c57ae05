"""Signed session cookies and CSRF tokens (pure: HMAC-SHA256 over the payload, no storage).

A session is ``base64(json{name, role, csrf, expires}).base64(hmac)``; the server keeps nothing,
so any number of console processes share sessions through ``MMW_WEB_SECRET_KEY``. The role in
the cookie is checked against the current accounts on every request (a removed account or a
changed role takes effect at once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

__all__ = ["COOKIE", "LOGIN_COOKIE", "Session", "new_csrf", "sign", "verify"]

COOKIE = "mmw_session"
#: Double-submit cookie of the sign-in form (there is no session yet to hold its token).
LOGIN_COOKIE = "mmw_login_csrf"


@dataclass(frozen=True)
class Session:
    name: str
    role: str
    csrf: str
    expires: float  # Unix seconds


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def _mac(key: str, payload: bytes) -> str:
    digest = hmac.new(key.encode(), payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(session: Session, key: str) -> str:
    if not key:
        raise ValueError("no secret key to sign sessions with (MMW_WEB_SECRET_KEY)")
    raw = json.dumps(
        {"n": session.name, "r": session.role, "c": session.csrf, "e": session.expires},
        separators=(",", ":"),
    ).encode()
    payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return f"{payload}.{_mac(key, payload.encode())}"


def verify(value: str | None, key: str, now: float) -> Session | None:
    """The session in a cookie value, if its signature is right and it has not expired."""
    if not value or not key or "." not in value:
        return None
    payload, mac = value.rsplit(".", 1)
    if not hmac.compare_digest(mac, _mac(key, payload.encode())):
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        session = Session(str(raw["n"]), str(raw["r"]), str(raw["c"]), float(raw["e"]))
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.expires > now else None
