"""Contract tests: each social client against the social sandbox over loopback HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from worker.clock import wall_clock
from worker.errors import OutcomeUnknown, PermanentFailure, RetryLater, TokenExpired
from worker.integrations.social import (
    DuplicateContent,
    PostContent,
    SocialAccount,
    SocialClient,
    build_client,
)
from worker.sandbox.server import Faults
from worker.sandbox.social import SandboxPost, SocialSandboxServer, start_social_sandbox
from worker.settings import Settings

ACCOUNTS = {
    "facebook": "1000001",
    "instagram": "1784000001",
    "twitter": "2244994945",
    "linkedin": "urn:li:organization:5515715",
}
TEXT_CONTENT = PostContent(message="Spring sale starts today", hashtags=("sale",))
IMAGE_CONTENT = PostContent(message="New arrivals", images=("https://cdn.example/a.jpg",))
CONTENT = {
    "facebook": TEXT_CONTENT,
    "instagram": IMAGE_CONTENT,
    "twitter": TEXT_CONTENT,
    "linkedin": TEXT_CONTENT,
}
PLATFORMS = list(ACCOUNTS)


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[SocialSandboxServer]:
    server = start_social_sandbox(Faults(timeout_seconds=0.6), clock=wall_clock)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sandbox(shared_sandbox: SocialSandboxServer) -> SocialSandboxServer:
    """The module's server with fresh state, no faults and an empty request log."""
    shared_sandbox.state.reset()
    shared_sandbox.faults = Faults(timeout_seconds=0.6)
    shared_sandbox.requests.clear()
    return shared_sandbox


@pytest.fixture
def settings(sandbox: SocialSandboxServer) -> Settings:
    return Settings(
        **sandbox.settings_overrides(),
        http_timeout_seconds=0.3,
        instagram_poll_interval=0.0,
        instagram_max_polls=5,
    )


def account(sandbox: SocialSandboxServer, platform: str) -> SocialAccount:
    token = sandbox.state.add_account(platform, ACCOUNTS[platform], f"tok-{platform}")
    return SocialAccount(platform, ACCOUNTS[platform], token)


def client(settings: Settings, platform: str) -> SocialClient:
    return build_client(platform, settings)


# --- success ------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_publish_records_exactly_one_post(sandbox, settings, platform):
    acct = account(sandbox, platform)
    result = client(settings, platform).publish(CONTENT[platform], acct)
    posts = sandbox.posts(platform)
    assert [p.post_id for p in posts] == [result.platform_post_id]
    assert posts[0].account_id == ACCOUNTS[platform]
    assert "sale" in posts[0].text.lower() or posts[0].media


def test_facebook_text_post_goes_to_feed_with_hashtags_and_link(sandbox, settings):
    acct = account(sandbox, "facebook")
    content = PostContent(message="Hello", hashtags=("spring", "#sale"), link="https://ex.am/p")
    result = client(settings, "facebook").publish(content, acct)
    (post,) = sandbox.posts("facebook")
    assert post.text == "Hello #spring #sale"
    assert post.link == "https://ex.am/p"
    assert result.platform_post_id.startswith(f"{ACCOUNTS['facebook']}_")
    assert result.url and result.url.endswith(result.platform_post_id.split("_")[1])


def test_facebook_image_post_uses_photos_edge(sandbox, settings):
    acct = account(sandbox, "facebook")
    result = client(settings, "facebook").publish(IMAGE_CONTENT, acct)
    (post,) = sandbox.posts("facebook")
    assert post.media == IMAGE_CONTENT.images and post.post_id == result.platform_post_id
    assert any(r.path.endswith(f"/{ACCOUNTS['facebook']}/photos") for r in sandbox.requests)


def test_linkedin_sends_version_headers_and_reads_x_restli_id(sandbox, settings):
    acct = account(sandbox, "linkedin")
    result = client(settings, "linkedin").publish(TEXT_CONTENT, acct)
    assert result.platform_post_id.startswith("urn:li:share:")
    (request,) = [r for r in sandbox.requests if r.method == "POST"]
    assert request.headers["linkedin-version"] == settings.linkedin_version
    assert request.headers["x-restli-protocol-version"] == "2.0.0"
    assert request.json()["author"] == ACCOUNTS["linkedin"]


def test_linkedin_escapes_little_text(sandbox, settings):
    acct = account(sandbox, "linkedin")
    content = PostContent(message="Deals (50% off) for @you #now")
    client(settings, "linkedin").publish(content, acct)
    (post,) = sandbox.posts("linkedin")
    assert post.text == r"Deals \(50% off\) for \@you \#now"


