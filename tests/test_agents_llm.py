"""The OpenAI-compatible provider, driven through the real ``openai`` SDK against the sandbox."""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai
import pytest

from worker.agents.llm import LLMRequest, MalformedAnswer, OpenAIChat, Usage, build_llm
from worker.agents.offline import OfflineLLM
from worker.agents.openai_client import CallPolicy, build_client
from worker.agents.schemas import CampaignPlan, SocialSchedule
from worker.clock import wall_clock
from worker.errors import PermanentFailure, RetryLater
from worker.sandbox.openai import OpenAISandbox
from worker.sandbox.server import Faults
from worker.settings import Settings

VALID_SCHEDULE = {
    "posts": [
        {"platform": "linkedin", "message": "Hello", "hashtags": ["#a"], "publish_in_hours": 24}
    ]
}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[OpenAISandbox, str]]:
    sandbox = OpenAISandbox(clock=wall_clock)
    with sandbox.server() as server:
        yield sandbox, f"{server.url}/v1"


@pytest.fixture
def sandbox(served: tuple[OpenAISandbox, str]) -> OpenAISandbox:
    served[0].reset()
    return served[0]


@pytest.fixture
def settings(served: tuple[OpenAISandbox, str]) -> Settings:
    return Settings(
        OPENAI_API_KEY=served[0].api_key,
        openai_base_url=served[1],
        llm_timeout_seconds=5,
        agent_models={"content_writer": "gpt-4o"},
    )


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def chat(settings: Settings, sleeps: Sleeps | None = None, **kwargs: object) -> OpenAIChat:
    return OpenAIChat(
        build_client(settings),
        default_model=settings.llm_model,
        agent_models=settings.agent_models,
        sleep=sleeps if sleeps is not None else Sleeps(),
        **kwargs,  # type: ignore[arg-type]
    )


def schedule_request(agent: str = "social_media_manager") -> LLMRequest[SocialSchedule]:
    return LLMRequest(
        agent=agent, schema=SocialSchedule, instructions="You schedule posts.", prompt="Plan it."
    )


def test_structured_output_is_parsed_and_usage_recorded(
    sandbox: OpenAISandbox, settings: Settings
) -> None:
    sandbox.queue_answer(VALID_SCHEDULE)
    result = chat(settings).complete(schedule_request())
    assert result.output == SocialSchedule.model_validate(VALID_SCHEDULE)
    assert (result.provider, result.model, result.attempts) == ("openai", "gpt-4o-mini", 1)
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert result.usage.prompt_tokens == 5  # words of the two messages
    assert result.metadata()["usage"] == result.usage.as_dict()
    sent = sandbox.chat_requests[-1]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["name"] == "SocialSchedule"
    assert sent["response_format"]["json_schema"]["strict"] is True
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]


def test_unscripted_answer_matches_any_agent_schema(settings: Settings) -> None:
    result = chat(settings).complete(
        LLMRequest(agent="strategist", schema=CampaignPlan, instructions="i", prompt="p")
    )
    assert isinstance(result.output, CampaignPlan)
    assert result.output.tasks


def test_model_per_agent(sandbox: OpenAISandbox, settings: Settings) -> None:
    llm = chat(settings)
    llm.complete(schedule_request("content_writer"))
    llm.complete(schedule_request("analyst"))
    assert [r["model"] for r in sandbox.chat_requests] == ["gpt-4o", "gpt-4o-mini"]
    assert llm.model_for("content_writer") == "gpt-4o"


def test_malformed_answer_is_retried_with_the_problem(
    sandbox: OpenAISandbox, settings: Settings
) -> None:
    sandbox.queue_answer("Sure! Here are your posts: ...")
    sandbox.queue_answer({"posts": [{"platform": "myspace", "message": "x"}]})
    sandbox.queue_answer(VALID_SCHEDULE)
    result = chat(settings).complete(schedule_request())
    assert result.attempts == 3
    assert result.output.posts[0].platform == "linkedin"
    assert len(sandbox.chat_requests) == 3
    retry = sandbox.chat_requests[1]["messages"]
    assert retry[2] == {"role": "assistant", "content": "Sure! Here are your posts: ..."}
    assert "Invalid JSON" in retry[3]["content"]
    third = sandbox.chat_requests[2]["messages"]
    assert "posts.0.platform" in third[-1]["content"]
    # Usage covers all three answers.
    assert result.usage.prompt_tokens > 3 * 5


def test_malformed_answers_exhausted_fail_with_a_clear_error(
    sandbox: OpenAISandbox, settings: Settings
) -> None:
    for _ in range(2):
        sandbox.queue_answer('{"posts": []}')
    with pytest.raises(MalformedAnswer) as info:
        chat(settings, format_attempts=2).complete(schedule_request())
    message = str(info.value)
    assert "social_media_manager (gpt-4o-mini) gave no valid SocialSchedule in 2 answers" in message
    assert "posts: List should have at least 1 item" in message
    assert isinstance(info.value, PermanentFailure)
    assert info.value.usage.total_tokens > 0
    assert len(sandbox.chat_requests) == 2


def test_refusal_fails_the_task(sandbox: OpenAISandbox, settings: Settings) -> None:
    sandbox.queue_refusal("I can't help with that.")
    with pytest.raises(MalformedAnswer, match="refused: I can't help with that"):
        chat(settings).complete(schedule_request())


def test_429_retry_after_is_honoured(sandbox: OpenAISandbox, settings: Settings) -> None:
    sandbox.queue_rate_limit(retry_after="2")
    sandbox.queue_rate_limit(retry_after=None, retry_after_ms="300")
    sandbox.queue_answer(VALID_SCHEDULE)
    sleeps = Sleeps()
    result = chat(settings, sleeps, policy=CallPolicy(max_attempts=5, max_wait=10)).complete(
        schedule_request()
    )
    assert sleeps == [2.0, 0.3]
    assert result.attempts == 1  # transport retries are not answer attempts
    assert len(sandbox.chat_requests) == 3


