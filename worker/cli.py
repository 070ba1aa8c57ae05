"""``mmw``: the command line of the worker platform (also ``python -m worker``)."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

import click

from worker import api
from worker.cli_errors import describe, missing_embedded_folder, safe_url
from worker.clock import wall_clock
from worker.db.client import get_database
from worker.db.engine import Database
from worker.logs import configure_logging
from worker.settings import Settings, get_settings
from worker.states import JobStatus

if TYPE_CHECKING:
    from worker.console.auth import Operator
    from worker.console.queries import JobFilter


def _settings() -> Settings:
    """The environment's settings, with their plugins loaded (job types they register)."""
    from worker.plugins import load_plugins

    try:
        settings = get_settings()
    except Exception as exc:  # pydantic's message names the bad variable
        raise click.ClickException(f"invalid configuration: {exc}") from exc
    try:
        load_plugins(settings)
    except ImportError as exc:
        raise click.ClickException(f"cannot import plugin from MMW_PLUGINS: {exc}") from exc
    return settings


def _db(settings: Settings, *, create: bool = False) -> Database:
    """The configured database; on the embedded engine only ``create`` may start a new folder
    (``mmw dev``, ``mmw db init``): elsewhere a missing folder means the wrong directory."""
    if not create:
        problem = missing_embedded_folder(settings)
        if problem:
            raise click.ClickException(problem)
    return get_database(settings)


