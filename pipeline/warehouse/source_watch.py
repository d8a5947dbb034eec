"""Quiet sources: a community whose live events stop, or fall far below what it usually gets at that time
of day, raises `source_quiet`, and `source_recovered` once they come back (wall clock, live events only).

An expired token, a webhook the platform stopped calling after errors, a group that lost its settings:
each looks exactly like a quiet audience. ClickHouse already counts every stored event, so the watch asks
it (`community_ingest_minute`, filled by a materialized view on `events` with the events that arrived fresh)
instead of counting again, once a minute, in the loader that holds partition 0 of the alerts topic (one
watch per deployment, however many loaders).

**Definition**, per community, with span S (`quiet_span_s`, 30 min), at the check's minute `now`:
- *recent*: its live events stored in the last S;
- *usual*: the mean over the earlier days of the last week (those it had events on) of its events in the
  same S of the day; with no earlier day yet, its events in the 3 h before the span, scaled to S (none
  judged with less than S of history before the span);
- quiet: usual >= `quiet_min_usual` (a community that usually gets a handful is not judged) and
  recent <= `quiet_fraction` x usual (0.1; no events at all is the common case);
- recovered: it was quiet, and is no longer so with events in the span.
One alert per episode: the open episodes are read back from the `alerts` table (and remembered between
checks, for the second it takes the loader to store what it just sent), so a restarted loader, or the
next one to hold the partition, carries on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from pipeline.warehouse.client import translate
from schemas.outputs import Alert, AlertKind

MINUTE_MS = 60_000
DAY_S = 86_400
LOOKBACK_BEFORE_SPAN_S = 10_800  # without an earlier day: the usual rate comes from the 3 h before

SOURCES_SQL = """
SELECT platform, community_id,
       toUnixTimestamp(max(minute)) AS last_minute_s,
       toUnixTimestamp(min(minute)) AS first_minute_s,
       sumIf(events, d < {span:UInt32}) AS recent,
       sumIf(events, d >= {span:UInt32} AND d < {span:UInt32} + {lookback:UInt32}) AS before_span,
       sumIf(events, d >= 86400 AND d % 86400 < {span:UInt32}) AS same_time_earlier,
       uniqExactIf(intDiv(d, 86400), d >= 86400) AS earlier_days
