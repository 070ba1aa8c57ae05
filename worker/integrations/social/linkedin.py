"""LinkedIn Posts API: create, list by author, social metadata and share statistics (§7)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx2

from worker.errors import JobError, OutcomeUnknown, PermanentFailure, RetryLater, TokenExpired
from worker.integrations.social.base import (
    DuplicateContent,
    PostContent,
    PublishResult,
    SocialAccount,
    SocialClient,
    as_count,
    json_body,
    retry_delay,
    same_text,
)

__all__ = ["LinkedInClient", "author_urn", "escape_little_text"]

PAGE_SIZE = 50
MAX_PAGES = 10
RATE_LIMIT_SECONDS = 300.0  # LinkedIn sends no reset header; daily quotas reset at midnight UTC
_RESERVED = re.compile(r"([\\|{}@\[\]()<>#*_~])")


def escape_little_text(text: str) -> str:
    """Escape LinkedIn "little text" reserved characters so the text is posted verbatim."""
    return _RESERVED.sub(r"\\\1", text)


def author_urn(account_id: str) -> str:
    """The author URN: the account id when it is one already, else a member URN."""
    return account_id if account_id.startswith("urn:li:") else f"urn:li:person:{account_id}"


class LinkedInClient(SocialClient):
    """Posts as a member or organization; every call carries the version headers."""

    platform = "linkedin"

    def __init__(self, base_url: str, *, version: str, **kwargs: Any) -> None:
        headers = {"LinkedIn-Version": version, "X-Restli-Protocol-Version": "2.0.0"}
        super().__init__(base_url, headers=headers, **kwargs)

    def publish(self, content: PostContent, account: SocialAccount) -> PublishResult:
        if content.images or content.videos:
            raise PermanentFailure("linkedin: media upload is not supported")
        post: dict[str, Any] = {
            "author": author_urn(account.account_id),
            "commentary": escape_little_text(content.text()),
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        if content.link:
            post["content"] = {"article": {"source": content.link, "title": content.link}}
        response = self._request("POST", "/rest/posts", account, effect=True, json=post)
        urn = response.headers.get("x-restli-id")
        if not urn:
            raise OutcomeUnknown("linkedin: post accepted without an x-restli-id header")
        return PublishResult(urn, f"https://www.linkedin.com/feed/update/{urn}/")

    def classify(self, response: httpx2.Response, *, effect: bool) -> JobError | None:
        body = json_body(response)
        message = str(body.get("message") or "")
        status = response.status_code
        if status == 401:
            return TokenExpired(f"linkedin: {message or 'Unauthorized'} (401)")
        if status == 429:
            delay = retry_delay(response.headers, self._clock(), default=RATE_LIMIT_SECONDS)
            return RetryLater(f"linkedin: throttled (429) {message}".strip(), delay=delay)
        if status == 422 and "duplicate" in message.lower():
            return DuplicateContent(f"linkedin: {message}")
        if status == 426:
            return PermanentFailure(f"linkedin: API version refused (426): {message}")
        if 400 <= status < 500:
            return PermanentFailure(f"linkedin: refused ({status}): {message}")
        return None

    def find_recent(self, account: SocialAccount, text: str, since: datetime) -> str | None:
        expected = escape_little_text(text)
        since_ms = since.timestamp() * 1000
        author = author_urn(account.account_id)
        for page in range(MAX_PAGES):
            params = {
                "q": "author",
                "author": author,
                "count": PAGE_SIZE,
                "start": page * PAGE_SIZE,
                "sortBy": "CREATED",
            }
            body = json_body(self._request("GET", "/rest/posts", account, params=params))
            elements = body.get("elements") or []
            for post in elements:
                if (post.get("createdAt") or 0) < since_ms:
                    return None  # newest first: the rest is older
                if same_text(post.get("commentary"), expected):
                    return str(post["id"])
            if len(elements) < PAGE_SIZE:
                return None
        return None

    def fetch_metrics(self, account: SocialAccount, platform_post_id: str) -> dict[str, int]:
        social = json_body(
            self._request(
                "GET", f"/rest/socialMetadata/{quote(platform_post_id, safe='')}", account
            )
        )
        reactions = social.get("reactionSummaries") or {}
        metrics = {
            "likes": sum(as_count((r or {}).get("count")) for r in reactions.values()),
            "comments": as_count((social.get("commentSummary") or {}).get("count")),
        }
        author = author_urn(account.account_id)
        if author.startswith("urn:li:organization:"):
            metrics.update(self._share_statistics(account, author, platform_post_id))
        metrics["engagement"] = (
            metrics["likes"]
            + metrics["comments"]
            + metrics.get("shares", 0)
            + metrics.get("clicks", 0)
        )
        return metrics

    def _share_statistics(
        self, account: SocialAccount, organization: str, post_urn: str
    ) -> dict[str, int]:
        """Impressions, clicks and shares of an organization's post (organizations only)."""
        kind = "ugcPosts" if ":ugcPost:" in post_urn else "shares"
        query = (
            f"q=organizationalEntity&organizationalEntity={quote(organization, safe='')}"
            f"&{kind}=List({quote(post_urn, safe='')})"
        )
        body = json_body(
            self._request("GET", f"/rest/organizationalEntityShareStatistics?{query}", account)
        )
        for element in body.get("elements") or []:
            stats = element.get("totalShareStatistics") or {}
            return {
                "impressions": as_count(stats.get("impressionCount")),
                "reach": as_count(stats.get("uniqueImpressionsCount")),
                "clicks": as_count(stats.get("clickCount")),
                "shares": as_count(stats.get("shareCount")),
            }
        return {}