def _where(settings: Settings, database: Database) -> str:
    """Which database a command uses, for people: the embedded folder or the server."""
    if settings.mongodb_url:
        return f"MongoDB {safe_url(settings.mongodb_url)} (database {database.name})"
    return f"the embedded engine at {settings.embedded_path.absolute()}"


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _stop_event() -> threading.Event:
    """An event set by SIGTERM or SIGINT: graceful stop for long-running commands."""
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        click.echo(f"received {signal.Signals(signum).name}, stopping…", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


# ------------------------------------------------------------------------------------- options
def _parse_time(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    if value == "now":
        return wall_clock()
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class _Time(click.ParamType):
    """An ISO 8601 time (UTC unless it names an offset), or ``now``."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dt.datetime):
            return value
        try:
            return _parse_time(value)
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


def _json_option(command: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="One JSON document (scripts).")(
        command
    )


def _limit_option(default: int) -> Any:
    from worker.console.queries import MAX_LIMIT

    return click.option(
        "--limit",
        type=click.IntRange(1, MAX_LIMIT),
        default=default,
        show_default=True,
        help=f"Rows per page (1-{MAX_LIMIT}).",
    )


def _reason_option(command: Any) -> Any:
    return click.option(
        "--reason", required=True, help="Why (kept in audit_log with your name; see MMW_OPERATOR)."
    )(command)


_STATUSES = click.Choice([s.value for s in JobStatus])


def _complete_type(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of ``--type``: the registered job types (plugins' too)."""
    import contextlib

    from worker.jobtypes import JOB_TYPES

    with contextlib.suppress(click.ClickException):  # bad configuration: the built-in types
        _settings()  # loads the plugins' types
    return sorted(name for name in JOB_TYPES if name.startswith(incomplete))


_type_option = click.option(
    "--type", "job_type", help="A registered job type.", shell_complete=_complete_type
)


class _Commands(click.Group):
    """``mmw``'s root: failures an operator can fix print one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if isinstance(exc, click.ClickException | click.exceptions.Exit | click.Abort):
                raise
            try:
                settings: Settings | None = get_settings()
            except Exception:
                settings = None
            message = describe(exc, settings)
            if message is None:
                raise
            raise click.ClickException(message) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="marketing-minds-worker")
def main() -> None:
    """Marketing Minds worker: MongoDB-scheduled jobs, run once on Dramatiq workers."""


# ------------------------------------------------------------------------------------- db
@main.group()
def db() -> None:
    """Database setup and status."""


@db.command("init")
def db_init() -> None:
    """Create every collection index and the platform's own recurring jobs (idempotent: run it
    on every deploy)."""
    from worker.db.indexes import ensure_indexes

    settings = _settings()
    database = _db(settings, create=True)
    created = ensure_indexes(database)
    click.echo(f"{len(created)} indexes ensured on {_where(settings, database)}")
    jobs = api.ensure_platform_jobs(database)
    click.echo(f"platform jobs created: {', '.join(jobs) or 'none (all present)'}")
    legacy = api.adopt_legacy_internal_jobs(database)
    if legacy:
        click.echo(f"{legacy} unfinished internal jobs from before origin marked as the platform's")


@db.command("status")
@_json_option
def db_status(as_json: bool) -> None:
    """Engine, and jobs by status."""
    from worker.cli_format import dump, table
    from worker.db.jobs import JobStore

    settings = _settings()
    database = _db(settings)
    info = {**database.server_info(), "location": _where(settings, database)}
    counts = {s.value: 0 for s in JobStatus} | JobStore(database).count_by_status()
    if as_json:
        click.echo(dump({**info, "jobs_by_status": counts}))
        return
    click.echo(
        f"engine    {info['engine']}{' ' + str(info['version']) if info.get('version') else ''}"
    )
    click.echo(f"location  {info['location']}")
    for line in table(["STATUS", "JOBS"], [[k, str(v)] for k, v in sorted(counts.items())]):
        click.echo(line)


# ------------------------------------------------------------------------------------- processes
@main.command()
@click.option("--once", is_flag=True, help="Run one poll and exit (cron-style use, debugging).")
@click.option(
    "--dry-run", is_flag=True, help="With --once: show what the poll would claim and decide."
)
@_json_option
def scheduler(once: bool, dry_run: bool, as_json: bool) -> None:
    """Run the polling scheduler until SIGTERM/SIGINT."""
    from worker import metrics
    from worker.broker import build_broker, check_eviction_policy
    from worker.scheduler import Scheduler

    if dry_run and not once:
        raise click.UsageError("--dry-run goes with --once")
    if as_json and not dry_run:
        raise click.UsageError("--json goes with --once --dry-run (--once prints JSON anyway)")
    settings = _settings()
    if dry_run:
        _dry_run(settings, as_json)
        return
    configure_logging(settings.log_level)
    broker = build_broker(settings)
    warning = check_eviction_policy(broker)
    if warning:
        click.secho(f"WARNING: {warning}", fg="red", err=True)
    sched = Scheduler(_db(settings), broker, settings)
    if once:
        click.echo(json.dumps(sched.tick().__dict__))
        return
    try:
        metrics.serve(settings.metrics_host, settings.metrics_port)
    except OSError as exc:
        raise click.ClickException(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} ({exc}); "
            "give each scheduler on this host its own MMW_METRICS_PORT"
        ) from exc
    click.echo(
        f"scheduler {sched.owner}: metrics on http://{settings.metrics_host}:"
        f"{settings.metrics_port}/metrics",
        err=True,
    )
    sched.run(_stop_event())


def _dry_run(settings: Settings, as_json: bool) -> None:
    """One poll's claim and decisions, read only: nothing is claimed, sent or changed."""
    from worker.cli_format import dump, table, utc_time
    from worker.poll_preview import preview_poll

    now = wall_clock()
    preview = preview_poll(_db(settings), settings, now)
    verdicts = preview.verdicts
    counts: dict[str, int] = {}
    for verdict in verdicts:
        counts[verdict.decision] = counts.get(verdict.decision, 0) + 1
    summary = {
        "now": now,
        "would_claim": len(verdicts),
        "decisions": counts,
        "held_by_pauses": preview.held,
    }
    if as_json:
        click.echo(dump({**summary, "items": verdicts, "next_cursor": None}))
        return
    click.echo(
        f"dry run at {utc_time(now)}: would claim {len(verdicts)} "
        f"(at most MMW_CLAIM_BATCH_SIZE={settings.claim_batch_size}); nothing was changed"
    )
    rows = [
        [
            utc_time(v.due_at),
            v.decision,
            str(v.queue or "-"),
            utc_time(v.run_at) if v.run_at else "-",
            str(v.missed),
            str(v.job_type),
            v.job_id,
        ]
        for v in verdicts
    ]
    if rows:
        for line in table(
            ["DUE (UTC)", "DECISION", "QUEUE", "RUN_AT", "MISSED", "TYPE", "JOB_ID"], rows
        ):
            click.echo(line)
    for verdict in verdicts:
        if verdict.reason:
            click.echo(f"{verdict.job_id}: {verdict.reason}")
    click.echo(", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing is due")
    if preview.held:
        click.echo(f"{preview.held} due jobs are held by pauses (`mmw pauses list`)")


@main.command()
@click.option(
    "--processes", "-p", default=2, show_default=True, type=click.IntRange(1), help="Processes."
)
@click.option(
    "--threads", "-t", default=8, show_default=True, type=click.IntRange(1), help="Threads each."
)
@click.option("--queues", "-Q", multiple=True, help="Only these queues (default: all).")
@click.argument("more_queues", nargs=-1, metavar="[QUEUE]...")
def worker(
    processes: int, threads: int, queues: tuple[str, ...], more_queues: tuple[str, ...]
) -> None:
    """Run Dramatiq worker processes, replaced when they die, until SIGTERM/SIGINT.

    Queues: `-Q social email` or `-Q social -Q email`. A SIGTERM (also one sent to the whole
    process group or cgroup) lets running jobs finish; see docs/operations.md.
    """
    from worker.supervisor import run_worker_instance

    # Not _settings(): plugins are imported by each worker process (worker.app); this process
    # only supervises them and serves their metrics.
    try:
        settings = get_settings()
    except Exception as exc:
        raise click.ClickException(f"invalid configuration: {exc}") from exc
    configure_logging(settings.log_level)
    try:
        code = run_worker_instance(
            processes=processes,
            threads=threads,
            queues=[*queues, *more_queues],
            metrics_folder=str(settings.worker_metrics_dir),
            metrics_host=settings.metrics_host,
            metrics_port=settings.worker_metrics_port,
        )
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)


