"""Keep secrets out of everything the worker writes: logs, job results, errors, audit_log, webhooks.

Two tools: :func:`redact` walks a document and masks the values of secret-named keys (and
every string in it); :func:`redact_text` masks secrets inside free text (error messages, log
lines, response excerpts), recognised by context or by shape:

- ``Authorization:`` and ``Cookie:`` header values, ``Bearer``/``Zoho-oauthtoken``/``Basic``
  credentials;
- ``name=value`` / ``"name": "value"`` / ``'name': 'value'`` pairs whose name says secret
  (``access_token``, ``refresh_token``, ``client_secret``, ``password``, ``api_key``, …),
  in query strings, JSON, Python reprs and YAML alike;
- user-info in URLs (``https://user:pass@host``, ``redis://:pw@host``);
- well-known token shapes: ``whsec_…``, ``sk-…`` (OpenAI), Zoho ``1000.…``, JWTs, GitHub,
  Slack, AWS, Google and Facebook tokens.

Every pattern is anchored on a literal and bounded, so the time is linear in the text (error
messages can carry user input). Counts named ``…tokens`` (LLM usage) are not secrets and stay.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["REDACTED", "is_secret_name", "redact", "redact_text"]

REDACTED = "[redacted]"

_TEXT_WORDS = (
    r"token|secret|passw(?:or)?d|pwd|credential|api[_-]?key|apikey|signature|cookie"
    r"|private[_-]?key|session[_-]?id"
)  # "authorization" has a rule of its own (the scheme stays readable)
_EXACT_NAMES = ("auth", "pass")
_SECRET_NAME = re.compile(rf"(?i){_TEXT_WORDS}|authorization")
_COUNT_NAME = re.compile(r"(?i)tokens$")

_AUTHORIZATION = re.compile(
    r"(?i)(?<![\w-])((?:proxy-)?authorization\\{0,4}[\"']?[ \t]{0,8}[:=][ \t]{0,8}\\{0,4}[\"']?)"
    r"([A-Za-z][\w-]{0,30}[ \t]+)?[^\s\"'\\,;]{1,4096}"
)
_COOKIES = re.compile(
    r"(?i)(?<![\w-])((?:set-)?cookie\\{0,4}[\"']?[ \t]{0,8}[:=][ \t]{0,8}\\{0,4}[\"']?)"
    r"[^\r\n\"'\\]{1,4096}"
)
_SCHEME_CREDENTIALS = re.compile(
    r"(?i)\b(bearer|zoho-oauthtoken)([ \t]+)(?!\[redacted\])[^\s\"'\\,;]{1,4096}"
    r"|\b((?-i:Basic))([ \t]+)[A-Za-z0-9+/]{6,4096}={0,2}(?![\w+/=])"
)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30}://)[^\s/?#@\"'<>]{1,1024}@")
_PAIR = re.compile(
    r"(?i)(?<![\w.-])(?P<key>[\w.-]{0,40}?(?:"
    + _TEXT_WORDS
    + r")[\w.-]{0,40}|"
    + "|".join(_EXACT_NAMES)
    + r")(?![\w.-])"
    r"(?P<sep>\\{0,4}[\"']?[ \t]{0,8}[:=][ \t]{0,8})"
    r"(?:(?P<o1>\\{1,4}\")[^\"\\\n]{0,4096}|(?P<o2>\")[^\"\n]{0,4096}|(?P<o3>')[^'\n]{0,4096}"
    r"|(?![\[{(])[^\s\"'\\&,;<>(){}\[\]]{1,4096})"
)
_SHAPES = re.compile(
    r"\bwhsec_[A-Za-z0-9+/=_-]{1,1024}"
    r"|\bsk-[A-Za-z0-9_-]{8,1024}"
    r"|\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,1024}"
    r"|\b1000\.[A-Za-z0-9]{16,256}(?:\.[A-Za-z0-9]{8,256})?"
    r"|\beyJ[A-Za-z0-9_-]{4,4096}\.[A-Za-z0-9_-]{4,4096}\.[A-Za-z0-9_-]{0,4096}"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,255}|\bgithub_pat_[A-Za-z0-9_]{20,255}"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,255}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\bAIza[0-9A-Za-z_-]{35}|\bya29\.[0-9A-Za-z_-]{20,4096}"
    r"|\bEAA[A-Za-z0-9]{30,4096}"
)


def is_secret_name(name: str) -> bool:
    """Does a key called ``name`` hold a secret (``access_token``, ``password``, …)?"""
    return name.lower() in _EXACT_NAMES or _SECRET_NAME.search(name) is not None


def _secret_value(name: str, value: Any) -> bool:
    if _COUNT_NAME.search(name) and isinstance(value, int | float):
        return False  # LLM usage counts (prompt_tokens, total_tokens) are not secrets
    return is_secret_name(name)


def redact(value: Any) -> Any:
    """A copy of ``value`` with secret-named keys' values masked and every string redacted."""
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and _secret_value(k, v) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def _pair(match: re.Match[str]) -> str:
    if _COUNT_NAME.search(match["key"]):
        return match[0]
    opener = match["o1"] or match["o2"] or match["o3"] or ""
    return match["key"] + match["sep"] + opener + REDACTED


def _scheme(match: re.Match[str]) -> str:
    if match[1]:
        return match[1] + match[2] + REDACTED
    return match[3] + match[4] + REDACTED


def redact_text(text: str) -> str:
    """``text`` with every recognised secret replaced by ``[redacted]``."""
    text = _AUTHORIZATION.sub(lambda m: m[1] + (m[2] or "") + REDACTED, text)
    text = _COOKIES.sub(lambda m: m[1] + REDACTED, text)
    text = _SCHEME_CREDENTIALS.sub(_scheme, text)
    text = _URL_USERINFO.sub(lambda m: m[1] + REDACTED + "@", text)
    text = _PAIR.sub(_pair, text)
    return _SHAPES.sub(REDACTED, text)
