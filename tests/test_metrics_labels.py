"""Bounded metrics: a ``job_type`` label value is a registered job type or ``unknown``."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from worker import metrics
from worker.jobtypes import JOB_TYPES, JobType, NoopPayload


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_label_values_come_from_the_registry() -> None:
    assert metrics.job_type_label("post_social") == "post_social"
    assert metrics.job_type_label("post_social\n") == "unknown"
    assert metrics.job_type_label(None) == "unknown"
    assert metrics.job_type_label(f"hand-written-{uuid.uuid4()}") == "unknown"


def test_a_plugin_job_type_is_its_own_label(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(JOB_TYPES, "plugin_probe", JobType("plugin_probe", NoopPayload, "default"))
    assert metrics.job_type_label("plugin_probe") == "plugin_probe"
    monkeypatch.delitem(JOB_TYPES, "plugin_probe")
    assert metrics.job_type_label("plugin_probe") == "unknown"


def test_every_metric_with_a_job_type_label_is_bounded() -> None:
    labelled = [
        value
        for value in vars(metrics).values()
        if isinstance(value, MetricWrapperBase) and "job_type" in value._labelnames
    ]
    assert len(labelled) >= 10
    unbounded = [m._name for m in labelled if not isinstance(m, metrics._BoundedJobType)]
    assert unbounded == []


def test_unregistered_values_count_as_unknown() -> None:
    made_up = f"made-up-{uuid.uuid4().hex}"
    before = sample("mmw_jobs_claimed_total", job_type="unknown")
    failed_before = sample("mmw_jobs_failed_total", job_type="unknown", reason="invalid")
    metrics.JOBS_CLAIMED.labels(made_up).inc()
    metrics.JOBS_FAILED.labels(job_type=made_up, reason="invalid").inc()
    metrics.JOB_DURATION.labels(made_up, "error").observe(0.1)
    assert sample("mmw_jobs_claimed_total", job_type="unknown") == before + 1
    assert sample("mmw_jobs_failed_total", job_type="unknown", reason="invalid") == (
        failed_before + 1
    )
    assert sample("mmw_jobs_claimed_total", job_type=made_up) == 0.0
    exposed = {s.labels.get("job_type") for m in REGISTRY.collect() for s in m.samples}
    assert made_up not in exposed


def test_registered_values_keep_their_series() -> None:
    before = sample("mmw_jobs_started_total", job_type="noop")
    metrics.JOBS_STARTED.labels("noop").inc()
    assert sample("mmw_jobs_started_total", job_type="noop") == before + 1
