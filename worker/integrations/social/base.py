"""What every social client shares: the value types, the HTTP seam and the error mapping.

Each platform client subclasses :class:`SocialClient` and only adds its endpoints and a
``classify`` hook for its own error bodies. Everything that is the same for all four platforms
lives here once: transport errors, status-code defaults, retry delays from headers, text matching
for reconciliation.

Transport errors are split by whether the request may have reached the platform: a connect
failure is always :class:`~worker.errors.RetryLater`; a timeout or broken connection after the
request was written is :class:`~worker.errors.OutcomeUnknown` for calls with a side effect
(``effect=True``: a post may exist), and ``RetryLater`` for reads.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import re
import ssl
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar

import httpx2

from worker.errors import JobError, OutcomeUnknown, PermanentFailure, RetryLater, TokenExpired

__all__ = [
    "METRIC_KEYS",
    "DuplicateContent",
    "PostContent",
    "PublishResult",
    "SocialAccount",
    "SocialClient",
    "TokenGrant",
    "as_count",
    "json_body",
    "retry_delay",
    "same_text",
]

METRIC_KEYS = ("impressions", "reach", "engagement", "likes", "comments", "shares", "clicks")
"""The metric names of ``social_posts.analytics``; clients return a subset of these."""

DEFAULT_RETRY_SECONDS = 60.0


class DuplicateContent(PermanentFailure):
    """The platform refused the text as a duplicate (X 403, Graph 506, LinkedIn 422).

    A signal, not proof that *our* earlier attempt went out: the caller reconciles.
    """


@dataclass(frozen=True)
class PublishResult:
    """What a platform answered to an accepted post."""

    platform_post_id: str
    url: str | None = None


@dataclass(frozen=True)
class TokenGrant:
    """New credentials from a refresh; tokens never appear in ``repr``."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_in: float | None = None


@dataclass(frozen=True)
class SocialAccount:
    """One connected account, as the clients need it. The token never appears in ``repr``."""

    platform: str
    account_id: str
    access_token: str = field(repr=False)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> SocialAccount:
        """Build from a ``social_accounts`` document (page / IG business ids win when set)."""
        credentials = doc.get("credentials") or {}
        target = {
            "facebook": credentials.get("page_id"),
            "instagram": credentials.get("instagram_business_id"),
        }.get(doc["platform"])
        return cls(
            platform=doc["platform"],
            account_id=str(target or doc["account_id"]),
            access_token=credentials.get("access_token") or "",
        )


@dataclass(frozen=True)
class PostContent:
    """The ``social_posts.content`` of a post."""

    message: str = ""
    images: tuple[str, ...] = ()
    videos: tuple[str, ...] = ()
    link: str | None = None
    hashtags: tuple[str, ...] = ()

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> PostContent:
        return cls(
            message=doc.get("message") or "",
            images=tuple(doc.get("images") or ()),
            videos=tuple(doc.get("videos") or ()),
            link=doc.get("link") or None,
            hashtags=tuple(doc.get("hashtags") or ()),
        )

    def text(self) -> str:
        """The message with the hashtags it does not already contain appended."""
        tags = [t if t.startswith("#") else f"#{t}" for t in self.hashtags]
        lowered = self.message.lower()  # once, not once per tag
        missing = [t for t in tags if t.lower() not in lowered]
        return " ".join([self.message.strip(), *missing]).strip()


_URL = re.compile(r"https?://\S+")
_SPACE = re.compile(r"\s+")


def same_text(published: str | None, ours: str) -> bool:
    """Whether a post found on the platform carries our text.

    Whitespace is collapsed and URLs are compared as placeholders, because X rewrites links
    to t.co and platforms trim trailing space.
    """
    if published is None:
        return False

    def norm(text: str) -> str:
        return _SPACE.sub(" ", _URL.sub("<url>", text)).strip()

    return norm(published) == norm(ours)


