"""The operator files in ``ops/`` only use metrics the code exports, and Prometheus accepts them.

A renamed metric in ``worker/metrics.py`` (or a typo in a rule) would leave an alert that can
never fire and a blank dashboard panel; these tests catch that at review time.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "ops" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "mmw-dashboard.json"
OPERATIONS = ROOT / "docs" / "operations.md"

# ------------------------------------------------------------------------- PromQL metric names
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_OFFSET = re.compile(r"\boffset\s+-?[\w$]+")
_IDENTIFIER = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_KEYWORDS = frozenset(
    [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
    ]
)
_AGGREGATORS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ]
)
_GRAFANA_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(.+),\s*)?[a-zA-Z_]\w*\s*\)\s*$")


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords and label names excluded)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"#[^\n]*", "", text)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    text = _OFFSET.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name in _KEYWORDS or name in _AGGREGATORS:
            continue
        names.add(name)
    return names


def grafana_query_metric_names(query: str) -> set[str]:
    """Names in a Grafana query: PromQL, or a ``label_values([selector,] label)`` variable."""
    label_values = _GRAFANA_LABEL_VALUES.match(query)
    if label_values:
        return promql_metric_names(label_values.group(1) or "")
    return promql_metric_names(query)


def test_extractor_finds_metrics_not_functions_labels_or_keywords() -> None:
    expr = """
      (sum by (job_type) (rate(mmw_jobs_failed_total{reason!="x", queue=~"a|b"}[15m] offset 5m))
        / on (job_type) group_left sum without (le) (increase(other_metric[$__rate_interval])))
      > bool 0.2 and histogram_quantile(0.95, sum by (le) (rate(lag_bucket[5m])))
      or label_replace(up{job="mmw-scheduler"}, "queue", "$1", "queue_name", "(.*)")
      unless max(gauge_a) > 1e3 or time() - bare_metric > 60   # a comment naming fake_metric
      or sum(absent(named:recording_rule))
    """
    assert promql_metric_names(expr) == {
        "mmw_jobs_failed_total",
        "other_metric",
        "lag_bucket",
        "up",
        "gauge_a",
        "bare_metric",
        "named:recording_rule",
    }


def test_grafana_label_values_query() -> None:
    assert grafana_query_metric_names("label_values(mmw_jobs_claimed_total, job_type)") == {
        "mmw_jobs_claimed_total"
    }
    assert grafana_query_metric_names('label_values(up{job="x"}, instance)') == {"up"}
    assert grafana_query_metric_names("label_values(job_type)") == set()


# ------------------------------------------------------------------------- exported names
# No `_created` series: worker.metrics disables them (imported by every test session).
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "info": ("_info",),
}


def exposed_names(families: Iterable[Metric]) -> set[str]:
    """Series names a scrape shows for these families, children or not yet.

    A labelled metric has no samples until a label set is used, so the names follow from the
    family's type (prometheus_client names a counter family without ``_total``).
    """
    names: set[str] = set()
    for family in families:
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def test_exposed_names_match_a_real_scrape() -> None:
    registry = CollectorRegistry()
    Counter("t_events_total", "d", ["a"], registry=registry).labels("x").inc()
    Counter("t_plain", "d", registry=registry).inc()
    Histogram("t_seconds", "d", ["a"], registry=registry).labels("x").observe(1)
    Gauge("t_level", "d", ["a"], registry=registry).labels("x").set(1)
    scraped = {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in generate_latest(registry).decode().splitlines()
        if line and not line.startswith("#")
    }
    assert exposed_names(registry.collect()) == scraped
    assert {"t_events_total", "t_plain_total", "t_seconds_bucket", "t_level"} <= scraped


def _dramatiq_families() -> Iterator[Metric]:
    """Dramatiq's metrics, built by its own middleware (into a registry of its own)."""
    from dramatiq.middleware import prometheus as dramatiq_prometheus

    middleware = dramatiq_prometheus.Prometheus()
    with pytest.MonkeyPatch.context() as patch:
        # after_process_boot points these at its DB_PATH; restore them afterwards.
        patch.setenv("PROMETHEUS_MULTIPROC_DIR", dramatiq_prometheus.DB_PATH)
        patch.setenv("prometheus_multiproc_dir", dramatiq_prometheus.DB_PATH)
        middleware.after_process_boot(broker=None)
    metrics = [m for m in vars(middleware).values() if isinstance(m, MetricWrapperBase)]
    assert len(metrics) >= 7, "Dramatiq's Prometheus middleware changed: review ops/"
    for metric in metrics:
        yield from metric.collect()