FROM
(
    SELECT platform, community_id, minute, events, dateDiff('second', minute, toDateTime({now_s:UInt32}, 'UTC')) AS d
    FROM community_ingest_minute
    WHERE minute > toDateTime({now_s:UInt32}, 'UTC') - INTERVAL 8 DAY AND minute <= toDateTime({now_s:UInt32}, 'UTC')
)
GROUP BY platform, community_id
"""

EPISODES_SQL = """
SELECT platform, community_id, argMax(kind, fired_at), toUnixTimestamp64Milli(argMax(commented_at, fired_at))
FROM alerts
WHERE kind IN ('source_quiet', 'source_recovered')
GROUP BY platform, community_id
"""


class SourceWatchSettings(BaseModel):
    enabled: bool = Field(default=True, description="raise `source_quiet` / `source_recovered` alerts")
    span_s: float = Field(
        default=1_800.0, ge=60, le=86_400, description="the span a community's events are judged over"
    )
    fraction: float = Field(
        default=0.1, ge=0, lt=1, description="quiet: at most this share of its usual events in the span"
    )
    min_usual: float = Field(
        default=20.0, gt=0, description="communities that usually get fewer events in the span are not judged"
    )
    check_interval_s: float = Field(default=60.0, ge=1, le=3_600, description="how often the loader checks")


@dataclass(frozen=True, slots=True)
class SourceRow:
    platform: str
    community_id: str
    last_minute_s: int
    first_minute_s: int
    recent: int
    before_span: int
    same_time_earlier: int
    earlier_days: int

    def usual(self, span_s: int, now_s: int) -> float | None:
        """Its events in a span like this one, usually; None without the history to tell."""
        if self.earlier_days:
            return self.same_time_earlier / self.earlier_days
        observed_s = min(LOOKBACK_BEFORE_SPAN_S, now_s - span_s - self.first_minute_s)
        if observed_s < span_s:
            return None
        return self.before_span * span_s / observed_s


@dataclass(frozen=True, slots=True)
class Episode:
    kind: AlertKind  # the latest source alert of the community
    since_ms: int  # for a quiet episode: its last event's minute


def judge(
    rows: Iterable[SourceRow],
    episodes: dict[tuple[str, str], Episode],
    settings: SourceWatchSettings,
    now_ms: int,
) -> list[Alert]:
    """The source alerts due at `now_ms`; `episodes` is updated with them."""
    span_s = int(settings.span_s)
    now_s = now_ms // 1000
    alerts = []
    for row in rows:
        key = (row.platform, row.community_id)
        usual = row.usual(span_s, now_s)
        quiet = usual is not None and usual >= settings.min_usual and row.recent <= settings.fraction * usual
        episode = episodes.get(key)
        is_open = episode is not None and episode.kind is AlertKind.SOURCE_QUIET
        last_ms = row.last_minute_s * 1000
        if quiet and not is_open:
            alert = _alert(AlertKind.SOURCE_QUIET, row, last_ms, now_ms, span_s, usual)
            episodes[key] = Episode(AlertKind.SOURCE_QUIET, last_ms)
        elif is_open and not quiet and row.recent > 0:
            assert episode is not None
            alert = _alert(AlertKind.SOURCE_RECOVERED, row, episode.since_ms, now_ms, span_s, usual)
            episodes[key] = Episode(AlertKind.SOURCE_RECOVERED, episode.since_ms)
        else:
            continue
        alerts.append(alert)
    return alerts


def _alert(
    kind: AlertKind, row: SourceRow, since_ms: int, now_ms: int, span_s: int, usual: float | None
) -> Alert:
    """Quiet: `waited_s` since its last event (or the span, when a trickle still comes); recovered: how
    long it was quiet. `commented_at_ms` is the last event's minute before the quiet."""
    minute = now_ms - now_ms % MINUTE_MS
    if kind is AlertKind.SOURCE_QUIET:
        waited_s = (now_ms - since_ms) / 1000 if row.recent == 0 else float(span_s)
    else:
        waited_s = max(0.0, (row.last_minute_s * 1000 - since_ms) / 1000)
    return Alert(
        alert_id=f"{row.platform}:{row.community_id}:{kind.value}:{minute}", kind=kind, platform=row.platform,
        community_id=row.community_id, post_id="", comment_id="", author_id="", snippet="",
        commented_at_ms=since_ms, fired_at_ms=now_ms, waited_s=waited_s, sla_s=float(span_s),
        observed=float(row.recent), expected=None if usual is None else round(usual, 2),
    )  # fmt: skip


class SourceWatch:
    """Asks ClickHouse every `check_interval_s` (see the module's docstring); `check()` returns the alerts
    to send. `client` is a clickhouse-connect client (the loader's)."""

    def __init__(self, client: Any, settings: SourceWatchSettings) -> None:
        self.client = client
        self.settings = settings
        self._episodes: dict[tuple[str, str], Episode] | None = None  # read from the table on first use
        self._checked_at_s = 0.0

    def due(self, monotonic_s: float) -> bool:
        return self.settings.enabled and monotonic_s - self._checked_at_s >= self.settings.check_interval_s

    def check(self, now_ms: int, monotonic_s: float) -> list[Alert]:
        """Raises `WarehouseError` if ClickHouse does not answer."""
        self._checked_at_s = monotonic_s
        try:
            return self._check(now_ms)
        except Exception as exc:  # chDB and the HTTP driver raise several unrelated types here
            raise translate(exc, "the check of quiet sources failed") from exc

    def _check(self, now_ms: int) -> list[Alert]:
        if self._episodes is None:
            self._episodes = {
                (platform, community): Episode(AlertKind(kind), int(since_ms))
                for platform, community, kind, since_ms in self.client.query(EPISODES_SQL).result_rows
            }
        result = self.client.query(
            SOURCES_SQL,
            parameters={
                "now_s": now_ms // 1000,
                "span": int(self.settings.span_s),
                "lookback": LOOKBACK_BEFORE_SPAN_S,
            },
        )
        rows = [SourceRow(*row) for row in result.result_rows]
        return judge(rows, self._episodes, self.settings, now_ms)

    def forget(self) -> None:
        """The loader lost partition 0 of the alerts topic: another watch goes on; read the table again
        if this one takes over later."""
        self._episodes = None
