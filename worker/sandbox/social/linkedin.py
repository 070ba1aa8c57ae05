"""LinkedIn Posts API emulation (api-contracts §7).

Every call must carry ``LinkedIn-Version``; writes also ``X-Restli-Protocol-Version: 2.0.0``.
A created post answers 201 with an empty body and its URN in ``x-restli-id``. Throttling is a
bare 429 (LinkedIn documents no reset header).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from worker.sandbox.server import Request, Response, Router
from worker.sandbox.social.state import SandboxPost, SocialState

__all__ = ["LINKEDIN_PREFIX", "linkedin_router"]

LINKEDIN_PREFIX = "/linkedin"
MAX_COMMENTARY = 3000


def _error(status: int, message: str, code: int | None = None) -> Response:
    body: dict[str, Any] = {"message": message, "status": status}
    if code is not None:
        body["serviceErrorCode"] = code
    return Response.json(body, status)


def linkedin_router(state: SocialState) -> Router:
    """Routes under ``/linkedin/rest/…``."""
    router = Router(LINKEDIN_PREFIX)

    def check(request: Request, *, write: bool = False) -> tuple[str | None, Response | None]:
        """(member/organization URN of the token, None) or (None, the error response)."""
        if not request.headers.get("linkedin-version"):
            return None, _error(400, "A version header is required. Use LinkedIn-Version.", 400)
        if write and request.headers.get("x-restli-protocol-version") != "2.0.0":
            return None, _error(400, "X-Restli-Protocol-Version 2.0.0 is required", 400)
        token = request.bearer()
        if not token:
            return None, _error(401, "Empty oauth2_access_token", 401)
        owner, expired = state.token_owner("linkedin", token)
        if owner is None:
            return None, _error(401, "Invalid access token", 65600)
        if expired:
            return None, _error(401, "The token used in the request has expired", 65601)
        return (owner if owner.startswith("urn:li:") else f"urn:li:person:{owner}"), None

    @router.route("POST", "/rest/posts")
    def create(request: Request) -> Response:
        owner, denied = check(request, write=True)
        if denied:
            return denied
        try:
            body = request.json()
        except ValueError:
            return Response.json(
                {
                    "status": 400,
                    "code": "ILLEGAL_ARGUMENT",
                    "message": "Request body could not be converted to data map",
                },
                400,
            )
        for name in ("author", "visibility", "distribution", "lifecycleState"):
            if name not in body:
                return _error(
                    422,
                    f"ERROR :: /{name} :: field is required but not found and has no default value",
                )
        author, commentary = body["author"], body.get("commentary", "")
        if author != owner:
            return _error(
                403, f"Not enough permissions to access: POST /rest/posts as {author}", 100
            )
        if len(commentary) > MAX_COMMENTARY:
            return _error(422, f"ERROR :: /commentary :: length exceeds {MAX_COMMENTARY}")
        allowed, _, _ = state.take_call("linkedin", owner)
        if not allowed:
            return _error(
                429,
                "Resource level throttle APPLICATION DAY limit for calls to this "
                "resource is reached.",
            )
        urn = f"urn:li:share:{6844785523593134080 + state.next_id()}"
        link = ((body.get("content") or {}).get("article") or {}).get("source")
        if (
            state.accept(SandboxPost("linkedin", owner, urn, commentary, state.now(), link=link))
            is None
        ):
            return _error(422, "Content is a duplicate of an existing post.")
        return Response(
            status=201, body=b"", headers={"x-restli-id": urn, "Location": f"/rest/posts/{urn}"}
        )

    @router.route("GET", "/rest/posts")
    def by_author(request: Request) -> Response:
        _, denied = check(request)
        if denied:
            return denied
        if request.query.get("q") != "author" or "author" not in request.query:
            return _error(400, "q=author and author are required", 400)
        start, count = int(request.query.get("start", 0)), int(request.query.get("count", 10))
        posts = sorted(
            state.posts("linkedin", request.query["author"]),
            key=lambda p: p.created_at,
            reverse=True,
        )
        elements = [
            {
                "id": p.post_id,
                "author": p.account_id,
                "commentary": p.text,
                "createdAt": int(p.created_at * 1000),
                "publishedAt": int(p.created_at * 1000),
                "lifecycleState": "PUBLISHED",
                "visibility": "PUBLIC",
            }
            for p in posts[start : start + count]
        ]
        return Response.json(
            {"elements": elements, "paging": {"start": start, "count": count, "total": len(posts)}}
        )

    @router.route("GET", "/rest/socialMetadata/{urn}")
    def social_metadata(request: Request) -> Response:
        _, denied = check(request)
        if denied:
            return denied
        post = state.find_post(unquote(request.params["urn"]))
        if post is None:
            return _error(404, "Not Found", 404)
        m = post.metrics
        return Response.json(
            {
                "entity": post.post_id,
                "reactionSummaries": {"LIKE": {"reactionType": "LIKE", "count": m["likes"]}},
                "commentSummary": {"count": m["comments"], "topLevelCount": m["comments"]},
                "commentsState": "OPEN",
            }
        )

    @router.route("GET", "/rest/organizationalEntityShareStatistics")
    def share_statistics(request: Request) -> Response:
        _, denied = check(request)
        if denied:
            return denied
        organization = request.query.get("organizationalEntity", "")
        listed = request.query.get("shares") or request.query.get("ugcPosts") or ""
        urns = [u for u in listed.removeprefix("List(").removesuffix(")").split(",") if u]
        elements = []
        for urn in urns:
            post = state.find_post(urn)
            if post is None or post.account_id != organization:
                continue
            m = post.metrics
            elements.append(
                {
                    "organizationalEntity": organization,
                    "share": urn,
                    "totalShareStatistics": {
                        "impressionCount": m["impressions"],
                        "uniqueImpressionsCount": m["reach"],
                        "clickCount": m["clicks"],
                        "likeCount": m["likes"],
                        "commentCount": m["comments"],
                        "shareCount": m["shares"],
                        "engagement": round(
                            (m["likes"] + m["comments"] + m["shares"] + m["clicks"])
                            / max(m["impressions"], 1),
                            4,
                        ),
                    },
                }
            )
        return Response.json({"elements": elements})

    return router
