"""Builders for canonical events in tests: one valid event per type, varied by keyword."""

from __future__ import annotations

from typing import Any

BASE_TS_MS = 1_795_000_000_000  # 2026-11-18T...Z


def wire(type_: str = "like", **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": fields.pop("event_id", f"{type_}-1"),
        "type": type_,
        "platform": "vk",
        "community_id": "c1",
        "post_id": "p1",
        "user_id": "u1",
        "ts": BASE_TS_MS,
    }
    if type_ in ("comment", "comment_edit", "comment_delete"):
        event.update(comment_id="m1", parent_id=None, by_community=False, text="hello")
    event.update(fields)
    return event
