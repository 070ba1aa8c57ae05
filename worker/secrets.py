"""Secrets at rest: OAuth tokens, API keys and webhook secrets stored as authenticated ciphertext.

Envelope encryption. Each value gets its own random 256-bit data key; the value is encrypted
with it (AES-256-GCM, the value's context as associated data), and the data key is wrapped by a
master key from the settings (AES-256-GCM again, bound to the format version, the key id and the
context). Rotating a master key re-wraps the 48-byte data key and leaves the value's ciphertext
as it is, and the master key can later live in a KMS (wrapping is the only step that needs it).

A sealed value is one string, so it stays a String where the schema says so and
compare-and-set queries on the stored value keep working::

    mmw:1:<kid>:<base64url(wrap nonce 12 | wrapped data key 48 | nonce 12 | ciphertext + tag)>

The context is (collection, field, owner), the owner being the document's identity fields
(:data:`SECRET_FIELDS`): a ciphertext copied into another user's document, or into another field,
does not open.

Keys come from ``MMW_SECRET_KEYS`` and ``MMW_SECRET_KEY_FILE``: a list of ``kid:base64(32
bytes)``; the first seals, every one opens. A value without the prefix is legacy plaintext: it is
returned as it is and counted in ``mmw_plaintext_secrets_read_total{collection,field}`` until
``mmw keys migrate`` seals it. Nothing here ever writes plaintext: sealing without a key raises.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import os
import re
import secrets as random_source
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from worker.db import names
from worker.errors import PermanentFailure
from worker.settings import Settings, get_settings

__all__ = [
    "PREFIX",
    "SECRET_FIELDS",
    "Keyring",
    "SecretContext",
    "SecretError",
    "SecretFields",
    "SecretUnreadable",
    "SecretsNotConfigured",
    "context_for",
    "generate_key",
    "is_sealed",
    "keyring",
    "open_document",
    "open_field",
    "parse_keys",
    "require_keys",
    "seal",
    "seal_document",
    "secret_values",
    "write_key_file",
]

PREFIX = "mmw:1:"
_VERSION = b"mmw:1"
_KID = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
_KEY_BYTES = 32
_NONCE = 12
_WRAPPED = _KEY_BYTES + 16  # the data key and its GCM tag
_HEADER = _NONCE + _WRAPPED + _NONCE


class SecretError(PermanentFailure):
    """A secret cannot be sealed or opened; the message never contains the value."""


class SecretsNotConfigured(SecretError):
    """No master key is configured, so nothing can be sealed."""


class SecretUnreadable(SecretError):
    """A sealed value does not open: unknown key id, tampered, or moved to another document."""


@dataclass(frozen=True)
class SecretContext:
    """Where a value lives; its associated data, so it opens there and nowhere else."""

    collection: str
    field: str
    owner: str

    def aad(self) -> bytes:
        return json.dumps([self.collection, self.field, self.owner], separators=(",", ":")).encode()

    def __str__(self) -> str:
        return f"{self.collection}.{self.field} of {self.owner}"


@dataclass(frozen=True)
class SecretFields:
    """The secret fields of one collection and the fields naming a document's owner.

    A field ending in ``.*`` means every string value of that sub-document (named keys).
    """

    fields: tuple[str, ...]
    owner: tuple[str, ...]


#: Every secret the platform stores (schema.md), and how each document names its owner.
SECRET_FIELDS: dict[str, SecretFields] = {
    names.ZOHO_TOKENS: SecretFields(("access_token", "refresh_token"), ("user_id",)),
    names.SOCIAL_ACCOUNTS: SecretFields(
        (
            "credentials.access_token",
            "credentials.refresh_token",
            "credentials.api_key",
            "credentials.api_secret",
            "credentials.access_token_secret",
        ),
        ("user_id", "platform", "account_id"),
    ),
    names.SETTINGS: SecretFields(("api_keys.openai_key", "api_keys.custom_keys.*"), ("user_id",)),
    names.WEBHOOKS: SecretFields(("secret",), ("user_id", "webhook_id")),
}


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def _b64decode(text: str) -> bytes:
    text = text.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None


def parse_keys(text: str) -> list[tuple[str, bytes]]:
    """``kid:base64key`` entries from a JSON list or a comma/newline separated list."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"secret keys: not a JSON list ({exc.msg})") from None
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise ValueError("secret keys: the JSON list must hold strings")
    else:
        entries = [e for e in re.split(r"[,\s]+", text) if e and not e.startswith("#")]
    keys: list[tuple[str, bytes]] = []
    for position, entry in enumerate(entries, 1):
        kid, sep, material = entry.strip().partition(":")
        if not sep or not _KID.match(kid):
            raise ValueError(f"secret key #{position}: expected kid:base64key (kid [A-Za-z0-9_.-])")
        try:
            raw = _b64decode(material)
        except ValueError:
            raise ValueError(f"secret key {kid!r}: the key is not base64") from None
        if len(raw) != _KEY_BYTES:
            raise ValueError(f"secret key {kid!r}: {len(raw)} bytes, AES-256 needs {_KEY_BYTES}")
        if any(k == kid for k, _ in keys):
            raise ValueError(f"secret key {kid!r} is listed twice")
        keys.append((kid, raw))
    return keys


