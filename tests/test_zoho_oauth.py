"""Zoho OAuth: token-endpoint decisions, freshness, data centers, the sandbox accounts server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx2
import pytest

from worker.clock import wall_clock
from worker.errors import PermanentFailure, RetryLater, TokenExpired
from worker.integrations.zoho import (
    data_center,
    is_token_fresh,
    parse_token_response,
    refresh_access_token,
)
from worker.sandbox.zoho import start_zoho_sandbox

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expires_at", "fresh"),
    [
        (None, False),
        (NOW - timedelta(seconds=1), False),
        (NOW + timedelta(minutes=4), False),
        (NOW + timedelta(minutes=5), False),
        (NOW + timedelta(minutes=5, seconds=1), True),
        (NOW + timedelta(hours=1), True),
    ],
)
def test_is_token_fresh_keeps_a_safety_margin(expires_at: datetime | None, fresh: bool) -> None:
    assert is_token_fresh(expires_at, NOW) is fresh


def test_success_body_gives_expiry_and_api_domain() -> None:
    grant = parse_token_response(
        200,
        {"access_token": "1000.a.b", "api_domain": "https://www.zohoapis.eu",
         "token_type": "Bearer", "expires_in": 3600},
        NOW,
    )  # fmt: skip
    assert grant.expires_at == NOW + timedelta(hours=1)
    assert grant.api_domain == "https://www.zohoapis.eu"
    assert "1000.a.b" not in repr(grant)


def test_expires_in_sec_marks_old_millisecond_bodies() -> None:
    body = {"access_token": "t", "expires_in": 3600000, "expires_in_sec": 3600}
    assert parse_token_response(200, body, NOW).expires_in == 3600


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, {"error": "invalid_code"}, TokenExpired),
        (200, {"error": "invalid_client"}, TokenExpired),
        (200, {"error": "invalid_client_secret"}, TokenExpired),
        (400, {"error": "Access Denied", "error_description": "too many requests continuously",
               "status": "failure"}, RetryLater),
        (200, {"error": "Access Denied"}, RetryLater),
        (200, {"error": "invalid_redirect_uri"}, PermanentFailure),
        (502, None, RetryLater),
        (200, {"token_type": "Bearer"}, PermanentFailure),
        (503, {"error": "server"}, RetryLater),
    ],
)  # fmt: skip
def test_error_bodies_decide_the_outcome(status: int, body: object, outcome: type) -> None:
    with pytest.raises(outcome) as raised:
        parse_token_response(status, body, NOW)
    assert type(raised.value) is outcome


def test_throttle_waits_out_the_ten_minute_window() -> None:
    with pytest.raises(RetryLater) as raised:
        parse_token_response(400, {"error": "Access Denied"}, NOW)
    assert raised.value.delay == 600


@pytest.mark.parametrize(
    ("key", "accounts", "api"),
    [
        ("com", "https://accounts.zoho.com", "https://www.zohoapis.com"),
        ("us", "https://accounts.zoho.com", "https://www.zohoapis.com"),
        ("eu", "https://accounts.zoho.eu", "https://www.zohoapis.eu"),
        ("in", "https://accounts.zoho.in", "https://www.zohoapis.in"),
        ("com.au", "https://accounts.zoho.com.au", "https://www.zohoapis.com.au"),
        ("jp", "https://accounts.zoho.jp", "https://www.zohoapis.jp"),
        ("ca", "https://accounts.zohocloud.ca", "https://www.zohoapis.ca"),
        ("CN", "https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"),
    ],
)
def test_data_center_servers(key: str, accounts: str, api: str) -> None:
    dc = data_center(key)
    assert (dc.accounts_url, dc.api_domain) == (accounts, api)


def test_unknown_data_center_is_permanent() -> None:
    with pytest.raises(PermanentFailure):
        data_center("mars")


@pytest.mark.parametrize("key", ["eu", "ca", "com.au"])
def test_refresh_goes_to_the_accounts_server_of_the_data_center(key: str) -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"access_token": "t", "expires_in": 3600})

    with httpx2.Client(transport=httpx2.MockTransport(handler)) as client:
        refresh_access_token(
            client, data_center(key).accounts_url, refresh_token="r", client_id="c",
            client_secret="s", now=NOW,
        )  # fmt: skip
    assert str(seen[0].url) == data_center(key).accounts_url + "/oauth/v2/token"
    assert b"grant_type=refresh_token" in seen[0].content


def test_sandbox_grant_throttle_and_revocation() -> None:
    server, zoho = start_zoho_sandbox(throttle_limit=3, clock=wall_clock)
    try:
        token = zoho.add_refresh_token("u1")
        with httpx2.Client(timeout=5) as client:

            def refresh(secret: str = zoho.client_secret, rt: str = token) -> object:
                return refresh_access_token(
                    client, server.url, refresh_token=rt, client_id=zoho.client_id,
                    client_secret=secret, now=NOW,
                )  # fmt: skip

            grants = [refresh() for _ in range(3)]
            assert {g.api_domain for g in grants} == {server.url}
            assert len({g.access_token for g in grants}) == 3
            with pytest.raises(RetryLater):
                refresh()
            zoho.advance(601)
            refresh()
            with pytest.raises(TokenExpired, match="invalid_client_secret") as raised:
                refresh(secret="wrong")
            assert "wrong" not in str(raised.value)
            zoho.revoke(token)
            with pytest.raises(TokenExpired, match="invalid_code") as raised:
                refresh()
            assert token not in str(raised.value)
        assert zoho.grants_for(token) == 4
    finally:
        server.stop()
