"""The analyst's numbers (pure)."""

from __future__ import annotations

from worker.agents.team import brief_text, compute_roi, totals_of


def test_compute_roi() -> None:
    assert compute_roi(1500, 500) == 2.0
    assert compute_roi(100, 400) == -0.75
    assert compute_roi(1000, 0) is None


def test_totals_sum_known_metrics_and_ignore_junk() -> None:
    rows = [
        {"metrics": {"social": {"total_reach": 10, "posts_published": 1}, "crm": {"revenue": 5}}},
        {"metrics": {"social": {"total_reach": 5.5}, "ppc": {"ad_spend": "lots"}}},
        {},
    ]
    totals = totals_of(rows)
    assert totals["total_reach"] == 15.5
    assert totals["posts_published"] == 1
    assert totals["revenue"] == 5
    assert totals["ad_spend"] == 0


def test_brief_text() -> None:
    text = brief_text({"product": "Shoes", "budget": 100, "channels": ["x", "email"], "n": None})
    assert text == "Shoes 100 x email"