# --- Instagram container flow -------------------------------------------------------------------


def test_instagram_waits_until_container_finished(sandbox, settings):
    sandbox.state.ig_processing_polls = 3
    acct = account(sandbox, "instagram")
    result = client(settings, "instagram").publish(IMAGE_CONTENT, acct)
    polls = [r for r in sandbox.requests if r.method == "GET"]
    assert len(polls) == 4  # three IN_PROGRESS answers, then FINISHED
    assert [p.post_id for p in sandbox.posts("instagram")] == [result.platform_post_id]


def test_instagram_container_still_processing_is_retry_later_without_post(sandbox, settings):
    sandbox.state.ig_processing_polls = 50
    acct = account(sandbox, "instagram")
    with pytest.raises(RetryLater, match="still processing"):
        client(settings, "instagram").publish(IMAGE_CONTENT, acct)
    assert sandbox.posts("instagram") == []


def test_instagram_container_error_is_permanent(sandbox, settings):
    sandbox.state.ig_container_outcome = "ERROR"
    acct = account(sandbox, "instagram")
    with pytest.raises(PermanentFailure, match="container failed"):
        client(settings, "instagram").publish(IMAGE_CONTENT, acct)


def test_instagram_needs_media(sandbox, settings):
    acct = account(sandbox, "instagram")
    with pytest.raises(PermanentFailure, match="image or a video"):
        client(settings, "instagram").publish(TEXT_CONTENT, acct)
    assert sandbox.requests == []


# --- error classes -------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_expired_token_is_token_expired_and_never_echoes_the_token(sandbox, settings, platform):
    acct = account(sandbox, platform)
    sandbox.state.expire_token(acct.access_token)
    with pytest.raises(TokenExpired) as caught:
        client(settings, platform).publish(CONTENT[platform], acct)
    assert acct.access_token not in str(caught.value)
    assert acct.access_token not in repr(acct)
    assert sandbox.posts() == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_unknown_token_is_token_expired(sandbox, settings, platform):
    acct = SocialAccount(platform, ACCOUNTS[platform], "not-a-token")
    with pytest.raises(TokenExpired):
        client(settings, platform).publish(CONTENT[platform], acct)


@pytest.mark.parametrize(
    ("platform", "low", "high"),
    [
        ("facebook", 3600, 3600),  # X-Business-Use-Case-Usage: 60 minutes
        ("instagram", 3600, 3600),
        ("twitter", 3598, 3601),  # x-rate-limit-reset epoch
        ("linkedin", 300, 300),  # no reset header: our default
    ],
)
def test_rate_limit_with_reset_signal(sandbox, settings, platform, low, high):
    sandbox.state.set_rate_limit(platform, 1, 3600)
    acct = account(sandbox, platform)
    social = client(settings, platform)
    first = CONTENT[platform]
    social.publish(first, acct)
    second = PostContent(message="another one", images=first.images)
    with pytest.raises(RetryLater) as caught:
        social.publish(second, acct)
    assert low <= caught.value.delay <= high
    assert len(sandbox.posts(platform)) == 1


@pytest.mark.parametrize("platform", ["facebook", "twitter", "linkedin"])
def test_duplicate_text_is_duplicate_content(sandbox, settings, platform):
    acct = account(sandbox, platform)
    social = client(settings, platform)
    social.publish(TEXT_CONTENT, acct)
    with pytest.raises(DuplicateContent):
        social.publish(TEXT_CONTENT, acct)
    assert len(sandbox.posts(platform)) == 1


@pytest.mark.parametrize("platform", PLATFORMS)
def test_server_error_on_publish_is_outcome_unknown(sandbox, settings, platform):
    acct = account(sandbox, platform)
    sandbox.faults.server_error = 1.0
    with pytest.raises(OutcomeUnknown) if platform != "instagram" else pytest.raises(RetryLater):
        # Instagram's first call creates a container (no effect yet): plain retry
        client(settings, platform).publish(CONTENT[platform], acct)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_server_error_on_lookup_is_retry_later(sandbox, settings, platform):
    acct = account(sandbox, platform)
    sandbox.faults.server_error = 1.0
    with pytest.raises(RetryLater):
        client(settings, platform).find_recent(acct, "x", datetime.now(UTC))


@pytest.mark.parametrize("platform", PLATFORMS)
def test_injected_rate_limit_is_retry_later(sandbox, settings, platform):
    acct = account(sandbox, platform)
    sandbox.faults.rate_limit = 1.0
    with pytest.raises(RetryLater):
        client(settings, platform).publish(CONTENT[platform], acct)
    assert sandbox.posts() == []


