"""Run the real ``mmw`` processes against a test's database and Redis namespace."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that points an ``mmw`` process at this test's database and broker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMW_", "MONGODB_URL"))}
    env.update(
        {
            "MMW_MONGODB_DB": settings.mongodb_db,
            "MMW_EMBEDDED_PATH": str(settings.embedded_path),
            "BROKER_URL": str(settings.broker_url),
            "MMW_BROKER_NAMESPACE": settings.broker_namespace,
            "MMW_POLL_INTERVAL": "0.1",
            "MMW_LEASE_SECONDS": str(settings.lease_seconds),
            "MMW_QUEUED_LEASE_SECONDS": str(settings.queued_lease_seconds),
            "MMW_WORKER_HEARTBEAT_TIMEOUT_MS": "2000",
            "MMW_BACKOFF_BASE_SECONDS": "0.5",
            "MMW_BACKOFF_MAX_SECONDS": "1",
            "MMW_INTAKE_INTERVAL": "30",
            "MMW_RECOVERY_INTERVAL": "0.5",
            "MMW_STATS_INTERVAL": "30",
            "MMW_PLUGINS": '["tests.crash_actors"]',
            "MMW_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    if settings.mongodb_url:
        env["MONGODB_URL"] = settings.mongodb_url
    env.update(extra)
    return env


def start(
    args: list[str], env: dict[str, str], log: Path, module: str = "worker"
) -> subprocess.Popen[bytes]:
    """Start ``python -m worker <args>`` (or another module) in its own process group (so a
    kill takes its children)."""
    handle = log.open("ab")
    # Each process its own metrics ports, as ops must give them (see docs/operations.md).
    env = {
        "MMW_METRICS_PORT": str(free_port()),
        "MMW_WORKER_METRICS_PORT": str(free_port()),
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=env,
        cwd=ROOT,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Signal the whole process group (worker processes too) and reap it."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def children(pid: int) -> set[int]:
    """Live child processes of ``pid`` (Linux ``/proc``)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def scrape(port: int) -> str:
    """A metrics endpoint's page ('' while it does not answer)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
            return page.read().decode()
    except (urllib.error.URLError, OSError):
        return ""


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1.0)  # each check holds the embedded engine's lock: do not starve others
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}; process log tail:\n{tail}")
