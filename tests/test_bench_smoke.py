"""The dispatch benchmark runs end to end on a tiny N and reports sane numbers."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest
import redis

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[1] / "ops" / "bench" / "dispatch.py"


def load_bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import the script by path (ops/ is not a package); dataclasses need it in sys.modules."""
    spec = importlib.util.spec_from_file_location("mmw_bench_dispatch", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(15)
def test_benchmark_completes_50_jobs_and_cleans_up(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MONGODB_URL", raising=False)
    bench = load_bench(monkeypatch)
    lines: list[str] = []
    results = bench.main(
        ["--n", "50", "--threads", "4", "--quiet", "--json", "--redis-url", redis_url],
        out=lines.append,
    )
    ours = results["ours"]
    assert results["engine"] == "embedded"
    assert ours["completed"] == 50 and ours["failed"] == 0
    assert ours["statuses"] == {"completed": 50}
    assert ours["scheduler"]["dispatched"] == 50
    # start + finish per job at least; the claim and audit add a fraction
    assert 2 <= ours["mongo"]["ops_per_job"] < 10
    assert ours["end_to_end_jobs_s"] > 0 and ours["mongo"]["engine_share_of_wall"] > 0
    assert not math.isnan(ours["lag_s"]["p99"]) and ours["lag_s"]["p50"] <= ours["lag_s"]["p99"]
    for key in ("raw_send", "raw_pipeline"):
        assert results[key]["completed"] == 50 and results[key]["ours_over_raw"] > 0
    table = "\n".join(lines)
    assert "end-to-end jobs/s" in table and "scheduled_jobs.find_one_and_update" in table
    assert '"ops_per_job"' in table  # --json
    assert redis.Redis.from_url(redis_url).keys(f"{results['namespace']}:*") == []
