"""The offline provider: deterministic, labelled, valid for every agent schema."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from worker.agents import schemas
from worker.agents.channels import social_platforms, wants_email
from worker.agents.llm import LLMRequest
from worker.agents.offline import OFFLINE_MODEL, OfflineLLM
from worker.agents.plan import ready_tasks, validate_plan
from worker.agents.schemas import AGENTS, CampaignPlan, ContentBatch, SocialSchedule
from worker.agents.templates import TEMPLATES, parse_duration_days
from worker.errors import PermanentFailure

BRIEF = {
    "product": "Trailblazer shoes",
    "target_audience": "weekend hikers",
    "objective": "generate leads",
    "budget": "5000 USD",
    "timeline": "6 weeks",
    "channels": ["Instagram", "X", "email"],
}
CONTEXTS = [
    {},
    {"brief": BRIEF, "branding": {"company_name": "Acme", "tone_of_voice": "bold"}},
    {"brief": {**BRIEF, "channels": ["social"]}, "memories": ["prefers short copy"]},
    {"brief": {**BRIEF, "channels": []}},
    {
        "brief": BRIEF,
        "content": [
            {"content_type": "social_post", "platform": "instagram", "text": "Hi", "hashtags": []},
            {"content_type": "email", "platform": "email", "title": "Hello", "text": "A\n\nB"},
        ],
        "totals": {"total_reach": 1000, "total_engagement": 50},
        "roi": 1.5,
    },
]
AGENT_SCHEMAS = [
    getattr(schemas, name)
    for name in schemas.__all__
    if name
    in ("CampaignPlan", "StrategyBrief", "ContentBatch", "SocialSchedule", "EmailPlan",
        "AnalysisReport")
]  # fmt: skip


def request(schema: type[BaseModel], context: dict) -> LLMRequest:
    return LLMRequest(
        agent="any", schema=schema, instructions="sys", prompt="do it", context=context
    )


def test_every_agent_answer_schema_has_a_template() -> None:
    assert set(AGENT_SCHEMAS) == set(TEMPLATES)


@pytest.mark.parametrize("schema", AGENT_SCHEMAS, ids=lambda s: s.__name__)
@pytest.mark.parametrize("context", CONTEXTS, ids=range(len(CONTEXTS)))
def test_answers_are_valid_deterministic_and_labelled(
    schema: type[BaseModel], context: dict
) -> None:
    llm = OfflineLLM()
    first = llm.complete(request(schema, context))
    again = OfflineLLM().complete(request(schema, context))
    assert isinstance(first.output, schema)
    assert first.output == again.output
    assert (first.provider, first.model, first.attempts) == ("offline", OFFLINE_MODEL, 1)
    assert first.usage.prompt_tokens == 3
    assert first.usage.completion_tokens == len(first.output.model_dump_json().split())


@pytest.mark.parametrize("context", CONTEXTS, ids=range(len(CONTEXTS)))
def test_offline_plans_are_executable(context: dict) -> None:
    plan = OfflineLLM().complete(request(CampaignPlan, context)).output
    tasks = [t.model_dump() for t in plan.tasks]
    validate_plan(tasks, AGENTS)
    assert ready_tasks(tasks) == ["t1"]


def test_plan_follows_the_channels() -> None:
    plan = OfflineLLM().complete(request(CampaignPlan, CONTEXTS[1])).output
    agents = {t.task_id: t.agent_assigned for t in plan.tasks}
    assert agents == {
        "t1": "strategist",
        "t2": "content_writer",
        "t3": "social_media_manager",
        "t4": "email_marketer",
        "t5": "analyst",
    }
    by_id = {t.task_id: t for t in plan.tasks}
    assert by_id["t3"].dependencies == by_id["t4"].dependencies == ["t2"]  # parallel branches
    assert by_id["t5"].dependencies == ["t3", "t4"]
    assert plan.timeline.duration_days == 42
    assert plan.kpis[0].name == "new_leads"
    without_social = OfflineLLM().complete(request(CampaignPlan, CONTEXTS[3])).output
    assert [t.agent_assigned for t in without_social.tasks] == [
        "strategist",
        "content_writer",
        "analyst",
    ]


def test_content_covers_every_channel_and_format() -> None:
    batch = OfflineLLM().complete(request(ContentBatch, CONTEXTS[1])).output
    kinds = [(p.content_type, p.platform) for p in batch.pieces]
    assert kinds == [
        ("social_post", "instagram"),
        ("social_post", "twitter"),
        ("email", "email"),
        ("blog", "blog"),
        ("ad_copy", "ads"),
    ]
    assert all(len(p.text) <= 280 for p in batch.pieces if p.platform == "twitter")


def test_social_schedule_uses_the_written_content() -> None:
    schedule = OfflineLLM().complete(request(SocialSchedule, CONTEXTS[4])).output
    assert [(p.platform, p.message, p.publish_in_hours) for p in schedule.posts] == [
        ("instagram", "Hi", 24)
    ]


def test_different_briefs_read_differently() -> None:
    texts = {
        OfflineLLM()
        .complete(request(CampaignPlan, {"brief": {**BRIEF, "product": product}}))
        .output.strategy.split(" what ")[0]
        for product in ("A", "B", "C", "D", "E", "F")
    }
    assert len(texts) > 1


def test_unknown_schema_fails_clearly() -> None:
    class Poem(BaseModel):
        verse: str

    with pytest.raises(PermanentFailure, match="no template for Poem"):
        OfflineLLM().complete(request(Poem, {}))


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("6 weeks", 42),
        ("2 months", 60),
        ("10 days", 10),
        ("1.5 weeks", 10),
        ("asap", 28),
        (None, 28),
    ],
)
def test_parse_duration_days(text: str | None, days: int) -> None:
    assert parse_duration_days(text) == days


def test_channels() -> None:
    assert social_platforms(["Instagram", "X", "email", "fb"]) == [
        "facebook",
        "instagram",
        "twitter",
    ]
    assert social_platforms(["Social"]) == ["facebook", "instagram", "twitter", "linkedin"]
    assert social_platforms(None) == []
    assert wants_email(["Newsletter"]) and not wants_email(["blog"])
