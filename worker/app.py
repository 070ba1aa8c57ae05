"""The Dramatiq worker entry: ``dramatiq worker.app`` (or ``mmw worker``, which prepares metrics).

Importing this module builds the broker from the environment's settings, registers every actor
on it and installs a middleware that closes the process's runner (flushing audit entries) when
the worker shuts down. Prometheus multiprocess settings must be in the environment before
``prometheus_client`` is first imported, so they are set first.
"""

from __future__ import annotations

import os

from worker.settings import get_settings

settings = get_settings()
settings.worker_metrics_dir.mkdir(parents=True, exist_ok=True)
prom_dir = os.environ.setdefault("dramatiq_prom_db", str(settings.worker_metrics_dir))
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", prom_dir)
os.environ.setdefault("dramatiq_prom_host", settings.metrics_host)
os.environ.setdefault("dramatiq_prom_port", str(settings.worker_metrics_port))

from worker.secrets import SecretError, require_keys  # noqa: E402 - no prometheus_client import

try:
    require_keys(settings)  # tokens are written by workers: never in clear text
except SecretError as exc:
    raise SystemExit(f"mmw worker: {exc}") from None

import dramatiq  # noqa: E402
from dramatiq.middleware import Middleware  # noqa: E402

import worker.actors  # noqa: E402, F401 - registers every handler
from worker.actors.lifecycle import declare_job_actors, get_runner  # noqa: E402
from worker.broker import build_broker  # noqa: E402
from worker.logs import configure_logging  # noqa: E402
from worker.plugins import load_plugins  # noqa: E402


class RunnerShutdown(Middleware):
    """Flush the runner's audit buffer and stop its heartbeat when the worker stops."""

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        get_runner().close()


configure_logging(settings.log_level)
load_plugins(settings)
broker = build_broker(settings, prometheus=True)
broker.add_middleware(RunnerShutdown())
dramatiq.set_broker(broker)
actors = declare_job_actors(broker)
