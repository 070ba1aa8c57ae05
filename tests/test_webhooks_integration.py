"""Webhook signing, decisions, SSRF guard and delivery to a receiver that verifies independently."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx2
import pytest

from worker.integrations.webhooks import (
    TargetRefused,
    Verdict,
    attempt_delivery,
    check_target,
    classify,
    generate_secret,
    render_body,
    retry_delay,
    should_deactivate,
    sign,
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


def resolver(table: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    return lambda host, port: table[host]


@pytest.mark.parametrize(
    ("addresses", "allowed"),
    [
        (["93.184.216.34"], True),
        (["2606:2800:220:1:248:1893:25c8:1946"], True),
        (["127.0.0.1"], False),
        (["10.1.2.3"], False),
        (["172.16.0.1"], False),
        (["192.168.1.1"], False),
        (["169.254.169.254"], False),
        (["100.64.0.1"], False),
        (["0.0.0.0"], False),
        (["::1"], False),
        (["fe80::1"], False),
        (["fc00::1"], False),
        (["::ffff:127.0.0.1"], False),
        (["224.0.0.1"], False),
        (["93.184.216.34", "10.0.0.1"], False),
    ],
)
def test_target_addresses(addresses: list[str], allowed: bool) -> None:
    resolve = resolver({"hooks.example.com": addresses})
    url = "https://hooks.example.com/in"
    if allowed:
        assert check_target(url, allow_private=False, resolve=resolve) == addresses
    else:
        with pytest.raises(TargetRefused):
            check_target(url, allow_private=False, resolve=resolve)
    assert check_target(url, allow_private=True, resolve=resolve) == addresses


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "/relative", "https://user:pw@example.com/", "http://h:99999/"]
)
def test_malformed_targets_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused):
        check_target(url, allow_private=True, resolve=resolver({"example.com": ["93.184.216.34"]}))


def test_real_resolution_of_localhost() -> None:
    with pytest.raises(TargetRefused):
        check_target("http://localhost:8080/hook", allow_private=False)
    assert "127.0.0.1" in check_target("http://localhost:8080/hook", allow_private=True)


def test_unresolvable_host_is_refused() -> None:
    def fails(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(TargetRefused, match="does not resolve"):
        check_target("http://no-such-host.invalid/", allow_private=True, resolve=fails)
    with pytest.raises(TargetRefused, match="does not resolve"):
        check_target("http://empty.example/", allow_private=True, resolve=lambda h, p: [])


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


@pytest.fixture()
def http() -> Iterator[httpx2.Client]:
    with httpx2.Client(timeout=2, follow_redirects=False, trust_env=False) as client:
        yield client


def test_delivery_is_verified_and_retries_resend_the_same_body(http: httpx2.Client) -> None:
    secret = generate_secret()
    receiver = Receiver(secret, [500, 429, 200])
    body = render_body("email.sent", NOW, {"campaign_id": "c1"})
    with SandboxServer(receiver.router) as server:
        attempts = [
            attempt_delivery(
                http,
                f"{server.url}/hook",
                secret=secret,
                msg_id="msg_1",
                body=body,
                now=datetime.now(UTC),
            )
            for _ in range(3)
        ]
    assert [a.status for a in attempts] == [500, 429, 200]
    assert attempts[1].retry_after == 30
    assert [classify(a.status) for a in attempts][-1] is Verdict.DELIVERED
    assert all(ok for _, _, ok in receiver.received)
    assert {b for _, b, _ in receiver.received} == {body}
    assert {h["webhook-id"] for h, _, _ in receiver.received} == {"msg_1"}
    assert secret not in repr(attempts)


def test_wrong_secret_fails_verification(http: httpx2.Client) -> None:
    receiver = Receiver(generate_secret(), [])
    with SandboxServer(receiver.router) as server:
        attempt_delivery(
            http, f"{server.url}/hook", secret=generate_secret(), msg_id="m", body=b"{}",
            now=datetime.now(UTC),
        )  # fmt: skip
    assert [ok for _, _, ok in receiver.received] == [False]


def test_redirects_are_not_followed(http: httpx2.Client) -> None:
    receiver = Receiver(generate_secret(), [])
    with SandboxServer(receiver.router) as server:
        attempt = attempt_delivery(
            http, f"{server.url}/moved", secret=receiver.secret, msg_id="m", body=b"{}",
            now=datetime.now(UTC),
        )  # fmt: skip
    assert attempt.status == 302 and classify(attempt.status) is Verdict.RETRY
    assert receiver.received == []


def test_timeout_is_an_attempt_without_status() -> None:
    receiver = Receiver(generate_secret(), [])
    faults = Faults(timeout=1.0, timeout_seconds=0.5)
    with (
        SandboxServer(receiver.router, faults=faults) as server,
        httpx2.Client(timeout=0.1, trust_env=False) as client,
    ):
        attempt = attempt_delivery(
            client, f"{server.url}/hook", secret=receiver.secret, msg_id="m", body=b"{}",
            now=datetime.now(UTC),
        )  # fmt: skip
    assert (attempt.status, attempt.error) == (None, "timeout")
