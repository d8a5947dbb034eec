"""Rolling engagement per post, in event time: per-minute counts, rolling totals, unique engagers, a score.

Plain logic, no faust and no I/O. `EngagementBook` holds one partition's posts (a post's events share a
partition). It counts each `event_id` once, puts every event in the minute of its own event time, and
refuses events older than the stream's newest event time minus the allowed lateness: those are counted as
late, never added to a window that was already emitted as final. `drain_touched()` hands out the absolute
values of every window changed since the last call, so a sink that writes them twice overwrites rather
than double-counts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum

from schemas import CanonicalEvent, EventType

MINUTE_MS = 60_000
DAY_MS = 86_400_000
ROLLING_SPANS_MS = {"5m": 5 * MINUTE_MS, "1h": 60 * MINUTE_MS, "24h": DAY_MS}
# Engagement score weights: a repost spreads the post, a comment is effort, a like is a tap.
SCORE_WEIGHTS = {"likes": 1.0, "comments": 2.0, "reposts": 3.0}


class Verdict(StrEnum):
    COUNTED = "counted"
    DUPLICATE = "duplicate"
    LATE = "late"
    IGNORED = "ignored"  # not an engagement (posts, edits)


@dataclass(slots=True)
class MinuteWindow:
    likes: int = 0
    unlikes: int = 0
    comments: int = 0
    reposts: int = 0
    engagers: set[str] = field(default_factory=set)

    @property
    def score(self) -> float:
        return (
            SCORE_WEIGHTS["likes"] * max(0, self.likes - self.unlikes)
            + SCORE_WEIGHTS["comments"] * self.comments
            + SCORE_WEIGHTS["reposts"] * self.reposts
        )


@dataclass(frozen=True, slots=True)
class WindowValue:
    """One (post, minute) window's absolute values, as the `engagement_minute` table stores them."""

    platform: str
    community_id: str
    post_id: str
    minute_ms: int
    likes: int
    unlikes: int
    comments: int
    reposts: int
    unique_engagers: int
    score: float


class EngagementBook:
    def __init__(self, allowed_lateness_ms: int) -> None:
        if allowed_lateness_ms < 0:
            raise ValueError("allowed lateness cannot be negative")
        self.allowed_lateness_ms = allowed_lateness_ms
        self.max_event_ms = 0
        self.late_events = 0
        self.duplicate_events = 0
        self._windows: dict[tuple[str, str, str], dict[int, MinuteWindow]] = defaultdict(dict)
        self._seen: dict[str, int] = {}  # event_id -> event time, kept while it could still be counted
        self._touched: set[tuple[tuple[str, str, str], int]] = set()

    @property
    def watermark_ms(self) -> int:
        """Events older than this are late."""
        return self.max_event_ms - self.allowed_lateness_ms

    def add(self, event: CanonicalEvent) -> Verdict:
        kind = event.type
        if kind not in _COUNTED:
            return Verdict.IGNORED
        if event.ts_ms < self.watermark_ms:
            self.late_events += 1
            return Verdict.LATE
        if event.event_id in self._seen:
            self.duplicate_events += 1
            return Verdict.DUPLICATE
        self._seen[event.event_id] = event.ts_ms
        post = (event.platform, event.community_id, event.post_id)
        minute = event.ts_ms - event.ts_ms % MINUTE_MS
        window = self._windows[post].get(minute)
        if window is None:
            window = self._windows[post][minute] = MinuteWindow()
        if kind is EventType.LIKE:
            window.likes += 1
        elif kind is EventType.UNLIKE:
            window.unlikes += 1
        elif kind is EventType.REPOST:
            window.reposts += 1
        else:
            window.comments += 1
        if kind is not EventType.UNLIKE:
            window.engagers.add(event.user_id)
        self._touched.add((post, minute))
        if event.ts_ms > self.max_event_ms:
            self.max_event_ms = event.ts_ms
        return Verdict.COUNTED

    def drain_touched(self) -> list[WindowValue]:
        """Absolute values of every window changed since the last call, oldest first."""
        values = []
        for post, minute in sorted(self._touched, key=lambda t: (t[1], t[0])):
            w = self._windows[post][minute]
            values.append(
                WindowValue(
                    *post, minute, w.likes, w.unlikes, w.comments, w.reposts, len(w.engagers), w.score
                )
            )
        self._touched.clear()
        return values

    def rolling(self, platform: str, community_id: str, post_id: str, now_ms: int) -> dict[str, MinuteWindow]:
        """Totals over the last 5 minutes, hour and day ending at `now_ms` (engagers are distinct users)."""
        windows = self._windows.get((platform, community_id, post_id), {})
        totals = {}
        for name, span in ROLLING_SPANS_MS.items():
            total = MinuteWindow()
            for minute, w in windows.items():
                if now_ms - span < minute + MINUTE_MS and minute <= now_ms:
                    total.likes += w.likes
                    total.unlikes += w.unlikes
                    total.comments += w.comments
                    total.reposts += w.reposts
                    total.engagers |= w.engagers
            totals[name] = total
        return totals

    def evict(self) -> None:
        """Forgets windows older than a day behind the watermark and ids that can no longer be counted."""
        horizon = self.watermark_ms - DAY_MS
        for post in list(self._windows):
            minutes = self._windows[post]
            for minute in [m for m in minutes if m < horizon]:
                del minutes[minute]
            if not minutes:
                del self._windows[post]
        watermark = self.watermark_ms
        self._seen = {i: ts for i, ts in self._seen.items() if ts >= watermark}


_COUNTED = frozenset({EventType.LIKE, EventType.UNLIKE, EventType.COMMENT, EventType.REPOST})
