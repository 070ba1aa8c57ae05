"""LLM access for agents: one interface, an OpenAI-compatible provider and the offline one.

An agent builds an :class:`LLMRequest` (its name, the pydantic schema of the answer, the prompt
and the structured ``context`` the prompt was rendered from) and gets an :class:`LLMResult`: the
validated answer plus provider, model and token usage, which the caller records. Which provider
answers is configuration (:func:`build_llm`): with no API key the deterministic offline provider
does, so the whole flow runs with no network.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import httpx2
import openai
from pydantic import BaseModel, ValidationError

from worker.agents.openai_client import CallPolicy, build_client, call_with_retries
from worker.clock import wall_clock
from worker.errors import PermanentFailure
from worker.settings import Settings

__all__ = [
    "LLM",
    "LLMRequest",
    "LLMResult",
    "MalformedAnswer",
    "OpenAIChat",
    "Usage",
    "build_llm",
    "describe_validation_error",
    "render_context",
    "response_format_for",
]

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Usage:
    """Token usage, summed over every answer a call asked for (retries included)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class LLMRequest(Generic[T]):
    """One structured question. ``context`` holds the facts ``prompt`` was rendered from; the
    offline provider answers from it, a real model reads the prompt."""

    agent: str
    schema: type[T]
    instructions: str
    prompt: str
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LLMResult(Generic[T]):
    output: T
    provider: str
    model: str
    usage: Usage
    #: Answers requested (more than 1 when a malformed answer was retried).
    attempts: int

    def metadata(self) -> dict[str, Any]:
        """What callers store next to the output (agent_tasks.result, content metadata)."""
        return {
            "provider": self.provider,
            "model": self.model,
            "usage": self.usage.as_dict(),
            "attempts": self.attempts,
        }


class MalformedAnswer(PermanentFailure):
    """The model kept answering with something that is not the requested schema."""

    def __init__(self, message: str, *, usage: Usage) -> None:
        super().__init__(message)
        self.usage = usage


class LLM(Protocol):
    provider: str

    def model_for(self, agent: str) -> str: ...

    def complete(self, request: LLMRequest[T]) -> LLMResult[T]: ...


def response_format_for(schema: type[BaseModel]) -> dict[str, Any]:
    """The Structured Outputs ``response_format`` of ``schema`` (strict JSON schema)."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": schema.__name__,
            "strict": True,
            "schema": openai.pydantic_function_tool(schema)["function"]["parameters"],
        },
    }


class OpenAIChat:
    """Chat Completions with Structured Outputs on any OpenAI-compatible server."""

    provider = "openai"

    def __init__(
        self,
        client: openai.OpenAI,
        *,
        default_model: str,
        agent_models: Mapping[str, str] | None = None,
        format_attempts: int = 3,
        policy: CallPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], dt.datetime] = wall_clock,
    ) -> None:
        self._client = client
        self._default_model = default_model
        self._agent_models = dict(agent_models or {})
        self._format_attempts = format_attempts
        self._policy = policy or CallPolicy()
        self._sleep = sleep
        self._now = now

    def model_for(self, agent: str) -> str:
        return self._agent_models.get(agent, self._default_model)

    def complete(self, request: LLMRequest[T]) -> LLMResult[T]:
        """Ask until the answer validates against ``request.schema`` (bounded), then return it.

        A malformed answer is shown back to the model with the validation problem, so the retry
        can correct it; after ``format_attempts`` answers :class:`MalformedAnswer` is raised.
        """
        model = self.model_for(request.agent)
        what = f"{request.agent} ({model})"
        messages: list[dict[str, str]] = [
            {"role": "system", "content": request.instructions},
            {"role": "user", "content": request.prompt},
        ]
        response_format = response_format_for(request.schema)
        usage = Usage()
        problem = "no answer"
        for attempt in range(1, self._format_attempts + 1):
            completion = call_with_retries(
                functools.partial(
                    self._client.chat.completions.create,
                    model=model,
                    messages=list(messages),  # type: ignore[arg-type]
                    response_format=response_format,  # type: ignore[arg-type]
                ),
                what=what,
                policy=self._policy,
                sleep=self._sleep,
                now=self._now,
            )
            if completion.usage is not None:
                usage += Usage(
                    completion.usage.prompt_tokens or 0,
                    completion.usage.completion_tokens or 0,
                    completion.usage.total_tokens or 0,
                )
            if not completion.choices:
                problem = "the answer had no choices"
                continue
            message = completion.choices[0].message
            if message.refusal:
                raise MalformedAnswer(f"{what} refused: {message.refusal[:300]}", usage=usage)
            content = message.content or ""
            try:
                output = request.schema.model_validate_json(content)
            except ValidationError as exc:
                problem = describe_validation_error(exc)
                log.warning("%s: malformed answer %d: %s", what, attempt, problem)
                messages += [
                    {"role": "assistant", "content": content},
                    {
                        "role": "user",
                        "content": f"That answer is invalid ({problem}). Reply again with only "
                        f"a JSON object matching the {request.schema.__name__} schema.",
                    },
                ]
                continue
            return LLMResult(output, self.provider, model, usage, attempt)
        raise MalformedAnswer(
            f"{what} gave no valid {request.schema.__name__} in {self._format_attempts} "
            f"answers; last problem: {problem}",
            usage=usage,
        )


def describe_validation_error(exc: ValidationError, limit: int = 3) -> str:
    """The first few problems of a validation error on one line (for logs and retries)."""
    parts = []
    for error in exc.errors()[:limit]:
        where = ".".join(str(p) for p in error["loc"]) or "answer"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def build_llm(settings: Settings, *, http_client: httpx2.Client | None = None) -> LLM:
    """The configured provider: OpenAI-compatible when a key is set (or forced), else offline."""
    from worker.agents.offline import OfflineLLM

    use_openai = settings.llm_provider == "openai" or (
        settings.llm_provider == "auto" and bool(settings.openai_api_key)
    )
    if not use_openai:
        return OfflineLLM()
    return OpenAIChat(
        build_client(settings, http_client=http_client),
        default_model=settings.llm_model,
        agent_models=settings.agent_models,
        format_attempts=settings.llm_format_attempts,
        policy=CallPolicy.from_settings(settings),
    )


def render_context(context: Mapping[str, Any]) -> str:
    """Context as stable, readable JSON for prompts (sorted keys, dates as ISO strings)."""
    return json.dumps(context, indent=2, sort_keys=True, default=str, ensure_ascii=False)
