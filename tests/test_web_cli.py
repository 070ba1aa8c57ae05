"""`mmw web`: making accounts and tokens, refusing to start without what it needs; the console
modules' public surfaces."""

from __future__ import annotations

import importlib
import json
import socket

import pytest
from click.testing import CliRunner

from worker.cli import main
from worker.console.auth import (
    authenticate,
    hash_password,
    hash_token,
    operator_for_token,
    verify_password,
)
from worker.settings import get_settings


def test_hash_password_prints_a_users_entry_that_signs_in():
    result = CliRunner().invoke(
        main,
        ["web", "hash-password", "--name", "ann", "--role", "operator", "--password", "s3cret"],
    )
    assert result.exit_code == 0, result.output
    users = json.loads(result.output)
    assert users["ann"]["role"] == "operator" and users["ann"]["hash"].startswith("scrypt$")
    assert authenticate(users, "ann", "s3cret").name == "ann"
    assert authenticate(users, "ann", "wrong") is None
    assert authenticate(users, "bob", "s3cret") is None


def test_new_token_prints_the_token_and_its_hashed_entry():
    result = CliRunner().invoke(main, ["web", "new-token", "--name", "grafana"])
    assert result.exit_code == 0, result.output
    token = result.output.split("token: ", 1)[1].split()[0]
    entry = json.loads(result.output.split("MMW_WEB_TOKENS entry: ", 1)[1])
    assert token not in json.dumps(entry)  # only its hash is kept
    op = operator_for_token(entry, token)
    assert op is not None and (op.name, op.role, op.may_act) == ("grafana", "viewer", False)
    assert operator_for_token(entry, token + "x") is None


def test_passwords_hashes_are_salted_and_checked_in_constant_time_form():
    first, second = hash_password("pw"), hash_password("pw")
    assert first != second and verify_password("pw", first) and verify_password("pw", second)
    assert not verify_password("pw", "not-a-hash") and not verify_password("pw", "")
    with pytest.raises(ValueError):
        hash_password("")
    assert hash_token("t") == hash_token("t") != hash_token("u")


def _web(tmp_path, monkeypatch, env: dict[str, str], args: list[str]):
    """`mmw web ARGS` in an empty folder with only ``env`` of the console's settings."""
    monkeypatch.chdir(tmp_path)
    for name in ("MMW_WEB_SECRET_KEY", "MMW_WEB_USERS", "MMW_WEB_TOKENS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(main, ["web", *args])
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "set MMW_WEB_SECRET_KEY"),
        ({"MMW_WEB_SECRET_KEY": "k"}, "no console accounts"),
    ],
)
def test_web_refuses_to_start_without_key_or_accounts(tmp_path, monkeypatch, env, message):
    result = _web(tmp_path, monkeypatch, env, [])
    assert result.exit_code != 0 and message in result.output


def test_web_says_when_its_port_is_taken(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {
            "MMW_WEB_SECRET_KEY": "k",
            "MMW_WEB_TOKENS": json.dumps({"h": {"name": "x", "role": "viewer"}}),
            "MMW_EMBEDDED_PATH": str(tmp_path / "db"),
        }
        result = _web(tmp_path, monkeypatch, env, ["--port", str(port)])
    assert result.exit_code != 0
    assert f"cannot serve the console on 127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "module",
    [
        "worker.console.queries",
        "worker.console.actions",
        "worker.console.auth",
        "worker.web.app",
        "worker.web.sessions",
        "worker.web.server",
    ],
)
def test_all_names_exist(module: str) -> None:
    loaded = importlib.import_module(module)
    assert [name for name in loaded.__all__ if not hasattr(loaded, name)] == []
    assert len(set(loaded.__all__)) == len(loaded.__all__)