@main.command()
@click.option("--demo", is_flag=True, help="Insert sample one-off and recurring jobs.")
@click.option("--threads", default=4, show_default=True, help="Worker threads.")
@click.option("--for", "duration", type=float, default=None, help="Stop after N seconds.")
@click.option(
    "--no-sandboxes", is_flag=True, help="Use the configured API URLs, not the local sandboxes."
)
def dev(demo: bool, threads: int, duration: float | None, no_sandboxes: bool) -> None:
    """Scheduler, worker threads and metrics in one process, on embedded defaults."""
    from worker.dev import run_dev

    settings = _settings()
    configure_logging(settings.log_level)
    stop = _stop_event()
    if duration is not None:
        threading.Timer(duration, stop.set).start()
    run_dev(settings, stop, demo=demo, threads=threads, sandboxes=not no_sandboxes)


# ------------------------------------------------------------------------------------- web
@main.group(invoke_without_command=True)
@click.option("--host", help="Bind address (default MMW_WEB_HOST).")
@click.option("--port", type=int, help="Port (default MMW_WEB_PORT).")
@click.pass_context
def web(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the operators' console and its JSON API (docs at /api/docs)."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from worker.web.server import build_console, check_port

    settings = _settings()
    configure_logging(settings.log_level)
    if not settings.web_secret_key:
        raise click.ClickException(
            "set MMW_WEB_SECRET_KEY (a long random string) to sign console sessions"
        )
    if not settings.web_users and not settings.web_tokens:
        raise click.ClickException(
            "no console accounts: set MMW_WEB_USERS (see `mmw web hash-password`) "
            "or MMW_WEB_TOKENS (see `mmw web new-token`)"
        )
    host, port = host or settings.web_host, port or settings.web_port
    try:
        check_port(host, port)
    except OSError as exc:
        raise click.ClickException(f"{exc}; choose another with --port or MMW_WEB_PORT") from None
    click.echo(f"console on http://{host}:{port}/ (API docs: /api/docs)", err=True)
    uvicorn.run(build_console(_db(settings), settings), host=host, port=port, log_level="warning")


@web.command("hash-password")
@click.option("--name", required=True, help="The operator's sign-in name.")
@click.option(
    "--role", type=click.Choice(["viewer", "operator"]), default="viewer", show_default=True
)
@click.password_option(help="Prompted for when not given.")
def web_hash_password(name: str, role: str, password: str) -> None:
    """Print an MMW_WEB_USERS entry (scrypt hash) for one operator."""
    from worker.console.auth import hash_password

    click.echo(json.dumps({name: {"hash": hash_password(password), "role": role}}))


@web.command("new-token")
@click.option("--name", required=True, help="Who or what uses the token (kept in the audit log).")
@click.option(
    "--role", type=click.Choice(["viewer", "operator"]), default="viewer", show_default=True
)
def web_new_token(name: str, role: str) -> None:
    """Make an API token: prints the token (give it to the client) and its MMW_WEB_TOKENS entry."""
    from worker.console.auth import hash_token, new_token

    token = new_token()
    click.echo(f"token: {token}")
    click.echo(
        "MMW_WEB_TOKENS entry: " + json.dumps({hash_token(token): {"name": name, "role": role}})
    )


# ------------------------------------------------------------------------------------- jobs
@main.group()
def jobs() -> None:
    """Submit, inspect and operate jobs."""


@jobs.command("submit")
@click.argument("job_type")
@click.option("--user", "user_id", required=True, help="Owner user_id.")
@click.option("--payload", default="{}", help="Payload as JSON.")
@click.option("--at", "execute_at", help="One-off due time, ISO 8601 (default now).")
@click.option("--cron", help="Recurring: a 5-field cron expression.")
@click.option("--tz", "timezone", help="IANA time zone of the cron expression.")
@click.option("--catch-up", type=click.Choice(["once", "skip", "all"]))
@click.option("--overlap", type=click.Choice(["skip", "buffer", "allow"]))
@click.option("--max-attempts", type=int)
@click.option("--idempotency-key")
def jobs_submit(
    job_type: str,
    user_id: str,
    payload: str,
    execute_at: str | None,
    cron: str | None,
    timezone: str | None,
    catch_up: Any,
    overlap: Any,
    max_attempts: int | None,
    idempotency_key: str | None,
) -> None:
    """Submit a job; prints its job_id."""
    try:
        body = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"--payload is not JSON: {exc}") from None
    try:
        job = api.submit(
            _db(_settings()),
            job_type=job_type,
            user_id=user_id,
            payload=body,
            execute_at=_parse_time(execute_at),
            cron=cron,
            timezone=timezone,
            catch_up=catch_up,
            overlap=overlap,
            max_attempts=max_attempts,
            idempotency_key=idempotency_key,
        )
    except (api.InvalidJob, api.JobConflict) as exc:
        raise _fail(exc) from None
    click.echo(job["job_id"])


