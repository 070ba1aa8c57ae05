"""One Dramatiq worker process of ``mmw worker`` (``python -m worker.worker_process``).

The supervisor (:mod:`worker.supervisor`) starts N of these. Each builds the broker and actors
by importing :mod:`worker.app` and runs Dramatiq's own :class:`dramatiq.Worker`.

Stop signals are read so that a supervisor's group- or cgroup-wide SIGTERM, which reaches this
process directly *and* again through ``mmw worker``, never kills running jobs:

* SIGTERM / SIGHUP (any number of them): stop taking messages, let running jobs finish (at most
  the longest time limit of the consumed actors, which TimeLimit enforces), then exit 0;
* SIGINT once: the same; SIGINT again while stopping (a person's second Ctrl-C): exit now;
* the supervisor gone (parent changed): stop as for SIGTERM, so no worker outlives its
  instance.
"""

from __future__ import annotations

import argparse
import enum
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Iterable
from typing import Any

__all__ = ["STOP_SIGNALS", "StopState", "main", "next_stop_state", "shutdown_grace_seconds"]

log = logging.getLogger("worker.worker_process")  # also when run as __main__

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
#: Added to the longest time limit: TimeLimit checks deadlines once a second, then the
#: interrupted job records its outcome.
GRACE_MARGIN_SECONDS = 5.0
POLL_SECONDS = 0.5
#: Exit code when the process cannot start (import, plugin, queue name): restarting cannot help.
EXIT_CANNOT_START = 2


class StopState(enum.Enum):
    RUNNING = "running"
    DRAINING = "draining"  # no new messages; running jobs finish
    NOW = "now"  # exit without waiting


def next_stop_state(state: StopState, signum: int) -> StopState:
    """What a stop signal means in ``state``: only a repeated SIGINT escalates."""
    if state is StopState.RUNNING:
        return StopState.DRAINING
    if state is StopState.DRAINING and signum == signal.SIGINT:
        return StopState.NOW
    return state


def shutdown_grace_seconds(time_limits_ms: Iterable[int]) -> float:
    """How long a stop may wait for running jobs: the longest time limit, plus a margin."""
    return max(time_limits_ms, default=0) / 1000 + GRACE_MARGIN_SECONDS


class StopSignals:
    """The process's stop state, driven by signal handlers installed in the main thread.

    The handlers only assign it (no lock: a handler taking a lock that the interrupted main
    thread holds would deadlock); the main thread polls it.
    """

    def __init__(self) -> None:
        self.state = StopState.RUNNING

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)
        # The supervisor blocks these while it spawns us, so none is lost before this point.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def _handle(self, signum: int, _frame: Any) -> None:
        before, self.state = self.state, next_stop_state(self.state, signum)
        if self.state is StopState.NOW:
            log.warning("second SIGINT: exiting now, running jobs are abandoned (and recovered)")
            os._exit(128 + signal.SIGINT)
        if before is StopState.RUNNING:
            log.info(
                "received %s: finishing running jobs, then exiting", signal.Signals(signum).name
            )

    def drain(self, reason: str) -> None:
        if self.state is StopState.RUNNING:
            log.warning("%s: finishing running jobs, then exiting", reason)
            self.state = StopState.DRAINING


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m worker.worker_process")
    parser.add_argument("--index", type=int, default=0, help="Slot number (log lines).")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--queues", nargs="*", default=[])
    parser.add_argument("--ready-fd", type=int, help="Write one byte here once consuming.")
    return parser.parse_args(argv)


def _signal_ready(fd: int | None) -> None:
    if fd is None:
        return
    try:
        os.write(fd, b"r")
    finally:
        os.close(fd)


def run(threads: int, queues: list[str], stop: StopSignals, ready_fd: int | None = None) -> int:
    """Consume ``queues`` (all when empty) on ``threads`` threads until told to stop."""
    parent = os.getppid()
    try:
        from worker import app
    except Exception:
        log.exception("cannot start a worker process")
        return EXIT_CANNOT_START
    served = {actor.queue_name for actor in app.actors.values()}
    unknown = sorted(set(queues) - served)
    if unknown:
        log.error("unknown queue(s) %s: no job type uses them (known: %s)", unknown, sorted(served))
        return EXIT_CANNOT_START
    grace = shutdown_grace_seconds(
        actor.options.get("time_limit", 0)
        for actor in app.actors.values()
        if not queues or actor.queue_name in queues
    )
    if stop.state is not StopState.RUNNING:
        return 0  # told to stop while booting: nothing runs yet
    import dramatiq

    app.broker.emit_after("process_boot")
    worker = dramatiq.Worker(app.broker, queues=set(queues) or None, worker_threads=threads)
    worker.start()
    _signal_ready(ready_fd)
    log.info(
        "consuming %s on %d threads (stop grace %.0f s)", queues or "all queues", threads, grace
    )
    while stop.state is StopState.RUNNING:
        time.sleep(POLL_SECONDS)
        if os.getppid() != parent:
            stop.drain("supervisor gone")
    worker.stop(timeout=int(grace * 1000))
    app.broker.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    stop = StopSignals()
    stop.install()
    args = _parse(argv)
    multiprocessing.current_process().name = f"worker-{args.index}"
    return run(args.threads, args.queues, stop, args.ready_fd)


if __name__ == "__main__":
    raise SystemExit(main())
