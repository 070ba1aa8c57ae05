"""Facebook Pages: feed and photo posts, feed lookup, post insights (api-contracts §4)."""

from __future__ import annotations

from datetime import datetime

from worker.errors import PermanentFailure
from worker.integrations.social.base import (
    PostContent,
    PublishResult,
    SocialAccount,
    as_count,
    json_body,
    same_text,
)
from worker.integrations.social.graph import GraphClient

__all__ = ["FacebookClient"]

INSIGHT_METRICS = {
    "post_media_view": "impressions",
    "post_total_media_view_unique": "reach",
    "post_clicks": "clicks",
}


class FacebookClient(GraphClient):
    """Posts to a Page with its page token. ``account.account_id`` is the page id."""

    platform = "facebook"

    def publish(self, content: PostContent, account: SocialAccount) -> PublishResult:
        if content.videos:
            raise PermanentFailure("facebook: video posts are not supported")
        page, text = account.account_id, content.text()
        if content.images:
            form = {"url": content.images[0], "caption": text, "published": "true"}
            body = json_body(
                self._request("POST", f"/{page}/photos", account, effect=True, data=form)
            )
            post_id = body.get("post_id") or f"{page}_{body.get('id')}"
        else:
            form = {"message": text, "published": "true"}
            if content.link:
                form["link"] = content.link
            body = json_body(
                self._request("POST", f"/{page}/feed", account, effect=True, data=form)
            )
            post_id = body.get("id")
        if not post_id:
            raise PermanentFailure("facebook: accepted without a post id")
        page_part, _, post_part = str(post_id).partition("_")
        return PublishResult(
            str(post_id), f"https://www.facebook.com/{page_part}/posts/{post_part}"
        )

    def find_recent(self, account: SocialAccount, text: str, since: datetime) -> str | None:
        params = {
            "fields": "id,message,created_time",
            "since": int(since.timestamp()),
            "limit": 25,
        }
        for post in self._pages(f"/{account.account_id}/feed", account, params):
            if same_text(post.get("message"), text):
                return str(post["id"])
        return None

    def fetch_metrics(self, account: SocialAccount, platform_post_id: str) -> dict[str, int]:
        metrics: dict[str, int] = {}
        params = {"metric": ",".join(INSIGHT_METRICS), "period": "lifetime"}
        for item in self._pages(f"/{platform_post_id}/insights", account, params):
            key = INSIGHT_METRICS.get(item.get("name", ""))
            values = item.get("values") or []
            if key and values:
                metrics[key] = as_count(values[-1].get("value"))
        fields = "shares,reactions.summary(total_count),comments.summary(total_count)"
        counts = json_body(
            self._request("GET", f"/{platform_post_id}", account, params={"fields": fields})
        )
        metrics["likes"] = as_count(
            ((counts.get("reactions") or {}).get("summary") or {}).get("total_count")
        )
        metrics["comments"] = as_count(
            ((counts.get("comments") or {}).get("summary") or {}).get("total_count")
        )
        metrics["shares"] = as_count((counts.get("shares") or {}).get("count"))
        metrics["engagement"] = (
            metrics["likes"] + metrics["comments"] + metrics["shares"] + metrics.get("clicks", 0)
        )
        return metrics
