"""X API v2: create a post, look up the user's timeline, public metrics (api-contracts §6)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx2

from worker.errors import JobError, PermanentFailure, RetryLater, TokenExpired
from worker.integrations.social.base import (
    DuplicateContent,
    PostContent,
    PublishResult,
    SocialAccount,
    SocialClient,
    TokenGrant,
    as_count,
    json_body,
    retry_delay,
    same_text,
)

__all__ = ["MAX_TEXT", "XClient"]

MAX_TEXT = 280
MAX_PAGES = 10


class XClient(SocialClient):
    """Posts as the user of an OAuth 2.0 user-context token (``account.account_id``: user id)."""

    platform = "twitter"
    can_refresh = True

    def refresh(self, refresh_token: str, client_id: str, client_secret: str) -> TokenGrant:
        """OAuth 2.0 refresh (§6.1); X rotates the refresh token on every use."""
        auth = httpx2.BasicAuth(client_id, client_secret) if client_secret else None
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if client_id:
            form["client_id"] = client_id
        try:
            response = self._request("POST", "/2/oauth2/token", None, data=form, auth=auth)
        except PermanentFailure as exc:
            raise TokenExpired(f"twitter: refresh token refused ({exc})") from exc
        body = json_body(response)
        if not body.get("access_token"):
            raise TokenExpired("twitter: refresh answered without an access token")
        return TokenGrant(
            access_token=str(body["access_token"]),
            refresh_token=body.get("refresh_token") or refresh_token,
            expires_in=body.get("expires_in"),
        )

    def publish(self, content: PostContent, account: SocialAccount) -> PublishResult:
        if content.images or content.videos:
            raise PermanentFailure("twitter: media upload is not supported")
        text = self.published_text(content)
        if not text:
            raise PermanentFailure("twitter: empty post")
        if len(text) > MAX_TEXT:
            raise PermanentFailure(f"twitter: text is {len(text)} characters (max {MAX_TEXT})")
        body = json_body(
            self._request("POST", "/2/tweets", account, effect=True, json={"text": text})
        )
        post_id = (body.get("data") or {}).get("id")
        if not post_id:
            raise PermanentFailure("twitter: accepted without a post id")
        return PublishResult(str(post_id), f"https://x.com/i/web/status/{post_id}")

    def published_text(self, content: PostContent) -> str:
        """X has no link field: the link goes at the end of the text."""
        return " ".join(filter(None, [content.text(), content.link or ""]))

    def classify(self, response: httpx2.Response, *, effect: bool) -> JobError | None:
        body = json_body(response)
        detail = str(body.get("detail") or body.get("title") or body.get("error_description") or "")
        status = response.status_code
        if status == 403 and "duplicate" in detail.lower():
            return DuplicateContent(f"twitter: {detail}")
        if status == 401:
            return TokenExpired(f"twitter: {detail or 'Unauthorized'} (401)")
        if status == 429:
            return RetryLater(
                f"twitter: {detail or 'Too Many Requests'} (429)",
                delay=retry_delay(response.headers, self._clock()),
            )
        if status in (400, 403):
            messages = [
                e.get("message", "") for e in body.get("errors") or [] if isinstance(e, dict)
            ]
            return PermanentFailure(f"twitter: {'; '.join(filter(None, [detail, *messages]))}")
        return None

    def find_recent(self, account: SocialAccount, text: str, since: datetime) -> str | None:
        params: dict[str, str | int] = {
            "start_time": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "max_results": 100,
            "tweet.fields": "created_at,text",
        }
        for _ in range(MAX_PAGES):
            body = json_body(
                self._request(
                    "GET", f"/2/users/{account.account_id}/tweets", account, params=params
                )
            )
            for post in body.get("data") or []:
                if same_text(post.get("text"), text):
                    return str(post["id"])
            token = (body.get("meta") or {}).get("next_token")
            if not token:
                return None
            params["pagination_token"] = token
        return None

    def fetch_metrics(self, account: SocialAccount, platform_post_id: str) -> dict[str, int]:
        body = json_body(
            self._request(
                "GET",
                f"/2/tweets/{platform_post_id}",
                account,
                params={"tweet.fields": "public_metrics"},
            )
        )
        if not body.get("data"):
            details = [e.get("detail", "") for e in body.get("errors") or [] if isinstance(e, dict)]
            raise PermanentFailure(f"twitter: {'; '.join(details) or 'post not found'}")
        public = body["data"].get("public_metrics") or {}
        reposts = public.get("retweet_count", public.get("repost_count"))
        metrics = {
            "impressions": as_count(public.get("impression_count")),
            "likes": as_count(public.get("like_count")),
            "comments": as_count(public.get("reply_count")),
            "shares": as_count(reposts) + as_count(public.get("quote_count")),
        }
        metrics["engagement"] = metrics["likes"] + metrics["comments"] + metrics["shares"]
        return metrics