def _job_type(value: str | None, *, stored_ok: bool = False) -> str | None:
    """``value`` if it is a registered job type (plugins loaded first), else a usage error that
    lists them; with ``stored_ok`` an unknown name is only noted (hand-written documents of a
    mistyped type exist, and the scheduler fails them: `jobs failed` is where they show)."""
    from worker.jobtypes import JOB_TYPES

    if value is None or value in JOB_TYPES:
        return value
    known = ", ".join(sorted(JOB_TYPES))
    if stored_ok:
        click.echo(f"note: {value!r} is not a registered job type (those are: {known})", err=True)
        return value
    raise click.BadParameter(
        f"{value!r} is not a registered job type; one of: {known}",
        ctx=click.get_current_context(),
        param_hint="'--type'",
    )


def _operator(settings: Settings) -> Operator:
    """Who the CLI acts as: ``MMW_OPERATOR``, else ``cli:<OS user>`` (kept in audit_log)."""
    import getpass

    from worker.console.auth import Operator

    if settings.operator:
        return Operator(settings.operator, "operator")
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name in this environment (containers)
        user = "unknown"
    return Operator(f"cli:{user}", "operator")


def _act(action: Any) -> Any:
    """Run a console action; its refusal (bad input, wrong state) is one line, exit 1."""
    from worker.console.actions import ActionError

    try:
        return action()
    except ActionError as exc:
        raise _fail(exc) from None


def _page_hint(next_cursor: str | None) -> None:
    if next_cursor:
        click.echo(f"more: add --after {next_cursor}", err=True)


def _held_by(job: dict[str, Any], controls: list[dict[str, Any]]) -> list[str]:
    """What holds a job: its own pause, a pause of its user, of its job type."""
    held = ["job"] if job.get("paused") is True else []
    for control in controls:
        kind = control.get("kind")
        if kind in ("user", "job_type") and job.get("user_id" if kind == "user" else kind) == (
            control.get("value")
        ):
            held.append(kind)
    return held


def _job_rows(jobs: list[dict[str, Any]]) -> list[str]:
    """People's view of a page of jobs: the id last (it may be long), whole errors below."""
    from worker.cli_format import job_zone, local_time, table, utc_time, wrapped

    with_zone = any(job_zone(job) for job in jobs)
    headers = ["DUE (UTC)", *(["LOCAL"] if with_zone else []), "TYPE", "STATUS", "TRIES", "HELD"]
    rows = []
    for job in jobs:
        due = (job.get("schedule") if isinstance(job.get("schedule"), dict) else {}).get(
            "execute_at"
        )
        rows.append(
            [
                utc_time(due),
                *([local_time(due, job_zone(job))] if with_zone else []),
                str(job.get("job_type")),
                str(job.get("status")),
                f"{job.get('attempts') or 0}/{job.get('max_attempts') or '-'}",
                ",".join(job.get("held_by") or []) or "-",
                str(job.get("job_id")),
            ]
        )
    lines = table([*headers, "JOB_ID"], rows)
    out = [lines[0]]
    for job, line in zip(jobs, lines[1:], strict=True):
        out.append(line)
        if job.get("error"):
            out += wrapped(f"error: {job['error']}")
    return out


def _list_page(
    filt: JobFilter, after: str | None, limit: int, as_json: bool, *, settings: Settings
) -> None:
    """One page of jobs (the console's list query), for people or as JSON."""
    from worker.console import queries

    database = _db(settings)
    try:
        page = queries.list_jobs(database, filt, cursor=after, limit=limit, now=wall_clock())
    except ValueError as exc:  # a damaged cursor, a bad time range
        raise click.UsageError(str(exc)) from None
    controls = queries.pauses(database)["controls"]
    for job in page.items:
        job["held_by"] = _held_by(job, controls)
        job.pop("_id", None)
    if as_json:
        from worker.cli_format import dump

        click.echo(dump({"items": page.items, "next_cursor": page.next_cursor}))
        return
    if not page.items:
        click.echo("(no jobs match)")
        return
    for line in _job_rows(page.items):
        click.echo(line)
    _page_hint(page.next_cursor)


def _filter_options(command: Any) -> Any:
    for option in reversed(
        [
            _type_option,
            click.option("--user", "user_id", help="Owner user_id."),
            click.option("--due-after", type=_Time(), help="Due at or after (ISO 8601)."),
            click.option("--due-before", type=_Time(), help="Due before (ISO 8601)."),
        ]
    ):
        command = option(command)
    return command


