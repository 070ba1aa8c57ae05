"""How ``mmw`` shows things to people and scripts (pure: strings in, strings out).

Scripts get one JSON document per command (:func:`dump`, the console API's encoding); people
get ISO 8601 times in UTC (``2026-12-01T09:00:00Z``), the job's local time beside them when it
has a zone, tables whose columns fit their widest cell, and whole error messages, wrapped.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import textwrap
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from worker.console.encoding import to_json

__all__ = ["dump", "job_zone", "local_time", "pause_rows", "table", "utc_time", "wrapped"]


def dump(value: Any) -> str:
    """One JSON document: times ISO 8601 with their offset, ObjectIds as strings."""
    return json.dumps(to_json(value), indent=2, sort_keys=False)


def utc_time(value: Any) -> str:
    """``2026-12-01T09:00:00Z`` (whole seconds); anything that is not a time as it is."""
    if not isinstance(value, dt.datetime):
        return "-" if value is None else str(value)
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def job_zone(job: dict[str, Any]) -> ZoneInfo | None:
    """The zone a job's schedule names (recurring jobs), None for UTC, none or an unknown one."""
    schedule = job.get("schedule")
    name = schedule.get("timezone") if isinstance(schedule, dict) else None
    if not isinstance(name, str) or name in ("UTC", "Etc/UTC"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_time(value: Any, zone: ZoneInfo | None) -> str:
    """``2026-12-01T10:00:00+01:00 Europe/Berlin``, or ``""`` without a zone or a time."""
    if zone is None or not isinstance(value, dt.datetime):
        return ""
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return f"{aware.astimezone(zone).replace(microsecond=0).isoformat()} {zone.key}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a table whose columns are as wide as their widest cell (the last one unpadded)."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = []
    for cells in (headers, *rows):
        padded = [c.ljust(w) for c, w in zip(cells[:-1], widths, strict=False)]
        lines.append("  ".join([*padded, cells[-1]]).rstrip())
    return lines


def wrapped(text: str, indent: str = "    ") -> list[str]:
    """``text`` whole, wrapped to the terminal's width under ``indent``."""
    width = max(40, shutil.get_terminal_size((100, 24)).columns)
    lines: list[str] = []
    for paragraph in str(text).splitlines() or [""]:
        lines += textwrap.wrap(
            paragraph,
            width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_long_words=True,
            break_on_hyphens=False,
        ) or [indent]
    return lines


def pause_rows(pauses: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The console's pauses (controls by user or job type, paused jobs) as one list of
    ``{kind, value, reason, set_by, at}`` (jobs also give their type, user and status)."""
    rows = [
        {
            "kind": c.get("kind"),
            "value": c.get("value"),
            "reason": c.get("reason"),
            "set_by": c.get("set_by"),
            "at": c.get("updated_at"),
        }
        for c in pauses.get("controls", [])
    ]
    for job in pauses.get("jobs", []):
        pause = job.get("pause") if isinstance(job.get("pause"), dict) else {}
        rows.append(
            {
                "kind": "job",
                "value": job.get("job_id"),
                "reason": pause.get("reason"),
                "set_by": pause.get("set_by"),
                "at": pause.get("at") or job.get("updated_at"),
                "job_type": job.get("job_type"),
                "user_id": job.get("user_id"),
                "status": job.get("status"),
            }
        )
    return rows
