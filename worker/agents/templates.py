"""Offline answers: one deterministic template per agent schema.

Templates read the request's ``context`` (the same facts the prompt shows a real model):

- ``brief``: ``campaigns.brief`` (product, target_audience, objective, budget, timeline, channels)
- ``branding``: ``settings.branding`` (company_name, tone_of_voice, …)
- ``memories``: relevant memory texts; ``strategy``: the strategist's answer
- ``content``: content_library items (content_id, content_type, platform, title, text, hashtags)
- ``totals`` and ``roi``: the analyst's aggregated numbers

Wording varies with a stable hash of the brief, so two campaigns do not read alike while the same
campaign always gets the same text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from worker.agents.channels import social_platforms, wants_email
from worker.agents.llm import LLMRequest
from worker.agents.offline import Template
from worker.agents.schemas import (
    AnalysisReport,
    CampaignPlan,
    ContentBatch,
    ContentPiece,
    EmailDraft,
    EmailPlan,
    Kpi,
    Milestone,
    PlannedTask,
    SocialPostDraft,
    SocialSchedule,
    StrategyBrief,
    Timeline,
)

__all__ = ["MAX_DURATION_DAYS", "TEMPLATES", "parse_duration_days"]

#: Plans longer than ten years are capped (the brief's ``timeline`` is free text).
MAX_DURATION_DAYS = 3650
_UNITS = {"day": 1, "week": 7, "month": 30, "quarter": 91, "year": 365}


#: A number and a unit. The look-behind makes a match start only at the first digit of a run:
#: without it every digit of a long run starts a new scan to the run's end (quadratic on
#: ``brief.timeline``, 4.5 s at 5k digits); with it the search is linear.
_DURATION = re.compile(r"(?<!\d)(\d+(?:\.\d+)?)\s*(day|week|month|quarter|year)")


def parse_duration_days(text: str | None, default: int = 28) -> int:
    """Days in a free-form duration ("6 weeks", "2 months", "10 days"); ``default`` if none."""
    found = _DURATION.search((text or "").lower())
    if not found:
        return default
    days = float(found.group(1)) * _UNITS[found.group(2)]  # inf for a 400-digit number
    return max(1, round(min(days, MAX_DURATION_DAYS)))


def _pick(options: Sequence[str], *keys: object) -> str:
    digest = hashlib.blake2b("|".join(map(str, keys)).encode(), digest_size=4).digest()
    return options[int.from_bytes(digest, "big") % len(options)]


def _facts(request: LLMRequest[Any]) -> tuple[Mapping[str, Any], str, str, str, str]:
    brief = request.context.get("brief") or {}
    branding = request.context.get("branding") or {}
    product = str(brief.get("product") or "our product")
    audience = str(brief.get("target_audience") or "our audience")
    company = str(branding.get("company_name") or product)
    tone = str(branding.get("tone_of_voice") or "friendly")
    return brief, product, audience, company, tone


def _tag(word: str) -> str:
    return "#" + re.sub(r"[^0-9A-Za-z]", "", word.title())


def plan(request: LLMRequest[Any]) -> CampaignPlan:
    brief, product, audience, _company, tone = _facts(request)
    channels = list(brief.get("channels") or [])
    platforms = social_platforms(channels)
    email = wants_email(channels)
    objective = str(brief.get("objective") or "awareness")
    days = parse_duration_days(brief.get("timeline"))
    tasks = [
        PlannedTask(
            task_id="t1",
            agent_assigned="strategist",
            description=f"Position {product} for {audience} and set key messages",
            requirements=[f"objective: {objective}", f"tone: {tone}"],
            dependencies=[],
            estimated_duration="1h",
        ),
        PlannedTask(
            task_id="t2",
            agent_assigned="content_writer",
            description=f"Write social posts, email, blog and ad copy for {product}",
            requirements=[*(platforms or ["blog"]), *(["email"] if email else [])],
            dependencies=["t1"],
            estimated_duration="2h",
        ),
    ]
    publishing: list[str] = []
    if platforms:
        tasks.append(
            PlannedTask(
                task_id="t3",
                agent_assigned="social_media_manager",
                description="Schedule the social posts across " + ", ".join(platforms),
                requirements=platforms,
                dependencies=["t2"],
                estimated_duration="1h",
            )
        )
        publishing.append("t3")
    if email:
        tasks.append(
            PlannedTask(
                task_id="t4",
                agent_assigned="email_marketer",
                description=f"Prepare and schedule the email campaign to {audience}",
                requirements=["email"],
                dependencies=["t2"],
                estimated_duration="1h",
            )
        )
        publishing.append("t4")
    tasks.append(
        PlannedTask(
            task_id="t5",
            agent_assigned="analyst",
            description="Measure results against the KPIs and report ROI",
            requirements=["analytics_data"],
            dependencies=publishing or ["t2"],
            estimated_duration="30m",
        )
    )
    opener = _pick(
        ["Lead with", "Build the campaign around", "Anchor every message in"], product, audience
    )
    strategy = (
        f"{opener} what {product} changes for {audience}. Objective: {objective}. "
        f"Channels: {', '.join(channels) or 'blog'}; {tone} tone over {days} days."
    )
    return CampaignPlan(
        strategy=strategy,
        tasks=tasks,
        timeline=Timeline(
            duration_days=days,
            milestones=[
                Milestone(name="content ready", due_in_days=min(days, 3)),
                Milestone(name="first posts live", due_in_days=min(days, 5)),
                Milestone(name="results review", due_in_days=days),
            ],
        ),
        kpis=_kpis(objective),
    )


def _kpis(objective: str) -> list[Kpi]:
    text = objective.lower()
    if "lead" in text:
        return [Kpi(name="new_leads", target=100, unit="leads"), _ctr()]
    if "sale" in text or "revenue" in text or "conversion" in text:
        return [Kpi(name="conversions", target=50, unit="orders"), _ctr()]
    if "engag" in text:
        return [Kpi(name="engagement_rate", target=4.0, unit="%"), _ctr()]
    return [Kpi(name="reach", target=10000, unit="people"), _ctr()]


def _ctr() -> Kpi:
    return Kpi(name="click_rate", target=2.0, unit="%")


def strategy(request: LLMRequest[Any]) -> StrategyBrief:
    brief, product, audience, company, tone = _facts(request)
    objective = str(brief.get("objective") or "awareness")
    memories = list(request.context.get("memories") or [])
    insights = [f"{audience} respond to concrete outcomes over features"]
    insights += [f"Remembered: {m}" for m in memories[:2]]
    return StrategyBrief(
        positioning=f"{company}: {product} for {audience}, told in a {tone} voice",
        key_messages=[
            f"{product} saves {audience} time",
            _pick(["Proof before promises", "Results you can measure"], product),
            f"Start today with {company}",
        ],
        audience_insights=insights,
        insight=f"For {objective} campaigns about {product}, lead with the outcome for {audience}.",
    )


def content(request: LLMRequest[Any]) -> ContentBatch:
    brief, product, audience, company, tone = _facts(request)
    messages = list((request.context.get("strategy") or {}).get("key_messages") or [])
    message = messages[0] if messages else f"{product} for {audience}"
    tags = [_tag(product), _tag(company)]
    pieces = [
        ContentPiece(
            content_type="social_post",
            platform=platform,
            title=f"{product} on {platform}",
            text=_social_text(platform, product, audience, message),
            hashtags=tags,
        )
        for platform in social_platforms(brief.get("channels"))
    ]
    if wants_email(brief.get("channels")):
        pieces.append(
            ContentPiece(
                content_type="email",
                platform="email",
                title=_pick([f"Meet {product}", f"{product}: made for {audience}"], product),
                text=f"Hello,\n\n{message}.\n\n{company} built {product} for {audience}. "
                f"Reply to this email to learn more.\n\nThe {company} team",
                hashtags=[],
            )
        )
    pieces.append(
        ContentPiece(
            content_type="blog",
            platform="blog",
            title=f"Why {audience} choose {product}",
            text=f"{message}. In this post we show, in a {tone} tone, how {product} helps "
            f"{audience}, with examples and a clear next step.",
            hashtags=tags,
        )
    )
    pieces.append(
        ContentPiece(
            content_type="ad_copy",
            platform="ads",
            title=f"{product} ad",
            text=f"{product}: {message}. Try it today.",
            hashtags=tags[:1],
        )
    )
    return ContentBatch(pieces=pieces)


def _social_text(platform: str, product: str, audience: str, message: str) -> str:
    if platform == "twitter":
        return f"{message}. {product} for {audience}."[:270]
    if platform == "linkedin":
        return f"{message}.\n\nHere is how {product} helps {audience} work better."
    return f"{message}! {product} is here for {audience}."


def social(request: LLMRequest[Any]) -> SocialSchedule:
    brief, product, audience, _company, _tone = _facts(request)
    items = [
        c for c in request.context.get("content") or [] if c.get("content_type") == "social_post"
    ]
    posts = [
        SocialPostDraft(
            platform=item["platform"],
            message=str(item.get("text") or product),
            hashtags=list(item.get("hashtags") or []),
            publish_in_hours=24 * (index + 1),
        )
        for index, item in enumerate(items)
        if item.get("platform") in ("facebook", "instagram", "twitter", "linkedin")
    ]
    if not posts:
        platforms = social_platforms(brief.get("channels")) or ["facebook"]
        posts = [
            SocialPostDraft(
                platform=p,  # type: ignore[arg-type]
                message=f"{product} for {audience}.",
                hashtags=[_tag(product)],
                publish_in_hours=24 * (i + 1),
            )
            for i, p in enumerate(platforms)
        ]
    return SocialSchedule(posts=posts)


def email(request: LLMRequest[Any]) -> EmailPlan:
    _brief, product, audience, company, _tone = _facts(request)
    items = [c for c in request.context.get("content") or [] if c.get("content_type") == "email"]
    emails = [
        EmailDraft(
            name=f"{product} - {item.get('title') or 'announcement'}",
            subject=str(item.get("title") or f"Meet {product}"),
            html_content="".join(f"<p>{p}</p>" for p in str(item.get("text", "")).split("\n\n")),
            text_content=str(item.get("text") or ""),
            send_in_hours=48,
        )
        for item in items
    ]
    if not emails:
        text = f"{company} built {product} for {audience}."
        emails = [
            EmailDraft(
                name=f"{product} announcement",
                subject=f"Meet {product}",
                html_content=f"<p>{text}</p>",
                text_content=text,
                send_in_hours=48,
            )
        ]
    return EmailPlan(emails=emails)


def analysis(request: LLMRequest[Any]) -> AnalysisReport:
    _brief, product, _audience, _company, _tone = _facts(request)
    totals: Mapping[str, Any] = request.context.get("totals") or {}
    roi = request.context.get("roi")
    figures = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(totals.items()))
    summary = f"{product}: {figures or 'no results recorded yet'}."
    if roi is not None:
        summary += f" ROI {roi:.2f}."
    reach = float(totals.get("total_reach") or 0)
    engagement = float(totals.get("total_engagement") or 0)
    insights = []
    if reach:
        insights.append(f"Engagement per reached person: {engagement / reach:.3f}")
    recommendations = [
        "Repeat the best performing platform's format next week"
        if reach
        else "Publish the scheduled posts before judging performance"
    ]
    return AnalysisReport(
        performance_summary=summary, insights=insights, recommendations=recommendations
    )


TEMPLATES: dict[type[BaseModel], Template] = {
    CampaignPlan: plan,
    StrategyBrief: strategy,
    ContentBatch: content,
    SocialSchedule: social,
    EmailPlan: email,
    AnalysisReport: analysis,
}
