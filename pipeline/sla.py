"""Unanswered comments: one SLA clock per subscriber comment, in event time.

Plain logic, no faust and no I/O: the processor feeds it events and clock readings and forwards what it
returns. `CommentSlaBook` holds the clocks of one partition's posts (a post's events share a partition, so
a comment and its replies always meet in the same book).

Rules (issue: stream processors):
- a subscriber comment (`by_community` false) opens a clock with the community's SLA;
- a community reply (`by_community` true) whose `parent_id` is that comment closes it and records the
  response time; replies by other subscribers do not count;
- if the clock reaches the deadline first, exactly one `unanswered_comment` alert is emitted (optionally an
  `at_risk` warning before it); a reply after the alert emits `resolved` with the response time;
- a reply seen before its comment (out of order) means the comment is answered on arrival: no alert;
- `comment_delete` cancels the clock.

Time is whatever the caller says `now` is: the stream's event time (so a replay of a week gives the same
alerts as living through it), extrapolated by the wall clock on a live stream (see `EventClock`). Alerts
carry `fired_at` = the deadline in event time, so the same input always yields the same alerts.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from schemas import CanonicalEvent, EventType

SNIPPET_CHARS = 140


class AlertKind(StrEnum):
    AT_RISK = "at_risk"
    UNANSWERED = "unanswered_comment"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """The response-time target: a default and optional per-community overrides, in seconds."""

    default_s: float
    per_community_s: Mapping[str, float] = field(default_factory=dict)
    at_risk_fraction: float | None = None  # e.g. 0.8: warn at 80% of the SLA
    remember_replies_ms: int = 7 * 86_400_000  # how long a reply that came before its comment is kept

    def sla_ms(self, community_id: str) -> int:
        return int(self.per_community_s.get(community_id, self.default_s) * 1000)


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str  # stable: "<platform>:<community>:<comment>:<kind>", so redelivery is recognisable
    kind: AlertKind
    platform: str
    community_id: str
    post_id: str
    comment_id: str
    author_id: str
    snippet: str
    commented_at_ms: int
    fired_at_ms: int
    waited_s: float
    sla_s: float
    response_s: float | None = None


@dataclass(frozen=True, slots=True)
class SlaRecord:
    """The current state of one comment's clock, as the `comment_sla` table stores it (absolute values)."""

    platform: str
    comment_id: str
    community_id: str
    post_id: str
    commented_at_ms: int
    answered_at_ms: int | None
    breached: bool
    cancelled: bool

    @property
    def response_s(self) -> float | None:
        return None if self.answered_at_ms is None else (self.answered_at_ms - self.commented_at_ms) / 1000


@dataclass(slots=True)
class _Clock:
    event: CanonicalEvent
    deadline_ms: int
    at_risk_ms: int | None
    answered_at_ms: int | None = None
    warned: bool = False
    breached: bool = False
    cancelled: bool = False

    @property
    def open(self) -> bool:
        return self.answered_at_ms is None and not self.cancelled


@dataclass(slots=True)
class SlaOutcome:
    alerts: list[Alert] = field(default_factory=list)
    records: list[SlaRecord] = field(default_factory=list)

    def extend(self, other: SlaOutcome) -> None:
        self.alerts += other.alerts
        self.records += other.records