def generate_key(kid: str | None = None) -> str:
    """A new ``kid:base64key`` entry (256 random bits; the kid is random unless given)."""
    kid = kid or f"k{random_source.token_hex(4)}"
    if not _KID.match(kid):
        raise ValueError("a key id is 1-40 characters of [A-Za-z0-9_.-]")
    return f"{kid}:{base64.b64encode(random_source.token_bytes(_KEY_BYTES)).decode()}"


def write_key_file(path: Path, entry: str) -> None:
    """Write a key file readable by its owner only (folder 0700, file 0600, never widened)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(entry + "\n")


class Keyring:
    """The master keys, in order: the first seals, all open."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        self._keys = {kid: AESGCM(raw) for kid, raw in keys}
        self._order = tuple(kid for kid, _ in keys)

    @property
    def primary(self) -> str | None:
        """The key id new values are sealed with (None: no key configured)."""
        return self._order[0] if self._order else None

    @property
    def kids(self) -> tuple[str, ...]:
        return self._order

    def _wrap_aad(self, kid: str, context: SecretContext) -> bytes:
        return _VERSION + b"|" + kid.encode() + b"|" + context.aad()

    def _master(self) -> tuple[str, AESGCM]:
        if self.primary is None:
            raise SecretsNotConfigured(
                "no secret key configured (MMW_SECRET_KEYS): refusing to store a secret in clear "
                "text; create one with `mmw keys generate`"
            )
        return self.primary, self._keys[self.primary]

    def seal(self, plaintext: str, context: SecretContext) -> str:
        """The sealed form of ``plaintext`` for ``context`` (a sealed value is returned as is)."""
        if is_sealed(plaintext):
            return plaintext
        kid, master = self._master()
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_NONCE)
        body = AESGCM(data_key).encrypt(nonce, plaintext.encode(), context.aad())
        return self._envelope(kid, master, data_key, context, nonce + body)

    def _envelope(
        self, kid: str, master: AESGCM, data_key: bytes, context: SecretContext, sealed: bytes
    ) -> str:
        wrap_nonce = os.urandom(_NONCE)
        wrapped = master.encrypt(wrap_nonce, data_key, self._wrap_aad(kid, context))
        blob = base64.urlsafe_b64encode(wrap_nonce + wrapped + sealed).rstrip(b"=").decode()
        return f"{PREFIX}{kid}:{blob}"

    def _unpack(self, stored: str, context: SecretContext) -> tuple[str, bytes, bytes]:
        """(kid, data key, nonce + ciphertext) of a sealed value."""
        kid, sep, blob = stored[len(PREFIX) :].partition(":")
        if not sep:
            raise SecretUnreadable(f"{context}: malformed sealed value")
        master = self._keys.get(kid)
        if master is None:
            raise SecretUnreadable(
                f"{context}: sealed with key {kid!r}, which is not configured (MMW_SECRET_KEYS)"
            )
        try:
            raw = _b64decode(blob)
        except ValueError:
            raise SecretUnreadable(f"{context}: malformed sealed value") from None
        if len(raw) < _HEADER + 16:
            raise SecretUnreadable(f"{context}: malformed sealed value")
        wrap_nonce, wrapped = raw[:_NONCE], raw[_NONCE : _NONCE + _WRAPPED]
        try:
            data_key = master.decrypt(wrap_nonce, wrapped, self._wrap_aad(kid, context))
        except InvalidTag:
            raise SecretUnreadable(
                f"{context}: does not open (tampered, or copied from another document or field)"
            ) from None
        return kid, data_key, raw[_NONCE + _WRAPPED :]

    def open(self, stored: str, context: SecretContext) -> str:
        """The plaintext of a stored value; legacy plaintext is returned as is (and counted)."""
        if not is_sealed(stored):
            _count_plaintext(context)
            return stored
        _kid, data_key, sealed = self._unpack(stored, context)
        try:
            plain = AESGCM(data_key).decrypt(sealed[:_NONCE], sealed[_NONCE:], context.aad())
        except InvalidTag:
            raise SecretUnreadable(f"{context}: does not open (tampered)") from None
        return plain.decode()

    def reseal(self, stored: str, context: SecretContext) -> str:
        """``stored`` under the primary key: plaintext is sealed, another key's value re-wrapped.

        Re-wrapping checks the value's own tag first, so a tampered value is never blessed.
        """
        if not is_sealed(stored):
            return self.seal(stored, context)
        kid, data_key, sealed = self._unpack(stored, context)
        try:
            AESGCM(data_key).decrypt(sealed[:_NONCE], sealed[_NONCE:], context.aad())
        except InvalidTag:
            raise SecretUnreadable(f"{context}: does not open (tampered)") from None
        primary, master = self._master()
        if kid == primary:
            return stored
        return self._envelope(primary, master, data_key, context, sealed)

    @staticmethod
    def kid_of(stored: str) -> str | None:
        """The key id of a sealed value; None for plaintext."""
        if not is_sealed(stored):
            return None
        return stored[len(PREFIX) :].partition(":")[0]


