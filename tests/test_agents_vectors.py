"""Cosine similarity and top-k selection."""

from __future__ import annotations

import math

import pytest

from worker.agents.vectors import cosine_similarity, normalize, top_k


def test_cosine_similarity_basics() -> None:
    assert cosine_similarity([1, 0], [1, 0]) == pytest.approx(1.0)
    assert cosine_similarity([1, 0], [0, 1]) == pytest.approx(0.0)
    assert cosine_similarity([1, 1], [-1, -1]) == pytest.approx(-1.0)
    assert cosine_similarity([3, 4], [6, 8]) == pytest.approx(1.0)  # scale-free
    assert cosine_similarity([0, 0], [1, 2]) == 0.0
    with pytest.raises(ValueError, match="differ in length"):
        cosine_similarity([1, 2], [1, 2, 3])


def test_normalize() -> None:
    v = normalize([3, 4])
    assert v == pytest.approx([0.6, 0.8])
    assert math.isclose(sum(x * x for x in v), 1.0)
    assert normalize([0, 0]) == [0.0, 0.0]


def test_top_k_orders_best_first_and_limits() -> None:
    candidates = [("east", [1, 0]), ("north", [0, 1]), ("north-east", [1, 1]), ("west", [-1, 0])]
    result = top_k([1, 0.1], candidates, 2)
    assert [name for name, _ in result] == ["east", "north-east"]
    assert result[0][1] > result[1][1]
    assert top_k([1, 0], candidates, 0) == []
    assert [n for n, _ in top_k([1, 0], candidates, 10, min_score=0.5)] == ["east", "north-east"]


def test_top_k_ties_keep_input_order_and_skip_other_dimensions() -> None:
    candidates = [("first", [1, 0]), ("other-model", [1, 0, 0]), ("second", [2, 0])]
    assert [n for n, _ in top_k([1, 0], candidates, 5)] == ["first", "second"]
