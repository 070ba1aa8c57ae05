"""The documentation names every setting and job type the code has (so it cannot drift)."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.jobtypes import JOB_TYPES
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def env_names() -> list[str]:
    names = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.append(alias if isinstance(alias, str) else f"MMW_{name.upper()}")
    return names


@pytest.mark.parametrize("document", ["README.md", ".env.example"])
def test_every_setting_is_documented(document):
    text = (ROOT / document).read_text()
    missing = [name for name in env_names() if name not in text]
    assert not missing, f"{document} does not mention {missing}"


def test_every_job_type_is_in_the_readme_table():
    text = (ROOT / "README.md").read_text()
    builtin = [n for n, t in JOB_TYPES.items() if t.payload.__module__.startswith("worker.")]
    missing = [name for name in builtin if f"| `{name}` |" not in text]
    assert not missing, f"README's job type table lacks {missing}"


def test_procfile_runs_scheduler_and_workers_on_every_queue():
    lines = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    assert {"scheduler", "worker"} <= set(lines)
    served = " ".join(lines.values())
    missing = {
        t.queue
        for t in JOB_TYPES.values()
        if t.payload.__module__.startswith("worker.") and t.queue not in served
    }
    assert not missing, f"no Procfile process consumes {missing}"


def test_internal_job_types_are_marked_in_the_readme_table():
    rows = {
        line.split("|")[1].strip(" `"): line
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("| `")
    }
    for name, job_type in JOB_TYPES.items():
        if name in rows:
            assert ("internal" in rows[name]) == job_type.internal, name
