"""A small writer of NDJSON scenes for the reference's tests: events by kind, time in seconds from T0."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from pulse.chaos import Expected, ReferenceRules, expected_from_lines

T0 = 1_780_000_000_000  # 2026-05-28T...Z: well before the wall clock below
WALL = T0 + 86_400_000


@dataclass
class Scene:
    """Lines in the order written; `ev` adds one event and returns its line."""

    lines: list[bytes] = field(default_factory=list)
    n: int = 0

    def ev(self, kind: str, at_s: float, *, post: str = "p1", community: str = "c1", **extra: Any) -> bytes:
        self.n += 1
        event: dict[str, Any] = {"event_id": extra.pop("event_id", f"e{self.n}"), "type": kind, "platform": "vk",
                                 "community_id": community, "post_id": post, "user_id": extra.pop("user", "u1"),
                                 "ts": T0 + round(at_s * 1000), **extra}  # fmt: skip
        line = orjson.dumps(event)
        self.lines.append(line)
        return line

    def comment(self, cid: str, at_s: float, **extra: Any) -> bytes:
        return self.ev("comment", at_s, comment_id=cid, text="where is my order?", **extra)

    def reply(self, parent: str, at_s: float, **extra: Any) -> bytes:
        return self.ev("comment", at_s, comment_id=f"r-{parent}-{self.n}", parent_id=parent, by_community=True,
                       user="admin", **extra)  # fmt: skip

    def expected(self, **rules: Any) -> Expected:
        settings: dict[str, Any] = {"sla_s": 60.0, "at_risk_fraction": None, "partitions": 1} | rules
        return expected_from_lines(self.lines, ReferenceRules(**settings), wall_clock_ms=WALL)


def alert_ids(expected: Expected) -> set[str]:
    return set(expected.alerts)
