"""The dashboard's panels, read from the warehouse at one moment: what a community manager on duty needs.

- waiting: subscriber comments without a community reply, oldest first, each against its SLA;
- keeping_up: per community today (since 00:00 UTC of "now"): comments, answered, response rate, first
  response median and p90 (the named queries `response-rate` and `first-response`, run as they are), and
  how many comments wait past their SLA now;
- engagement: likes, comments and reposts per minute and community over the last hours, and the top posts
  of the last half hour;
- alerts: how many of each kind fired today, and the latest of each kind.

"Now" is the wall clock for a live stream and the end of the newest data for a replay or simulation
(`data_clock`); every panel is read at the same "now", which the result names. The result is plain JSON
data: times as ISO 8601 strings in UTC, durations in seconds, post addresses where the platform allows.
The panel SQL is in `queries/`, one file each, with ClickHouse query parameters as the named queries have.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from pipeline.warehouse.data_clock import ReadingTime, newest_data_end, reading_time
from pipeline.warehouse.named_queries import named
from pipeline.warehouse.query_service import QueryResult
from schemas import post_url

Query = Callable[[str, "dict[str, Any] | None"], QueryResult]

SNIPPET_CHARS = 280
DUE_SOON_FRACTION = 0.8  # as the stream workers' default at_risk_fraction: the `at_risk` alert fires then
COMMUNITY_ROWS = 1000  # communities in the keeping-up table at most
CHART_COMMUNITIES = 6  # the busiest communities get a line each; the rest share one
TOP_POSTS = 10
ALERTS_PER_KIND = 5


@dataclass(frozen=True, slots=True)
class PanelWindows:
    chart_s: float = 3 * 3600.0  # the engagement charts' span, ending now
    top_posts_s: float = 1800.0  # "top posts now": engagement in this span, ending now
    waiting_shown: int = 50  # waiting comments listed (all are counted)


def read_panels(query: Query, wall: dt.datetime, windows: PanelWindows) -> dict[str, Any]:
    """Every panel at one "now"; `query` runs read-only SQL with parameters (a `WarehouseReader`'s)."""
    clock = reading_time(newest_data_end(lambda sql: query(sql, None)), wall)
    now_s = int(clock.now.timestamp())
    day_start = clock.now.replace(hour=0, minute=0, second=0, microsecond=0)
    waiting_by_community = _rows(query, _sql("waiting-by-community"), {"now": now_s})
    return {
        "now": {
            "at": clock.now.isoformat(),
            "basis": clock.basis,
            "explained": _explained(clock, wall),
            "day_start": day_start.isoformat(),
        },
        "waiting": _waiting(query, now_s, waiting_by_community, windows.waiting_shown),
        "keeping_up": _keeping_up(query, clock.now, day_start, waiting_by_community),
        "engagement": _engagement(query, now_s, windows),
        "alerts": _alerts(query, now_s, int(day_start.timestamp())),
    }


def _explained(clock: ReadingTime, wall: dt.datetime) -> str:
    if clock.newest_data_end is None:
        return "the wall clock: the warehouse holds no data yet"
    if clock.basis == "wall clock":
        return "the wall clock: data is arriving live"
    behind = _duration((wall - clock.now).total_seconds())
    return (
        f"the newest data's event time, {behind} behind the wall clock (a replay or a simulation): "
        "waits and periods are measured to it"
    )


def _waiting(query: Query, now_s: int, by_community: list[dict[str, Any]], shown: int) -> dict[str, Any]:
    comments = []
    for row in _rows(query, _sql("waiting-now"), {"now": now_s, "limit": shown}):
        waited_s, sla_s = float(row["waited_s"]), float(row["sla_s"])
        comments.append(
            {
                **_post_of(row),
                "comment_id": row["comment_id"],
                "author_id": row["author_id"] or None,
                "snippet": _snippet(row["text"]),
                "commented_at": row["commented_at"],
                "waited_s": waited_s,
                "sla_s": sla_s,
                "status": _status(waited_s, sla_s, bool(row["past_sla"])),
            }
        )
    return {
        "total": sum(int(r["waiting"]) for r in by_community),
        "past_sla": sum(int(r["past_sla"]) for r in by_community),
        "comments": comments,
    }


def _keeping_up(
    query: Query, now: dt.datetime, day_start: dt.datetime, waiting: list[dict[str, Any]]
) -> dict[str, Any]:
    since_s = (now - day_start).total_seconds()
    rates, first = ({r["community_id"]: r for r in _named_rows(query, name, now, since_s)}
                    for name in ("response-rate", "first-response"))  # fmt: skip
    waits = {r["community_id"]: r for r in waiting}
    communities = []
    for community in sorted(rates.keys() | first.keys() | waits.keys()):
        rate, response, wait = rates.get(community, {}), first.get(community, {}), waits.get(community, {})
        communities.append(
            {
                "community_id": community,
                "comments": int(rate.get("comments", 0)),
                "answered": int(rate.get("answered", 0)),
                "response_rate_pct": rate.get("response_rate_pct"),
                "within_sla_pct": rate.get("within_sla_pct"),
                "median_s": response.get("median_s"),
                "p90_s": response.get("p90_s"),
                "waiting": int(wait.get("waiting", 0)),
                "past_sla": int(wait.get("past_sla", 0)),
            }
        )
    return {"since": day_start.isoformat(), "communities": communities}


def _engagement(query: Query, now_s: int, windows: PanelWindows) -> dict[str, Any]:
    start_s = (now_s - int(windows.chart_s)) // 60 * 60
    minutes = list(range(start_s, now_s, 60))
    index = {minute: i for i, minute in enumerate(minutes)}
    series: dict[str, dict[str, list[int]]] = {}
    for row in _rows(query, _sql("engagement-per-minute"), {"start": start_s, "now": now_s}):
        line = series.setdefault(row["community_id"], {k: [0] * len(minutes) for k in _KINDS})
        at = index.get(int(row["minute_s"]))
        if at is not None:
            for kind in _KINDS:
                line[kind][at] = int(row[kind])
    busiest = sorted(series, key=lambda c: (-sum(sum(series[c][k]) for k in _KINDS), c))
    lines = [{"name": c, **series[c]} for c in busiest[:CHART_COMMUNITIES]]
    rest = busiest[CHART_COMMUNITIES:]
    if rest:
        together = {
            kind: [sum(at) for at in zip(*(series[c][kind] for c in rest), strict=True)] for kind in _KINDS
        }
        lines.append({"name": f"{len(rest)} more", **together})
    top_start = now_s - int(windows.top_posts_s)
    top = _rows(query, _sql("top-posts-now"), {"start": top_start, "now": now_s, "limit": TOP_POSTS})
    return {
        "since": _iso(start_s),
        "minutes": minutes,
        "series": lines,
        "top_posts_since": _iso(top_start),
        "top_posts": [
            {**_post_of(r), **{k: int(r[k]) for k in _KINDS}, "score": float(r["score"])} for r in top
        ],
    }


def _alerts(query: Query, now_s: int, day_start_s: int) -> dict[str, Any]:
    today = {
        r["kind"]: int(r["alerts"])
        for r in _rows(query, _sql("alerts-by-kind"), {"start": day_start_s, "now": now_s})
    }
    latest = [
        {
            "kind": r["kind"],
            **_post_of(r),
            "comment_id": r["comment_id"],
            "author_id": r["author_id"] or None,
            "snippet": _snippet(r["snippet"]),
            "commented_at": r["commented_at"],
            "fired_at": r["fired_at"],
            "waited_s": float(r["waited_s"]),
            "sla_s": float(r["sla_s"]),
            "response_s": None if r["response_s"] is None else float(r["response_s"]),
        }
        for r in _rows(query, _sql("latest-alerts"), {"now": now_s, "per_kind": ALERTS_PER_KIND})
    ]
    return {"today": today, "latest": latest}


_KINDS = ("likes", "comments", "reposts")


def _status(waited_s: float, sla_s: float, past_sla: bool) -> str:
    if past_sla:
        return "past_sla"
    return "due_soon" if waited_s >= DUE_SOON_FRACTION * sla_s else "ok"


def _post_of(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "platform": row["platform"],
        "community_id": row["community_id"],
        "post_id": row["post_id"],
        "post_url": post_url(row["platform"], row["community_id"], row["post_id"]),
    }


def _snippet(text: str | None) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1].rstrip() + "…"


def _named_rows(query: Query, name: str, end: dt.datetime, since_s: float) -> list[dict[str, Any]]:
    chosen = named(name)
    return _rows(query, chosen.sql, chosen.bind(end=end, since_s=since_s, limit=COMMUNITY_ROWS))


def _rows(query: Query, sql: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    result = query(sql, parameters)
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


@cache
def _sql(name: str) -> str:
    return (
        resources.files("pipeline.warehouse.dashboard")
        .joinpath("queries", f"{name}.sql")
        .read_text(encoding="utf-8")
    )


def _iso(epoch_s: int) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).isoformat()


def _duration(seconds: float) -> str:
    s = max(0, round(seconds))
    days, s = divmod(s, 86_400)
    hours, s = divmod(s, 3600)
    minutes = s // 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"
