"""Secrets at rest: sealing, key ids, tampering, context binding, legacy plaintext, rotation."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client import REGISTRY

import worker.secrets as secrets_module
from worker.cli import main
from worker.db import names
from worker.db.client import open_embedded, scrub_embedded
from worker.dev import DEV_KEY_FILE, dev_key
from worker.integrations.zoho.tokens import ZohoTokenStore
from worker.reseal import census, reseal_all
from worker.secrets import (
    PREFIX,
    Keyring,
    SecretContext,
    SecretsNotConfigured,
    SecretUnreadable,
    generate_key,
    is_sealed,
    keyring,
    open_document,
    open_field,
    parse_keys,
    require_keys,
    seal,
    seal_document,
)
from worker.settings import Settings, get_settings

from .processes import ROOT, process_env

CTX = SecretContext("zoho_tokens", "access_token", "u1")


def ring(*kids: str) -> Keyring:
    """A keyring of deterministic keys named ``kids`` (the first seals)."""
    return Keyring([(kid, kid.encode().ljust(32, b"#")[:32]) for kid in kids])


def settings_with(*kids: str) -> Settings:
    entries = [
        f"{kid}:{base64.b64encode(kid.encode().ljust(32, b'#')[:32]).decode()}" for kid in kids
    ]
    return Settings(secret_keys=",".join(entries), secret_key_file=None)


def plaintext_reads(collection: str, field: str) -> float:
    labels = {"collection": collection, "field": field}
    return REGISTRY.get_sample_value("mmw_plaintext_secrets_read_total", labels) or 0.0


# --- the envelope --------------------------------------------------------------------------------
def test_round_trip_is_a_prefixed_string_with_the_key_id_and_fresh_randomness():
    keys = ring("k1")
    sealed = keys.seal("1000.token-value", CTX)
    assert sealed.startswith(PREFIX + "k1:") and "token-value" not in sealed
    assert keys.open(sealed, CTX) == "1000.token-value"
    assert keys.seal("1000.token-value", CTX) != sealed  # a data key and nonces per value
    assert keys.seal(sealed, CTX) == sealed  # sealing twice is a no-op, never double-wrapped
    assert keys.open(keys.seal("", CTX), CTX) == ""
    assert keys.open(keys.seal("ünïcødé ✓", CTX), CTX) == "ünïcødé ✓"


def test_first_key_seals_and_every_listed_key_opens():
    old = ring("old").seal("v", CTX)
    both = ring("new", "old")
    assert both.primary == "new"
    assert both.open(old, CTX) == "v"
    assert Keyring.kid_of(both.seal("v", CTX)) == "new"


def test_unknown_key_id_is_a_clear_error_without_the_value():
    sealed = ring("gone").seal("super-secret-token", CTX)
    with pytest.raises(SecretUnreadable) as err:
        ring("k2").open(sealed, CTX)
    assert "'gone'" in str(err.value) and "not configured" in str(err.value)
    assert "super-secret-token" not in str(err.value) and sealed not in str(err.value)


@pytest.mark.parametrize("position", [0, 13, 50, 61, 73, -1])  # wrap nonce, key, tag, nonce, …
def test_any_tampered_byte_is_refused(position):
    keys = ring("k1")
    sealed = keys.seal("the-token", CTX)
    head, blob = sealed.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4)))
    raw[position] ^= 0x01
    forged = head + ":" + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(SecretUnreadable):
        keys.open(forged, CTX)
    with pytest.raises(SecretUnreadable):
        keys.open(sealed[:-10], CTX)  # truncated
    with pytest.raises(SecretUnreadable):
        keys.reseal(forged, CTX)  # rotation never blesses a forged value


def test_a_ciphertext_copied_to_another_owner_or_field_does_not_open():
    keys = ring("k1")
    sealed = keys.seal("tok", CTX)
    for elsewhere in (
        SecretContext("zoho_tokens", "access_token", "u2"),
        SecretContext("zoho_tokens", "refresh_token", "u1"),
        SecretContext("webhooks", "access_token", "u1"),
    ):
        with pytest.raises(SecretUnreadable):
            keys.open(sealed, elsewhere)
    # the same through documents: user A's sealed token pasted into user B's document
    settings = settings_with("k1")
    doc_a = seal_document(names.ZOHO_TOKENS, {"user_id": "a", "access_token": "tok-a"}, settings)
    doc_b = {"user_id": "b", "access_token": doc_a["access_token"]}
    assert open_document(keyring(settings), names.ZOHO_TOKENS, doc_a)["access_token"] == "tok-a"
    with pytest.raises(SecretUnreadable):
        open_document(keyring(settings), names.ZOHO_TOKENS, doc_b)


def test_rewrapping_under_a_new_key_keeps_the_values_ciphertext():
    """Envelope: rotation re-wraps the data key only."""
    old = ring("old").seal("tok", CTX)
    both = ring("new", "old")
    rewrapped = both.reseal(old, CTX)
    assert Keyring.kid_of(rewrapped) == "new" and both.open(rewrapped, CTX) == "tok"

    def body(value: str) -> bytes:
        blob = value.rsplit(":", 1)[1]
        return base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))[12 + 48 :]

    assert body(rewrapped) == body(old)
    assert both.reseal(rewrapped, CTX) == rewrapped  # already under the primary: unchanged
    with pytest.raises(SecretUnreadable):
        ring("new").open(old, CTX)


# --- keys from settings ----------------------------------------------------------------------
def test_key_lists_parse_from_json_or_commas_and_bad_entries_are_named():
    a, b = generate_key("a"), generate_key("b")
    assert [k for k, _ in parse_keys(f"{a}, {b}")] == ["a", "b"]
    assert [k for k, _ in parse_keys(json.dumps([b, a]))] == ["b", "a"]
    assert parse_keys("") == []
    short = "c:" + base64.b64encode(b"x" * 16).decode()
    for bad, words in (
        ("nocolon", "kid:base64key"),
        ("a:!!!notbase64", "not base64"),
        (short, "16 bytes"),
        (f"{a},{a}", "twice"),
        ('["a", 3]', "strings"),
        ("[oops", "JSON"),
    ):
        with pytest.raises(ValueError, match=words):
            parse_keys(bad)
    assert "MMW_SECRET_KEYS" not in repr(settings_with("a"))  # the keys stay out of repr
    assert "#" not in repr(settings_with("a")).split("secret_key_file")[0][-80:]


def test_no_key_refuses_to_seal_and_workers_refuse_to_start():
    empty = Settings(secret_keys="", secret_key_file=None)
    with pytest.raises(SecretsNotConfigured, match="clear text"):
        seal("tok", names.ZOHO_TOKENS, "access_token", {"user_id": "u1"}, empty)
    with pytest.raises(SecretsNotConfigured, match="refuse"):
        require_keys(empty)
    assert open_field(keyring(empty), names.WEBHOOKS, {"secret": "legacy"}, "secret") == "legacy"
    assert require_keys(settings_with("k")).primary == "k"


def test_seal_needs_the_owner_fields_of_its_collection():
    with pytest.raises(secrets_module.SecretError, match="account_id"):
        seal_document(
            names.SOCIAL_ACCOUNTS,
            {"user_id": "u1", "platform": "x", "credentials": {"access_token": "t"}},
            settings_with("k"),
        )


def test_seal_document_seals_every_secret_field_and_nothing_else():
    doc = {
        "user_id": "u1",
        "api_keys": {"openai_key": "sk-proj-abc", "custom_keys": {"mailchimp": "mc-1", "n": 3}},
        "branding": {"company_name": "Acme"},
    }
    sealed = seal_document(names.SETTINGS, doc, settings_with("k"))
    assert doc["api_keys"]["openai_key"] == "sk-proj-abc"  # the input is not changed
    assert is_sealed(sealed["api_keys"]["openai_key"])
    assert is_sealed(sealed["api_keys"]["custom_keys"]["mailchimp"])
    assert sealed["api_keys"]["custom_keys"]["n"] == 3 and sealed["branding"] == doc["branding"]
    assert open_document(keyring(settings_with("k")), names.SETTINGS, sealed) == doc


def test_legacy_plaintext_is_read_and_counted_until_migrated():
    keys = keyring(settings_with("k"))
    before = plaintext_reads("webhooks", "secret")
    custom = plaintext_reads("settings", "api_keys.custom_keys.*")
    assert open_field(keys, names.WEBHOOKS, {"secret": "whsec_legacy"}, "secret") == "whsec_legacy"
    doc = {"user_id": "u", "api_keys": {"custom_keys": {"one": "a-key", "two": "b-key"}}}
    assert open_document(keys, names.SETTINGS, doc) == doc
    assert plaintext_reads("webhooks", "secret") == before + 1
    assert plaintext_reads("settings", "api_keys.custom_keys.*") == custom + 2  # bounded labels
    sealed = seal_document(names.WEBHOOKS, {"user_id": "u", "webhook_id": "w", "secret": "s"})
    open_field(keyring(), names.WEBHOOKS, sealed, "secret")
    assert plaintext_reads("webhooks", "secret") == before + 1  # sealed reads are not counted


# --- dev key and file modes ----------------------------------------------------------------
def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_dev_creates_its_own_key_once_and_keeps_a_configured_one(tmp_path):
    empty = Settings(embedded_path=tmp_path / ".mmw" / "db", secret_keys="", secret_key_file=None)
    first = dev_key(empty)
    key_file = tmp_path / ".mmw" / DEV_KEY_FILE
    assert first.secret_key_file == key_file
    assert mode(key_file) == 0o600 and mode(key_file.parent) == 0o700
    assert keyring(first).primary == "dev"
    content = key_file.read_text()
    again = dev_key(empty)  # a second `mmw dev` in the folder reuses the key
    assert key_file.read_text() == content and keyring(again).primary == "dev"
    configured = settings_with("prod").model_copy(update={"embedded_path": tmp_path / "x" / "db"})
    assert dev_key(configured) is configured
    assert not (tmp_path / "x").exists()


def test_embedded_folder_is_private_and_legacy_modes_are_tightened(tmp_path):
    folder = tmp_path / "mongo"
    db = open_embedded(str(folder), "modes")
    db["zoho_tokens"].insert_one({"user_id": "u1"})
    files = [p for p in folder.rglob("*") if p.is_file()]
    dirs = [folder, *[p for p in folder.rglob("*") if p.is_dir()]]
    assert any(p.name.endswith("-wal") for p in files), files  # the open connection's WAL
    assert {oct(mode(p)) for p in files} == {oct(0o600)}
    assert {oct(mode(p)) for p in dirs} == {oct(0o700)}
    legacy = tmp_path / "legacy"
    (legacy / "db").mkdir(parents=True)
    (legacy / "db" / "users").write_bytes(b"")
    os.chmod(legacy, 0o755)
    os.chmod(legacy / "db", 0o755)
    os.chmod(legacy / "db" / "users", 0o644)
    open_embedded(str(legacy), "db")
    assert (mode(legacy), mode(legacy / "db"), mode(legacy / "db" / "users")) == (
        0o700,
        0o700,
        0o600,
    )


# --- rotation and migration ------------------------------------------------------------------
def populate(db: Any, count: int) -> dict[tuple[str, str], str]:
    """Documents in every secret collection: plaintext, old-key and new-key values."""
    old = settings_with("old")
    expected = {}
    for n in range(count):
        user = f"u{n}"
        token = {"user_id": user, "access_token": f"at-{n}", "refresh_token": f"rt-{n}"}
        db[names.ZOHO_TOKENS].insert_one(seal_document(names.ZOHO_TOKENS, token, old))
        hook = {"user_id": user, "webhook_id": f"w{n}", "secret": f"whsec_{n:040d}"}
        db[names.WEBHOOKS].insert_one(hook if n % 2 else seal_document(names.WEBHOOKS, hook, old))
        account = {
            "user_id": user,
            "platform": "twitter",
            "account_id": f"x{n}",
            "credentials": {"access_token": f"xa-{n}", "refresh_token": f"xr-{n}"},
        }
        db[names.SOCIAL_ACCOUNTS].insert_one(account)
        expected[(names.ZOHO_TOKENS, user)] = f"at-{n}"
        expected[(names.WEBHOOKS, user)] = f"whsec_{n:040d}"
        expected[(names.SOCIAL_ACCOUNTS, user)] = f"xa-{n}"
    db[names.SETTINGS].insert_one(
        {"user_id": "u0", "api_keys": {"openai_key": "sk-1", "custom_keys": {"a": "k-a"}}}
    )
    return expected


def assert_all_under(db: Any, keys: Keyring, expected: dict[tuple[str, str], str]) -> None:
    field = {
        names.ZOHO_TOKENS: "access_token",
        names.WEBHOOKS: "secret",
        names.SOCIAL_ACCOUNTS: "credentials.access_token",
    }
    for (collection, user), plain in expected.items():
        doc = db[collection].find_one({"user_id": user})
        assert open_field(keys, collection, doc, field[collection]) == plain
    counts = census(db)
    assert all(set(kids) == {keys.primary} for kids in counts.values()), counts


def test_rotation_reseals_everything_in_place_and_audits_each_document(db):
    expected = populate(db, 5)
    new = ring("new", "old")
    reports = reseal_all(db, new, batch_size=2)
    assert [r.problems for r in reports] == [[], [], [], []]
    assert {r.collection: r.resealed for r in reports} == {
        names.ZOHO_TOKENS: 5,
        names.SOCIAL_ACCOUNTS: 5,
        names.SETTINGS: 1,
        names.WEBHOOKS: 5,
    }
    assert_all_under(db, new, expected)
    entries = db[names.AUDIT_LOG].find({"action": "secrets_resealed"})
    assert len(entries) == 16
    hook_entry = next(e for e in entries if e["resource_type"] == names.WEBHOOKS)
    assert hook_entry["details"]["to"] == "new" and hook_entry["details"]["fields"] == ["secret"]
    assert {e["details"]["from"][0] for e in entries} == {"old", "plaintext"}
    assert sum(r.resealed for r in reseal_all(db, new)) == 0  # a second run writes nothing


def test_migration_seals_plaintext_only(db):
    populate(db, 2)
    keys = ring("new", "old")
    reseal_all(db, keys, plaintext_only=True)
    counts = census(db)
    assert "plaintext" not in str(counts)
    assert counts[(names.ZOHO_TOKENS, "access_token")] == {"old": 2}
    assert counts[(names.SETTINGS, "api_keys.custom_keys.*")] == {"new": 1}


def test_rotation_resumes_after_a_crash_midway(db, monkeypatch):
    expected = populate(db, 6)
    keys = ring("new", "old")
    real = Keyring.reseal
    calls = {"n": 0}

    def crash_after_seven(self, stored, context):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt("killed mid-rotation")  # not caught by the walker
        return real(self, stored, context)

    monkeypatch.setattr(Keyring, "reseal", crash_after_seven)
    with pytest.raises(KeyboardInterrupt):
        reseal_all(db, keys, batch_size=4)
    monkeypatch.setattr(Keyring, "reseal", real)
    done_before = len(db[names.AUDIT_LOG].find({"action": "secrets_resealed"}))
    assert 0 < done_before < 19
    reports = reseal_all(db, keys, batch_size=4)
    assert sum(r.resealed for r in reports) == 19 - done_before
    assert_all_under(db, keys, expected)
    entries = db[names.AUDIT_LOG].find({"action": "secrets_resealed"})
    assert len(entries) == 19  # every document audited exactly once across both runs
    assert len({(e["resource_type"], e["resource_id"]) for e in entries}) == 19


def test_rotation_never_overwrites_a_token_a_worker_wrote_meanwhile(db, monkeypatch):
    populate(db, 1)
    keys = ring("new", "old")
    real = Keyring.reseal
    raced = {"done": False}

    def refresh_during_plan(self, stored, context):
        if context.collection == names.ZOHO_TOKENS and not raced["done"]:
            raced["done"] = True  # a worker refreshes the token between read and write
            fresh = keys.seal(
                "at-refreshed", SecretContext(names.ZOHO_TOKENS, "access_token", "u0")
            )
            db[names.ZOHO_TOKENS].update_one({"user_id": "u0"}, {"$set": {"access_token": fresh}})
        return real(self, stored, context)

    monkeypatch.setattr(Keyring, "reseal", refresh_during_plan)
    reseal_all(db, keys)
    doc = db[names.ZOHO_TOKENS].find_one({"user_id": "u0"})
    assert open_field(keys, names.ZOHO_TOKENS, doc, "access_token") == "at-refreshed"
    assert open_field(keys, names.ZOHO_TOKENS, doc, "refresh_token") == "rt-0"
    assert Keyring.kid_of(doc["refresh_token"]) == "new"


def test_unreadable_values_are_reported_and_left_untouched(db):
    stranger = ring("stranger").seal("x", SecretContext(names.WEBHOOKS, "secret", "u1/w1"))
    db[names.WEBHOOKS].insert_one({"user_id": "u1", "webhook_id": "w1", "secret": stranger})
    (_, _, _, hooks) = reseal_all(db, ring("new"))
    assert hooks.resealed == 0 and len(hooks.problems) == 1
    assert "'stranger'" in hooks.problems[0] and "secret" in hooks.problems[0]
    assert db[names.WEBHOOKS].find_one({"webhook_id": "w1"})["secret"] == stranger


# --- the command line ------------------------------------------------------------------------
def test_keys_commands(settings, db, monkeypatch):
    populate(db, 2)
    runner = CliRunner()
    new = runner.invoke(main, ["keys", "generate", "--kid", "k2026"]).output.strip()
    assert parse_keys(new)[0][0] == "k2026"
    old = settings_with("old").secret_keys
    monkeypatch.setenv("MMW_EMBEDDED_PATH", str(settings.embedded_path))
    monkeypatch.setenv("MMW_MONGODB_DB", settings.mongodb_db)
    if settings.mongodb_url:
        monkeypatch.setenv("MONGODB_URL", settings.mongodb_url)
    monkeypatch.setenv("MMW_SECRET_KEYS", f"{new},{old}")
    get_settings.cache_clear()
    try:
        result = runner.invoke(main, ["keys", "rotate", "--batch-size", "1"])
        assert result.exit_code == 0, result.output
        assert "zoho_tokens: 2 scanned, 2 resealed" in result.output
        assert "7 documents resealed under key 'k2026'" in result.output
        header, *rows = runner.invoke(main, ["keys", "status"]).output.splitlines()
        assert header == "configured keys: k2026, old (sealing with k2026)"
        assert "zoho_tokens.refresh_token" in "\n".join(rows)
        assert all(row.endswith(("k2026 1", "k2026 2")) for row in rows), rows
        monkeypatch.setenv("MMW_SECRET_KEYS", "")
        get_settings.cache_clear()
        refused = runner.invoke(main, ["keys", "rotate"])
        assert refused.exit_code == 1 and "mmw keys generate" in refused.output
    finally:
        get_settings.cache_clear()


# --- the stores use it -------------------------------------------------------------------------
def test_zoho_tokens_are_stored_sealed_and_bound_to_their_user(db, settings, zoho, clock):
    server, state = zoho
    zsettings = settings.model_copy(update=state.settings_overrides(server.url))
    refresh = state.add_refresh_token("a")
    db[names.ZOHO_TOKENS].insert_one(  # an old app's plaintext document
        {"user_id": "a", "refresh_token": refresh, "access_token": None,
         "expires_at": clock.now - dt.timedelta(minutes=1), "data_center": "com"}
    )  # fmt: skip
    before = plaintext_reads(names.ZOHO_TOKENS, "refresh_token")
    token = ZohoTokenStore(db, zsettings, "a", clock=clock).access_token()
    stored = db[names.ZOHO_TOKENS].find_one({"user_id": "a"})
    assert is_sealed(stored["access_token"]) and token not in str(stored)
    assert plaintext_reads(names.ZOHO_TOKENS, "refresh_token") > before  # each read counts
    assert ZohoTokenStore(db, zsettings, "a", clock=clock).access_token() == token  # cached
    db[names.ZOHO_TOKENS].insert_one(  # user a's sealed token pasted into user b's document
        {"user_id": "b", "refresh_token": seal("rt", names.ZOHO_TOKENS, "refresh_token",
         {"user_id": "b"}), "access_token": stored["access_token"],
         "expires_at": clock.now + dt.timedelta(hours=1), "data_center": "com"}
    )  # fmt: skip
    with pytest.raises(SecretUnreadable):
        ZohoTokenStore(db, zsettings, "b", clock=clock).access_token()


def test_after_migration_no_old_plaintext_remains_in_the_embedded_files(tmp_path):
    folder = tmp_path / "mongo"
    db = open_embedded(str(folder), "scrub")
    for n in range(40):
        db[names.ZOHO_TOKENS].insert_one(
            {"user_id": f"u{n}", "access_token": f"PLAIN-at-{n:04d}", "refresh_token": f"PLAIN-{n}"}
        )
    db[names.ZOHO_TOKENS].delete_one({"user_id": "u0"})

    def leftovers() -> int:
        return sum(p.read_bytes().count(b"PLAIN-") for p in folder.rglob("*") if p.is_file())

    assert leftovers() >= 80
    reseal_all(db, ring("k"), plaintext_only=True)
    assert scrub_embedded(db, [names.ZOHO_TOKENS, names.WEBHOOKS]) == []
    assert leftovers() == 0
    assert open_field(ring("k"), names.ZOHO_TOKENS, db[names.ZOHO_TOKENS].find_one(
        {"user_id": "u7"}), "access_token") == "PLAIN-at-0007"  # fmt: skip


@pytest.mark.crash
def test_rotation_killed_with_sigkill_is_finished_by_running_it_again(settings, db):
    """The real command, SIGKILLed mid-run: a second run completes it, nothing is lost."""
    count = 120
    for n in range(count):
        db[names.WEBHOOKS].insert_one(
            {"user_id": f"u{n}", "webhook_id": f"w{n}", "secret": f"s-{n}"}
        )
    keys = settings_with("new", "old")
    env = process_env(settings, MMW_SECRET_KEYS=keys.secret_keys)
    child = subprocess.Popen(
        [sys.executable, "-m", "worker", "keys", "rotate", "--batch-size", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert child.stderr is not None
    for line in child.stderr:
        if line.startswith(b"webhooks: 30 scanned"):
            child.send_signal(signal.SIGKILL)
            break
    assert child.wait(timeout=60) == -signal.SIGKILL
    sealed = [d for d in db[names.WEBHOOKS].find({}) if is_sealed(d["secret"])]
    assert 30 <= len(sealed) < count
    reports = reseal_all(db, keyring(keys))
    hooks = next(r for r in reports if r.collection == names.WEBHOOKS)
    assert hooks.problems == [] and hooks.resealed == count - len(sealed)
    for doc in db[names.WEBHOOKS].find({}):
        n = doc["webhook_id"][1:]
        assert open_field(keyring(keys), names.WEBHOOKS, doc, "secret") == f"s-{n}"
        assert Keyring.kid_of(doc["secret"]) == "new"
    audited = [e["resource_id"] for e in db[names.AUDIT_LOG].find({"action": "secrets_resealed"})]
    assert len(audited) == len(set(audited))  # never twice
    assert len(audited) >= count - 1  # the kill may fall between one update and its entry


def test_a_worker_process_without_a_key_refuses_to_start(settings):
    env = process_env(settings, MMW_SECRET_KEYS="")
    done = subprocess.run(
        [sys.executable, "-c", "import worker.app"], cwd=ROOT, env=env, capture_output=True
    )
    assert done.returncode == 1
    assert b"no secret key configured" in done.stderr and b"Traceback" not in done.stderr


def test_events_are_sealed_with_the_opened_secret_of_a_sealed_hook(db):
    from worker.integrations.webhooks import generate_secret, valid_seal
    from worker.webhooks import emit_event

    keys = settings_with("own")  # not the process's key: as in `mmw dev`, given explicitly
    secret = generate_secret()
    hook = {"user_id": "u1", "webhook_id": "w1", "events": ["*"], "secret": secret, "active": True}
    db[names.WEBHOOKS].insert_one(seal_document(names.WEBHOOKS, hook, keys))
    (job_id,) = emit_event(db, "u1", "post.published", {"post_id": "p"}, settings=keys)
    payload = db[names.SCHEDULED_JOBS].find_one({"job_id": job_id})["payload"]
    assert valid_seal(payload["seal"], secret, "w1", "post.published", payload["event_id"],
                      payload["data"])  # fmt: skip
