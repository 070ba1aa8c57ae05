"""The seam to the ``openai`` SDK: building the client and mapping its errors onto ours.

The SDK's own retries are off (``max_retries=0``): :func:`call_with_retries` retries 429, 408,
409, 5xx, timeouts and connection errors itself, honouring ``retry-after-ms``/``retry-after``, and
hands a long or exhausted wait back to the scheduler as :class:`~worker.errors.RetryLater`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx2
import openai

from worker.agents.retrying import next_retry_step, retry_after_seconds
from worker.clock import wall_clock
from worker.errors import PermanentFailure, RetryLater
from worker.settings import Settings

__all__ = ["CallPolicy", "build_client", "call_with_retries"]

log = logging.getLogger(__name__)

R = TypeVar("R")

#: Placeholder for servers that need no key (Ollama, vLLM); the SDK insists on one.
NO_KEY = "unused"


@dataclass(frozen=True)
class CallPolicy:
    """In-call retry budget of one request (attempts and total seconds slept)."""

    max_attempts: int = 3
    max_wait: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> CallPolicy:
        return cls(max_attempts=settings.llm_max_attempts, max_wait=settings.llm_max_wait_seconds)


def build_client(settings: Settings, *, http_client: httpx2.Client | None = None) -> openai.OpenAI:
    """An SDK client for the configured OpenAI-compatible server, with SDK retries off."""
    return openai.OpenAI(
        api_key=settings.openai_api_key or NO_KEY,
        base_url=settings.openai_base_url,
        timeout=settings.llm_timeout_seconds,
        max_retries=0,
        http_client=http_client,
    )


def call_with_retries(
    call: Callable[[], R],
    *,
    what: str,
    policy: CallPolicy,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], dt.datetime] = wall_clock,
) -> R:
    """Run ``call`` (one SDK request); retry transient errors within ``policy``.

    Raises PermanentFailure for errors retrying cannot fix (bad request, auth, quota) and
    RetryLater when the transient budget is spent. ``what`` names the call in messages.
    """
    waited = 0.0
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except openai.APIStatusError as exc:
            reason = _transient_reason(exc, what)
            retry_after = retry_after_seconds(
                {k.lower(): v for k, v in exc.response.headers.items()}, now()
            )
        except openai.APIConnectionError as exc:
            kind = "timed out" if isinstance(exc, openai.APITimeoutError) else "connection failed"
            reason, retry_after = f"{what}: {kind}", None
        step = next_retry_step(
            attempt=attempt,
            max_attempts=policy.max_attempts,
            waited=waited,
            max_wait=policy.max_wait,
            retry_after=retry_after,
        )
        if step.give_up:
            raise RetryLater(f"{reason} (gave up after {attempt} attempts)", delay=step.delay)
        log.warning("%s; retrying in %.2fs (attempt %d)", reason, step.delay, attempt)
        sleep(step.delay)
        waited += step.delay


def _transient_reason(exc: openai.APIStatusError, what: str) -> str:
    """A description of a retryable status error; raises PermanentFailure for the others."""
    status = exc.status_code
    code = exc.code or ""
    if status in (401, 403):
        # The server's message may echo part of the key: never copy it.
        raise PermanentFailure(f"{what}: the LLM server rejected the credentials (HTTP {status})")
    if status == 429 and code == "insufficient_quota":
        raise PermanentFailure(f"{what}: the LLM account has no quota left (insufficient_quota)")
    detail = f"HTTP {status}" + (f" {code}" if code else "")
    if status in (408, 409, 429) or status >= 500:
        return f"{what}: {detail}"
    raise PermanentFailure(f"{what}: {detail}: {_message(exc)}")


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"][:300]
    return exc.message[:300]