@jobs.command("list")
@click.option("--status", type=_STATUSES)
@_filter_options
@_limit_option(50)
@click.option("--after", "after", metavar="CURSOR", help="The page after this cursor.")
@_json_option
def jobs_list(
    status: str | None,
    job_type: str | None,
    user_id: str | None,
    due_after: dt.datetime | None,
    due_before: dt.datetime | None,
    limit: int,
    after: str | None,
    as_json: bool,
) -> None:
    """Jobs, newest due first, one page at a time (the next page's cursor goes to stderr)."""
    from worker.console.queries import JobFilter

    settings = _settings()
    filt = JobFilter(status, _job_type(job_type), user_id, due_after, due_before)
    _list_page(filt, after, limit, as_json, settings=settings)


@jobs.command("failed")
@_filter_options
@_limit_option(50)
@click.option("--after", "after", metavar="CURSOR", help="The page after this cursor.")
@_json_option
def jobs_failed(
    job_type: str | None,
    user_id: str | None,
    due_after: dt.datetime | None,
    due_before: dt.datetime | None,
    limit: int,
    after: str | None,
    as_json: bool,
) -> None:
    """Failed jobs with their whole errors (requeue with `mmw jobs retry`).

    --type also takes a name that is not a registered type (noted on stderr): documents written
    by hand with a mistyped type end here.
    """
    from worker.console.queries import JobFilter

    settings = _settings()
    filt = JobFilter("failed", _job_type(job_type, stored_ok=True), user_id, due_after, due_before)
    _list_page(filt, after, limit, as_json, settings=settings)


def _show_job(page: dict[str, Any]) -> list[str]:
    """People's view of the console's job page: fields, whole error, history, audit, fires."""
    from worker.cli_format import job_zone, local_time, table, utc_time, wrapped

    job = page["job"]
    zone = job_zone(job)
    schedule = job.get("schedule") if isinstance(job.get("schedule"), dict) else {}

    def when(value: Any) -> str:
        local = local_time(value, zone)
        return utc_time(value) + (f"  ({local})" if local else "")

    if schedule.get("cron_expression"):
        plan = f"cron '{schedule['cron_expression']}' in {schedule.get('timezone') or 'UTC'}"
        plan += "".join(f", {k} {schedule[k]}" for k in ("catch_up", "overlap") if schedule.get(k))
    else:
        plan = "one-off"
    fields = [
        ("job_id", str(job.get("job_id"))),
        ("type", str(job.get("job_type"))),
        ("user", str(job.get("user_id"))),
        ("status", str(job.get("status"))),
        ("due", when(schedule.get("execute_at"))),
        ("schedule", plan),
        ("attempts", f"{job.get('attempts') or 0}/{job.get('max_attempts') or '-'}"),
    ]
    if job.get("paused"):
        pause = job.get("pause") if isinstance(job.get("pause"), dict) else {}
        fields.append(
            (
                "paused",
                f"by {pause.get('set_by') or '?'} at {utc_time(pause.get('at'))}: "
                f"{pause.get('reason') or '(no reason)'}",
            )
        )
    for key in ("run_at", "created_at", "updated_at", "finished_at"):
        if job.get(key) is not None:
            fields.append((key, when(job[key])))
    width = max(len(k) for k, _ in fields)
    lines = [f"{k.ljust(width)}  {v}" for k, v in fields]
    if job.get("error"):
        lines += ["error:", *wrapped(str(job["error"]))]
    if page["history"]:
        lines += ["", "history (newest first):"]
        rows = [
            [
                utc_time(h.get("finished_at")),
                str(h.get("status")),
                str(h.get("attempts")),
                f"{h.get('duration_ms')} ms",
                str(h.get("error") or ""),
            ]
            for h in page["history"]
        ]
        lines += [
            "  " + line for line in table(["FINISHED", "STATUS", "TRY", "TOOK", "ERROR"], rows)
        ]
    if page["next_fires"]:
        lines += ["", f"next fires ({page['zone']}):"]
        lines += [f"  {f['utc']}  ({f['local']})" for f in page["next_fires"]]
    if page["audit"]:
        lines += ["", "audit (newest first; all of it: `mmw audit JOB_ID`):"]
        lines += ["  " + line for line in _audit_rows(page["audit"][:10])]
    return lines


def _audit_rows(entries: list[dict[str, Any]]) -> list[str]:
    from worker.cli_format import table, utc_time

    rows = []
    for entry in entries:
        details = dict(entry.get("details") or {})
        actor = details.pop("actor", None) or "-"
        reason = details.pop("reason", None) or "-"
        extra = " ".join(f"{k}={v}" for k, v in details.items() if v is not None)
        pending = " (in outbox)" if entry.get("in_outbox") else ""
        rows.append(
            [
                utc_time(entry.get("timestamp")),
                str(entry.get("action")) + pending,
                actor,
                reason,
                extra,
            ]
        )
    return table(["TIME (UTC)", "ACTION", "ACTOR", "REASON", "DETAILS"], rows)