@pytest.mark.parametrize("platform", ["facebook", "twitter", "linkedin"])
def test_timeout_after_effect_is_unknown_and_reconciles(sandbox, settings, platform):
    acct = account(sandbox, platform)
    social = client(settings, platform)
    since = datetime.now(UTC) - timedelta(seconds=1)
    sandbox.faults.after_effect_timeout = 1.0
    with pytest.raises(OutcomeUnknown):
        social.publish(TEXT_CONTENT, acct)
    sandbox.faults.after_effect_timeout = 0.0
    (post,) = sandbox.posts(platform)
    assert social.find_recent(acct, TEXT_CONTENT.text(), since) == post.post_id


def test_slow_answer_is_unknown_and_the_post_appears_later(sandbox, settings):
    acct = account(sandbox, "twitter")
    social = client(settings, "twitter")
    since = datetime.now(UTC) - timedelta(seconds=1)
    sandbox.faults.timeout = 1.0
    with pytest.raises(OutcomeUnknown):
        social.publish(TEXT_CONTENT, acct)
    sandbox.faults.timeout = 0.0
    deadline = time.monotonic() + 3
    while not sandbox.posts("twitter") and time.monotonic() < deadline:
        time.sleep(0.02)
    (post,) = sandbox.posts("twitter")
    assert social.find_recent(acct, TEXT_CONTENT.text(), since) == post.post_id


def test_server_error_before_effect_leaves_nothing_to_find(sandbox, settings):
    acct = account(sandbox, "linkedin")
    social = client(settings, "linkedin")
    since = datetime.now(UTC) - timedelta(seconds=1)
    sandbox.faults.server_error = 1.0
    with pytest.raises(OutcomeUnknown):
        social.publish(TEXT_CONTENT, acct)
    sandbox.faults.server_error = 0.0
    assert social.find_recent(acct, TEXT_CONTENT.text(), since) is None
    assert sandbox.posts() == []


def test_timeout_on_read_is_retry_later(sandbox, settings):
    acct = account(sandbox, "linkedin")
    sandbox.faults.timeout = 1.0
    with pytest.raises(RetryLater):
        client(settings, "linkedin").fetch_metrics(acct, "urn:li:share:1")


def test_connection_refused_is_retry_later():
    settings = Settings(x_base_url="http://127.0.0.1:9", http_timeout_seconds=0.3)
    with pytest.raises(RetryLater, match="cannot connect"):
        build_client("twitter", settings).publish(TEXT_CONTENT, SocialAccount("twitter", "1", "t"))


def test_bad_content_is_permanent(sandbox, settings):
    acct = account(sandbox, "twitter")
    with pytest.raises(PermanentFailure, match="max 280"):
        client(settings, "twitter").publish(PostContent(message="x" * 281), acct)
    assert sandbox.requests == []
    fb = account(sandbox, "facebook")
    with pytest.raises(PermanentFailure, match="Either message or link"):
        client(settings, "facebook").publish(PostContent(), fb)


def test_graph_permission_error_is_permanent_not_token_expired(sandbox, settings):
    acct = account(sandbox, "facebook")
    other_page = SocialAccount("facebook", "999", acct.access_token)
    with pytest.raises(PermanentFailure) as caught:
        client(settings, "facebook").publish(TEXT_CONTENT, other_page)
    assert not isinstance(caught.value, TokenExpired)
    assert "(200)" in str(caught.value)


# --- reconciliation lookups and pagination --------------------------------------------------------


def seed(sandbox: SocialSandboxServer, platform: str, count: int, start: float) -> list[str]:
    """Put ``count`` posts one second apart directly into the sandbox; returns their texts."""
    texts = []
    for i in range(count):
        text = f"seeded post {i} https://ex.am/{i}"
        post_id = f"{ACCOUNTS[platform]}_{i}" if platform == "facebook" else f"urn:li:share:{i}"
        post_id = post_id if platform in ("facebook", "linkedin") else str(10_000 + i)
        sandbox.state.accept(SandboxPost(platform, ACCOUNTS[platform], post_id, text, start + i))
        texts.append(text)
    return texts


@pytest.mark.parametrize(
    ("platform", "count"),
    [("facebook", 60), ("instagram", 60), ("twitter", 230), ("linkedin", 120)],
)
def test_find_recent_follows_pagination(sandbox, settings, platform, count):
    acct = account(sandbox, platform)
    start = datetime.now(UTC).timestamp() - count - 10
    texts = seed(sandbox, platform, count, start)
    social = client(settings, platform)
    since = datetime.fromtimestamp(start - 1, UTC)
    oldest = social.find_recent(acct, texts[0], since)
    assert oldest == sandbox.posts(platform)[0].post_id
    gets = [r for r in sandbox.requests if r.method == "GET"]
    assert len(gets) >= 2  # the oldest post is not on the first page
    assert social.find_recent(acct, "never posted", since) is None


