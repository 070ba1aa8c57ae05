"""The main process of ``mmw worker``: N worker processes kept running, stopped gracefully.

Dramatiq's CLI stops every process when one dies, and forwards a SIGTERM that honcho, foreman
or systemd have already delivered to each process, which Dramatiq's workers read as "kill".
This supervisor instead

* starts ``processes`` children (:mod:`worker.worker_process`, a fresh interpreter each) in its
  own process group, so a supervisor's group or cgroup kill reaches them all;
* replaces a child that died, after a backoff that doubles while it keeps dying
  (:class:`RestartPolicy`), logged and counted (``mmw_worker_process_restarts_total``);
  the others keep running;
* on SIGTERM/SIGHUP/SIGINT forwards one SIGTERM to each child (they ignore duplicates and finish
  their running jobs), restarts nothing, and exits when all children have exited; a second
  SIGINT means "now" (SIGKILL to the children);
* serves the metrics of all its processes from their multiprocess folder.

Importing this module does not import ``prometheus_client``: :func:`run_worker_instance` does,
after the multiprocess folder is in the environment.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from worker.worker_process import EXIT_CANNOT_START, STOP_SIGNALS, StopState, next_stop_state

__all__ = [
    "Observer",
    "RestartPolicy",
    "Spawned",
    "Supervisor",
    "run_worker_instance",
    "spawn_worker_process",
]

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class RestartPolicy:
    """Backoff between restarts of one slot: base, doubling per consecutive death, capped.

    A process that lived ``stable_seconds`` before dying starts a new count, so one crash a day
    is replaced after ``base_seconds``, and a crash loop settles at one start per
    ``max_seconds`` instead of spinning the CPU.
    """

    base_seconds: float = 1.0
    max_seconds: float = 60.0
    stable_seconds: float = 60.0

    def failures_after(self, previous: int, lived_seconds: float) -> int:
        return 1 if lived_seconds >= self.stable_seconds else previous + 1

    def delay(self, failures: int) -> float:
        return min(self.max_seconds, self.base_seconds * 2 ** max(failures - 1, 0))


class Child(Protocol):
    pid: int

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...


@dataclass
class Spawned:
    """A started child and the read end of its readiness pipe (one byte once consuming; -1
    once read or closed)."""

    proc: Child
    ready_fd: int


class Observer:
    """What the supervisor reports (metrics in production; nothing by default)."""

    def process_exited(self, pid: int) -> None:
        """A child is gone (clean up its per-process metric files)."""

    def process_restarting(self) -> None:
        """A child died unexpectedly and will be replaced."""

    def processes_ready(self, count: int) -> None:
        """How many children are consuming now."""


@dataclass
class Slot:
    index: int
    spawned: Spawned | None = None
    started_at: float = 0.0
    ready: bool = False
    failures: int = 0
    restart_at: float | None = None
    terminated: bool = False  # the supervisor sent this child its one SIGTERM


@dataclass
class Supervisor:
    """Keeps ``processes`` children running until a stop signal (see module docstring)."""

    spawn: Callable[[int], Spawned]
    processes: int
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    observer: Observer = field(default_factory=Observer)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.slots = [Slot(i) for i in range(self.processes)]
        self.state = StopState.RUNNING
        self.exit_code = 0
        self.ever_ready = False
        self._signals: list[int] = []

    # ---------------------------------------------------------------- signals
    def install_signal_handlers(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, lambda signum, _frame: self._signals.append(signum))

    def request_stop(self, signum: int) -> None:
        """Apply one stop signal: the first drains every child, a second SIGINT kills them."""
        before, self.state = self.state, next_stop_state(self.state, signum)
        if before is StopState.RUNNING:
            self._drain(f"received {signal.Signals(signum).name}")
        elif self.state is StopState.NOW and before is not StopState.NOW:
            log.warning("second SIGINT: killing worker processes now")
            self.exit_code = 128 + signal.SIGINT
            for slot in self.slots:
                if slot.spawned is not None:
                    _send(slot.spawned.proc, signal.SIGKILL)

    def _drain(self, reason: str) -> None:
        log.warning("%s: stopping; running jobs finish first (up to their time limit)", reason)
        for slot in self.slots:
            slot.restart_at = None
            self._terminate(slot)

    def _terminate(self, slot: Slot) -> None:
        if slot.spawned is not None and not slot.terminated:
            slot.terminated = True
            _send(slot.spawned.proc, signal.SIGTERM)

    # ---------------------------------------------------------------- children
    def _start(self, slot: Slot) -> None:
        slot.spawned = self.spawn(slot.index)
        slot.started_at = self.clock()
        slot.ready = False
        slot.terminated = False
        slot.restart_at = None
        log.info("worker process %d started (pid %d)", slot.index, slot.spawned.proc.pid)

    def _reap(self) -> None:
        for slot in self.slots:
            spawned = slot.spawned
            if spawned is None:
                continue
            code = spawned.proc.poll()
            if code is None:
                continue
            # A group-wide SIGTERM reached this process before the child could exit on it:
            # apply it first, so that the child's exit is read as a stop, not a death.
            self._take_signals()
            slot.spawned = None
            _close_ready(spawned)
            self.observer.process_exited(spawned.proc.pid)
            if slot.ready:
                slot.ready = False
                self._report_ready()
            if self.state is StopState.RUNNING:
                self._died(slot, spawned.proc.pid, code)
            elif code != 0 and not self.exit_code:
                self.exit_code = 1

    def _died(self, slot: Slot, pid: int, code: int) -> None:
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        if code == EXIT_CANNOT_START and not self.ever_ready:
            self.state = StopState.DRAINING
            self.exit_code = EXIT_CANNOT_START
            self._drain(f"worker process {slot.index} (pid {pid}) cannot start ({how})")
            return
        lived = self.clock() - slot.started_at
        slot.failures = self.policy.failures_after(slot.failures, lived)
        delay = self.policy.delay(slot.failures)
        slot.restart_at = self.clock() + delay
        self.observer.process_restarting()
        log.log(
            logging.WARNING if code == 0 else logging.ERROR,
            "worker process %d (pid %d) %s after %.0f s (%s); restarting it in %.0f s",
            slot.index,
            pid,
            "exited" if code == 0 else "died",  # 0: someone stopped this one process
            lived,
            how,
            delay,
        )

    def _restart_due(self) -> None:
        now = self.clock()
        for slot in self.slots:
            if slot.spawned is None and slot.restart_at is not None and slot.restart_at <= now:
                self._start(slot)

    def _wait(self, timeout: float) -> None:
        """Sleep up to ``timeout``, reading readiness bytes as they come."""
        waiting = {
            s.spawned.ready_fd: s for s in self.slots if s.spawned and s.spawned.ready_fd >= 0
        }
        if not waiting:
            time.sleep(timeout)
            return
        readable, _, _ = select.select(list(waiting), [], [], timeout)
        for fd in readable:
            slot = waiting[fd]
            assert slot.spawned is not None
            if os.read(fd, 1):  # else end of file: it exited before it was ready
                slot.ready = self.ever_ready = True
                log.info("worker process %d ready", slot.index)
                self._report_ready()
            _close_ready(slot.spawned)

    def _report_ready(self) -> None:
        self.observer.processes_ready(sum(slot.ready for slot in self.slots))

    def _alive(self) -> bool:
        return any(slot.spawned is not None for slot in self.slots)

    # ---------------------------------------------------------------- loop
    def _take_signals(self) -> None:
        while self._signals:
            self.request_stop(self._signals.pop(0))

    def step(self, timeout: float = POLL_SECONDS) -> bool:
        """One turn of the loop; False once stopped and every child has exited."""
        self._take_signals()
        self._reap()
        if self.state is not StopState.RUNNING and not self._alive():
            return False
        if self.state is StopState.RUNNING:
            self._restart_due()
        self._wait(timeout)
        return True

    def run(self) -> int:
        """Start every child, supervise until stopped; the instance's exit code."""
        try:
            for slot in self.slots:
                self._start(slot)
            while self.step():
                pass
        finally:
            if self._alive():  # an error in the loop itself: never leave orphans
                self.request_stop(signal.SIGTERM)
                while self._alive():
                    self._reap()
                    time.sleep(POLL_SECONDS)
        return self.exit_code