def retry_delay(
    headers: Mapping[str, str], now: float, default: float = DEFAULT_RETRY_SECONDS
) -> float:
    """Seconds to wait before calling again, from whatever reset signal the response carries.

    Honoured, longest wins: ``Retry-After`` (seconds or HTTP date), X's ``x-rate-limit-reset``
    (epoch seconds, when ``x-rate-limit-remaining`` is 0 or absent) and its 24-hour user/app
    variants when exhausted, and Graph's ``X-Business-Use-Case-Usage``
    ``estimated_time_to_regain_access`` (minutes). ``default`` when none is present.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    delays: list[float] = []
    if "retry-after" in lower:
        value = lower["retry-after"].strip()
        try:
            delays.append(float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                delays.append(parsed.timestamp() - now)
    for prefix in ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour"):
        reset, remaining = lower.get(f"{prefix}-reset"), lower.get(f"{prefix}-remaining")
        if reset and (remaining is None or remaining.strip() == "0"):
            with contextlib.suppress(ValueError):
                delays.append(float(reset) - now)
    buc = lower.get("x-business-use-case-usage")
    if buc:
        try:
            usage = json.loads(buc)
            minutes = [
                float(entry.get("estimated_time_to_regain_access") or 0)
                for entries in usage.values()
                for entry in entries
            ]
            delays.extend(m * 60 for m in minutes if m > 0)
        except (ValueError, AttributeError, TypeError):
            pass
    positive = [d for d in delays if d > 0]
    return max(positive) if positive else default


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: loading the CA store takes ~0.1 s per client otherwise."""
    return ssl.create_default_context()


class SocialClient(ABC):
    """One platform's API. Subclasses implement the three operations and ``classify``."""

    platform: ClassVar[str]

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 20.0,
        transport: httpx2.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._http = httpx2.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            verify=_tls_context(),
            headers=dict(headers or {}),
            trust_env=False,
        )
        self._clock = clock

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SocialClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    #: Whether :meth:`refresh` can renew an expired access token.
    can_refresh: ClassVar[bool] = False

    def refresh(self, refresh_token: str, client_id: str, client_secret: str) -> TokenGrant:
        """Trade a refresh token for new credentials (platforms that support it)."""
        raise TokenExpired(f"{self.platform}: access tokens cannot be refreshed")

    @abstractmethod
    def publish(self, content: PostContent, account: SocialAccount) -> PublishResult:
        """Create the post. Raises one of :mod:`worker.errors` on failure."""

    @abstractmethod
    def find_recent(self, account: SocialAccount, text: str, since: datetime) -> str | None:
        """The id of a post of ``account`` with ``text`` created at or after ``since``, if any."""

    @abstractmethod
    def fetch_metrics(self, account: SocialAccount, platform_post_id: str) -> dict[str, int]:
        """The post's metrics, keyed by names from :data:`METRIC_KEYS`."""

    def published_text(self, content: PostContent) -> str:
        """The text this client posts for ``content``: what a reconciliation looks for."""
        return content.text()

    def classify(self, response: httpx2.Response, *, effect: bool) -> JobError | None:
        """The platform's reading of an error response; None falls back to the status code."""
        return None

    def _request(
        self,
        method: str,
        url: str,
        account: SocialAccount | None,
        *,
        effect: bool = False,
        **kwargs: Any,
    ) -> httpx2.Response:
        """Send one request with the account's token (None: the caller authenticates);
        raise the mapped error on failure."""
        headers = dict(kwargs.pop("headers", {}))
        if account is not None:
            headers.setdefault("Authorization", f"Bearer {account.access_token}")
        name = self.platform
        try:
            response = self._http.request(method, url, headers=headers, **kwargs)
        except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout) as exc:
            raise RetryLater(f"{name}: cannot connect ({type(exc).__name__})") from exc
        except httpx2.TransportError as exc:
            message = f"{name}: no answer to {method} ({type(exc).__name__})"
            if effect:
                raise OutcomeUnknown(message) from exc
            raise RetryLater(message) from exc
        if response.is_success:
            return response
        raise self.classify(response, effect=effect) or self._default_error(response, effect)

    def _default_error(self, response: httpx2.Response, effect: bool) -> JobError:
        status, name = response.status_code, self.platform
        if status == 401:
            return TokenExpired(f"{name}: access token rejected (401)")
        if status == 429:
            return RetryLater(
                f"{name}: rate limited (429)", delay=retry_delay(response.headers, self._clock())
            )
        if status >= 500:
            message = f"{name}: server error {status}"
            if effect:
                return OutcomeUnknown(message)
            return RetryLater(message, delay=retry_delay(response.headers, self._clock()))
        return PermanentFailure(f"{name}: request refused ({status}): {_snippet(response)}")


def _snippet(response: httpx2.Response, limit: int = 200) -> str:
    """A short, single-line excerpt of an error body for messages (bodies carry no secrets)."""
    return _SPACE.sub(" ", response.text)[:limit]


def json_body(response: httpx2.Response) -> dict[str, Any]:
    """The response's JSON object, or an empty dict for empty/non-JSON bodies."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def as_count(value: Any) -> int:
    """A metric value as int; Graph gives some metrics as dicts by type, which are summed."""
    if isinstance(value, dict):
        return sum(as_count(v) for v in value.values())
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