@pytest.mark.parametrize("platform", PLATFORMS)
def test_find_recent_ignores_posts_before_since(sandbox, settings, platform):
    acct = account(sandbox, platform)
    start = datetime.now(UTC).timestamp() - 100
    texts = seed(sandbox, platform, 3, start)
    social = client(settings, platform)
    assert social.find_recent(acct, texts[0], datetime.fromtimestamp(start + 1.5, UTC)) is None
    assert social.find_recent(acct, texts[2], datetime.fromtimestamp(start + 1.5, UTC))


def test_x_lookup_matches_text_whose_links_became_tco(sandbox, settings):
    acct = account(sandbox, "twitter")
    content = PostContent(message="Read this", link="https://example.com/a-long-article")
    social = client(settings, "twitter")
    since = datetime.now(UTC) - timedelta(seconds=5)
    result = social.publish(content, acct)
    body = sandbox.requests[-1]
    assert body.json() == {"text": "Read this https://example.com/a-long-article"}
    found = social.find_recent(acct, "Read this https://example.com/a-long-article", since)
    assert found == result.platform_post_id


# --- metrics --------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_fetch_metrics_reads_the_platform_numbers(sandbox, settings, platform):
    acct = account(sandbox, platform)
    social = client(settings, platform)
    result = social.publish(CONTENT[platform], acct)
    expected = sandbox.posts(platform)[0].metrics
    metrics = social.fetch_metrics(acct, result.platform_post_id)
    assert metrics["likes"] == expected["likes"]
    assert metrics["comments"] == expected["comments"]
    if platform != "linkedin":
        assert metrics["impressions"] == expected["impressions"]
    if platform == "linkedin":  # organization: share statistics too
        assert metrics["clicks"] == expected["clicks"]
        assert metrics["reach"] == expected["reach"]
    assert metrics["engagement"] >= metrics["likes"] + metrics["comments"]


def test_x_metrics_accept_repost_count_naming(sandbox, settings):
    sandbox.state.x_repost_key = "repost_count"
    acct = account(sandbox, "twitter")
    social = client(settings, "twitter")
    result = social.publish(TEXT_CONTENT, acct)
    expected = sandbox.posts("twitter")[0].metrics
    assert social.fetch_metrics(acct, result.platform_post_id)["shares"] == expected["shares"]


def test_x_metrics_of_missing_post_is_permanent(sandbox, settings):
    acct = account(sandbox, "twitter")
    with pytest.raises(PermanentFailure, match="Could not find"):
        client(settings, "twitter").fetch_metrics(acct, "123")


def test_linkedin_member_account_ids_become_person_urns(sandbox, settings):
    token = sandbox.state.add_account("linkedin", "abc123")
    acct = SocialAccount("linkedin", "abc123", token)
    result = client(settings, "linkedin").publish(TEXT_CONTENT, acct)
    (post,) = sandbox.posts("linkedin")
    assert post.account_id == "urn:li:person:abc123" and post.post_id == result.platform_post_id


def test_x_refresh_rotates_the_refresh_token(sandbox, settings):
    sandbox.state.add_refresh_token("twitter", ACCOUNTS["twitter"], "rt-1")
    social = client(settings, "twitter")
    grant = social.refresh("rt-1", "client-id", "")
    assert grant.refresh_token not in (None, "rt-1")
    assert "rt-1" not in repr(grant) and grant.access_token not in repr(grant)
    (request,) = sandbox.requests
    assert request.form() == {
        "grant_type": "refresh_token",
        "refresh_token": "rt-1",
        "client_id": "client-id",
    }
    acct = SocialAccount("twitter", ACCOUNTS["twitter"], grant.access_token)
    assert social.publish(TEXT_CONTENT, acct).platform_post_id
    with pytest.raises(TokenExpired, match="refresh token refused"):
        social.refresh("rt-1", "client-id", "")  # used up by the rotation


def test_x_refresh_of_confidential_client_sends_basic_auth(sandbox, settings):
    sandbox.state.add_refresh_token("twitter", ACCOUNTS["twitter"], "rt-2")
    client(settings, "twitter").refresh("rt-2", "cid", "csecret")
    assert sandbox.requests[0].headers["authorization"].startswith("Basic ")


def test_platforms_without_refresh_say_so(settings):
    with pytest.raises(TokenExpired, match="cannot be refreshed"):
        client(settings, "linkedin").refresh("rt", "", "")
