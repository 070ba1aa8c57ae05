"""Serving the console: uvicorn in the foreground (`mmw web`) or in a thread (`mmw dev`)."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
import uvicorn
from fastapi import FastAPI

from worker.console.queries import live_workers
from worker.db.engine import Database
from worker.settings import Settings
from worker.web.app import create_app

__all__ = ["ConsoleServer", "build_console", "check_port", "worker_heartbeats"]


def worker_heartbeats(settings: Settings) -> Callable[[dt.datetime], list[dict[str, Any]]] | None:
    """Live Dramatiq workers from the Redis broker's heartbeat set; None for RabbitMQ."""
    url = settings.broker_url
    if url and url.startswith("amqp"):
        return None
    key = f"{settings.broker_namespace}:__heartbeats__"
    client_box: list[redis.Redis] = []

    def client() -> redis.Redis:
        if not client_box:
            if url:
                client_box.append(redis.Redis.from_url(url, socket_timeout=2))
            else:
                from worker.broker import embedded_redis

                client_box.append(embedded_redis(settings))
        return client_box[0]

    def read(now: dt.datetime) -> list[dict[str, Any]]:
        try:
            entries = client().zrange(key, 0, 199, withscores=True)
        except redis.RedisError:
            return []
        beats = [(w.decode() if isinstance(w, bytes) else str(w), float(ms)) for w, ms in entries]
        return live_workers(beats, now, settings.worker_heartbeat_timeout_ms)

    return read


def build_console(
    db: Database, settings: Settings, *, clock: Callable[[], dt.datetime] | None = None
) -> FastAPI:
    return create_app(db, settings, clock=clock, workers=worker_heartbeats(settings))


def check_port(host: str, port: int) -> None:
    """Raise ``OSError`` with a readable message when ``host:port`` cannot be bound."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(f"cannot serve the console on {host}:{port}: {exc.strerror}") from None


class ConsoleServer:
    """uvicorn in a daemon thread; :meth:`stop` ends it (used by ``mmw dev`` and tests)."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.host, self.port = host, port
        self._thread = threading.Thread(target=self.server.run, name="console", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ConsoleServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"the console did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        if self.port == 0:  # an ephemeral port: read the one bound
            self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
