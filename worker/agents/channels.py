"""Which platforms a brief's free-form ``channels`` mean (pure)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["SOCIAL_PLATFORMS", "social_platforms", "wants_email"]

SOCIAL_PLATFORMS: tuple[str, ...] = ("facebook", "instagram", "twitter", "linkedin")

_ALIASES = {
    "fb": "facebook",
    "meta": "facebook",
    "ig": "instagram",
    "x": "twitter",
    "x.com": "twitter",
    "tweet": "twitter",
    "linked in": "linkedin",
}
_EMAIL = {"email", "e-mail", "newsletter", "mail", "zoho campaigns"}


def social_platforms(channels: Iterable[str] | None) -> list[str]:
    """The social platforms named in ``channels``, in canonical order; "social" means all."""
    named = {_ALIASES.get(c.strip().lower(), c.strip().lower()) for c in channels or ()}
    if "social" in named or "social media" in named:
        return list(SOCIAL_PLATFORMS)
    return [p for p in SOCIAL_PLATFORMS if p in named]


def wants_email(channels: Iterable[str] | None) -> bool:
    return any(c.strip().lower() in _EMAIL for c in channels or ())
