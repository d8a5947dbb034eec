"""Rows for the ClickHouse tables, written by hand in tests with known answers."""

from __future__ import annotations

from typing import Any


def minute_row(community: str, post: str, at_s: int, likes: int, comments: int, reposts: int) -> list[Any]:
    """An `engagement_minute` row (columns as `pipeline.warehouse.routes.ENGAGEMENT_COLUMNS`) on platform vk,
    with no unlikes or engagers, the engagement score and the event count worked out."""
    score = float(likes + 2 * comments + 3 * reposts)
    return ["vk", community, post, at_s, likes, 0, comments, reposts, 0, score, likes + comments + reposts]


def like_row(n: int, community: str, arrived_s: int, stamped_s: int | None = None) -> list[Any]:
    """An `events` row (columns as `pipeline.warehouse.routes.EVENT_COLUMNS`): a like on platform vk, post
    p1, that arrived (`ingested_at`) at `arrived_s` and is stamped `stamped_s` (by default, the same)."""
    ts = (arrived_s if stamped_s is None else stamped_s) * 1000
    return [f"e{community}{n}", "like", "vk", community, "p1", f"u{n}", ts, None, None, False, None, None, None,
            None, arrived_s * 1000]  # fmt: skip