class CommentSlaBook:
    """The SLA clocks of one partition. Feed `on_event` in stream order and `advance` with the clock."""

    def __init__(self, policy: SlaPolicy) -> None:
        self.policy = policy
        self._clocks: dict[tuple[str, str, str], _Clock] = {}
        self._early_replies: dict[tuple[str, str, str], int] = {}  # (platform, community, parent) -> reply ts
        self._due: list[tuple[int, tuple[str, str, str]]] = []  # (when, clock key), a lazy min-heap

    @property
    def waiting(self) -> int:
        """Comments whose clock still runs (not answered, not deleted), breached or not."""
        return sum(1 for c in self._clocks.values() if c.open)

    def on_event(self, event: CanonicalEvent) -> SlaOutcome:
        outcome = SlaOutcome()
        if not event.type.is_comment or event.comment_id is None:
            return outcome
        if event.type is EventType.COMMENT_DELETE:
            self._cancel(event, outcome)
        elif event.type is EventType.COMMENT:
            if event.by_community:
                self._reply(event, outcome)
            else:
                self._open(event, outcome)
        return outcome

    def advance(self, now_ms: int) -> SlaOutcome:
        """Fires every warning and alert due at or before `now_ms`."""
        outcome = SlaOutcome()
        while self._due and self._due[0][0] <= now_ms:
            when, key = heapq.heappop(self._due)
            clock = self._clocks.get(key)
            if clock is None or not clock.open:
                continue
            if clock.at_risk_ms == when and not clock.warned and when < clock.deadline_ms:
                clock.warned = True
                outcome.alerts.append(self._alert(clock, AlertKind.AT_RISK, when))
            elif when == clock.deadline_ms and not clock.breached:
                clock.breached = True
                outcome.alerts.append(self._alert(clock, AlertKind.UNANSWERED, when))
                outcome.records.append(self._record(clock))
        horizon = now_ms - self.policy.remember_replies_ms
        for key in [k for k, ts in self._early_replies.items() if ts < horizon]:
            del self._early_replies[key]
        return outcome

    def _open(self, event: CanonicalEvent, outcome: SlaOutcome) -> None:
        key = (event.platform, event.community_id, event.comment_id or "")
        if key in self._clocks:
            return  # a redelivered comment: its clock already runs
        sla_ms = self.policy.sla_ms(event.community_id)
        fraction = self.policy.at_risk_fraction
        at_risk = event.ts_ms + int(sla_ms * fraction) if fraction else None
        clock = _Clock(event, event.ts_ms + sla_ms, at_risk)
        self._clocks[key] = clock
        early = self._early_replies.pop(key, None)
        if early is not None:
            clock.answered_at_ms = max(early, event.ts_ms)
        else:
            heapq.heappush(self._due, (clock.deadline_ms, key))
            if at_risk is not None:
                heapq.heappush(self._due, (at_risk, key))
        outcome.records.append(self._record(clock))

    def _reply(self, event: CanonicalEvent, outcome: SlaOutcome) -> None:
        if event.parent_id is None:
            return
        key = (event.platform, event.community_id, event.parent_id)
        clock = self._clocks.get(key)
        if clock is None:
            self._early_replies.setdefault(key, event.ts_ms)
            return
        if not clock.open:
            return  # already answered (the first reply counts) or deleted
        clock.answered_at_ms = max(event.ts_ms, clock.event.ts_ms)
        outcome.records.append(self._record(clock))
        if clock.breached:
            outcome.alerts.append(self._alert(clock, AlertKind.RESOLVED, clock.answered_at_ms))

    def _cancel(self, event: CanonicalEvent, outcome: SlaOutcome) -> None:
        clock = self._clocks.get((event.platform, event.community_id, event.comment_id or ""))
        if clock is not None and clock.open:
            clock.cancelled = True
            outcome.records.append(self._record(clock))

    def _alert(self, clock: _Clock, kind: AlertKind, at_ms: int) -> Alert:
        event = clock.event
        sla_s = (clock.deadline_ms - event.ts_ms) / 1000
        response_s = None if clock.answered_at_ms is None else (clock.answered_at_ms - event.ts_ms) / 1000
        return Alert(
            alert_id=f"{event.platform}:{event.community_id}:{event.comment_id}:{kind.value}",
            kind=kind,
            platform=event.platform,
            community_id=event.community_id,
            post_id=event.post_id,
            comment_id=event.comment_id or "",
            author_id=event.user_id,
            snippet=(event.text or "")[:SNIPPET_CHARS],
            commented_at_ms=event.ts_ms,
            fired_at_ms=at_ms,
            waited_s=(at_ms - event.ts_ms) / 1000,
            sla_s=sla_s,
            response_s=response_s,
        )

    @staticmethod
    def _record(clock: _Clock) -> SlaRecord:
        event = clock.event
        return SlaRecord(
            platform=event.platform,
            comment_id=event.comment_id or "",
            community_id=event.community_id,
            post_id=event.post_id,
            commented_at_ms=event.ts_ms,
            answered_at_ms=clock.answered_at_ms,
            breached=clock.breached,
            cancelled=clock.cancelled,
        )


@dataclass(slots=True)
class EventClock:
    """The stream's event time, extrapolated by the wall clock while the stream is quiet.

    After an event with time E seen at wall time W, `now(wall)` is max(E_max, E + (wall - W)): a live stream
    that goes quiet still moves forward in real time (so alerts fire for a quiet post), while a fast replay
    of history is driven by its own event times.
    """

    max_event_ms: int = 0
    anchor_event_ms: int = 0
    anchor_wall_ms: int = 0

    def observe(self, event_ms: int, wall_ms: int) -> None:
        if event_ms >= self.max_event_ms:
            self.max_event_ms = event_ms
            self.anchor_event_ms, self.anchor_wall_ms = event_ms, wall_ms

    def now(self, wall_ms: int) -> int:
        if self.anchor_wall_ms == 0:
            return self.max_event_ms
        return max(self.max_event_ms, self.anchor_event_ms + (wall_ms - self.anchor_wall_ms))
