"""The console in headless Chromium, as an operator uses it (playwright driving Debian's chromium).

Sign in, find a failed job, read its history, retry it and watch it complete (a scheduler tick
and real worker threads on Redis, in this process), approve a campaign, resolve a needs-review
post. Screenshots go to ``tests/artifacts/web/`` (or ``MMW_WEB_SCREENSHOTS``); the path is
printed.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import dramatiq
import pytest

import worker.actors  # noqa: F401 - registers handlers
from tests.processes import free_port
from tests.web_support import PASSWORDS, console_settings, failed_job, seed
from worker.actors.lifecycle import Runner, declare_job_actors, set_runner
from worker.scheduler import Scheduler
from worker.web.app import create_app
from worker.web.server import ConsoleServer

# Debian's chromium (.ci/run installs it); MMW_CHROMIUM or Chrome elsewhere (GitHub's runners).
CHROMIUM = (
    os.environ.get("MMW_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("google-chrome")
    or "/usr/bin/chromium"
)
SHOTS = Path(os.environ.get("MMW_WEB_SCREENSHOTS", Path(__file__).parent / "artifacts" / "web"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
]


@pytest.fixture
def running(db, settings, redis_broker, clock):
    """Worker threads running the lifecycle on the test's clock, and a scheduler to tick."""
    runner = Runner(db, settings, clock=clock)
    set_runner(runner)
    declare_job_actors(redis_broker)
    worker = dramatiq.Worker(redis_broker, worker_threads=2, worker_timeout=50)
    worker.start()
    yield Scheduler(db, redis_broker, settings, clock=clock)
    worker.stop()
    runner.close()
    set_runner(None)


@pytest.fixture
def console(db, clock, running):
    app = create_app(db, console_settings(), clock=clock)
    server = ConsoleServer(app, "127.0.0.1", free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser.new_page(viewport={"width": 1280, "height": 900})
        browser.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_an_operator_retries_a_failed_job_approves_and_resolves_a_review(
    db, clock, console, running, page
):
    seeded = seed(db, clock.now)
    failed_job(db, clock.now, "job_newsletter_retry")
    base = console.url

    page.goto(f"{base}/failed")  # no session: the sign-in form, then back here
    page.fill("input[name=username]", "ann")
    page.fill("input[name=password]", PASSWORDS["ann"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/failed")
    shot(page, "01-failed")

    page.click("text=job_newsletter_retry")
    page.wait_for_url(f"{base}/jobs/job_newsletter_retry")
    assert "boom: the sandbox said no" in page.inner_text("#history")
    page.fill("form:has(#retry) input[name=reason]", "sandbox is back")
    page.click("#retry")
    page.wait_for_selector("#flash")
    assert page.inner_text("#job-status") == "pending"

    running.tick()  # the scheduler dispatches it; a worker thread runs it
    deadline = time.monotonic() + 15
    while page.inner_text("#job-status") != "completed":
        assert time.monotonic() < deadline, "the retried job did not complete"
        time.sleep(0.1)
        page.reload()
    statuses = page.locator("#history td.s-completed, #history td.s-failed").all_inner_texts()
    assert statuses == ["completed", "failed"]  # newest first
    assert "sandbox is back" in page.inner_text("#audit") and "ann" in page.inner_text("#audit")
    shot(page, "02-job-completed")

    page.goto(f"{base}/approvals")
    row = page.locator(f"#approval-{seeded.approval}")
    row.locator("form[action$='/approve'] input[name=reason]").fill("plan looks right")
    row.locator("form[action$='/approve'] button").click()
    page.wait_for_selector("#flash")
    assert f"approved {seeded.approval}" in page.inner_text("#flash")
    assert db.approval_requests.find_one({"request_id": seeded.approval})["status"] == "approved"

    page.goto(f"{base}/review")
    shot(page, "03-review")
    card = page.locator(f"#review-{seeded.post}-twitter")
    form = card.locator("form[action$='/published']")
    form.locator("input[name=url]").fill("https://x.com/acme/status/1")
    form.locator("input[name=reason]").fill("found it on the timeline")
    form.locator("button").click()
    page.wait_for_selector("#flash")
    twitter = db.social_posts.find_one({"post_id": seeded.post})["platforms"][1]
    assert twitter["status"] == "published" and twitter["reviewed"]["by"] == "ann"

    page.goto(f"{base}/")
    page.wait_for_selector("text=Queues")
    shot(page, "04-overview")
    print(f"console screenshots: {SHOTS}")
