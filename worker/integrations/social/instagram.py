"""Instagram publishing: container, wait until FINISHED, media_publish (api-contracts §5)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from worker.errors import PermanentFailure, RetryLater
from worker.integrations.social.base import (
    PostContent,
    PublishResult,
    SocialAccount,
    as_count,
    json_body,
    same_text,
)
from worker.integrations.social.graph import GraphClient

__all__ = ["InstagramClient"]

INSIGHT_METRICS = {
    "views": "impressions",
    "reach": "reach",
    "likes": "likes",
    "comments": "comments",
    "shares": "shares",
    "total_interactions": "engagement",
}


class InstagramClient(GraphClient):
    """Publishes to an IG professional account (``account.account_id`` is the ig-user-id).

    Containers are polled every ``poll_interval`` seconds, at most ``max_polls`` times; a
    container still processing after that is a RetryLater (nothing was published yet).
    """

    platform = "instagram"

    def __init__(
        self,
        base_url: str,
        *,
        poll_interval: float = 5.0,
        max_polls: int = 60,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url, **kwargs)
        self.poll_interval = poll_interval
        self.max_polls = max_polls
        self._sleep = sleep

    def publish(self, content: PostContent, account: SocialAccount) -> PublishResult:
        ig_user = account.account_id
        container = self._create_container(content, account)
        self._wait_finished(container, account)
        body = json_body(
            self._request(
                "POST",
                f"/{ig_user}/media_publish",
                account,
                effect=True,
                data={"creation_id": container},
            )
        )
        if not body.get("id"):
            raise PermanentFailure("instagram: published without a media id")
        return PublishResult(str(body["id"]))

    def _create_container(self, content: PostContent, account: SocialAccount) -> str:
        """Create the media container (not ``effect``: a container alone is never visible)."""
        form = {"caption": content.text()}
        if content.videos:
            form.update(media_type="REELS", video_url=content.videos[0])
        elif content.images:
            form["image_url"] = content.images[0]
        else:
            raise PermanentFailure("instagram: a post needs an image or a video")
        body = json_body(self._request("POST", f"/{account.account_id}/media", account, data=form))
        if not body.get("id"):
            raise PermanentFailure("instagram: container created without an id")
        return str(body["id"])

    def _wait_finished(self, container: str, account: SocialAccount) -> None:
        params = {"fields": "status_code,status"}
        for attempt in range(self.max_polls):
            body = json_body(self._request("GET", f"/{container}", account, params=params))
            code = body.get("status_code")
            if code in ("FINISHED", "PUBLISHED"):
                return
            if code == "ERROR":
                raise PermanentFailure(f"instagram: container failed: {body.get('status', '')}")
            if code == "EXPIRED":
                raise RetryLater("instagram: container expired before publishing")
            if attempt + 1 < self.max_polls:
                self._sleep(self.poll_interval)
        raise RetryLater(
            f"instagram: container still processing after {self.max_polls} polls",
            delay=self.poll_interval * self.max_polls,
        )

    def find_recent(self, account: SocialAccount, text: str, since: datetime) -> str | None:
        params = {"fields": "id,caption,timestamp", "since": int(since.timestamp()), "limit": 25}
        for media in self._pages(f"/{account.account_id}/media", account, params):
            if same_text(media.get("caption"), text):
                return str(media["id"])
        return None

    def fetch_metrics(self, account: SocialAccount, platform_post_id: str) -> dict[str, int]:
        params = {"metric": ",".join(INSIGHT_METRICS), "period": "lifetime"}
        metrics: dict[str, int] = {}
        for item in self._pages(f"/{platform_post_id}/insights", account, params):
            key = INSIGHT_METRICS.get(item.get("name", ""))
            values = item.get("values") or []
            if key and values:
                metrics[key] = as_count(values[-1].get("value"))
        return metrics
