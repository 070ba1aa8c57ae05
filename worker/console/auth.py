"""Who may use the console: operator accounts, API tokens, roles (pure; no I/O).

Accounts come from settings (``MMW_WEB_USERS``: name → ``{"hash": ..., "role": ...}``) with
passwords hashed by scrypt (stdlib ``hashlib``); API tokens (``MMW_WEB_TOKENS``: sha256 of the
token → ``{"name": ..., "role": ...}``) are stored hashed too, so the settings hold no secret
that signs anyone in. Roles: ``viewer`` reads, ``operator`` reads and acts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ROLES",
    "Operator",
    "Role",
    "authenticate",
    "can_act",
    "hash_password",
    "hash_token",
    "new_token",
    "operator_for_token",
    "verify_password",
]

Role = Literal["viewer", "operator"]
ROLES: tuple[Role, ...] = ("viewer", "operator")

# scrypt cost: n=2**14, r=8, p=1 (16 MiB, ~50 ms): OWASP's minimum for interactive sign-in.
_N, _R, _P = 2**14, 8, 1


@dataclass(frozen=True)
class Operator:
    """A signed-in person or API client."""

    name: str
    role: Role

    @property
    def may_act(self) -> bool:
        return can_act(self.role)


def can_act(role: str) -> bool:
    """Only operators change anything; viewers read."""
    return role == "operator"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64), for ``MMW_WEB_USERS``."""
    if not password:
        raise ValueError("the password must not be empty")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against a :func:`hash_password` string."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=256 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _role(entry: dict[str, Any]) -> Role | None:
    role = entry.get("role")
    return role if role in ROLES else None  # type: ignore[return-value]


# A hash to verify against when the user is unknown, so both cases take the same time.
_DUMMY = hash_password("unused", salt=b"\0" * 16)


def authenticate(users: dict[str, dict[str, Any]], name: str, password: str) -> Operator | None:
    """The operator ``name`` if ``password`` is theirs and their role is valid."""
    entry = users.get(name)
    if entry is None:
        verify_password(password, _DUMMY)
        return None
    role = _role(entry)
    if role is None or not verify_password(password, str(entry.get("hash", ""))):
        return None
    return Operator(name, role)


def hash_token(token: str) -> str:
    """The sha256 (hex) under which a token is listed in ``MMW_WEB_TOKENS`` (tokens are
    random 256-bit values, so a fast hash suffices)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "mmw_" + secrets.token_urlsafe(32)


def operator_for_token(tokens: dict[str, dict[str, Any]], token: str) -> Operator | None:
    """The API client a bearer token belongs to, if any."""
    entry = tokens.get(hash_token(token))
    if entry is None:
        return None
    role = _role(entry)
    name = entry.get("name")
    return Operator(str(name), role) if role and name else None
