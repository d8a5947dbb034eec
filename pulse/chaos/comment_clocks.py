"""The reference's response clocks: each subscriber comment's `comment_sla` row and its alerts, from the
documented rules (docs/alerts.md, docs/settings.md, and `pipeline/stream/sla.py`'s docstring), worked out
in one pass without simulating timers.

The rules:
- a subscriber comment (`by_community` false) starts a clock with its community's SLA; a second comment
  with the same `comment_id` changes nothing;
- the first community reply (`by_community` true) naming it as `parent_id` answers it, at
  max(reply time, comment time); later replies change nothing; a reply seen before its comment is kept, and
  the comment is then answered on arrival (no alert can fire for it);
- `comment_delete` of a comment whose clock still runs cancels it; edits change nothing but time;
- time is the partition's comment time: the newest event time of any comment, edit or deletion seen so far
  in that partition (a reply travels behind its comment there); a deadline is judged `sla_grace_ms` after
  it, i.e. a clock is breached once that time minus the grace reaches its deadline while it still runs.
  When the input is done, every partition is brought to the input's newest event time (of any type).
  A deadline that neither happens is not judged: the comment stays waiting;
- `unanswered_comment` fires at the deadline, `at_risk` at `at_risk_fraction` of the SLA (under the same
  judgement), `resolved` when a breached comment is answered. Alert ids are
  `<platform>:<community>:<comment>:<kind>`.

Because the partition's comment time only grows, "breached while running" needs no timer: a clock closed
(answered or deleted) when its partition's comment time was C was breached iff C - grace >= deadline; one
never closed, iff the partition's final time minus the grace reaches it.

Not modelled: clocks forgotten 7 days after their deadline, and the wall-clock extrapolation of a live
stream (`pulse run --exit-when-done` sets `live_lag_s` to 0: event time only, also for a file whose newest
comments are stamped at or ahead of the wall clock, which used to count as live). Two subscriber comments
with one comment id under posts of different partitions are two clocks there and one row in the table: the
reference keeps the one opened last.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pulse.chaos.intake import Accepted
from schemas import CanonicalEvent, EventType

CommentKey = tuple[str, str, str]  # (platform, community_id, comment_id)


@dataclass(frozen=True, slots=True)
class SlaRow:
    """A `comment_sla` row under FINAL, keyed by `CommentKey`."""

    post_id: str
    commented_at_ms: int
    sla_seconds: float
    answered_at_ms: int | None
    response_seconds: float | None
    breached: bool
    cancelled: bool
    stage: int  # 0 waiting, 1 breached, 2 answered or deleted


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An `alerts` row under FINAL, keyed by `alert_id` (the snippet aside)."""

    kind: str
    post_id: str
    comment_id: str
    author_id: str
    commented_at_ms: int
    fired_at_ms: int
    waited_seconds: float
    sla_seconds: float
    response_seconds: float | None


@dataclass(slots=True)
class _Clock:
    comment: CanonicalEvent
    partition: int
    sla_ms: int
    answered_at_ms: int | None = None
    cancelled: bool = False
    closed_at_time_ms: int | None = None  # the partition's comment time when answered or deleted
    answered_on_arrival: bool = False

    @property
    def running(self) -> bool:
        return self.answered_at_ms is None and not self.cancelled