@pytest.fixture(scope="module")
def exported() -> set[str]:
    import worker.metrics  # noqa: F401  (registers ours in the default registry)

    names = exposed_names(REGISTRY.collect()) | exposed_names(_dramatiq_families())
    names.add("up")  # written by Prometheus for every target
    return names


def test_exported_names_include_ours_and_dramatiqs(exported: set[str]) -> None:
    assert {
        "mmw_jobs_failed_total",
        "mmw_schedule_lag_seconds_bucket",
        "mmw_scheduler_last_poll_timestamp_seconds",
        "dramatiq_messages_total",
        "dramatiq_messages_inprogress",
    } <= exported
    assert "mmw_jobs_failed" not in exported


def unknown_names(exprs: Iterable[str], exported: set[str]) -> dict[str, str]:
    """Names not exported by the code, each with the first expression using it."""
    unknown: dict[str, str] = {}
    for expr in exprs:
        for name in sorted(promql_metric_names(expr) - exported):
            unknown.setdefault(name, expr.strip())
    return unknown


def test_unknown_names_are_reported(exported: set[str]) -> None:
    exprs = ["rate(mmw_jobs_failed_total[5m])", "rate(mmw_jobs_faild_total[5m]) > 0"]
    assert unknown_names(exprs, exported) == {"mmw_jobs_faild_total": exprs[1]}


# ------------------------------------------------------------------------- the files
def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in _load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[str]:
    """Every panel target's ``expr`` and every query variable's query."""

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))  # inside collapsed rows

    for panel in panels(dashboard["panels"]):
        yield from (target["expr"] for target in panel.get("targets", []))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            yield query["query"] if isinstance(query, dict) else query


def test_alert_rules_use_exported_metrics(exported: set[str]) -> None:
    exprs = [rule["expr"] for rule in alert_rules()]
    assert unknown_names(exprs, exported) == {}


def test_alert_unit_tests_use_exported_metrics(exported: set[str]) -> None:
    tests = _load_yaml(ALERTS_TEST)["tests"]
    series = [s["series"] for test in tests for s in test["input_series"]]
    assert series
    assert unknown_names(series, exported) == {}


def test_dashboard_uses_exported_metrics(exported: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    names: dict[str, str] = {}
    for query in dashboard_queries(dashboard):
        for name in grafana_query_metric_names(query) - exported:
            names.setdefault(name, query)
    assert names == {}


def test_alerts_are_labelled_and_documented() -> None:
    runbooks = OPERATIONS.read_text()
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
        assert re.search(rf"^### {rule['alert']}$", runbooks, re.M), rule["alert"]


def test_scrape_config_jobs_match_the_rules() -> None:
    config = _load_yaml(CONFIG)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"mmw-scheduler", "mmw-worker"}
    assert jobs["mmw-scheduler"]["static_configs"][0]["targets"][0] == "localhost:9300"
    assert "localhost:9191" in jobs["mmw-worker"]["static_configs"][0]["targets"]
    assert [(PROMETHEUS_DIR / f).resolve() for f in config["rule_files"]] == [ALERTS.resolve()]
    selected = {job for rule in alert_rules() for job in re.findall(r'job="([^"]+)"', rule["expr"])}
    assert selected == set(jobs)


def test_dashboard_shape() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for t in panel["targets"])


# ------------------------------------------------------------------------- promtool
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not on PATH (Debian/Ubuntu: apt-get install prometheus)"
)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False
    )


@needs_promtool
def test_promtool_checks_rules_and_config() -> None:
    rules = _promtool("check", "rules", str(ALERTS))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = _promtool("check", "config", str(CONFIG))
    assert config.returncode == 0, config.stdout + config.stderr


@needs_promtool
def test_promtool_alert_unit_tests() -> None:
    """The documented command: when each alert fires, its labels and its rendered text."""
    result = _promtool("test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr


def grafana_to_promql(query: str) -> str:
    """A dashboard query with Grafana's variables replaced by values Prometheus accepts."""
    return query.replace("$__rate_interval", "5m").replace("$job_type", ".*")


@needs_promtool
def test_promtool_parses_dashboard_queries(tmp_path: Path) -> None:
    """Each panel query, as a recording rule, passes promtool's PromQL parser."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [q for q in dashboard_queries(dashboard) if not q.startswith("label_values(")]
    assert "$" not in "".join(grafana_to_promql(q) for q in queries)
    rules = [
        {"record": f"dashboard:query_{i}", "expr": grafana_to_promql(q)}
        for i, q in enumerate(queries)
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = _promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
