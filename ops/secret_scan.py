"""Secret scan: run the platform, then look for clear-text secrets in everything it wrote.

    python ops/secret_scan.py [--for 6] [--fault-for 5] [--keep DIR]    # exit 1 on a finding
    python ops/secret_scan.py --scan PATH... [--known SECRET...]        # only scan files

The run, in a fresh folder (the platform's cwd), on embedded defaults:

1. ``mmw dev``'s local key is created (:func:`worker.dev.dev_key`), and secrets an app would
   write are planted, sealed as apps must (``seal_document``): a webhook of ``demo_user`` with a
   ``whsec_`` secret pointing at a loopback receiver of this script, an OpenAI key and a custom
   API key in ``settings.api_keys``.
2. ``mmw dev --demo --for N``: the real command (logs and ``/metrics`` captured).
3. A fault-injection run: ``run_dev`` with the Zoho sandbox injecting 500s and timeouts after
   the effect, the X token expired so the refresh path rotates tokens, the webhook receiver
   failing every other delivery; the process is SIGKILLed mid-run, then ``mmw dev`` runs again
   and recovers what it left.
4. Job results and errors, the run history, ``audit_log``, ``agent_tasks`` and ``webhooks`` are
   dumped as JSON beside the raw files.

Then every file of the folder is scanned as raw bytes (the SQLite files, their WAL, the embedded
Redis, logs, metrics, webhook bodies, the dump) for the planted secrets, every token the
sandboxes issued, the master key, and generic shapes (Zoho ``1000.…``, ``sk-…``, ``whsec_…``,
``Bearer …``, ``"access_token": "…"``). Sealed values (``mmw:1:…``) are ciphertext and pass.
The scanner first proves it finds each planted secret in a canary file, so it cannot pass by
finding nothing.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

__all__ = ["Finding", "Scanner", "main", "run_platform"]

#: Shapes of secrets whatever their value (bytes regexes: SQLite pages are not text).
GENERIC_RULES: dict[str, re.Pattern[bytes]] = {
    "zoho_token": re.compile(rb"1000\.[0-9a-f]{32}\.[0-9a-f]{32}"),
    "sandbox_social_token": re.compile(rb"sbx\.(?:facebook|instagram|twitter|linkedin)\.[\w-]+"),
    "openai_key": re.compile(rb"sk-(?:proj-)?[A-Za-z0-9_-]{20,}"),
    "webhook_secret": re.compile(rb"whsec_[A-Za-z0-9+/=]{16,}"),
    "bearer_token": re.compile(rb"(?i)bearer\s+(?!\[redacted\])[A-Za-z0-9._~+/-]{16,}"),
    "json_secret_field": re.compile(
        rb'"(?:access_token|refresh_token|client_secret|api_key|api_secret|openai_key|secret)"'
        rb'\s*:\s*"(?!mmw:1:|\[redacted\])[^"]{8,}"'
    ),
}

#: Files written by this script that hold secrets on purpose (the sandboxes' side).
_OWN_FILES = {"planted.json", "issued.txt", "canary.bin"}
_KEY_FILE = "secret.key"


@dataclass(frozen=True)
class Finding:
    path: str
    rule: str
    offset: int

    def __str__(self) -> str:
        return f"{self.path} @{self.offset}: {self.rule}"


class Scanner:
    """Finds known secrets (exact bytes) and generic secret shapes in files."""

    def __init__(self, known: Iterable[str] = (), master_keys: Iterable[str] = ()) -> None:
        self.known = sorted({k for k in known if len(k) >= 8})
        self.master_keys = sorted({k for k in master_keys if k})

    def scan_bytes(self, data: bytes, path: str, *, key_file: bool = False) -> list[Finding]:
        found = [
            Finding(path, name, m.start())
            for name, rule in GENERIC_RULES.items()
            for m in rule.finditer(data)
        ]
        for secret in self.known:
            start = data.find(secret.encode())
            if start >= 0:
                found.append(Finding(path, "planted_secret", start))
        if not key_file:
            for key in self.master_keys:
                start = data.find(key.encode())
                if start >= 0:
                    found.append(Finding(path, "master_key", start))
        return found

    def scan_tree(self, root: Path) -> tuple[int, list[Finding]]:
        """(files scanned, findings) under ``root``, every file as raw bytes."""
        files, findings = 0, []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if path.name in _OWN_FILES:
                continue
            files += 1
            with contextlib.suppress(OSError):  # a socket or a file removed meanwhile
                data = path.read_bytes()
                rel = str(path.relative_to(root))
                findings += self.scan_bytes(data, rel, key_file=path.name == _KEY_FILE)
        return files, findings


# --- the run ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Receiver(ThreadingHTTPServer):
    """The webhook receiver: records every request (headers and body) to a file."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.count = 0
        self.flaky = False
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks"


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        with self.server.lock:
            self.server.count += 1
            fail = self.server.flaky and self.server.count % 2 == 0
            with self.server.log.open("ab") as out:
                out.write(str(self.headers).encode() + b"\n" + body + b"\n\n")
        self.send_response(500 if fail else 204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:  # quiet
        pass


def _plant(folder: Path, receiver_url: str) -> dict[str, Any]:
    """The dev key and the secrets an app would store (sealed, as apps must)."""
    from worker.db import names
    from worker.db.client import open_embedded
    from worker.dev import DEMO_USER, dev_key
    from worker.secrets import seal_document
    from worker.settings import Settings

    settings = dev_key(
        Settings(embedded_path=folder / ".mmw" / "db", secret_keys="", secret_key_file=None)
    )
    planted = {
        "webhook_secret": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "openai_key": "sk-proj-" + secrets.token_urlsafe(32),
        "custom_key": "mc-" + secrets.token_hex(24),
        "x_refresh_token": "xr-" + secrets.token_urlsafe(24),
    }
    db = open_embedded(str(settings.embedded_path), settings.mongodb_db)
    db[names.WEBHOOKS].insert_one(
        seal_document(
            names.WEBHOOKS,
            {
                "webhook_id": "wh_scan",
                "user_id": DEMO_USER,
                "name": "secret scan receiver",
                "url": receiver_url,
                "events": ["*"],
                "secret": planted["webhook_secret"],
                "active": True,
            },
            settings,
        )
    )
    db[names.SETTINGS].insert_one(
        seal_document(
            names.SETTINGS,
            {
                "user_id": DEMO_USER,
                "api_keys": {
                    "openai_key": planted["openai_key"],
                    "custom_keys": {"mailchimp": planted["custom_key"]},
                },
            },
            settings,
        )
    )
    keys = Path(str(settings.secret_key_file)).read_text().split()
    return {"secrets": planted, "master_keys": [k.partition(":")[2] for k in keys]}


def _env(folder: Path, metrics_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMW_", "MONGODB"))}
    env.pop("BROKER_URL", None)
    env.pop("OPENAI_API_KEY", None)
    env.update(
        PYTHONPATH=str(ROOT),
        MMW_METRICS_PORT=str(metrics_port),
        MMW_WEB_PORT=str(_free_port()),  # the console `mmw dev` serves
        MMW_WEBHOOK_ALLOW_PRIVATE="true",
        MMW_LOG_LEVEL="DEBUG",
        MMW_EMBEDDED_PATH=str(folder / ".mmw" / "db"),
        MMW_EMBEDDED_REDIS_PATH=str(folder / ".mmw" / "redis.db"),
        **extra,
    )
    return env


def _scrape(port: int, out: Path, stop: threading.Event) -> None:
    """Keep the last /metrics answer of a running process in ``out``."""
    while not stop.wait(0.5):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                out.write_bytes(r.read())
        except OSError:
            continue


def _run(
    folder: Path,
    name: str,
    args: list[str],
    seconds: float,
    *,
    kill_after: float | None,
    **env: str,
) -> int:
    """One platform process with its log and metrics captured; SIGKILLed after ``kill_after``."""
    port = _free_port()
    stop = threading.Event()
    scraper = threading.Thread(
        target=_scrape, args=(port, folder / f"metrics-{name}.txt", stop), daemon=True
    )
    scraper.start()
    with (folder / f"log-{name}.txt").open("wb") as log:
        child = subprocess.Popen(
            [sys.executable, *args],
            cwd=folder,
            env=_env(folder, port, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            if kill_after is not None:
                _wait_for(folder / f"log-{name}.txt", b"demo:      inserted", child)
                time.sleep(kill_after)
                child.send_signal(signal.SIGKILL)
            code = child.wait(timeout=seconds + 60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            stop.set()
            scraper.join()
    if kill_after is not None:
        _stop_orphaned_redis(folder / f"log-{name}.txt")
    return code


def _wait_for(log: Path, marker: bytes, child: subprocess.Popen[bytes]) -> None:
    """Until the child's log shows ``marker`` (its demo is inserted), or it ended."""
    deadline = time.monotonic() + 60
    while marker not in log.read_bytes() and child.poll() is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{log.name}: the platform did not start")
        time.sleep(0.1)


def _stop_orphaned_redis(log: Path) -> None:
    """The embedded Redis a SIGKILLed ``mmw dev`` started outlives it: stop that one process."""
    found = re.search(rb"pidfile '([^']+)'", log.read_bytes())
    if found is None:
        return
    with contextlib.suppress(OSError, ValueError):
        pid = int(Path(found.group(1).decode()).read_text().strip())
        os.kill(pid, signal.SIGTERM)


def _dump(folder: Path) -> None:
    """Job results, errors and history, audit entries, agent tasks, webhooks: as JSON."""
    from worker.db import names
    from worker.db.client import open_embedded

    db = open_embedded(str(folder / ".mmw" / "db"), "marketing_minds")
    dump = {
        collection: db[collection].find({}, projection={"_id": 0})
        for collection in (
            names.SCHEDULED_JOBS,
            names.AUDIT_LOG,
            names.AGENT_TASKS,
            names.WEBHOOKS,
            names.SOCIAL_POSTS,
        )
    }
    (folder / "dump.json").write_text(json.dumps(dump, default=str, indent=1))


def run_platform(folder: Path, *, demo_seconds: float, fault_seconds: float) -> dict[str, Any]:
    """Steps 1-4 of the module docstring in ``folder``; returns what was planted and observed."""
    receiver = _Receiver(folder / "webhook-bodies.txt")
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        planted = _plant(folder, receiver.url)
        (folder / "planted.json").write_text(json.dumps(planted))
        port = json.dumps([receiver.server_address[1]])  # the receiver's port is allowed
        codes = {
            "demo": _run(
                folder,
                "demo",
                ["-m", "worker", "dev", "--demo", "--for", str(demo_seconds)],
                demo_seconds,
                kill_after=None,
                MMW_WEBHOOK_ALLOWED_PORTS=port,
            )
        }
        receiver.flaky = True
        codes["faults_killed"] = _run(
            folder,
            "faults",
            [str(Path(__file__).resolve()), "--fault-child", str(folder), str(fault_seconds)],
            fault_seconds,
            kill_after=fault_seconds,
            MMW_HTTP_TIMEOUT_SECONDS="1",
            MMW_WEBHOOK_TIMEOUT_SECONDS="1",
            MMW_BACKOFF_BASE_SECONDS="0.5",
            MMW_BACKOFF_MAX_SECONDS="1",
            MMW_WEBHOOK_ALLOWED_PORTS=port,
        )
        receiver.flaky = False
        codes["recovery"] = _run(
            folder,
            "recovery",
            ["-m", "worker", "dev", "--for", str(max(3.0, fault_seconds / 2))],
            fault_seconds,
            kill_after=None,
            MMW_WEBHOOK_ALLOWED_PORTS=port,
        )
    finally:
        receiver.shutdown()
    _dump(folder)
    issued = folder / "issued.txt"
    tokens = issued.read_text().split() if issued.exists() else []
    return {**planted, "issued": tokens, "codes": codes, "deliveries": receiver.count}


def _fault_child(folder: str, seconds: str) -> None:
    """The fault-injection process: ``run_dev`` on faulty sandboxes, killed by the parent."""
    import worker.dev as dev
    from worker.db import names
    from worker.logs import configure_logging
    from worker.sandbox.server import Faults
    from worker.sandbox.social import sandbox_token
    from worker.secrets import seal
    from worker.settings import Settings

    os.chdir(folder)
    planted = json.loads(Path("planted.json").read_text())["secrets"]
    issued = Path("issued.txt")
    seed = dev._seed_demo_user

    def seed_then_expire(db: Any, now: Any, sandboxes: Any) -> None:
        """The demo user, with X's access token expired and a refresh token to rotate."""
        seed(db, now, sandboxes)
        state = sandboxes.servers[0].state
        rotate = state.rotate

        def recorded(platform: str, refresh_token: str) -> Any:
            pair = rotate(platform, refresh_token)
            with issued.open("a") as out:  # the sandbox's knowledge, for the scanner
                out.write(" ".join(pair or ()) + "\n")
            return pair

        state.rotate = recorded
        state.expire_token(sandbox_token("twitter", "demo-twitter"))
        state.add_refresh_token("twitter", "demo-twitter", planted["x_refresh_token"])
        owner = {"user_id": dev.DEMO_USER, "platform": "twitter", "account_id": "demo-twitter"}
        db[names.SOCIAL_ACCOUNTS].update_one(
            owner,
            {
                "$set": {
                    "credentials.refresh_token": seal(
                        planted["x_refresh_token"],
                        names.SOCIAL_ACCOUNTS,
                        "credentials.refresh_token",
                        owner,
                        sandboxes.settings,
                    )
                }
            },
        )

    dev._seed_demo_user = seed_then_expire
    # Social faults would hold the X refresh behind minute-long retry delays: the social
    # sandbox answers truly (an expired token, so tokens rotate), Zoho gets the faults.
    social = dev.start_social_sandbox
    dev.start_social_sandbox = lambda faults=None, **options: social(None, **options)
    faults = Faults(server_error=0.25, after_effect_timeout=0.15, seed=7)  # 429s wait too long
    faults.timeout_seconds = 1.5
    stop = threading.Event()
    threading.Timer(float(seconds) * 2, stop.set).start()  # the parent kills it before
    settings = Settings()
    configure_logging(settings.log_level)
    dev.run_dev(settings, stop, demo=True, threads=4, faults=faults)


def _canary_check(scanner: Scanner, folder: Path, secrets_: Iterable[str]) -> list[str]:
    """The planted secrets each produce a finding in a canary file (the scanner can see)."""
    missing = []
    canary = folder / "canary.bin"
    for secret in secrets_:
        canary.write_bytes(b"\x00\x02field\x00" + secret.encode() + b"\x00")
        if not scanner.scan_bytes(canary.read_bytes(), "canary"):
            missing.append(secret[:6] + "…")
    canary.unlink()
    return missing


def main(argv: list[str] | None = None, out: Any = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--for", dest="demo_seconds", type=float, default=6.0)
    parser.add_argument("--fault-for", dest="fault_seconds", type=float, default=5.0)
    parser.add_argument("--keep", type=Path, help="Run in this folder and keep it.")
    parser.add_argument("--scan", nargs="+", type=Path, help="Only scan these files/folders.")
    parser.add_argument("--known", nargs="*", default=[], help="Secrets to look for (--scan).")
    parser.add_argument("--fault-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fault_child:
        _fault_child(*args.fault_child)
        return 0
    if args.scan:
        scanner = Scanner(args.known)
        findings = [
            f
            for target in args.scan
            for f in (
                scanner.scan_tree(target)[1]
                if target.is_dir()
                else scanner.scan_bytes(target.read_bytes(), str(target))
            )
        ]
        for finding in findings:
            out(f"SECRET IN CLEAR TEXT: {finding}")
        return 1 if findings else 0
    with _folder(args.keep) as folder:
        began = time.monotonic()
        run = run_platform(folder, demo_seconds=args.demo_seconds, fault_seconds=args.fault_seconds)
        known = [*run["secrets"].values(), *run["issued"]]
        scanner = Scanner(known, run["master_keys"])
        missing = _canary_check(scanner, folder, known + run["master_keys"])
        files, findings = scanner.scan_tree(folder)
        out(
            f"secret scan: {files} files, {len(known)} known secrets, "
            f"{len(run['issued'])} tokens issued by the sandboxes, {run['deliveries']} webhook "
            f"requests, exit codes {run['codes']}, {time.monotonic() - began:.1f}s"
        )
        for finding in findings:
            out(f"SECRET IN CLEAR TEXT: {finding}")
        if missing:
            out(f"scanner cannot see planted secrets: {missing}")
        if run["codes"]["demo"] != 0 or run["codes"]["recovery"] != 0:
            out("a platform run failed: see its log")
            return 1
        return 1 if findings or missing else 0


@contextlib.contextmanager
def _folder(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="mmw-secret-scan-") as tmp:
        yield Path(tmp)


if __name__ == "__main__":
    sys.exit(main())
