"""Unit tests of the pure helpers shared by the social clients."""

from __future__ import annotations

import email.utils

import pytest

from worker.integrations.social.base import (
    PostContent,
    SocialAccount,
    as_count,
    retry_delay,
    same_text,
)
from worker.integrations.social.linkedin import author_urn, escape_little_text
from worker.secrets import keyring, seal_document

NOW = 1_800_000_000.0
BUC_SEVEN_MINUTES = '{"123":[{"type":"pages","estimated_time_to_regain_access":7}]}'


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 60.0),
        ({"Retry-After": "17"}, 17.0),
        ({"retry-after": email.utils.formatdate(NOW + 90, usegmt=True)}, 90.0),
        ({"x-rate-limit-reset": str(int(NOW + 300)), "x-rate-limit-remaining": "0"}, 300.0),
        ({"x-rate-limit-reset": str(int(NOW + 300)), "x-rate-limit-remaining": "5"}, 60.0),
        (
            {
                "x-user-limit-24hour-reset": str(int(NOW + 7200)),
                "x-user-limit-24hour-remaining": "0",
            },
            7200.0,
        ),
        (
            {"X-Business-Use-Case-Usage": BUC_SEVEN_MINUTES},
            420.0,
        ),
        ({"X-Business-Use-Case-Usage": '{"1":[{"estimated_time_to_regain_access":0}]}'}, 60.0),
        ({"X-Business-Use-Case-Usage": "not json"}, 60.0),
        ({"Retry-After": "30", "x-rate-limit-reset": str(int(NOW + 120))}, 120.0),  # longest wins
        ({"Retry-After": "-5"}, 60.0),
    ],
)
def test_retry_delay_honours_every_reset_signal(headers, expected):
    assert retry_delay(headers, NOW) == pytest.approx(expected, abs=1)


def test_retry_delay_default_is_configurable():
    assert retry_delay({}, NOW, default=300) == 300


@pytest.mark.parametrize(
    ("published", "ours", "same"),
    [
        ("Hello world", "Hello world", True),
        ("Hello  world \n", "Hello world", True),
        ("Read https://t.co/abc", "Read https://example.com/long", True),
        ("Hello world!", "Hello world", False),
        (None, "Hello", False),
    ],
)
def test_same_text(published, ours, same):
    assert same_text(published, ours) is same


def test_post_text_appends_missing_hashtags_only():
    content = PostContent(message="Big #Sale today", hashtags=("sale", "#spring"))
    assert content.text() == "Big #Sale today #spring"
    assert PostContent(hashtags=("a",)).text() == "#a"


def test_content_and_account_from_documents():
    content = PostContent.from_doc({"message": "m", "images": ["i"], "hashtags": None})
    assert content == PostContent(message="m", images=("i",))
    doc = {
        "platform": "facebook",
        "account_id": "user-9",
        "credentials": {"access_token": "secret-token", "page_id": "555"},
    }
    ring = keyring()
    account = SocialAccount.from_doc(doc, ring)  # legacy plaintext still reads
    assert account.account_id == "555"
    assert "secret-token" not in repr(account)
    sealed = seal_document("social_accounts", {**doc, "user_id": "u1"})
    assert "secret-token" not in str(sealed)
    assert SocialAccount.from_doc(sealed, ring).access_token == "secret-token"
    x = SocialAccount.from_doc({"platform": "twitter", "account_id": "42", "credentials": {}}, ring)
    assert (x.account_id, x.access_token) == ("42", "")


def test_linkedin_helpers():
    assert escape_little_text("a (b) @c #d *e* _f_ ~g~ [h] {i} <j> |k \\") == (
        r"a \(b\) \@c \#d \*e\* \_f\_ \~g\~ \[h\] \{i\} \<j\> \|k \\"
    )
    assert author_urn("abc") == "urn:li:person:abc"
    assert author_urn("urn:li:organization:1") == "urn:li:organization:1"


def test_as_count():
    assert as_count({"like": 3, "love": 2}) == 5
    assert as_count(None) == 0
    assert as_count("7") == 7
    assert as_count("n/a") == 0
