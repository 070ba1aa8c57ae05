"""Social platform clients (Facebook, Instagram, X, LinkedIn) behind one interface.

``publish(content, account) -> PublishResult``, ``find_recent(account, text, since)`` for
reconciliation and ``fetch_metrics(account, post_id)``; errors are :mod:`worker.errors` outcomes.
"""

from __future__ import annotations

from typing import Any

import httpx2

from worker.integrations.social.base import (
    METRIC_KEYS,
    DuplicateContent,
    PostContent,
    PublishResult,
    SocialAccount,
    SocialClient,
)
from worker.integrations.social.facebook import FacebookClient
from worker.integrations.social.instagram import InstagramClient
from worker.integrations.social.linkedin import LinkedInClient
from worker.integrations.social.x import XClient
from worker.settings import Settings

__all__ = [
    "METRIC_KEYS",
    "PLATFORMS",
    "DuplicateContent",
    "FacebookClient",
    "InstagramClient",
    "LinkedInClient",
    "PostContent",
    "PublishResult",
    "SocialAccount",
    "SocialClient",
    "XClient",
    "build_client",
]

PLATFORMS = ("facebook", "instagram", "twitter", "linkedin")
"""Platform names as stored in ``social_accounts.platform`` / ``social_posts.platforms[]``."""


def build_client(
    platform: str,
    settings: Settings,
    *,
    transport: httpx2.BaseTransport | None = None,
    **options: Any,
) -> SocialClient:
    """The client of ``platform`` configured from ``settings`` (base URLs, timeout)."""
    common: dict[str, Any] = {
        "timeout": settings.http_timeout_seconds,
        "transport": transport,
        **options,
    }
    if platform == "facebook":
        return FacebookClient(settings.graph_base_url, **common)
    if platform == "instagram":
        common.setdefault("poll_interval", settings.instagram_poll_interval)
        common.setdefault("max_polls", settings.instagram_max_polls)
        return InstagramClient(settings.graph_base_url, **common)
    if platform == "twitter":
        return XClient(settings.x_base_url, **common)
    if platform == "linkedin":
        return LinkedInClient(
            settings.linkedin_base_url, version=settings.linkedin_version, **common
        )
    raise ValueError(f"unknown social platform {platform!r}")
