"""The shared, thread-safe state of the social sandbox: accounts, tokens, posts, limits.

The platform routers (``graph``, ``x``, ``linkedin``) only translate HTTP to calls on
:class:`SocialState`, so tests can inspect and steer one object: which posts were accepted,
which tokens are expired, which rate limits apply.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import threading
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from worker.clock import Clock

__all__ = ["Container", "RateLimit", "SandboxPost", "SocialState", "sandbox_token"]

TOKEN_PREFIX = "sbx"


def sandbox_token(platform: str, account_id: str) -> str:
    """A token the sandbox accepts for ``account_id`` without registration (for ``mmw dev``)."""
    return f"{TOKEN_PREFIX}.{platform}.{account_id}"


@dataclass(frozen=True)
class SandboxPost:
    """One post the sandbox accepted; ``metrics`` are what its insights endpoints report."""

    platform: str
    account_id: str
    post_id: str
    text: str
    created_at: float
    media: tuple[str, ...] = ()
    link: str | None = None
    metrics: dict[str, int] = field(default_factory=dict)


@dataclass
class Container:
    """An Instagram media container: IN_PROGRESS for ``polls_left`` status polls."""

    container_id: str
    account_id: str
    caption: str
    media_url: str
    polls_left: int
    outcome: str = "FINISHED"
    published: bool = False


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` publish requests per ``window`` seconds per account."""

    limit: int
    window: float


def fake_metrics(post_id: str) -> dict[str, int]:
    """Deterministic, post-specific metrics so tests compare clients against the sandbox."""
    seed = int(hashlib.sha256(post_id.encode()).hexdigest()[:8], 16)
    reach = 50 + seed % 500
    return {
        "impressions": reach * 2,
        "reach": reach,
        "likes": seed % 40,
        "comments": seed % 7,
        "shares": seed % 5,
        "clicks": seed % 11,
        "saved": seed % 3,
    }


