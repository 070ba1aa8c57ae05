"""An OpenAI-compatible sandbox: chat completions, embeddings, models, OpenAI-shaped errors.

Point the real SDK at it with ``base_url=f"{server.url}/v1"``. Unscripted, it answers
deterministically: a ``json_schema`` response format gets a JSON instance of the schema, other
formats get a short text; embeddings are feature-hashed vectors at the model's dimension, in
``float`` or the ``base64`` encoding the SDK asks for by default. Tests script the next answers
per endpoint (:meth:`OpenAISandbox.queue_answer`, :meth:`queue_error`,
:meth:`queue_rate_limit`), e.g. a malformed answer then a valid one, and read back what the SDK
sent in ``chat_requests`` / ``embedding_requests``. Probabilistic faults come from the shared
:class:`~worker.sandbox.server.Faults`, with OpenAI-shaped 429/500 bodies.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import struct
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from worker.agents.embeddings import HashingEmbedder
from worker.clock import Clock
from worker.sandbox.schema_example import example_instance, strict_schema_problem
from worker.sandbox.server import Faults, Request, Response, Router, SandboxServer

__all__ = ["EMBEDDING_DIMENSIONS", "OpenAISandbox", "openai_error"]

#: Default vector size per embedding model (others: 768).
EMBEDDING_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_SCHEMA_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

Endpoint = Literal["chat", "embeddings"]


def openai_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An error response in OpenAI's shape: ``{"error": {message, type, param, code}}``."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return Response(status=status, body=body, headers=dict(headers or {}))


@dataclass
class _Scripted:
    """One queued answer: a chat content (or refusal), or an error response."""

    content: str | None = None
    refusal: str | None = None
    finish_reason: str = "stop"
    error: Response | None = None


@dataclass
class OpenAISandbox:
    """The emulator's state; :meth:`server` serves it. ``clock`` stamps answers (``created``)."""

    clock: Clock
    api_key: str = "sk-sandbox-key"
    #: When set, any other model answers 404 model_not_found.
    models: set[str] | None = None
    #: Retry-After sent with injected (Faults) 429s.
    fault_retry_after: str = "1"
    chat_requests: list[dict[str, Any]] = field(default_factory=list)
    embedding_requests: list[dict[str, Any]] = field(default_factory=list)
    _queues: dict[str, deque[_Scripted]] = field(
        default_factory=lambda: {"chat": deque(), "embeddings": deque()}
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- scripting ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget scripted answers and recorded requests (one server shared by many tests)."""
        with self._lock:
            for queue in self._queues.values():
                queue.clear()
            self.chat_requests.clear()
            self.embedding_requests.clear()
        self.models = None

    def queue_answer(self, content: str | dict[str, Any] | BaseModel) -> None:
        """The next chat completion answers ``content`` (a dict/model is sent as JSON)."""
        if isinstance(content, BaseModel):
            content = content.model_dump_json()
        elif isinstance(content, dict):
            content = json.dumps(content)
        self._queues["chat"].append(_Scripted(content=content))

    def queue_refusal(self, refusal: str) -> None:
        self._queues["chat"].append(_Scripted(refusal=refusal))

    def queue_error(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        headers: dict[str, str] | None = None,
        endpoint: Endpoint = "chat",
    ) -> None:
        error = openai_error(status, message, type_=type_, code=code, headers=headers)
        self._queues[endpoint].append(_Scripted(error=error))

    def queue_rate_limit(
        self,
        *,
        retry_after: str | None = "1",
        retry_after_ms: str | None = None,
        code: str = "rate_limit_exceeded",
        endpoint: Endpoint = "chat",
    ) -> None:
        """The next request on ``endpoint`` answers 429 with these headers."""
        headers = {}
        if retry_after is not None:
            headers["retry-after"] = retry_after
        if retry_after_ms is not None:
            headers["retry-after-ms"] = retry_after_ms
        message = (
            "You exceeded your current quota, please check your plan and billing details."
            if code == "insufficient_quota"
            else "Rate limit reached for requests per min (RPM): Limit 500, Used 500."
        )
        self.queue_error(
            429, message, type_="requests", code=code, headers=headers, endpoint=endpoint
        )

    # --- serving ------------------------------------------------------------------------------
    def router(self) -> Router:
        router = Router("/v1")
        router.route("POST", "/chat/completions")(self._chat)
        router.route("POST", "/embeddings")(self._embeddings)
        router.route("GET", "/models")(self._models)
        return router

    def server(self, faults: Faults | None = None) -> SandboxServer:
        """A SandboxServer for this emulator (not started; use it as a context manager)."""
        return SandboxServer(
            self.router(),
            faults=faults,
            on_rate_limit=lambda _r: openai_error(
                429,
                "Rate limit reached for requests per min (RPM).",
                type_="requests",
                code="rate_limit_exceeded",
                headers={"retry-after": self.fault_retry_after},
            ),
            on_server_error=lambda _r: openai_error(
                500, "The server had an error while processing your request.", type_="server_error"
            ),
        )

    def _next(self, endpoint: Endpoint) -> _Scripted | None:
        with self._lock:
            queue = self._queues[endpoint]
            return queue.popleft() if queue else None

    def _headers(self) -> dict[str, str]:
        return {
            "x-request-id": f"req_{next(self._ids):08d}",
            "openai-processing-ms": "1",
            "openai-version": "2020-10-01",
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "499",
            "x-ratelimit-reset-requests": "120ms",
        }

    def _auth_error(self, request: Request) -> Response | None:
        key = request.bearer()
        if key is None:
            return openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if key != self.api_key:
            masked = f"{key[:3]}*****{key[-4:]}" if len(key) > 8 else "*****"
            return openai_error(
                401, f"Incorrect API key provided: {masked}.", code="invalid_api_key"
            )
        return None

    def _model_error(self, body: dict[str, Any]) -> Response | None:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return openai_error(400, "you must provide a model parameter", param="model")
        if self.models is not None and model not in self.models:
            return openai_error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        return None

    def _chat(self, request: Request) -> Response:
        problem = self._auth_error(request)
        if problem:
            return problem
        try:
            body = request.json()
        except ValueError:
            return openai_error(400, "We could not parse the JSON body of your request.")
        problem = self._model_error(body) or _chat_request_problem(body)
        if problem:
            return problem
        with self._lock:
            self.chat_requests.append(body)
        scripted = self._next("chat")
        if scripted and scripted.error:
            return scripted.error
        if scripted:
            content, refusal = scripted.content, scripted.refusal
        else:
            content, refusal = _default_answer(body), None
        prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in body["messages"])
        completion_tokens = len((content or refusal or "").split())
        answer = {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(self.clock().timestamp()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": scripted.finish_reason if scripted else "stop",
                    "logprobs": None,
                    "message": {
                        "role": "assistant",
                        "content": content,
                        "refusal": refusal,
                        "tool_calls": None,
                        "annotations": [],
                    },
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
            "system_fingerprint": "fp_sandbox",
            "service_tier": "default",
        }
        return Response.json(answer, **self._headers())

    def _embeddings(self, request: Request) -> Response:
        problem = self._auth_error(request)
        if problem:
            return problem
        try:
            body = request.json()
        except ValueError:
            return openai_error(400, "We could not parse the JSON body of your request.")
        problem = self._model_error(body)
        if problem:
            return problem
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or any(i in ("", []) for i in inputs):
            return openai_error(400, "'input' must be a non-empty string or array", param="input")
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            return openai_error(
                400, f"Invalid encoding_format {encoding!r}", param="encoding_format"
            )
        dimensions = body.get("dimensions")
        if dimensions is not None:
            if not str(body["model"]).startswith("text-embedding-3"):
                return openai_error(
                    400, "This model does not support specifying dimensions.", param="dimensions"
                )
            if not isinstance(dimensions, int) or dimensions < 1:
                return openai_error(400, "dimensions must be at least 1", param="dimensions")
        with self._lock:
            self.embedding_requests.append(body)
        scripted = self._next("embeddings")
        if scripted and scripted.error:
            return scripted.error
        size = dimensions or EMBEDDING_DIMENSIONS.get(body["model"], 768)
        texts = [i if isinstance(i, str) else " ".join(map(str, i)) for i in inputs]
        vectors = HashingEmbedder(size).embed(texts)
        data = [
            {"object": "embedding", "index": index, "embedding": _encode(vector, encoding)}
            for index, vector in enumerate(vectors)
        ]
        tokens = sum(len(t.split()) for t in texts)
        answer = {
            "object": "list",
            "model": body["model"],
            "data": data,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return Response.json(answer, **self._headers())

    def _models(self, request: Request) -> Response:
        problem = self._auth_error(request)
        if problem:
            return problem
        names = sorted(self.models or {"gpt-4o-mini", *EMBEDDING_DIMENSIONS})
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "sandbox"} for n in names]
        return Response.json({"object": "list", "data": data}, **self._headers())


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


def _chat_request_problem(body: dict[str, Any]) -> Response | None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return openai_error(400, "'messages' must be a non-empty array", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
        ):
            return openai_error(
                400, f"Invalid value for 'messages[{index}].role'", param=f"messages[{index}]"
            )
    fmt = body.get("response_format") or {"type": "text"}
    if fmt.get("type") not in ("text", "json_object", "json_schema"):
        return openai_error(400, "Invalid response_format type", param="response_format")
    if fmt["type"] == "json_schema":
        spec = fmt.get("json_schema") or {}
        name = spec.get("name", "")
        if not _SCHEMA_NAME.match(name):
            return openai_error(
                400,
                f"Invalid 'response_format.json_schema.name': string does not match pattern. "
                f"Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'. Got {name!r}.",
                param="response_format.json_schema.name",
            )
        if not isinstance(spec.get("schema"), dict):
            return openai_error(
                400, "Missing 'response_format.json_schema.schema'", param="response_format"
            )
        if spec.get("strict"):
            problem = strict_schema_problem(spec["schema"])
            if problem:
                return openai_error(
                    400,
                    f"Invalid schema for response_format '{name}': {problem}",
                    param="response_format",
                    code="invalid_json_schema",
                )
    return None


def _default_answer(body: dict[str, Any]) -> str:
    """The unscripted answer: a schema instance, a JSON object, or a short text."""
    seed = json.dumps(body["messages"], sort_keys=True)
    fmt = body.get("response_format") or {"type": "text"}
    if fmt["type"] == "json_schema":
        return json.dumps(example_instance(fmt["json_schema"]["schema"], seed=seed))
    last = str(body["messages"][-1].get("content") or "")
    if fmt["type"] == "json_object":
        return json.dumps({"answer": f"sandbox answer to: {last[:80]}"})
    return f"Sandbox answer to: {last[:200]}"
