"""Webhook signing, secrets, seals, decisions, and delivery to a receiver that verifies alone.

The SSRF guard and the pinned transport have their own file (test_webhooks_ssrf.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import threading
from datetime import UTC, datetime

import httpx2
import pytest

from worker.integrations.webhooks import (
    Attempt,
    InvalidSecret,
    Target,
    Verdict,
    attempt_delivery,
    check_target,
    classify,
    event_seal,
    generate_secret,
    render_body,
    retry_delay,
    secret_key,
    should_deactivate,
    sign,
    valid_seal,
)
from worker.sandbox import Faults, Request, Response, Router, SandboxServer

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def standard_webhooks_verify(
    secret: str, headers: dict[str, str], body: bytes, now: int, tolerance: int = 300
) -> bool:
    """Written from the Standard Webhooks spec v1.0.0, independently of the signer under test."""
    msg_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(now - int(stamp)) > tolerance:
        return False
    key = base64.b64decode(secret[len("whsec_") :] if secret.startswith("whsec_") else secret)
    signed = msg_id.encode() + b"." + stamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    for entry in headers["webhook-signature"].split(" "):
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return True
    return False


def test_spec_test_vector() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1a,ignored v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    assert standard_webhooks_verify(secret, headers, body, 1614265330)
    assert not standard_webhooks_verify(secret, headers, body + b" ", 1614265330)
    assert not standard_webhooks_verify(secret, headers, body, 1614265330 + 301)


def test_generated_secret_follows_the_convention() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert len(secret_key(generate_secret(24))) == 24 and len(secret_key(generate_secret(64))) == 64
    with pytest.raises(ValueError):
        generate_secret(16)


B64_16 = base64.b64encode(b"k" * 16).decode()
B64_32 = base64.b64encode(b"k" * 32).decode()


@pytest.mark.parametrize(
    "secret",
    [None, "", "whsec_", "whsec_!!!!", "whsec_abc", "abc", "raw secret string",
     f"whsec_{B64_16}", f"whsec_{base64.b64encode(b'k' * 65).decode()}",
     f"whsec_{B64_32.rstrip('=')}", f"whsec_{B64_32} ", f"whsec_ {B64_32}",
     "whsec_" + base64.urlsafe_b64encode(b"\xfb" * 30).decode(), 42],
)  # fmt: skip
def test_loose_secrets_are_refused(secret: object) -> None:
    """A loose decoder gives these an empty or guessable key: anyone could forge signatures."""
    with pytest.raises(InvalidSecret):
        secret_key(secret)
    if isinstance(secret, str):
        with pytest.raises(InvalidSecret):
            sign(secret, "m", 1, b"{}")


def test_prefix_is_optional_as_in_the_reference_libraries() -> None:
    assert secret_key(B64_32) == secret_key(f"whsec_{B64_32}") == b"k" * 32


def test_seal_binds_webhook_event_id_and_data() -> None:
    secret = generate_secret()
    seal = event_seal(secret, "wh_1", "job.completed", "evt_1", {"job_id": "j", "n": [1, 2]})
    assert valid_seal(seal, secret, "wh_1", "job.completed", "evt_1", {"n": [1, 2], "job_id": "j"})
    for changed in [
        (secret, "wh_2", "job.completed", "evt_1", {"job_id": "j", "n": [1, 2]}),
        (secret, "wh_1", "job.failed", "evt_1", {"job_id": "j", "n": [1, 2]}),
        (secret, "wh_1", "job.completed", "evt_2", {"job_id": "j", "n": [1, 2]}),
        (secret, "wh_1", "job.completed", "evt_1", {"job_id": "j", "n": [1, 3]}),
        (generate_secret(), "wh_1", "job.completed", "evt_1", {"job_id": "j", "n": [1, 2]}),
    ]:
        assert not valid_seal(seal, *changed)
    for bad in ["", "00" * 32, "é" * 64, None]:
        assert not valid_seal(bad, secret, "wh_1", "job.completed", "evt_1", {})  # type: ignore[arg-type]
    # The seal is not a delivery signature of anything (a key of its own).
    assert seal not in sign(secret, "evt_1", 0, b"{}")


def test_body_is_deterministic() -> None:
    first = render_body("job.completed", NOW, {"b": 1, "a": [1, 2]})
    assert first == render_body("job.completed", NOW, {"a": [1, 2], "b": 1})
    assert json.loads(first) == {
        "type": "job.completed", "timestamp": NOW.isoformat(), "data": {"a": [1, 2], "b": 1}
    }  # fmt: skip


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(200, Verdict.DELIVERED), (204, Verdict.DELIVERED), (299, Verdict.DELIVERED),
     (301, Verdict.RETRY), (400, Verdict.RETRY), (410, Verdict.GONE), (429, Verdict.RETRY),
     (500, Verdict.RETRY), (None, Verdict.RETRY)],
)  # fmt: skip
def test_classify(status: int | None, verdict: Verdict) -> None:
    assert classify(status) is verdict


@pytest.mark.parametrize(
    ("retry", "retry_after", "low", "high"),
    [(1, None, 4.5, 5.5), (2, None, 270, 330), (3, None, 1620, 1980), (6, None, 32400, 39600),
     (50, None, 32400, 39600), (1, 120.0, 120, 120), (1, 2.0, 4.5, 5.5),
     (1, 10**9, 86400, 86400), (0, None, 4.5, 5.5)],
)  # fmt: skip
def test_retry_delay(retry: int, retry_after: float | None, low: float, high: float) -> None:
    delays = [retry_delay(retry, retry_after, random.Random(seed)) for seed in range(20)]
    assert all(low <= d <= high for d in delays)


@pytest.mark.parametrize(("failures", "off"), [(0, False), (9, False), (10, True), (11, True)])
def test_should_deactivate(failures: int, off: bool) -> None:
    assert should_deactivate(failures) is off
    assert should_deactivate(failures, threshold=3) is (failures >= 3)


class Receiver:
    """A customer endpoint: verifies every delivery, answers from a script of statuses."""

    def __init__(self, secret: str, statuses: list[int]) -> None:
        self.secret = secret
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes, bool]] = []
        self._lock = threading.Lock()
        self.router = Router()
        self.router.route("POST", "/hook")(self.handle)
        self.router.route("POST", "/moved")(lambda _r: Response(302, b"", {"Location": "/hook"}))

    def handle(self, request: Request) -> Response:
        now = int(datetime.now(UTC).timestamp())
        ok = standard_webhooks_verify(self.secret, request.headers, request.body, now)
        with self._lock:
            self.received.append((request.headers, request.body, ok))
            status = self.statuses.pop(0) if self.statuses else 200
        if status == 429:
            return Response.json({}, 429, **{"Retry-After": "30"})
        return Response.json({}, status)


def local_target(url: str) -> Target:
    """A loopback sandbox URL, checked as dev and tests allow (private address, its port)."""
    port = httpx2.URL(url).port or 80
    return check_target(url, allow_private=True, ports={port})


def deliver(url: str, secret: str, body: bytes = b"{}", *, timeout: float = 2.0) -> Attempt:
    return attempt_delivery(
        local_target(url), secret=secret, msg_id="m", body=body, now=datetime.now(UTC),
        timeout=timeout,
    )  # fmt: skip


def test_delivery_is_verified_and_retries_resend_the_same_body() -> None:
    secret = generate_secret()
    receiver = Receiver(secret, [500, 429, 200])
    body = render_body("email.sent", NOW, {"campaign_id": "c1"})
    with SandboxServer(receiver.router) as server:
        target = local_target(f"{server.url}/hook")
        send = dict(secret=secret, msg_id="msg_1", body=body, timeout=2.0)
        attempts = [attempt_delivery(target, now=datetime.now(UTC), **send) for _ in range(3)]
    assert [a.status for a in attempts] == [500, 429, 200]
    assert attempts[1].retry_after == 30
    assert [classify(a.status) for a in attempts][-1] is Verdict.DELIVERED
    assert all(ok for _, _, ok in receiver.received)
    assert {b for _, b, _ in receiver.received} == {body}
    assert {h["webhook-id"] for h, _, _ in receiver.received} == {"msg_1"}
    assert secret not in repr(attempts)
    assert attempts[0].excerpt == "{}" and attempts[0].response_bytes == 2


def test_wrong_secret_fails_verification() -> None:
    receiver = Receiver(generate_secret(), [])
    with SandboxServer(receiver.router) as server:
        deliver(f"{server.url}/hook", generate_secret())
    assert [ok for _, _, ok in receiver.received] == [False]


def test_redirects_are_not_followed() -> None:
    receiver = Receiver(generate_secret(), [])
    with SandboxServer(receiver.router) as server:
        attempt = deliver(f"{server.url}/moved", receiver.secret)
    assert attempt.status == 302 and classify(attempt.status) is Verdict.RETRY
    assert receiver.received == []


def test_timeout_is_an_attempt_without_status() -> None:
    receiver = Receiver(generate_secret(), [])
    faults = Faults(timeout=1.0, timeout_seconds=0.5)
    with SandboxServer(receiver.router, faults=faults) as server:
        attempt = deliver(f"{server.url}/hook", receiver.secret, timeout=0.1)
    assert (attempt.status, attempt.error) == (None, "timeout")


def test_refused_connection_is_an_attempt_with_the_reason() -> None:
    with SandboxServer(Router()) as server:
        url = f"{server.url}/hook"
    attempt = deliver(url, generate_secret())  # the server is gone: nothing listens there
    assert attempt.status is None and attempt.error and attempt.error.startswith("ConnectError")
