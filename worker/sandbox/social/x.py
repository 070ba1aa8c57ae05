"""X API v2 emulation: create posts, user timeline, post lookup (api-contracts §6).

Errors use the v2 problem format; every publish answer carries ``x-rate-limit-*`` headers when a
limit is set, and 429 says when the window resets. Timeline texts have links rewritten to t.co
as the real API does, so reconciliation must not compare links literally.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from worker.sandbox.server import Request, Response, Router
from worker.sandbox.social.state import SandboxPost, SocialState

__all__ = ["X_PREFIX", "problem", "x_router"]

X_PREFIX = "/x"
MAX_TEXT = 280
ALLOWED_FIELDS = frozenset(
    {
        "text",
        "media",
        "reply",
        "quote_tweet_id",
        "poll",
        "reply_settings",
        "geo",
        "nullcast",
        "for_super_followers_only",
        "community_id",
        "edit_options",
        "made_with_ai",
        "paid_partnership",
        "card_uri",
    }
)
_URL = re.compile(r"https?://\S+")


def problem(
    status: int, title: str, detail: str, kind: str = "about:blank", **extra: Any
) -> Response:
    """A v2 problem-format error response."""
    body = {"title": title, "detail": detail, "type": kind, "status": status, **extra}
    return Response(status=status, body=body, headers={"Content-Type": "application/problem+json"})


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def x_router(state: SocialState) -> Router:
    """Routes under ``/x/2/…``."""
    router = Router(X_PREFIX)

    def user_of(request: Request) -> tuple[str | None, Response | None]:
        owner, expired = state.token_owner("twitter", request.bearer())
        if owner is None or expired:
            return None, problem(401, "Unauthorized", "Unauthorized")
        return owner, None

    def limit_headers(remaining: int, reset_in: float) -> dict[str, str]:
        limit = state.rate_limit("twitter")
        if limit is None:
            return {}
        return {
            "x-rate-limit-limit": str(limit.limit),
            "x-rate-limit-remaining": str(max(remaining, 0)),
            "x-rate-limit-reset": str(math.ceil(state.now() + reset_in)),
        }

    def tco(text: str) -> str:
        return _URL.sub(lambda m: f"https://t.co/{abs(hash(m.group())) % 10**10:010d}", text)

    @router.route("POST", "/2/oauth2/token")
    def refresh(request: Request) -> Response:
        form = request.form()
        if form.get("grant_type") != "refresh_token":
            return Response.json(
                {"error": "unsupported_grant_type", "error_description": "grant_type"}, 400
            )
        tokens = state.rotate("twitter", form.get("refresh_token", ""))
        if tokens is None:
            return Response.json(
                {
                    "error": "invalid_request",
                    "error_description": "Value passed for the token was invalid.",
                },
                400,
            )
        access, rotated = tokens
        return Response.json(
            {
                "token_type": "bearer",
                "expires_in": 7200,
                "access_token": access,
                "scope": "tweet.write users.read tweet.read offline.access",
                "refresh_token": rotated,
            }
        )

    @router.route("POST", "/2/tweets")
    def create(request: Request) -> Response:
        user, denied = user_of(request)
        if denied:
            return denied
        try:
            body = request.json()
        except ValueError:
            return problem(400, "Invalid Request", "Request body is not valid JSON.")
        unknown = sorted(set(body or {}) - ALLOWED_FIELDS) if isinstance(body, dict) else ["body"]
        text = body.get("text", "") if isinstance(body, dict) else ""
        if unknown or not text:
            message = f"[{unknown[0]}] is not a valid field" if unknown else "text is required"
            return problem(
                400,
                "Invalid Request",
                "One or more parameters to your request was invalid.",
                "https://api.twitter.com/2/problems/invalid-request",
                errors=[{"parameters": {}, "message": message}],
            )
        if len(text) > MAX_TEXT:
            return problem(
                403,
                "Forbidden",
                "Your Tweet text is too long. For more information on how "
                "X determines text length, see https://github.com/twitter/twitter-text.",
            )
        allowed, wait, remaining = state.take_call("twitter", user)
        if not allowed:
            return Response(
                status=429,
                body={
                    "title": "Too Many Requests",
                    "detail": "Too Many Requests",
                    "type": "about:blank",
                    "status": 429,
                },
                headers=limit_headers(0, wait),
            )
        post_id = str(1445880548472328192 + state.next_id())
        if state.accept(SandboxPost("twitter", user, post_id, text, state.now())) is None:
            return problem(
                403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."
            )
        limit = state.rate_limit("twitter")
        return Response(
            status=201,
            body={"data": {"id": post_id, "text": tco(text), "edit_history_tweet_ids": [post_id]}},
            headers=limit_headers(remaining, limit.window if limit else 0),
        )

    @router.route("GET", "/2/users/{user_id}/tweets")
    def timeline(request: Request) -> Response:
        _, denied = user_of(request)
        if denied:
            return denied
        start = _parse_iso(request.query["start_time"]) if "start_time" in request.query else 0
        size = int(request.query.get("max_results", 10))
        if not 5 <= size <= 100:
            return problem(
                400,
                "Invalid Request",
                "max_results must be between 5 and 100.",
                "https://api.twitter.com/2/problems/invalid-request",
            )
        offset = int(request.query.get("pagination_token", "0") or 0)
        posts = sorted(
            (p for p in state.posts("twitter", request.params["user_id"]) if p.created_at >= start),
            key=lambda p: p.created_at,
            reverse=True,
        )
        chunk = posts[offset : offset + size]
        meta: dict[str, Any] = {"result_count": len(chunk)}
        if chunk:
            meta.update(newest_id=chunk[0].post_id, oldest_id=chunk[-1].post_id)
        if offset + size < len(posts):
            meta["next_token"] = str(offset + size)
        data = [
            {
                "id": p.post_id,
                "text": tco(p.text),
                "created_at": _iso(p.created_at),
                "edit_history_tweet_ids": [p.post_id],
            }
            for p in chunk
        ]
        return Response.json({"data": data, "meta": meta} if data else {"meta": meta})

    @router.route("GET", "/2/tweets/{post_id}")
    def lookup(request: Request) -> Response:
        _, denied = user_of(request)
        if denied:
            return denied
        post = state.find_post(request.params["post_id"])
        if post is None or post.platform != "twitter":
            post_id = request.params["post_id"]
            return Response.json(
                {
                    "errors": [
                        {
                            "value": post_id,
                            "detail": f"Could not find tweet with id: [{post_id}].",
                            "title": "Not Found Error",
                            "resource_type": "tweet",
                            "parameter": "id",
                            "resource_id": post_id,
                            "type": "https://api.twitter.com/2/problems/resource-not-found",
                        }
                    ]
                }
            )
        m = post.metrics
        public = {
            state.x_repost_key: m["shares"],
            "reply_count": m["comments"],
            "like_count": m["likes"],
            "quote_count": 0,
            "bookmark_count": m["saved"],
            "impression_count": m["impressions"],
        }
        return Response.json(
            {"data": {"id": post.post_id, "text": tco(post.text), "public_metrics": public}}
        )

    return router
