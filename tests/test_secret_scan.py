"""The secret scanner sees clear text in raw database bytes; the platform leaves none there."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from worker.db import names
from worker.db.client import open_embedded
from worker.secrets import generate_key, seal_document
from worker.settings import Settings

SCRIPT = Path(__file__).resolve().parents[1] / "ops" / "secret_scan.py"


@pytest.fixture(scope="module")
def scan() -> ModuleType:
    """The script, imported by path (ops/ is not a package)."""
    spec = importlib.util.spec_from_file_location("mmw_secret_scan", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_plaintext_token_in_an_embedded_database_file_is_found(scan, tmp_path):
    settings = Settings(secret_keys=generate_key("k"), secret_key_file=None)
    db = open_embedded(str(tmp_path / "db"), "scan")
    planted = "rt-Zx81kq02-planted-refresh"
    zoho = "1000." + "a" * 32 + "." + "b" * 32
    db[names.ZOHO_TOKENS].insert_one(
        seal_document(
            names.ZOHO_TOKENS,
            {"user_id": "sealed", "access_token": zoho, "refresh_token": planted},
            settings,
        )
    )
    scanner = scan.Scanner([planted], [settings.secret_keys.partition(":")[2]])
    assert scanner.scan_tree(tmp_path)[1] == []  # sealed: nothing to see
    db[names.ZOHO_TOKENS].insert_one({"user_id": "leaky", "refresh_token": planted})
    db[names.WEBHOOKS].insert_one({"user_id": "leaky", "secret": "whsec_" + "Q" * 32})
    files, findings = scanner.scan_tree(tmp_path)
    rules = {(Path(f.path).name, f.rule) for f in findings}
    assert ("zoho_tokens", "planted_secret") in rules or (
        "zoho_tokens-wal",
        "planted_secret",
    ) in rules
    assert any(rule == "webhook_secret" for _, rule in rules)
    assert files >= 2


@pytest.mark.parametrize(
    "text, rule",
    [
        (b"1000.0123456789abcdef0123456789abcdef.0123456789abcdef0123456789abcdef", "zoho_token"),
        (b"token sbx.twitter.demo-twitter used", "sandbox_social_token"),
        (b"key=sk-proj-abcdefghijklmnopqrstuvwxyz", "openai_key"),
        (b"Authorization: Bearer abcdefghijklmnop1234", "bearer_token"),
        (b'{"refresh_token": "abcdefgh12345"}', "json_secret_field"),
    ],
)
def test_generic_shapes(scan, text, rule):
    assert [f.rule for f in scan.Scanner().scan_bytes(text, "x")] == [rule]


def test_sealed_and_redacted_values_pass(scan):
    clean = b'{"access_token": "mmw:1:k:AAAA", "secret": "[redacted]", "x": "Bearer [redacted]"}'
    assert scan.Scanner().scan_bytes(clean, "x") == []


def test_the_master_key_is_allowed_in_its_key_file_only(scan):
    scanner = scan.Scanner([], ["c2VjcmV0LWtleS1tYXRlcmlhbA=="])
    data = b"dev:c2VjcmV0LWtleS1tYXRlcmlhbA==\n"
    assert scanner.scan_bytes(data, "secret.key", key_file=True) == []
    assert [f.rule for f in scanner.scan_bytes(data, "log.txt")] == ["master_key"]


@pytest.mark.integration
@pytest.mark.crash
@pytest.mark.timeout(180)
def test_dev_demo_and_a_fault_run_leave_no_secret_in_clear_text(scan):
    """The one long test of the claim (~35 s): `mmw dev --demo`, a killed faulty run, recovery."""
    lines: list[str] = []
    code = scan.main(["--for", "3", "--fault-for", "3"], out=lines.append)
    assert code == 0, "\n".join(lines)
    summary = lines[0]
    assert "tokens issued by the sandboxes" in summary and " 0 tokens issued" not in summary
    assert "'faults_killed': -9" in summary
    assert " 0 webhook requests" not in summary  # webhook bodies were written and scanned
