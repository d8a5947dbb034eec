"""The reference answer: from an NDJSON event file alone, the rows `pulse run --replay FILE
--exit-when-done` must leave in ClickHouse, for `pulse chaos` to hold a run it disturbed against.

It is independent on purpose: nothing of the pipeline's processing is imported (no windows, books, clocks
or replay code from `pipeline` or `agents`); only `schemas` judges whether a line is a valid event. The
rules are written again, plainly, from the documentation (docs/contract.md, docs/alerts.md,
docs/settings.md, the stream modules' docstrings), so a bug in the pipeline's code shows as a difference
instead of being copied.

What it answers, as `Expected`:
- `engagement_minute`, per (platform, community, post, event-time minute): likes, unlikes, comments
  (community replies included), reposts, unique engagers (the distinct users of everything but unlikes)
  and the score (likes net of unlikes, floored at 0, + 2 x comments + 3 x reposts). Each accepted event
  counts once, in the minute of its own time, unless it is late: older than the newest counted event of
  its (partition, topic) minus the allowed lateness (docs/settings.md, `ALLOWED_LATENESS_S`);
- `comment_sla`, per subscriber comment, and the alerts of kinds `unanswered_comment`, `resolved` and
  `at_risk` (see `pulse.chaos.comment_clocks` for the rules).

Left out: `engagement_spike` alerts, which are not deterministic between runs of the same file: a burst
is judged against the community's age curve as it stands, and posts are folded into the curves only on
the workers' wall-clock beats (`PartitionProcessor.tick`), so how many folds a judgement sees depends on how
fast the workers read (docs/alerts.md says a replay gives the same spikes; the code does not promise it);
and `source_quiet` / `source_recovered` (the loader's wall clock).

Not modelled, as beyond any replayed file's reach: windows forgotten a day behind the watermark, clocks a
week past their deadline, and a topic idle for a day while another runs on.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pulse.chaos.comment_clocks import AlertRow, CommentKey, SlaRow, response_clocks
from pulse.chaos.intake import Accepted, Intake, read_intake
from schemas import EventType

if TYPE_CHECKING:
    from pulse.settings import Settings

MINUTE_MS = 60_000
MinuteKey = tuple[str, str, str, int]  # (platform, community_id, post_id, minute start in epoch ms)
# Documented alert kinds the reference answers for; `at_risk` only with an at-risk fraction.
COMMENT_ALERT_KINDS = ("unanswered_comment", "resolved")


@dataclass(frozen=True, slots=True)
class ReferenceRules:
    """The settings the answer depends on, as the run used them (see `of_settings`)."""

    sla_s: float = 3_600.0
    sla_per_community_s: Mapping[str, float] = field(default_factory=dict)  # community id -> seconds
    allowed_lateness_s: float = 120.0
    at_risk_fraction: float | None = 0.8  # None: no at-risk warnings, and none expected
    sla_grace_s: float = 1.0
    partitions: int = 4  # of the event topics: lateness and response time are judged per partition
    max_clock_skew_s: float = 300.0

    @classmethod
    def of_settings(cls, settings: Settings) -> ReferenceRules:
        """The rules a `pulse run` with these resolved settings applies."""
        p = settings.processor
        return cls(
            sla_s=p.sla_default_s,
            sla_per_community_s=dict(p.sla_per_community_s),
            allowed_lateness_s=p.allowed_lateness_s,
            at_risk_fraction=p.at_risk_fraction,
            sla_grace_s=p.sla_grace_s,
            partitions=settings.topics.event_partitions,
            max_clock_skew_s=settings.max_clock_skew_s,
        )


@dataclass(frozen=True, slots=True)
class MinuteRow:
    """An `engagement_minute` row under FINAL, keyed by `MinuteKey`."""

    likes: int
    unlikes: int
    comments: int
    reposts: int
    unique_engagers: int
    score: float

    @property
    def events(self) -> int:
        return self.likes + self.unlikes + self.comments + self.reposts


@dataclass(frozen=True, slots=True)
class Expected:
    """The rows the three tables must hold after the run, and what the file gave and turned away."""

    engagement: dict[MinuteKey, MinuteRow]
    sla: dict[CommentKey, SlaRow]
    alerts: dict[str, AlertRow]  # by alert id
    alert_kinds: tuple[str, ...]  # the kinds `alerts` answers for; the store's other kinds are not judged
    input_end_ms: int | None  # the newest accepted event time: later deadlines are not judged
    accepted: int
    rejected_lines: tuple[int, ...]
    duplicate_lines: tuple[int, ...]
    late_events: int


def expected_from_file(
    path: Path, rules: ReferenceRules, *, wall_clock_ms: int | None = None, input_end_ms: int | None = None
) -> Expected:
    """The answer for the file at `path`. `wall_clock_ms` (default: now) is when the file was replayed,
    for the clock-skew rule; `input_end_ms` overrides where the input ends (default: its newest event)."""
    with path.open("rb") as lines:
        return expected_from_lines(lines, rules, wall_clock_ms=wall_clock_ms, input_end_ms=input_end_ms)


def expected_from_lines(
    lines: Iterable[bytes],
    rules: ReferenceRules,
    *,
    wall_clock_ms: int | None = None,
    input_end_ms: int | None = None,
) -> Expected:
    """As `expected_from_file`, for lines already at hand."""
    intake = read_intake(
        lines,
        partitions=rules.partitions,
        wall_clock_ms=time.time_ns() // 1_000_000 if wall_clock_ms is None else wall_clock_ms,
        max_clock_skew_s=rules.max_clock_skew_s,
    )
    return expected_from_intake(intake, rules, input_end_ms=input_end_ms)


def expected_from_intake(
    intake: Intake, rules: ReferenceRules, *, input_end_ms: int | None = None
) -> Expected:
    end_ms = intake.newest_event_ms if input_end_ms is None else input_end_ms
    minutes, late = engagement_minutes(intake.accepted, int(rules.allowed_lateness_s * 1000))
    sla, alerts = response_clocks(
        intake.accepted,
        sla_s=rules.sla_s,
        sla_per_community_s=rules.sla_per_community_s,
        at_risk_fraction=rules.at_risk_fraction,
        sla_grace_ms=int(rules.sla_grace_s * 1000),
        input_end_ms=end_ms,
    )
    kinds = (*COMMENT_ALERT_KINDS, "at_risk") if rules.at_risk_fraction is not None else COMMENT_ALERT_KINDS
    return Expected(
        engagement=minutes,
        sla=sla,
        alerts=alerts,
        alert_kinds=kinds,
        input_end_ms=end_ms,
        accepted=len(intake.accepted),
        rejected_lines=intake.rejected_lines,
        duplicate_lines=intake.duplicate_lines,
        late_events=late,
    )


_COLUMN = {EventType.LIKE: 0, EventType.UNLIKE: 1, EventType.COMMENT: 2, EventType.REPOST: 3}


def engagement_minutes(
    accepted: Iterable[Accepted], allowed_lateness_ms: int
) -> tuple[dict[MinuteKey, MinuteRow], int]:
    """Every (post, minute)'s counts, and how many events were late."""
    newest: dict[tuple[int, str], int] = {}  # (partition, topic) -> newest counted event time
    counts: dict[MinuteKey, list[int]] = {}
    engagers: dict[MinuteKey, set[str]] = {}
    late = 0
    for item in accepted:
        e = item.event
        column = _COLUMN.get(e.type)
        if column is None:
            continue
        lane = (item.partition, item.topic or "")
        ts = e.ts_ms
        if ts < newest.get(lane, 0) - allowed_lateness_ms:
            late += 1
            continue
        newest[lane] = max(newest.get(lane, 0), ts)
        key = (e.platform, e.community_id, e.post_id, ts - ts % MINUTE_MS)
        counts.setdefault(key, [0, 0, 0, 0])[column] += 1
        people = engagers.setdefault(key, set())
        if e.type is not EventType.UNLIKE:
            people.add(e.user_id)
    rows = {
        key: MinuteRow(
            likes, unlikes, comments, reposts, len(engagers[key]), score(likes, unlikes, comments, reposts)
        )
        for key, (likes, unlikes, comments, reposts) in counts.items()
    }
    return rows, late


def score(likes: int, unlikes: int, comments: int, reposts: int) -> float:
    """A minute's engagement score: a like is a tap (net of unlikes, never below 0), a comment is effort
    (2), a repost spreads the post (3)."""
    return max(0, likes - unlikes) + 2.0 * comments + 3.0 * reposts
