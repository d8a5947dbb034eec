"""Rows for the ClickHouse tables, written by hand in tests with known answers."""

from __future__ import annotations

from typing import Any


def minute_row(community: str, post: str, at_s: int, likes: int, comments: int, reposts: int) -> list[Any]:
    """An `engagement_minute` row (columns as `pipeline.warehouse.routes.ENGAGEMENT_COLUMNS`) on platform vk,
    with no unlikes or engagers, the engagement score and the event count worked out."""
    score = float(likes + 2 * comments + 3 * reposts)
    return ["vk", community, post, at_s, likes, 0, comments, reposts, 0, score, likes + comments + reposts]
