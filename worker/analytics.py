"""The daily rollup of social, email and CRM results into ``analytics_data`` (MongoDB aggregation).

Pipelines are built by pure functions and run by the database; Python only assembles the grouped
rows into the schema's ``metrics`` shape (:func:`assemble`). One document per user (and per
campaign when asked) per UTC day, upserted on a unique (user_id, campaign_id, date) index, so
running the rollup twice, or on two workers at once, gives the same one document.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from worker.db import names
from worker.db.engine import Database
from worker.db.writes import upsert_retrying

__all__ = ["PLATFORMS", "SOCIAL_FIGURES", "assemble", "day_range", "rollup", "social_by_platform"]

PLATFORMS = ("facebook", "instagram", "twitter", "linkedin")


def _day_of(field: str) -> dict[str, Any]:
    return {"$dateToString": {"format": "%Y-%m-%d", "date": f"${field}"}}


def _num(path: str) -> dict[str, Any]:
    return {"$ifNull": [f"${path}", 0]}


def day_range(end_day: dt.date, days: int) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in UTC covering ``days`` days that end with ``end_day``."""
    end = dt.datetime.combine(end_day + dt.timedelta(days=1), dt.time(), dt.UTC)
    return end - dt.timedelta(days=days), end


#: The figures ``sync_social_metrics`` keeps per published target in ``platforms[i].metrics``.
SOCIAL_FIGURES = ("reach", "engagement", "impressions", "likes", "comments", "shares", "clicks")


def social_by_platform(
    user_id: str, start: dt.datetime, end: dt.datetime, campaign_id: str | None
) -> list[dict[str, Any]]:
    """Publications and their figures by (day, platform), from each target's own
    ``platforms[i].metrics``. The post-level ``analytics`` is the sum over the post's
    platforms, so adding it once per platform would count a two-platform post twice."""
    match: dict[str, Any] = {"user_id": user_id}
    if campaign_id:
        match["campaign_id"] = campaign_id
    return [
        {"$match": match},
        {"$unwind": "$platforms"},
        {
            "$match": {
                "platforms.status": "published",
                "platforms.published_at": {"$gte": start, "$lt": end},
            }
        },
        {
            "$group": {
                "_id": {
                    "day": _day_of("platforms.published_at"),
                    "platform": "$platforms.platform",
                },
                "posts_published": {"$sum": 1},
                **{k: {"$sum": _num(f"platforms.metrics.{k}")} for k in SOCIAL_FIGURES},
            }
        },
    ]


def email_by_day(
    user_id: str, start: dt.datetime, end: dt.datetime, campaign_id: str | None
) -> list[dict[str, Any]]:
    match: dict[str, Any] = {"user_id": user_id, "sent_at": {"$gte": start, "$lt": end}}
    if campaign_id:
        match["marketing_campaign_id"] = campaign_id
    return [
        {"$match": match},
        {
            "$group": {
                "_id": _day_of("sent_at"),
                "campaigns_sent": {"$sum": 1},
                "sent": {"$sum": _num("analytics.sent")},
                "delivered": {"$sum": _num("analytics.delivered")},
                "opened": {"$sum": _num("analytics.opened")},
                "clicked": {"$sum": _num("analytics.clicked")},
            }
        },
    ]


def crm_by_day(user_id: str, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """New leads and contacts by first sync day; deals closed won by their Closing_Date."""
    won = {"$and": [{"$eq": ["$module", "Deals"]}, {"$eq": ["$data.Stage", "Closed Won"]}]}
    return [
        {"$match": {"user_id": user_id, "created_at": {"$gte": start, "$lt": end}}},
        {
            "$group": {
                "_id": _day_of("created_at"),
                "new_leads": {"$sum": {"$cond": [{"$eq": ["$module", "Leads"]}, 1, 0]}},
                "new_contacts": {"$sum": {"$cond": [{"$eq": ["$module", "Contacts"]}, 1, 0]}},
                "deals_closed": {"$sum": {"$cond": [won, 1, 0]}},
                "revenue": {"$sum": {"$cond": [won, _num("data.Amount"), 0]}},
            }
        },
    ]


def _rate(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def assemble(
    days: list[str],
    social_rows: list[dict[str, Any]],
    email_rows: list[dict[str, Any]],
    crm_rows: list[dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Grouped rows → the schema's ``metrics`` object for each day (every day gets one)."""
    social: dict[str, dict[str, Any]] = defaultdict(dict)
    for row in social_rows:
        social[row["_id"]["day"]][row["_id"]["platform"]] = {
            k: v for k, v in row.items() if k != "_id"
        }
    email = {row["_id"]: row for row in email_rows}
    crm = {row["_id"]: row for row in crm_rows}
    result = {}
    for day in days:
        by_platform = {p: social[day].get(p, {"posts_published": 0}) for p in PLATFORMS}
        platforms = social[day].values()
        mail = email.get(day, {})
        deals = crm.get(day, {})
        result[day] = {
            "social": {
                "posts_published": sum(p["posts_published"] for p in platforms),
                "total_reach": sum(p.get("reach", 0) for p in platforms),
                "total_engagement": sum(p.get("engagement", 0) for p in platforms),
                "total_impressions": sum(p.get("impressions", 0) for p in platforms),
                "by_platform": by_platform,
            },
            "email": {
                "campaigns_sent": mail.get("campaigns_sent", 0),
                "emails_delivered": mail.get("delivered", 0),
                "open_rate": _rate(mail.get("opened", 0), mail.get("delivered", 0)),
                "click_rate": _rate(mail.get("clicked", 0), mail.get("delivered", 0)),
                "conversions": 0,
            },
            "crm": {
                "new_leads": deals.get("new_leads", 0),
                "new_contacts": deals.get("new_contacts", 0),
                "deals_closed": deals.get("deals_closed", 0),
                "revenue": deals.get("revenue", 0),
            },
        }
    return result


def rollup(
    db: Database,
    user_id: str,
    *,
    end_day: dt.date,
    days: int,
    campaign_id: str | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """Aggregate and upsert one ``analytics_data`` document per day; returns a summary."""
    start, end = day_range(end_day, days)
    day_names = [(start + dt.timedelta(days=i)).date().isoformat() for i in range(days)]
    social_rows = db[names.SOCIAL_POSTS].aggregate(
        social_by_platform(user_id, start, end, campaign_id)
    )
    email_rows = db[names.EMAIL_CAMPAIGNS].aggregate(email_by_day(user_id, start, end, campaign_id))
    crm_rows = (
        [] if campaign_id else db[names.ZOHO_CRM_RECORDS].aggregate(crm_by_day(user_id, start, end))
    )
    per_day = assemble(day_names, social_rows, email_rows, crm_rows)
    for day, metrics in per_day.items():
        date = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
        upsert_retrying(  # unique (user_id, campaign_id, date): two rollups make one document
            db[names.ANALYTICS_DATA].update_one,
            {"user_id": user_id, "campaign_id": campaign_id, "date": date},
            {"$set": {"metrics": metrics, "updated_at": now}, "$setOnInsert": {"created_at": now}},
            upsert=True,
        )
    return {
        "days": day_names,
        "campaign_id": campaign_id,
        "posts_published": sum(m["social"]["posts_published"] for m in per_day.values()),
        "campaigns_sent": sum(m["email"]["campaigns_sent"] for m in per_day.values()),
    }
