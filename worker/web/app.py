"""``mmw web``: the operators' console (server-rendered pages) and its JSON API, one FastAPI app.

Pages and API call the same functions (:mod:`worker.console.queries` and
:mod:`worker.console.actions`); the pages are Jinja2 templates with htmx (served from the
package) for the few live parts, so there is no front-end build. Everything but ``/healthz``
needs a signed-in operator (session cookie) or an API token (``Authorization: Bearer``); every
form and every cookie-authenticated API write carries the session's CSRF token.
"""

import datetime as dt
import hmac
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from worker.clock import wall_clock
from worker.console import actions, queries
from worker.console.auth import Operator, authenticate, can_act, operator_for_token
from worker.console.encoding import to_json
from worker.db.engine import Database
from worker.settings import Settings
from worker.web import sessions

__all__ = ["create_app", "duration", "to_json"]

HERE = Path(__file__).parent
Clock = Callable[[], dt.datetime]
Heartbeats = Callable[[dt.datetime], list[dict[str, Any]]]


# ----------------------------------------------------------------------------- request bodies
class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="Kept in the audit log.")


class BulkRetry(Reason):
    job_type: str | None = None
    user_id: str | None = None
    due_after: dt.datetime | None = None
    due_before: dt.datetime | None = None
    expected: int | None = Field(default=None, ge=0, description="The previewed count.")


class PauseBody(Reason):
    kind: str = Field(description="job, user or job_type")
    value: str = Field(min_length=1, max_length=200)


class TargetBody(Reason):
    platform: str = Field(min_length=1, max_length=40)
    account_id: str | None = None
    platform_post_id: str | None = None
    url: str | None = None


# ----------------------------------------------------------------------------- the app
class _LoginRequired(Exception):
    """A page was asked for without a session: send the browser to the sign-in form."""


