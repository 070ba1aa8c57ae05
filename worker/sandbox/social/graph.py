"""Graph API emulation for Facebook Pages and Instagram publishing (api-contracts §4, §5).

Errors use Graph's envelope with HTTP 400 and are told apart by ``code``; rate limits answer
code 32 (Page) or 80002 (Instagram) with an ``X-Business-Use-Case-Usage`` header whose
``estimated_time_to_regain_access`` is in minutes.
"""

from __future__ import annotations

import json
import math
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from worker.sandbox.server import Request, Response, Router
from worker.sandbox.social.state import SandboxPost, SocialState

__all__ = ["GRAPH_PREFIX", "GRAPH_VERSION", "graph_error_response", "graph_router"]

GRAPH_VERSION = "v21.0"
GRAPH_PREFIX = "/graph"

FB_INSIGHTS = {
    "post_media_view": "impressions",
    "post_total_media_view_unique": "reach",
    "post_clicks": "clicks",
    "post_reactions_by_type_total": "likes",
}
IG_INSIGHTS = {
    "views": "impressions",
    "reach": "reach",
    "likes": "likes",
    "comments": "comments",
    "shares": "shares",
    "saved": "saved",
}


def graph_error_response(
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    status: int = 400,
    kind: str = "OAuthException",
    headers: dict[str, str] | None = None,
) -> Response:
    """A Graph error envelope."""
    error: dict[str, Any] = {
        "message": message,
        "type": kind,
        "code": code,
        "fbtrace_id": secrets.token_urlsafe(8),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return Response(status=status, body={"error": error}, headers=headers or {})


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def graph_router(state: SocialState) -> Router:
    """Routes of ``/graph/{version}/…`` for both Facebook and Instagram."""
    router = Router(GRAPH_PREFIX + "/{version}")

    def token_of(request: Request) -> str | None:
        return request.bearer() or request.form().get("access_token")

    def authorize(request: Request, node: str | None) -> Response | None:
        """None if the token may act on ``node`` (None: any node), else the Graph error."""
        token = token_of(request)
        if not token:
            return graph_error_response(
                104, "An access token is required to request this resource."
            )
        owner, expired = state.token_owner("facebook", token)
        if owner is None:
            return graph_error_response(190, "Invalid OAuth access token.", subcode=467)
        if expired:
            return graph_error_response(
                190,
                "Error validating access token: Session has expired.",
                subcode=463,
            )
        if node is not None and owner != node:
            return graph_error_response(
                200,
                "(#200) The user hasn't authorized the application to perform this action",
                kind="OAuthException",
            )
        return None

    def throttle(request: Request, platform: str, account: str) -> Response | None:
        allowed, wait, _ = state.take_call(platform, account)
        if allowed:
            return None
        usage = {
            account: [
                {
                    "type": "pages" if platform == "facebook" else "instagram",
                    "call_count": 100,
                    "total_cputime": 10,
                    "total_time": 10,
                    "estimated_time_to_regain_access": max(1, math.ceil(wait / 60)),
                }
            ]
        }
        headers = {"X-Business-Use-Case-Usage": json.dumps(usage)}
        if platform == "facebook":
            return graph_error_response(32, "Page request limit reached", headers=headers)
        return graph_error_response(
            80002, "There have been too many calls to this Instagram account.", headers=headers
        )

    def page_of(request: Request, items: list[dict[str, Any]], path: str) -> Response:
        """One page of ``items`` with Graph cursor paging (``after`` = offset)."""
        form = request.form()
        limit = min(int(form.get("limit", 25)), 100)
        start = int(form.get("after", 0))
        chunk = items[start : start + limit]
        paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(start + limit)}}
        if start + limit < len(items):
            query = {k: v for k, v in form.items() if k != "access_token"}
            query["after"] = str(start + limit)
            host = request.headers.get("host", "127.0.0.1")
            version = request.params["version"]
            paging["next"] = f"http://{host}{GRAPH_PREFIX}/{version}{path}?{urlencode(query)}"
        return Response.json({"data": chunk, "paging": paging})

    def since_filter(request: Request, posts: list[SandboxPost]) -> list[SandboxPost]:
        since = float(request.form().get("since", 0))
        return sorted(
            (p for p in posts if p.created_at >= since), key=lambda p: p.created_at, reverse=True
        )

    # --- Facebook Pages ------------------------------------------------------------------------
    @router.route("POST", "/{node}/feed")
    def create_feed_post(request: Request) -> Response:
        page = request.params["node"]
        if denied := authorize(request, page):
            return denied
        form = request.form()
        message, link = form.get("message", ""), form.get("link")
        if not message and not link:
            return graph_error_response(
                100, "(#100) Either message or link must be supplied", kind="GraphMethodException"
            )
        if limited := throttle(request, "facebook", page):
            return limited
        post_id = f"{page}_{state.next_id()}"
        post = SandboxPost("facebook", page, post_id, message, state.now(), link=link)
        if state.accept(post) is None:
            return graph_error_response(506, "(#506) Duplicate status message")
        return Response.json({"id": post_id})

    @router.route("POST", "/{node}/photos")
    def create_photo(request: Request) -> Response:
        page = request.params["node"]
        if denied := authorize(request, page):
            return denied
        form = request.form()
        if not form.get("url"):
            return graph_error_response(324, "(#324) Requires upload file", kind="OAuthException")
        if limited := throttle(request, "facebook", page):
            return limited
        photo_id = str(state.next_id())
        post_id = f"{page}_{photo_id}"
        caption = form.get("caption", "")
        post = SandboxPost("facebook", page, post_id, caption, state.now(), media=(form["url"],))
        if state.accept(post) is None:
            return graph_error_response(506, "(#506) Duplicate status message")
        return Response.json({"id": photo_id, "post_id": post_id})

    @router.route("GET", "/{node}/feed")
    def page_feed(request: Request) -> Response:
        page = request.params["node"]
        if denied := authorize(request, page):
            return denied
        posts = since_filter(request, state.posts("facebook", page))
        items = [
            {"id": p.post_id, "message": p.text, "created_time": _time(p.created_at)} for p in posts
        ]
        return page_of(request, items, f"/{page}/feed")

    # --- Instagram ---------------------------------------------------------------------------
    @router.route("POST", "/{node}/media")
    def create_container(request: Request) -> Response:
        ig_user = request.params["node"]
        if denied := authorize(request, ig_user):
            return denied
        form = request.form()
        media_url = (
            form.get("video_url") if form.get("media_type") == "REELS" else form.get("image_url")
        )
        if not media_url:
            return graph_error_response(
                100, "The parameter image_url is required", kind="OAuthException"
            )
        container = state.add_container(ig_user, form.get("caption", ""), media_url)
        return Response.json({"id": container.container_id})

    @router.route("POST", "/{node}/media_publish")
    def media_publish(request: Request) -> Response:
        ig_user = request.params["node"]
        if denied := authorize(request, ig_user):
            return denied
        container = state.container(request.form().get("creation_id", ""))
        if container is None or container.account_id != ig_user:
            return graph_error_response(100, "Invalid parameter", subcode=2207006)
        if limited := throttle(request, "instagram", ig_user):
            return limited
        if not state.mark_published(container.container_id):
            return graph_error_response(
                9007,
                "The media is not ready for publishing, please wait for a moment",
                subcode=2207027,
            )
        media_id = f"1791{state.next_id():011d}"
        post = SandboxPost(
            "instagram",
            ig_user,
            media_id,
            container.caption,
            state.now(),
            media=(container.media_url,),
        )
        state.accept(post)
        return Response.json({"id": media_id})

    @router.route("GET", "/{node}/media")
    def ig_media(request: Request) -> Response:
        ig_user = request.params["node"]
        if denied := authorize(request, ig_user):
            return denied
        posts = since_filter(request, state.posts("instagram", ig_user))
        items = [
            {"id": p.post_id, "caption": p.text, "timestamp": _time(p.created_at)} for p in posts
        ]
        return page_of(request, items, f"/{ig_user}/media")

    # --- Nodes and insights ---------------------------------------------------------------------
    @router.route("GET", "/{node}/insights")
    def insights(request: Request) -> Response:
        if denied := authorize(request, None):
            return denied
        post = state.find_post(request.params["node"])
        if post is None:
            return _missing(request.params["node"])
        names = {"facebook": FB_INSIGHTS, "instagram": IG_INSIGHTS}[post.platform]
        wanted = [m for m in request.form().get("metric", "").split(",") if m]
        if not wanted:
            return graph_error_response(3001, "Invalid query", subcode=1504028)
        unknown = [m for m in wanted if m not in names and m != "total_interactions"]
        if unknown:
            return graph_error_response(
                100, f"(#100) The value must be a valid insights metric: {unknown[0]}"
            )
        data = []
        for metric in wanted:
            value: Any
            if metric == "total_interactions":
                value = sum(post.metrics[k] for k in ("likes", "comments", "shares", "saved"))
            elif metric == "post_reactions_by_type_total":
                value = {"like": post.metrics["likes"]}
            else:
                value = post.metrics[names[metric]]
            data.append(
                {
                    "name": metric,
                    "period": "lifetime",
                    "values": [{"value": value}],
                    "id": f"{post.post_id}/insights/{metric}/lifetime",
                }
            )
        return Response.json({"data": data, "paging": {}})

    @router.route("GET", "/{node}")
    def node(request: Request) -> Response:
        if denied := authorize(request, None):
            return denied
        node_id = request.params["node"]
        container = state.container(node_id)
        if container is not None:
            code = state.poll_container(node_id)
            status = {"ERROR": "Error: 2207026 unsupported video format"}.get(code, code)
            return Response.json({"status_code": code, "status": status, "id": node_id})
        post = state.find_post(node_id)
        if post is None:
            return _missing(node_id)
        m = post.metrics
        return Response.json(
            {
                "id": post.post_id,
                "shares": {"count": m["shares"]},
                "reactions": {"data": [], "summary": {"total_count": m["likes"]}},
                "comments": {"data": [], "summary": {"total_count": m["comments"]}},
            }
        )

    return router


def _missing(node_id: str) -> Response:
    return graph_error_response(
        100,
        f"Unsupported get request. Object with ID '{node_id}' does not exist",
        subcode=33,
        kind="GraphMethodException",
    )