@jobs.command("show")
@click.argument("job_id")
@_json_option
def jobs_show(job_id: str, as_json: bool) -> None:
    """One job: its fields, whole error, run history, next fires and audit trail."""
    from worker.console.queries import job_page

    page = job_page(_db(_settings()), job_id, wall_clock())
    if page is None:
        raise click.ClickException(f"no job {job_id!r}")
    page["job"].pop("_id", None)
    if as_json:
        from worker.cli_format import dump

        click.echo(dump(page))
        return
    for line in _show_job(page):
        click.echo(line)


@jobs.command("cancel")
@click.argument("job_id")
@_reason_option
def jobs_cancel(job_id: str, reason: str) -> None:
    """Cancel a job that has not started."""
    from worker.console.actions import cancel_job

    settings = _settings()
    database, op = _db(settings), _operator(settings)
    _act(lambda: cancel_job(database, op, job_id, reason, wall_clock()))
    click.echo(f"cancelled {job_id}")


#: Failed jobs named in the preview of a bulk retry.
_SAMPLE = 10


@jobs.command("retry")
@click.argument("job_ids", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Every failed job matching the filters.")
@_filter_options
@click.option("--reason", help="Why (kept in audit_log with your name); not with --dry-run.")
@click.option("--yes", is_flag=True, help="Do it without asking (bulk).")
@click.option(
    "--dry-run", is_flag=True, help="Show what --all-failed would requeue; change nothing."
)
def jobs_retry(
    job_ids: tuple[str, ...],
    all_failed: bool,
    job_type: str | None,
    user_id: str | None,
    due_after: dt.datetime | None,
    due_before: dt.datetime | None,
    reason: str | None,
    yes: bool,
    dry_run: bool,
) -> None:
    """Requeue failed jobs now, with a fresh attempt budget.

    Name job ids, or --all-failed (with --type/--user/--due-*): it prints how many match and a
    sample, then asks (or --yes); --dry-run only prints. At most 10,000 per run.
    """
    from worker.console import actions, queries

    settings = _settings()
    database, op = _db(settings), _operator(settings)
    now = wall_clock()
    filters = job_type or user_id or due_after or due_before
    if bool(job_ids) == all_failed:
        raise click.UsageError("name job ids or use --all-failed (not both)")
    if job_ids and (filters or dry_run):
        raise click.UsageError("--type, --user, --due-* and --dry-run go with --all-failed")
    if not reason and not dry_run:
        raise click.UsageError("Missing option '--reason' (kept in audit_log with your name)")
    if job_ids:
        failures = 0
        for job_id in job_ids:
            try:
                actions.retry_job(database, op, job_id, reason or "", now)
                click.echo(f"requeued {job_id}")
            except actions.ActionError as exc:
                failures += 1
                click.echo(f"skipped: {exc}", err=True)
        if failures:
            sys.exit(1)
        return
    filt = queries.JobFilter("failed", _job_type(job_type), user_id, due_after, due_before)
    try:
        count = queries.failed_count(database, filt, actions.BULK_LIMIT)
        sample = queries.list_jobs(database, filt, limit=_SAMPLE, now=now).items
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    described = ", ".join(
        f"{k}={v.isoformat() if isinstance(v, dt.datetime) else v}"
        for k, v in (
            ("type", job_type),
            ("user", user_id),
            ("due_after", due_after),
            ("due_before", due_before),
        )
        if v is not None
    )
    matching = "1 failed job matches" if count == 1 else f"{count} failed jobs match"
    click.echo(f"{matching}{f' ({described})' if described else ''}:")
    for line in _job_rows(sample):
        click.echo("  " + line)
    if count > len(sample):
        click.echo(f"  … and {count - len(sample)} more")
    if dry_run or count == 0:
        click.echo("dry run: nothing changed" if dry_run else "nothing to requeue")
        return
    if not yes:
        click.confirm(f"requeue these {count} jobs?", abort=True)
    result = _act(
        lambda: actions.retry_matching(database, op, filt, reason or "", now, expected=count)
    )
    click.echo(f"requeued {result['requeued']} of {result['matched']}")
    for problem in result["skipped"]:
        click.echo(f"skipped: {problem}", err=True)
    if result["skipped"]:
        sys.exit(1)


@jobs.command("next")
@click.argument("job_id")
@click.option("-n", "count", default=5, show_default=True, type=click.IntRange(1, 100))
@_json_option
def jobs_next(job_id: str, count: int, as_json: bool) -> None:
    """Preview the next fires of a recurring job (UTC and the job's time zone)."""
    from worker.console.queries import zone_of

    job = api.get(_db(_settings()), job_id)
    if job is None:
        raise click.ClickException(f"no job {job_id!r}")
    try:
        fires = api.preview_fires(job, count)
    except api.InvalidJob as exc:
        raise _fail(exc) from None
    tz = zone_of(job)
    rows = [
        {"utc": f.isoformat(), "local": f.astimezone(tz).isoformat(), "zone": tz.key} for f in fires
    ]
    if as_json:
        from worker.cli_format import dump

        click.echo(dump({"job_id": job_id, "zone": tz.key, "items": rows, "next_cursor": None}))
        return
    for row in rows:
        click.echo(f"{row['utc']}  ({row['local']} {row['zone']})")


@jobs.command("check-cron")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of lines.")
def jobs_check_cron(as_json: bool) -> None:
    """Recurring jobs whose cron expression is refused now or fires differently (exit 1 if any)."""
    from worker.cron_review import review_stored_jobs

    rows = review_stored_jobs(_db(_settings()), wall_clock())
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
    else:
        for row in rows:
            for reason in row["reasons"]:
                click.echo(
                    f"{row['job_id']}  '{row['cron_expression']}' ({row['timezone']}): {reason}"
                )
        if not rows:
            click.echo("no stored cron expression changed meaning")
    if rows:
        sys.exit(1)


def _target(job_id: str | None, user_id: str | None, job_type: str | None) -> dict[str, str]:
    named = {
        k: v
        for k, v in (("job", job_id), ("user", user_id), ("job_type", job_type))
        if v is not None
    }
    if len(named) != 1:
        raise click.UsageError("name exactly one of JOB_ID, --user or --type")
    return named


def _pause(paused: bool, target: dict[str, str], reason: str) -> None:
    from worker.console import actions

    settings = _settings()
    ((kind, value),) = target.items()
    if kind == "job_type":  # a pause of a type nobody registers any more may still be lifted
        _job_type(value, stored_ok=not paused)
    database, op = _db(settings), _operator(settings)
    act = actions.pause if paused else actions.resume
    _act(lambda: act(database, op, kind, value, reason, wall_clock()))
    click.echo(f"{'paused' if paused else 'resumed'} {kind} {value}")


@jobs.command("pause")
@click.argument("job_id", required=False)
@click.option("--user", "user_id")
@_type_option
@_reason_option
def jobs_pause(job_id: str | None, user_id: str | None, job_type: str | None, reason: str) -> None:
    """Hold a job, a user's jobs or a job type's jobs (running ones finish)."""
    _pause(True, _target(job_id, user_id, job_type), reason)


@jobs.command("resume")
@click.argument("job_id", required=False)
@click.option("--user", "user_id")
@_type_option
@_reason_option
def jobs_resume(job_id: str | None, user_id: str | None, job_type: str | None, reason: str) -> None:
    """Release what `mmw jobs pause` held."""
    _pause(False, _target(job_id, user_id, job_type), reason)


# ------------------------------------------------------------------------------------- pauses
@main.group()
def pauses() -> None:
    """What operators hold: pauses by user or job type, and paused jobs."""


@pauses.command("list")
@_limit_option(200)
@_json_option
def pauses_list(limit: int, as_json: bool) -> None:
    """Every active pause: kind, value, reason, who set it, when."""
    from worker.cli_format import dump, pause_rows, table, utc_time
    from worker.console.queries import pauses as read_pauses

    found = read_pauses(_db(_settings()), limit)
    rows = pause_rows(found)
    if as_json:
        click.echo(dump({"items": rows, "next_cursor": None}))
    elif not rows:
        click.echo("(nothing is paused)")
    else:
        cells = [
            [
                str(r["kind"]),
                utc_time(r["at"]),
                str(r["set_by"] or "-"),
                str(r["reason"] or "-"),
                str(r["value"]),
            ]
            for r in rows
        ]
        for line in table(["KIND", "SINCE (UTC)", "SET BY", "REASON", "VALUE"], cells):
            click.echo(line)
    if any(len(v) >= limit for v in found.values()):
        click.echo(f"showing at most {limit} of each kind: raise --limit", err=True)


# ------------------------------------------------------------------------------------- audit
@main.command("audit")
@click.argument("resource_id")
@_limit_option(100)
@_json_option
def audit_command(resource_id: str, limit: int, as_json: bool) -> None:
    """The audit trail of a job (or of `user:ID`, `job_type:NAME`, an approval or post id),
    newest first, with the operator who acted and the reason they gave."""
    from worker.console.queries import audit_trail

    entries = audit_trail(_db(_settings()), resource_id, limit=limit)
    if as_json:
        from worker.cli_format import dump

        click.echo(dump({"resource_id": resource_id, "items": entries, "next_cursor": None}))
    elif not entries:
        click.echo(f"(no audit entries for {resource_id!r})")
    else:
        for line in _audit_rows(entries):
            click.echo(line)
    if len(entries) >= limit:
        click.echo(f"showing the newest {limit}: raise --limit for more", err=True)


# ------------------------------------------------------------------------------------- approvals
@main.group()
def approvals() -> None:
    """Approval requests of the AI agents (the product app normally answers them)."""


@approvals.command("list")
@click.option(
    "--status",
    type=click.Choice(["pending", "approved", "rejected"]),
    default="pending",
    show_default=True,
)
@_limit_option(100)
@_json_option
def approvals_list(status: str, limit: int, as_json: bool) -> None:
    """Approval requests in one status, newest first."""
    from worker.cli_format import dump, table, utc_time
    from worker.console.queries import approvals as read_approvals

    rows = read_approvals(_db(_settings()), status, limit)
    if as_json:
        click.echo(dump({"items": rows, "next_cursor": None}))
        return
    if not rows:
        click.echo(f"(no {status} approval requests)")
        return
    cells = [
        [
            utc_time(r.get("created_at")),
            str(r.get("request_type")),
            str(r.get("status")),
            str(r.get("user_id")),
            str(r.get("campaign_id")),
            str(r.get("request_id")),
        ]
        for r in rows
    ]
    for line in table(["CREATED (UTC)", "TYPE", "STATUS", "USER", "CAMPAIGN", "REQUEST_ID"], cells):
        click.echo(line)
    if len(rows) >= limit:
        click.echo(f"showing the newest {limit}: raise --limit for more", err=True)


def _decide(request_id: str, approved: bool, reason: str) -> None:
    from worker.console.actions import decide_approval

    settings = _settings()
    database, op = _db(settings), _operator(settings)
    _act(lambda: decide_approval(database, op, request_id, approved, reason, wall_clock()))
    click.echo(f"{'approved' if approved else 'rejected'} {request_id}")


@approvals.command("approve")
@click.argument("request_id")
@_reason_option
def approvals_approve(request_id: str, reason: str) -> None:
    """Approve a request; the waiting work is released at once."""
    _decide(request_id, True, reason)


@approvals.command("reject")
@click.argument("request_id")
@_reason_option
def approvals_reject(request_id: str, reason: str) -> None:
    """Reject a request; the waiting work ends with the reason."""
    _decide(request_id, False, reason)


# ------------------------------------------------------------------------------------- keys
@main.group()
def keys() -> None:
    """Master keys of the secrets stored at rest (tokens, API keys, webhook secrets)."""


def _keyring(settings: Settings) -> Any:
    from worker.secrets import SecretError, keyring

    try:
        ring = keyring(settings)
    except (ValueError, SecretError) as exc:
        raise click.ClickException(f"invalid secret keys: {exc}") from None
    if ring.primary is None:
        raise click.ClickException(
            "no secret key configured: set MMW_SECRET_KEYS (create one with `mmw keys generate`)"
        )
    return ring


@keys.command("generate")
@click.option("--kid", help="Key id (default: random). Ids must be unique across your keys.")
def keys_generate(kid: str | None) -> None:
    """Print a new key entry (kid:base64key); put it FIRST in MMW_SECRET_KEYS to seal with it."""
    from worker.secrets import generate_key

    try:
        click.echo(generate_key(kid))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _reseal(plaintext_only: bool, batch_size: int) -> None:
    from worker.db.client import scrub_embedded
    from worker.reseal import ResealReport, reseal_all
    from worker.secrets import SECRET_FIELDS

    settings = _settings()
    ring = _keyring(settings)

    def progress(report: ResealReport) -> None:
        click.echo(
            f"{report.collection}: {report.scanned} scanned, {report.resealed} resealed "
            f"({report.fields} fields)",
            err=True,
        )

    database = _db(settings)
    reports = reseal_all(
        database,
        ring,
        plaintext_only=plaintext_only,
        batch_size=batch_size,
        progress=progress,
    )
    problems = [p for r in reports for p in r.problems]
    total = sum(r.resealed for r in reports)
    click.echo(f"{total} documents resealed under key {ring.primary!r}")
    busy = scrub_embedded(database, SECRET_FIELDS)
    if busy:
        click.echo(f"embedded engine: old values may remain in the WAL of {busy}; run again")
    for problem in problems:
        click.echo(f"not resealed: {problem}", err=True)
    if problems:
        sys.exit(1)


@keys.command("rotate")
@click.option("--batch-size", default=200, show_default=True)
def keys_rotate(batch_size: int) -> None:
    """Re-seal every stored secret under the first key (plaintext included); safe to re-run."""
    _reseal(False, batch_size)


@keys.command("migrate")
@click.option("--batch-size", default=200, show_default=True)
def keys_migrate(batch_size: int) -> None:
    """Seal the secrets still stored in clear text (other keys' values are left as they are)."""
    _reseal(True, batch_size)


@keys.command("status")
def keys_status() -> None:
    """Stored secrets per field and key id: an old key may go once nothing counts it."""
    from worker.reseal import census

    settings = _settings()
    ring = _keyring(settings)
    click.echo(f"configured keys: {', '.join(ring.kids)} (sealing with {ring.primary})")
    for (collection, field), kids in sorted(census(_db(settings)).items()):
        counts = ", ".join(f"{kid} {n}" for kid, n in sorted(kids.items()))
        click.echo(f"{collection + '.' + field:<44} {counts}")


if __name__ == "__main__":
    main()