def create_app(
    db: Database,
    settings: Settings,
    *,
    clock: Clock | None = None,
    workers: Heartbeats | None = None,
) -> FastAPI:
    """The console for ``db``; ``clock`` gives "now" (the tests' hand clock), ``workers`` the
    live Dramatiq workers (from the broker's heartbeats) when known."""
    now: Clock = clock or wall_clock
    key = settings.web_secret_key
    dead_after = dt.timedelta(seconds=settings.scheduler_dead_after_seconds)
    if not key:
        raise ValueError("MMW_WEB_SECRET_KEY is required to serve the console")
    app = FastAPI(
        title="Marketing Minds worker console",
        version="1",
        description="Operators' JSON API: everything the console pages show, and every action.",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["when"] = _when
    templates.env.filters["duration"] = duration
    templates.env.globals["jsonable"] = to_json
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    # ------------------------------------------------------------------- who is asking
    def session_of(request: Request) -> sessions.Session | None:
        found = sessions.verify(request.cookies.get(sessions.COOKIE), key, now().timestamp())
        if found is None:
            return None
        account = settings.web_users.get(found.name)
        if account is None or account.get("role") != found.role:  # removed or changed
            return None
        return found

    def api_operator(request: Request) -> Operator:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            op = operator_for_token(settings.web_tokens, header[7:].strip())
            if op is None:
                raise HTTPException(401, "invalid API token")
            request.state.csrf_exempt = True
            return op
        found = session_of(request)
        if found is None:
            raise HTTPException(401, "sign in or send an API token (Authorization: Bearer)")
        request.state.session = found
        return Operator(found.name, found.role)  # type: ignore[arg-type]

    def api_actor(request: Request, op: Annotated[Operator, Depends(api_operator)]) -> Operator:
        """API writes: an operator; a cookie session must also send X-CSRF-Token."""
        exempt = getattr(request.state, "csrf_exempt", False)  # a bearer token, no cookie
        if not exempt and not _same(
            request.headers.get("x-csrf-token", ""), request.state.session.csrf
        ):
            raise HTTPException(403, "CSRF token missing or wrong (X-CSRF-Token header)")
        if not op.may_act:
            raise HTTPException(403, f"{op.name} is a {op.role}; only operators act")
        return op

    def page_session(request: Request) -> sessions.Session:
        found = session_of(request)
        if found is None:
            raise _LoginRequired()
        return found

    ApiOp = Annotated[Operator, Depends(api_operator)]
    Actor = Annotated[Operator, Depends(api_actor)]
    PageSession = Annotated[sessions.Session, Depends(page_session)]
    Limit = Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)]

    @app.exception_handler(_LoginRequired)
    async def _to_login(request: Request, _exc: _LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?next=" + urllib.parse.quote(target), status_code=303)

    def render(request: Request, name: str, session: sessions.Session, **context: Any) -> Response:
        return templates.TemplateResponse(
            request,
            name,
            {
                "op": session,
                "may_act": can_act(session.role),
                "csrf": session.csrf,
                "msg": request.query_params.get("msg"),
                "err": request.query_params.get("err"),
                "now": now(),
                **context,
            },
        )

    def _set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=True,
            samesite="lax",
            secure=settings.web_secure_cookies,
            path="/",
        )

    # ------------------------------------------------------------------- health, sign-in
    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness of the console process (the only anonymous endpoint)."""
        return {"status": "ok"}

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> Response:
        token = sessions.new_csrf()
        response = templates.TemplateResponse(
            request, "login.html", {"csrf": token, "next": _safe_next(next), "error": None}
        )
        _set_cookie(response, sessions.LOGIN_COOKIE, token, 600)
        return response

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.form()
        sent, cookie = str(form.get("csrf_token", "")), request.cookies.get(sessions.LOGIN_COOKIE)
        target = _safe_next(str(form.get("next", "/")))
        if not cookie or not _same(sent, cookie):
            return RedirectResponse("/login?next=" + urllib.parse.quote(target), status_code=303)
        name, password = str(form.get("username", "")), str(form.get("password", ""))
        op = await run_in_threadpool(authenticate, settings.web_users, name, password)
        if op is None:
            token = sessions.new_csrf()
            response = templates.TemplateResponse(
                request,
                "login.html",
                {"csrf": token, "next": target, "error": "wrong name or password"},
                status_code=401,
            )
            _set_cookie(response, sessions.LOGIN_COOKIE, token, 600)
            return response
        seconds = int(settings.web_session_hours * 3600)
        session = sessions.Session(
            op.name, op.role, sessions.new_csrf(), now().timestamp() + seconds
        )
        response = RedirectResponse(target, status_code=303)
        _set_cookie(response, sessions.COOKIE, sessions.sign(session, key), seconds)
        response.delete_cookie(sessions.LOGIN_COOKIE, path="/")
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request, session: PageSession) -> Response:
        form = await request.form()
        if not _same(str(form.get("csrf_token", "")), session.csrf):
            raise HTTPException(403, "CSRF token missing or wrong")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(sessions.COOKIE, path="/")
        return response

    # ------------------------------------------------------------------- reads (API)
    def _filter(
        status: str | None,
        job_type: str | None,
        user_id: str | None,
        due_after: dt.datetime | None,
        due_before: dt.datetime | None,
    ) -> queries.JobFilter:
        return queries.JobFilter(
            status or None, job_type or None, user_id or None, due_after, due_before
        )

    def _read(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None

    @app.get("/api/v1/me", tags=["auth"])
    def me(op: ApiOp) -> dict[str, Any]:
        """Who the token or session belongs to, and whether they may act."""
        return {"name": op.name, "role": op.role, "may_act": op.may_act}

    @app.get("/api/v1/overview", tags=["read"])
    def api_overview(op: ApiOp) -> JSONResponse:
        """Counts by status and family, backlog and oldest due per queue, lag, throughput,
        liveness and active pauses."""
        return JSONResponse(
            to_json(queries.overview(db, now(), workers=workers, dead_after=dead_after))
        )

    @app.get("/api/v1/jobs", tags=["read"])
    def api_jobs(
        op: ApiOp,
        status: str | None = None,
        job_type: str | None = None,
        user_id: str | None = None,
        due_after: dt.datetime | None = None,
        due_before: dt.datetime | None = None,
        cursor: str | None = None,
        limit: Limit = queries.DEFAULT_LIMIT,
    ) -> JSONResponse:
        """Jobs, newest due first; pass ``next_cursor`` back as ``cursor`` for the next page."""
        filt = _filter(status, job_type, user_id, due_after, due_before)
        page = _read(lambda: queries.list_jobs(db, filt, cursor=cursor, limit=limit, now=now()))
        return JSONResponse(to_json(page))

    @app.get("/api/v1/search", tags=["read"])
    def api_search(
        op: ApiOp, q: Annotated[str, Query(min_length=1, max_length=200)]
    ) -> JSONResponse:
        """Jobs whose id is ``q`` or starts with it."""
        return JSONResponse(to_json(_read(lambda: queries.find_by_id_prefix(db, q))))

    @app.get("/api/v1/jobs/{job_id}", tags=["read"])
    def api_job(op: ApiOp, job_id: str) -> JSONResponse:
        """A job's document, run history, audit trail and next fires in its time zone."""
        page = queries.job_page(db, job_id, now())
        if page is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return JSONResponse(to_json(page))

    @app.get("/api/v1/failed/preview", tags=["read"])
    def api_failed_preview(
        op: ApiOp,
        job_type: str | None = None,
        user_id: str | None = None,
        due_after: dt.datetime | None = None,
        due_before: dt.datetime | None = None,
    ) -> dict[str, int]:
        """How many failed jobs "retry all matching" would requeue (at most the bulk limit)."""
        filt = _filter(None, job_type, user_id, due_after, due_before)
        return {"count": _read(lambda: queries.failed_count(db, filt)), "limit": actions.BULK_LIMIT}

    @app.get("/api/v1/pauses", tags=["read"])
    def api_pauses(op: ApiOp) -> JSONResponse:
        """Pauses by user or job type and paused jobs, with reason and who set them."""
        return JSONResponse(to_json(queries.pauses(db)))

    @app.get("/api/v1/schedules", tags=["read"])
    def api_schedules(
        op: ApiOp, cursor: str | None = None, limit: Limit = queries.DEFAULT_LIMIT
    ) -> JSONResponse:
        """Recurring jobs by next fire, each with its next three fires."""
        page = _read(lambda: queries.schedules(db, now(), cursor=cursor, limit=limit))
        return JSONResponse(to_json(page))

    @app.get("/api/v1/approvals", tags=["read"])
    def api_approvals(op: ApiOp, status: str = "pending") -> JSONResponse:
        """Approval requests of the AI agents, newest first."""
        return JSONResponse(to_json(_read(lambda: queries.approvals(db, status))))

    @app.get("/api/v1/review", tags=["read"])
    def api_review(op: ApiOp) -> JSONResponse:
        """Effects whose outcome is unknown (needs_review post targets, unconfirmed emails)."""
        return JSONResponse(to_json(queries.review_queue(db, now())))

    # ------------------------------------------------------------------- actions (API + pages)
    def _act(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except actions.NotAllowed as exc:
            raise HTTPException(403, str(exc)) from None
        except actions.ActionError as exc:
            raise HTTPException(409, str(exc)) from None

    ActionFn = Callable[[Operator, dict[str, Any]], Any]

    def job_retry(op: Operator, a: dict[str, Any]) -> Any:
        return actions.retry_job(db, op, a["job_id"], a["reason"], now())

    def job_cancel(op: Operator, a: dict[str, Any]) -> Any:
        return actions.cancel_job(db, op, a["job_id"], a["reason"], now())

    def bulk_retry(op: Operator, a: dict[str, Any]) -> Any:
        filt = _filter(
            None,
            a.get("job_type"),
            a.get("user_id"),
            _time(a.get("due_after")),
            _time(a.get("due_before")),
        )
        expected = a.get("expected")
        expected = int(expected) if expected not in (None, "") else None
        return actions.retry_matching(db, op, filt, a["reason"], now(), expected=expected)

    def do_pause(op: Operator, a: dict[str, Any]) -> Any:
        return actions.pause(db, op, a["kind"], a["value"], a["reason"], now())

    def do_resume(op: Operator, a: dict[str, Any]) -> Any:
        return actions.resume(db, op, a["kind"], a["value"], a["reason"], now())

    def approve(op: Operator, a: dict[str, Any]) -> Any:
        return actions.decide_approval(db, op, a["request_id"], True, a["reason"], now())

    def reject(op: Operator, a: dict[str, Any]) -> Any:
        return actions.decide_approval(db, op, a["request_id"], False, a["reason"], now())

    def target_published(op: Operator, a: dict[str, Any]) -> Any:
        return actions.mark_target_published(
            db,
            op,
            a["post_id"],
            a["platform"],
            a.get("account_id") or None,
            a["reason"],
            now(),
            platform_post_id=a.get("platform_post_id") or None,
            url=a.get("url") or None,
        )

    def target_retry(op: Operator, a: dict[str, Any]) -> Any:
        return actions.retry_target(
            db, op, a["post_id"], a["platform"], a.get("account_id") or None, a["reason"], now()
        )

    def email_sent(op: Operator, a: dict[str, Any]) -> Any:
        return actions.mark_email_sent(db, op, a["campaign_id"], a["reason"], now())

    def email_retry(op: Operator, a: dict[str, Any]) -> Any:
        return actions.retry_email(db, op, a["campaign_id"], a["reason"], now())

    def _result(value: Any) -> JSONResponse:
        return JSONResponse(to_json({"ok": True, "result": value}))

    @app.post("/api/v1/jobs/{job_id}/retry", tags=["act"])
    def api_retry(op: Actor, job_id: str, body: Reason) -> JSONResponse:
        """Requeue a failed job now with a fresh attempt budget."""
        return _result(_act(lambda: job_retry(op, {"job_id": job_id, **body.model_dump()})))

    @app.post("/api/v1/jobs/{job_id}/cancel", tags=["act"])
    def api_cancel(op: Actor, job_id: str, body: Reason) -> JSONResponse:
        """Cancel a job that has not started."""
        return _result(_act(lambda: job_cancel(op, {"job_id": job_id, **body.model_dump()})))

    @app.post("/api/v1/failed/retry", tags=["act"])
    def api_bulk_retry(op: Actor, body: BulkRetry) -> JSONResponse:
        """Requeue every failed job matching the filters; refused when more match than
        ``expected`` (the count the preview showed)."""
        args = body.model_dump()
        return _result(_read(lambda: _act(lambda: bulk_retry(op, args))))

    @app.post("/api/v1/pauses", tags=["act"])
    def api_pause(op: Actor, body: PauseBody) -> JSONResponse:
        """Pause a job, a user's jobs or a job type's jobs."""
        return _result(_act(lambda: do_pause(op, body.model_dump())))

    @app.post("/api/v1/pauses/resume", tags=["act"])
    def api_resume(op: Actor, body: PauseBody) -> JSONResponse:
        """Release a pause."""
        return _result(_act(lambda: do_resume(op, body.model_dump())))

    @app.post("/api/v1/approvals/{request_id}/approve", tags=["act"])
    def api_approve(op: Actor, request_id: str, body: Reason) -> JSONResponse:
        """Approve an agent's request (the reason becomes the approval notes)."""
        return _result(_act(lambda: approve(op, {"request_id": request_id, **body.model_dump()})))

    @app.post("/api/v1/approvals/{request_id}/reject", tags=["act"])
    def api_reject(op: Actor, request_id: str, body: Reason) -> JSONResponse:
        """Reject an agent's request (the reason becomes the rejection reason)."""
        return _result(_act(lambda: reject(op, {"request_id": request_id, **body.model_dump()})))

    @app.post("/api/v1/review/social/{post_id}/published", tags=["act"])
    def api_target_published(op: Actor, post_id: str, body: TargetBody) -> JSONResponse:
        """Record a needs_review target as published (the operator found it on the platform)."""
        args = {"post_id": post_id, **body.model_dump()}
        return _result(_act(lambda: target_published(op, args)))

    @app.post("/api/v1/review/social/{post_id}/retry", tags=["act"])
    def api_target_retry(op: Actor, post_id: str, body: TargetBody) -> JSONResponse:
        """Publish a needs_review target again (the operator checked it is absent)."""
        args = {"post_id": post_id, **body.model_dump()}
        return _result(_act(lambda: target_retry(op, args)))

    @app.post("/api/v1/review/email/{campaign_id}/sent", tags=["act"])
    def api_email_sent(op: Actor, campaign_id: str, body: Reason) -> JSONResponse:
        """Record an unconfirmed email send as sent."""
        args = {"campaign_id": campaign_id, **body.model_dump()}
        return _result(_act(lambda: email_sent(op, args)))

    @app.post("/api/v1/review/email/{campaign_id}/retry", tags=["act"])
    def api_email_retry(op: Actor, campaign_id: str, body: Reason) -> JSONResponse:
        """Run an unconfirmed email send again (it reconciles with Zoho first)."""
        args = {"campaign_id": campaign_id, **body.model_dump()}
        return _result(_act(lambda: email_retry(op, args)))

    # ------------------------------------------------------------------- pages
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page_overview(request: Request, s: PageSession) -> Response:
        data = queries.overview(db, now(), workers=workers, dead_after=dead_after)
        return render(request, "overview.html", s, o=data)

    @app.get("/jobs", response_class=HTMLResponse, include_in_schema=False)
    def page_jobs(
        request: Request,
        s: PageSession,
        status: str | None = None,
        job_type: str | None = None,
        user_id: str | None = None,
        due_after: str | None = None,
        due_before: str | None = None,
        cursor: str | None = None,
        q: str | None = None,
    ) -> Response:
        args = {
            "status": status or "",
            "job_type": job_type or "",
            "user_id": user_id or "",
            "due_after": due_after or "",
            "due_before": due_before or "",
        }
        error, page, found = None, queries.Page([]), None
        try:
            if q:
                found = queries.find_by_id_prefix(db, q)
                if len(found) == 1 and found[0]["job_id"] == q.strip():
                    return RedirectResponse(f"/jobs/{urllib.parse.quote(q.strip())}", 303)
            else:
                filt = _filter(status, job_type, user_id, _time(due_after), _time(due_before))
                page = queries.list_jobs(db, filt, cursor=cursor, now=now())
        except ValueError as exc:
            error = str(exc)
        more = urllib.parse.urlencode({**args, "cursor": page.next_cursor or ""})
        return render(
            request,
            "jobs.html",
            s,
            page=page,
            found=found,
            q=q or "",
            args=args,
            error=error,
            next_query=more,
            statuses=[x.value for x in queries.JobStatus],
        )

    @app.get("/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    def page_job(request: Request, s: PageSession, job_id: str) -> Response:
        data = queries.job_page(db, job_id, now())
        if data is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return render(request, "job.html", s, d=data)

    @app.get("/failed", response_class=HTMLResponse, include_in_schema=False)
    def page_failed(
        request: Request,
        s: PageSession,
        job_type: str | None = None,
        user_id: str | None = None,
        cursor: str | None = None,
    ) -> Response:
        args = {"job_type": job_type or "", "user_id": user_id or ""}
        error, page = None, queries.Page([])
        try:
            page = queries.list_jobs(
                db, _filter("failed", job_type, user_id, None, None), cursor=cursor, now=now()
            )
        except ValueError as exc:
            error = str(exc)
        more = urllib.parse.urlencode({**args, "cursor": page.next_cursor or ""})
        return render(request, "failed.html", s, page=page, args=args, error=error, next_query=more)

    @app.get("/failed/preview", response_class=HTMLResponse, include_in_schema=False)
    def page_failed_preview(
        request: Request, s: PageSession, job_type: str | None = None, user_id: str | None = None
    ) -> Response:
        filt = _filter(None, job_type, user_id, None, None)
        count = _read(lambda: queries.failed_count(db, filt))
        return render(
            request,
            "_preview.html",
            s,
            count=count,
            limit=actions.BULK_LIMIT,
            args={"job_type": job_type or "", "user_id": user_id or ""},
        )

    @app.get("/pauses", response_class=HTMLResponse, include_in_schema=False)
    def page_pauses(request: Request, s: PageSession) -> Response:
        return render(request, "pauses.html", s, p=queries.pauses(db))

    @app.get("/schedules", response_class=HTMLResponse, include_in_schema=False)
    def page_schedules(request: Request, s: PageSession, cursor: str | None = None) -> Response:
        page = _read(lambda: queries.schedules(db, now(), cursor=cursor))
        return render(request, "schedules.html", s, page=page)

    @app.get("/approvals", response_class=HTMLResponse, include_in_schema=False)
    def page_approvals(request: Request, s: PageSession, status: str = "pending") -> Response:
        rows = _read(lambda: queries.approvals(db, status))
        return render(
            request,
            "approvals.html",
            s,
            rows=rows,
            status=status,
            statuses=queries.APPROVAL_STATUSES,
        )

    @app.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def page_review(request: Request, s: PageSession) -> Response:
        return render(request, "review.html", s, items=queries.review_queue(db, now()))

    def form_action(path: str, fn: ActionFn, done: Callable[[Any], str]) -> None:
        """A form post: check the CSRF token, act, go back with a message."""

        async def handler(request: Request) -> Response:
            session = page_session(request)
            form = dict(await request.form())
            referer = urllib.parse.urlsplit(request.headers.get("referer", "/"))
            fallback = referer.path + (f"?{referer.query}" if referer.query else "")
            back = _safe_next(str(form.pop("back", "") or fallback or "/"))
            if not _same(str(form.pop("csrf_token", "")), session.csrf):
                raise HTTPException(403, "CSRF token missing or wrong; reload the page")
            args = {**request.path_params, **{k: str(v) for k, v in form.items()}}
            op = Operator(session.name, session.role)  # type: ignore[arg-type]
            try:
                result = await run_in_threadpool(fn, op, args)
            except actions.NotAllowed as exc:
                raise HTTPException(403, str(exc)) from None
            except (actions.ActionError, ValueError) as exc:
                return RedirectResponse(_with(back, err=str(exc)), status_code=303)
            return RedirectResponse(_with(back, msg=done(result)), status_code=303)

        app.add_api_route(path, handler, methods=["POST"], include_in_schema=False)

    form_action("/jobs/{job_id}/retry", job_retry, lambda j: f"requeued {j['job_id']}")
    form_action("/jobs/{job_id}/cancel", job_cancel, lambda j: f"cancelled {j['job_id']}")
    form_action(
        "/failed/retry",
        bulk_retry,
        lambda r: (
            f"requeued {r['requeued']} of {r['matched']} failed jobs"
            + (f"; skipped {len(r['skipped'])}" if r["skipped"] else "")
        ),
    )
    form_action("/pauses", do_pause, lambda _r: "paused")
    form_action("/pauses/resume", do_resume, lambda _r: "resumed")
    form_action("/approvals/{request_id}/approve", approve, lambda r: f"approved {r['request_id']}")
    form_action("/approvals/{request_id}/reject", reject, lambda r: f"rejected {r['request_id']}")
    form_action(
        "/review/social/{post_id}/published", target_published, lambda _r: "marked published"
    )
    form_action(
        "/review/social/{post_id}/retry",
        target_retry,
        lambda j: f"publishing again as {j['job_id']}",
    )
    form_action("/review/email/{campaign_id}/sent", email_sent, lambda _r: "marked sent")
    form_action(
        "/review/email/{campaign_id}/retry",
        email_retry,
        lambda j: f"sending again as {j['job_id']}",
    )
    return app


def _same(sent: str, expected: str) -> bool:
    """A CSRF token check in constant time (an empty token never matches)."""
    return bool(sent) and hmac.compare_digest(sent.encode(), expected.encode())


def _time(value: str | None) -> dt.datetime | None:
    """A form's time field (ISO 8601; a time without zone is UTC)."""
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return value
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _safe_next(target: str) -> str:
    """Only paths on this server (no open redirect to another host)."""
    parsed = urllib.parse.urlsplit(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target[1:2] in ("/", "\\"):
        return "/"
    return target


def _with(target: str, **params: str) -> str:
    parsed = urllib.parse.urlsplit(target)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parsed.query) if k not in ("msg", "err")]
    query += list(params.items())
    return urllib.parse.urlunsplit(("", "", parsed.path, urllib.parse.urlencode(query), ""))


def _when(value: Any) -> str:
    """A time for a page: ISO 8601 UTC without microseconds."""
    if not isinstance(value, dt.datetime):
        return "" if value is None else str(value)
    value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def duration(seconds: float | None) -> str:
    """A lag or an age for a person: ``42 s``, ``3 min 5 s``, ``2 h 10 min``, ``29 d 20 h``."""
    if seconds is None:
        return ""
    whole = int(max(seconds, 0))
    for unit, size, small, small_size in (
        ("d", 86400, "h", 3600),
        ("h", 3600, "min", 60),
        ("min", 60, "s", 1),
    ):
        if whole >= size:
            rest = (whole % size) // small_size
            return f"{whole // size} {unit}" + (f" {rest} {small}" if rest else "")
    return f"{whole} s"