def response_clocks(
    accepted: Iterable[Accepted],
    *,
    sla_s: float,
    sla_per_community_s: Mapping[str, float],
    at_risk_fraction: float | None,
    sla_grace_ms: int,
    input_end_ms: int | None,
) -> tuple[dict[CommentKey, SlaRow], dict[str, AlertRow]]:
    """Every subscriber comment's row, and the alerts of kinds `unanswered_comment`, `resolved` and (with
    `at_risk_fraction`) `at_risk`."""
    clocks: dict[tuple[int, CommentKey], _Clock] = {}
    early_replies: dict[tuple[int, CommentKey], int] = {}  # -> the first reply's time
    comment_time: dict[int, int] = {}  # partition -> its comment time
    for item in accepted:
        e, p = item.event, item.partition
        if e.type not in (EventType.COMMENT, EventType.COMMENT_EDIT, EventType.COMMENT_DELETE):
            continue
        now = comment_time[p] = max(comment_time.get(p, 0), e.ts_ms)
        if e.type is EventType.COMMENT_DELETE:
            clock = clocks.get((p, (e.platform, e.community_id, e.comment_id or "")))
            if clock is not None and clock.running:
                clock.cancelled, clock.closed_at_time_ms = True, now
        elif e.type is EventType.COMMENT and e.by_community:
            if e.parent_id is None:
                continue
            key = (p, (e.platform, e.community_id, e.parent_id))
            clock = clocks.get(key)
            if clock is None:
                early_replies.setdefault(key, e.ts_ms)
            elif clock.running:
                clock.answered_at_ms = max(e.ts_ms, clock.comment.ts_ms)
                clock.closed_at_time_ms = now
        elif e.type is EventType.COMMENT:
            key = (p, (e.platform, e.community_id, e.comment_id or ""))
            if key in clocks:
                continue
            sla_ms = int(sla_per_community_s.get(e.community_id, sla_s) * 1000)
            clock = clocks[key] = _Clock(e, p, sla_ms)
            reply_ms = early_replies.pop(key, None)
            if reply_ms is not None:
                clock.answered_at_ms = max(reply_ms, e.ts_ms)
                clock.closed_at_time_ms, clock.answered_on_arrival = now, True
    final_time = {p: max(t, input_end_ms or 0) for p, t in comment_time.items()}
    rows: dict[CommentKey, SlaRow] = {}
    alerts: dict[str, AlertRow] = {}
    for (p, comment_key), clock in clocks.items():
        judged_ms = clock.closed_at_time_ms if clock.closed_at_time_ms is not None else final_time[p]
        judged_ms -= sla_grace_ms
        rows[comment_key] = _judge(clock, judged_ms, at_risk_fraction, alerts)
    return rows, alerts


def _judge(
    clock: _Clock, judged_ms: int, at_risk_fraction: float | None, alerts: dict[str, AlertRow]
) -> SlaRow:
    """The clock's row; its alerts into `alerts`. `judged_ms`: how far its deadlines were judged."""
    c = clock.comment
    deadline_ms = c.ts_ms + clock.sla_ms
    judged = not clock.answered_on_arrival  # no deadline was ever set for a comment answered on arrival
    breached = judged and deadline_ms <= judged_ms

    def fire(kind: str, at_ms: int, response_s: float | None = None) -> None:
        alert_id = f"{c.platform}:{c.community_id}:{c.comment_id}:{kind}"
        alerts[alert_id] = AlertRow(
            kind, c.post_id, c.comment_id or "", c.user_id, c.ts_ms, at_ms,
            (at_ms - c.ts_ms) / 1000, clock.sla_ms / 1000, response_s,
        )  # fmt: skip

    if at_risk_fraction is not None and judged:
        at_risk_ms = c.ts_ms + int(clock.sla_ms * at_risk_fraction)
        if at_risk_ms < deadline_ms and at_risk_ms <= judged_ms:
            fire("at_risk", at_risk_ms)
    if breached:
        fire("unanswered_comment", deadline_ms)
    response_s = None if clock.answered_at_ms is None else (clock.answered_at_ms - c.ts_ms) / 1000
    if breached and clock.answered_at_ms is not None:
        fire("resolved", clock.answered_at_ms, response_s)
    closed = clock.answered_at_ms is not None or clock.cancelled
    return SlaRow(
        post_id=c.post_id,
        commented_at_ms=c.ts_ms,
        sla_seconds=clock.sla_ms / 1000,
        answered_at_ms=clock.answered_at_ms,
        response_seconds=response_s,
        breached=breached,
        cancelled=clock.cancelled,
        stage=2 if closed else 1 if breached else 0,
    )