class SocialState:
    """Everything the four platform emulators remember.

    ``duplicate_platforms`` reject a post whose text equals an earlier post of the same account
    (X 403, Graph 506, LinkedIn 422); Instagram accepts repeated captions, as the real one does.
    Tests that count duplicates themselves pass an empty set. ``clock`` is the time of whoever
    runs the sandbox (the test's hand clock, wall time in ``mmw dev``); tests sharing one server
    point it at their own clock.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        ig_processing_polls: int = 0,
        duplicate_platforms: Iterable[str] = ("facebook", "twitter", "linkedin"),
    ) -> None:
        self.clock = clock
        self._initial = (ig_processing_polls, set(duplicate_platforms))
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.reset()

    def now(self) -> float:
        """The sandbox's time as Unix seconds (post creation times, rate-limit windows)."""
        return self.clock().timestamp()

    def reset(self) -> None:
        """Forget accounts, posts, containers, limits and knobs (for a server shared by tests)."""
        self.ig_processing_polls = self._initial[0]
        self.duplicate_platforms = set(self._initial[1])
        self.ig_container_outcome = "FINISHED"
        self.x_repost_key = "retweet_count"
        self._tokens: dict[str, tuple[str, str]] = {}
        self._refresh_tokens: dict[str, tuple[str, str]] = {}
        self._expired: set[str] = set()
        self._posts: list[SandboxPost] = []
        self._containers: dict[str, Container] = {}
        self._limits: dict[str, RateLimit] = {}
        self._calls: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    # --- accounts and tokens ---------------------------------------------------------------
    def add_account(self, platform: str, account_id: str, token: str | None = None) -> str:
        """Register ``token`` (default: :func:`sandbox_token`) as the token of an account."""
        token = token or sandbox_token(platform, account_id)
        with self._lock:
            self._tokens[token] = (platform, account_id)
        return token

    def add_refresh_token(self, platform: str, account_id: str, refresh_token: str) -> None:
        """Register a refresh token; it is used up (rotated) by its first refresh."""
        with self._lock:
            self._refresh_tokens[refresh_token] = (platform, account_id)

    def rotate(self, platform: str, refresh_token: str) -> tuple[str, str] | None:
        """Trade a refresh token for (access token, new refresh token); None if invalid."""
        with self._lock:
            owner = self._refresh_tokens.get(refresh_token)
            if owner is None or owner[0] != platform:
                return None
            del self._refresh_tokens[refresh_token]
            access, rotated = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            self._tokens[access] = owner
            self._refresh_tokens[rotated] = owner
        return access, rotated

    def expire_token(self, token: str) -> None:
        with self._lock:
            self._expired.add(token)

    def token_owner(self, platform: str, token: str | None) -> tuple[str | None, bool]:
        """(account id, expired) of a token for ``platform``; (None, False) when unknown."""
        if not token:
            return None, False
        with self._lock:
            owner = self._tokens.get(token)
            expired = token in self._expired
        if owner is None:
            prefix, _, rest = token.partition(".")
            kind, _, account = rest.partition(".")
            if prefix == TOKEN_PREFIX and account:
                owner = (kind, account)
        if owner is None or owner[0] not in _same_family(platform):
            return None, False
        return owner[1], expired

    # --- rate limits -----------------------------------------------------------------------
    def set_rate_limit(self, platform: str, limit: int, window: float) -> None:
        with self._lock:
            self._limits[platform] = RateLimit(limit, window)

    def take_call(self, platform: str, account_id: str) -> tuple[bool, float, int]:
        """Count one publish call: (allowed, seconds until a slot frees, remaining slots)."""
        with self._lock:
            limit = self._limits.get(platform)
            if limit is None:
                return True, 0.0, -1
            now = self.now()
            calls = self._calls[(platform, account_id)]
            while calls and calls[0] <= now - limit.window:
                calls.popleft()
            if len(calls) >= limit.limit:
                return False, calls[0] + limit.window - now, 0
            calls.append(now)
            return True, 0.0, limit.limit - len(calls)

    def rate_limit(self, platform: str) -> RateLimit | None:
        with self._lock:
            return self._limits.get(platform)

    # --- posts -----------------------------------------------------------------------------
    def next_id(self) -> int:
        return next(self._ids)

    def accept(self, post: SandboxPost) -> SandboxPost | None:
        """Keep an accepted post, or return None when it duplicates an earlier one's text.

        Check and insert happen under one lock, so concurrent identical posts cannot both pass.
        Metrics default to :func:`fake_metrics`.
        """
        if not post.metrics:
            post = replace(post, metrics=fake_metrics(post.post_id))
        with self._lock:
            if post.platform in self.duplicate_platforms and post.text:
                key = (post.platform, post.account_id, post.text)
                if any((p.platform, p.account_id, p.text) == key for p in self._posts):
                    return None
            self._posts.append(post)
        return post

    def posts(
        self, platform: str | None = None, account_id: str | None = None
    ) -> list[SandboxPost]:
        """Accepted posts in acceptance order, optionally of one platform / account."""
        with self._lock:
            return [
                p
                for p in self._posts
                if (platform is None or p.platform == platform)
                and (account_id is None or p.account_id == account_id)
            ]

    def find_post(self, post_id: str) -> SandboxPost | None:
        with self._lock:
            return next((p for p in self._posts if p.post_id == post_id), None)

    # --- Instagram containers ----------------------------------------------------------------
    def add_container(self, account_id: str, caption: str, media_url: str) -> Container:
        container = Container(
            container_id=f"1790{self.next_id():011d}",
            account_id=account_id,
            caption=caption,
            media_url=media_url,
            polls_left=self.ig_processing_polls,
            outcome=self.ig_container_outcome,
        )
        with self._lock:
            self._containers[container.container_id] = container
        return container

    def container(self, container_id: str) -> Container | None:
        with self._lock:
            return self._containers.get(container_id)

    def poll_container(self, container_id: str) -> str:
        """The container's status_code now; each poll brings processing one step closer."""
        with self._lock:
            container = self._containers[container_id]
            if container.published:
                return "PUBLISHED"
            if container.polls_left > 0:
                container.polls_left -= 1
                return "IN_PROGRESS"
            return container.outcome

    def mark_published(self, container_id: str) -> bool:
        """Mark a FINISHED container published; False if it was already (or not ready)."""
        with self._lock:
            container = self._containers[container_id]
            if container.published or container.polls_left > 0 or container.outcome != "FINISHED":
                return False
            container.published = True
            return True


def _same_family(platform: str) -> tuple[str, ...]:
    """Graph serves Facebook and Instagram: a token of either may call the Graph routes."""
    if platform in ("facebook", "instagram"):
        return ("facebook", "instagram")
    return (platform,)
