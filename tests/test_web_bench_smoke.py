"""The console benchmark runs on a tiny N and reports every answer."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "ops" / "bench" / "console.py"


def test_console_benchmark_reports_each_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("mmw_bench_console", SCRIPT)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)
    spec.loader.exec_module(bench)
    (result,) = bench.main(["--n", "600", "--repeat", "1", "--json"])
    assert result["jobs"] == 600
    assert set(result["answers_ms"]) == {
        "job list (first page, 50)",
        "job list (failed, page 2 of 25)",
        "job list (type + user)",
        "job page",
        "overview",
    }
    assert all(ms > 0 for ms in result["answers_ms"].values())