def _send(proc: Child, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # exited meanwhile: reaped on the next turn
        proc.send_signal(sig)


def _close_ready(spawned: Spawned) -> None:
    if spawned.ready_fd >= 0:
        os.close(spawned.ready_fd)
        spawned.ready_fd = -1


def spawn_worker_process(index: int, threads: int, queues: Sequence[str]) -> Spawned:
    """Start one worker process with stop signals blocked until it has its own handlers."""
    read_fd, write_fd = os.pipe()
    command = [sys.executable, "-m", "worker.worker_process", "--index", str(index)]
    command += ["--threads", str(threads), "--ready-fd", str(write_fd)]
    if queues:
        command += ["--queues", *queues]
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        proc = subprocess.Popen(command, pass_fds=(write_fd,))
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        os.close(write_fd)
    return Spawned(proc, read_fd)


class PrometheusObserver(Observer):
    """Metrics of the supervisor, written to the instance's multiprocess folder."""

    def __init__(self, folder: str) -> None:
        from prometheus_client import multiprocess

        from worker import metrics

        self._folder = folder
        self._mark_dead: Callable[..., Any] = multiprocess.mark_process_dead
        self._restarts = metrics.WORKER_PROCESS_RESTARTS
        self._ready = metrics.WORKER_PROCESSES_READY

    def process_exited(self, pid: int) -> None:
        self._mark_dead(pid, self._folder)  # its in-progress gauges must not stay up

    def process_restarting(self) -> None:
        self._restarts.inc()

    def processes_ready(self, count: int) -> None:
        self._ready.set(count)


def run_worker_instance(
    *,
    processes: int,
    threads: int,
    queues: Sequence[str],
    metrics_folder: str,
    metrics_host: str,
    metrics_port: int,
) -> int:
    """``mmw worker``: metrics endpoint and folder, then the supervisor; its exit code.

    The folder is put in the environment before ``prometheus_client`` is imported, here and in
    the children (which inherit it). It is emptied once the port is ours (files of dead
    processes would be served as live values; a second instance started on the same port by
    mistake must fail without wiping the first one's), and removed at the end.
    """
    os.makedirs(metrics_folder, exist_ok=True)
    os.environ["dramatiq_prom_db"] = os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_folder
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # reads the folder on each scrape
    try:
        start_http_server(metrics_port, addr=metrics_host, registry=registry)
    except OSError as exc:
        raise OSError(
            f"cannot serve metrics on {metrics_host}:{metrics_port} ({exc}); "
            "give each mmw worker instance on this host its own MMW_WORKER_METRICS_PORT"
        ) from exc
    for stale in os.scandir(metrics_folder):
        os.unlink(stale.path)
    supervisor = Supervisor(
        spawn=lambda index: spawn_worker_process(index, threads, queues),
        processes=processes,
        observer=PrometheusObserver(metrics_folder),
    )
    multiprocessing.current_process().name = "supervisor"  # log lines: supervisor, worker-N
    supervisor.install_signal_handlers()
    try:
        return supervisor.run()
    finally:
        shutil.rmtree(metrics_folder, ignore_errors=True)
