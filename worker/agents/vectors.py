"""Vector arithmetic for memory retrieval (pure, no numpy: candidate sets are small)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TypeVar

__all__ = ["cosine_similarity", "normalize", "top_k"]

T = TypeVar("T")


def normalize(vector: Sequence[float]) -> list[float]:
    """``vector`` scaled to unit length (a zero vector stays zero)."""
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else [0.0] * len(vector)


def cosine_similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine of the angle between ``a`` and ``b``; 0.0 when either is zero.

    Vectors of different lengths come from different embedding models and are not comparable.
    """
    if len(a) != len(b):
        raise ValueError(f"vectors differ in length ({len(a)} != {len(b)})")
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def top_k(
    query: Sequence[float],
    candidates: Iterable[tuple[T, Sequence[float]]],
    k: int,
    *,
    min_score: float | None = None,
) -> list[tuple[T, float]]:
    """The ``k`` candidates most similar to ``query``, best first; ties keep input order.

    Candidates whose vector length differs from the query's are skipped (another model).
    """
    if k <= 0:
        return []
    scored: list[tuple[float, int, T]] = []
    for index, (item, vector) in enumerate(candidates):
        if len(vector) != len(query):
            continue
        score = cosine_similarity(query, vector)
        if min_score is None or score >= min_score:
            scored.append((score, index, item))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [(item, score) for score, _, item in scored[:k]]