def _count_plaintext(context: SecretContext) -> None:
    from worker.metrics import PLAINTEXT_SECRETS_READ

    field = re.sub(r"^(api_keys\.custom_keys)\..*$", r"\1.*", context.field)  # bounded labels
    PLAINTEXT_SECRETS_READ.labels(context.collection, field).inc()


@lru_cache(maxsize=16)
def _keyring(listed: str, key_file: str | None) -> Keyring:
    keys = parse_keys(listed)
    if key_file:
        try:
            text = Path(key_file).read_text()
        except OSError as exc:
            raise SecretsNotConfigured(
                f"cannot read MMW_SECRET_KEY_FILE ({exc.strerror})"
            ) from None
        keys += parse_keys(text)
        kids = [kid for kid, _ in keys]
        if len(set(kids)) != len(kids):
            raise ValueError("a key id is listed both in MMW_SECRET_KEYS and the key file")
    return Keyring(keys)


def keyring(settings: Settings | None = None) -> Keyring:
    """The keyring the settings configure (built once per distinct configuration)."""
    settings = settings or get_settings()
    key_file = str(settings.secret_key_file) if settings.secret_key_file else None
    return _keyring(settings.secret_keys, key_file)


def require_keys(settings: Settings) -> Keyring:
    """The keyring of a worker process: without a key it refuses to start (never plaintext)."""
    try:
        ring = keyring(settings)
    except ValueError as exc:
        raise SecretsNotConfigured(f"invalid MMW_SECRET_KEYS: {exc}") from None
    if ring.primary is None:
        raise SecretsNotConfigured(
            "no secret key configured: set MMW_SECRET_KEYS (create one with `mmw keys generate`); "
            "workers refuse to run rather than store tokens in clear text"
        )
    return ring


# --- documents -------------------------------------------------------------------------------
def _spec(collection: str) -> SecretFields:
    try:
        return SECRET_FIELDS[collection]
    except KeyError:
        raise ValueError(f"{collection!r} holds no secrets (see SECRET_FIELDS)") from None


def context_for(collection: str, field: str, doc: Mapping[str, Any]) -> SecretContext:
    """The context of ``field`` in ``doc`` (its owner read from the document's identity fields)."""
    parts = []
    for name in _spec(collection).owner:
        value = doc.get(name)
        if value is None or value == "":
            raise SecretError(f"{collection}.{field}: the document has no {name} to bind it to")
        parts.append(str(value))
    return SecretContext(collection, field, "/".join(parts))


def _get(doc: Mapping[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def secret_values(collection: str, doc: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(dotted path, stored string) of every secret present in ``doc``."""
    for field in _spec(collection).fields:
        if field.endswith(".*"):
            parent = field[:-2]
            named = _get(doc, parent)
            if isinstance(named, Mapping):
                for key, value in named.items():
                    if isinstance(value, str) and value and "." not in key:
                        yield f"{parent}.{key}", value
        else:
            value = _get(doc, field)
            if isinstance(value, str) and value:
                yield field, value


def _set(doc: dict[str, Any], path: str, value: str) -> None:
    node = doc
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    node[last] = value


def seal_document(
    collection: str, doc: Mapping[str, Any], settings: Settings | None = None
) -> dict[str, Any]:
    """A copy of ``doc`` with every secret field sealed: what an app inserts.

    >>> db.zoho_tokens.insert_one(seal_document("zoho_tokens", {"user_id": "u1", ...}))
    """
    ring = keyring(settings)
    out = copy.deepcopy(dict(doc))
    for path, value in list(secret_values(collection, out)):
        _set(out, path, ring.seal(value, context_for(collection, path, out)))
    return out


def seal(
    value: str,
    collection: str,
    field: str,
    doc: Mapping[str, Any],
    settings: Settings | None = None,
) -> str:
    """``value`` sealed for ``field`` of ``doc`` (which needs its owner fields): for ``$set``.

    >>> sealed = seal(token, "zoho_tokens", "access_token", {"user_id": "u1"})
    >>> db.zoho_tokens.update_one({"user_id": "u1"}, {"$set": {"access_token": sealed}})
    """
    return keyring(settings).seal(value, context_for(collection, field, doc))


def _open(ring: Keyring, collection: str, path: str, doc: Mapping[str, Any], stored: str) -> str:
    if not is_sealed(stored):  # legacy plaintext needs no owner, only counting
        _count_plaintext(SecretContext(collection, path, ""))
        return stored
    return ring.open(stored, context_for(collection, path, doc))


def open_field(ring: Keyring, collection: str, doc: Mapping[str, Any], field: str) -> str | None:
    """The plaintext of one secret field of a stored document (None when absent or empty)."""
    stored = _get(doc, field)
    if not isinstance(stored, str) or not stored:
        return None
    return _open(ring, collection, field, doc, stored)


def open_document(ring: Keyring, collection: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a stored document with its secrets opened (for use in memory, never to store)."""
    out = copy.deepcopy(dict(doc))
    for path, value in list(secret_values(collection, out)):
        _set(out, path, _open(ring, collection, path, doc, value))
    return out