def test_429_really_waits_with_the_real_clock(sandbox: OpenAISandbox, settings: Settings) -> None:
    sandbox.queue_rate_limit(retry_after=None, retry_after_ms="200")
    sandbox.queue_answer(VALID_SCHEDULE)
    llm = OpenAIChat(build_client(settings), default_model="gpt-4o-mini")
    started = time.monotonic()
    llm.complete(schedule_request())
    assert time.monotonic() - started >= 0.2


def test_long_retry_after_is_handed_to_the_scheduler(
    sandbox: OpenAISandbox, settings: Settings
) -> None:
    sandbox.queue_rate_limit(retry_after="90")
    sleeps = Sleeps()
    with pytest.raises(RetryLater) as info:
        chat(settings, sleeps, policy=CallPolicy(max_attempts=3, max_wait=30)).complete(
            schedule_request()
        )
    assert info.value.delay == 90.0
    assert "HTTP 429 rate_limit_exceeded" in str(info.value)
    assert sleeps == []


def test_server_errors_back_off_then_retry_later(
    sandbox: OpenAISandbox, settings: Settings
) -> None:
    for _ in range(3):
        sandbox.queue_error(500, "The server had an error", type_="server_error")
    sleeps = Sleeps()
    with pytest.raises(RetryLater, match=r"HTTP 500 \(gave up after 3 attempts\)"):
        chat(settings, sleeps, policy=CallPolicy(max_attempts=3, max_wait=30)).complete(
            schedule_request()
        )
    assert sleeps == [0.5, 1.0]
    assert len(sandbox.chat_requests) == 3


def test_injected_faults_are_survived(settings: Settings) -> None:
    sandbox = OpenAISandbox(clock=wall_clock, fault_retry_after="0")
    with sandbox.server(Faults(rate_limit=0.3, server_error=0.2, seed=7)) as server:
        s = settings.model_copy(update={"openai_base_url": f"{server.url}/v1"})
        llm = chat(s, policy=CallPolicy(max_attempts=20, max_wait=30))
        for _ in range(5):
            assert llm.complete(schedule_request()).output.posts
        assert len(server.requests) > len(sandbox.chat_requests) == 5


def test_insufficient_quota_is_permanent(sandbox: OpenAISandbox, settings: Settings) -> None:
    sandbox.queue_rate_limit(code="insufficient_quota")
    sleeps = Sleeps()
    with pytest.raises(PermanentFailure, match="insufficient_quota"):
        chat(settings, sleeps).complete(schedule_request())
    assert sleeps == []


def test_bad_key_is_permanent_and_never_echoed(settings: Settings) -> None:
    secret = "sk-live-very-secret-1234"
    bad = settings.model_copy(update={"openai_api_key": secret})
    with pytest.raises(PermanentFailure) as info:
        chat(bad).complete(schedule_request())
    assert "HTTP 401" in str(info.value)
    assert "1234" not in str(info.value) and secret not in str(info.value)


def test_bad_request_is_permanent_with_the_server_message(
    sandbox: OpenAISandbox, settings: Settings
) -> None:
    sandbox.models = {"gpt-4o-mini"}
    with pytest.raises(PermanentFailure, match="HTTP 404 model_not_found: The model `gpt-4o`"):
        chat(settings).complete(schedule_request("content_writer"))


def test_sandbox_rejects_non_strict_schemas(settings: Settings) -> None:
    client = build_client(settings)
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": []}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "thing", "strict": True, "schema": schema},
            },
        )
    assert info.value.code == "invalid_json_schema"
    assert "'additionalProperties' is required" in info.value.message


def test_sdk_parse_helper_works_against_the_sandbox(
    sandbox: OpenAISandbox, settings: Settings
) -> None:
    sandbox.queue_answer(VALID_SCHEDULE)
    completion = build_client(settings).chat.completions.parse(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "plan"}],
        response_format=SocialSchedule,
    )
    assert completion.choices[0].message.parsed == SocialSchedule.model_validate(VALID_SCHEDULE)
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_build_llm_picks_the_provider() -> None:
    assert isinstance(build_llm(Settings(OPENAI_API_KEY=None)), OfflineLLM)
    assert isinstance(build_llm(Settings(OPENAI_API_KEY="sk-x")), OpenAIChat)
    forced = build_llm(Settings(OPENAI_API_KEY="sk-x", llm_provider="offline"))
    assert isinstance(forced, OfflineLLM)
    local = build_llm(Settings(OPENAI_API_KEY=None, llm_provider="openai", llm_model="llama3"))
    assert isinstance(local, OpenAIChat) and local.model_for("analyst") == "llama3"


def test_usage_adds_up() -> None:
    assert Usage(1, 2, 3) + Usage(10, 20, 30) == Usage(11, 22, 33)


def test_timeouts_are_retried_then_handed_back(settings: Settings) -> None:
    sandbox = OpenAISandbox(clock=wall_clock)
    with sandbox.server(Faults(timeout=1.0, timeout_seconds=0.5)) as server:
        slow = settings.model_copy(
            update={"openai_base_url": f"{server.url}/v1", "llm_timeout_seconds": 0.1}
        )
        sleeps = Sleeps()
        with pytest.raises(RetryLater, match=r"timed out \(gave up after 2 attempts\)"):
            chat(slow, sleeps, policy=CallPolicy(max_attempts=2, max_wait=5)).complete(
                schedule_request()
            )
        assert sleeps == [0.5]
        assert len(server.requests) == 2
