"""Alerts too old to post: which they are, how many a destination did not get, and the one line saying so.

An alert's `fired_at_ms` is in event time, so a replay of last month (a backfill) or a destination that was
down for hours brings alerts that are true but old news: posting them one by one (or even as digests) buries
the ops channel in noise about things nobody can still act on. The notifier holds back every alert older
than `max_alert_age_s` by the wall clock when it is about to go to a destination (when read, and again
when its turn to be sent comes), records it in the delivery ledger (so a restart does not post it either),
and counts it per destination. The alerts are in ClickHouse all the same: the loader stores every alert.

Instead of the alerts, each destination gets one line per run of held-back alerts: "Held back 41,233
historical alerts (older than 2h 00m) ...". A run ends when no alert has been held back for that
destination for `held_back_quiet_s` (a backfill's alerts come in a stream, then stop), or when the
notifier stops; the line goes out then, once. Plain logic over injected clocks, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.notify.messages import Markup, Notice, delivery_id, human_wait
from schemas.outputs import Alert


class AgeLimit:
    """Whether an alert is too old to post: it fired (event time) at least `max_age_s` before now (wall
    clock). `max_age_s` 0 holds back every alert (a backfill, where all of it is history); None none."""

    def __init__(self, max_age_s: float | None, wall_ms: Callable[[], int]) -> None:
        self.max_age_s = max_age_s
        self._wall_ms = wall_ms

    def now_ms(self) -> int:
        return self._wall_ms()

    def too_old(self, alert: Alert) -> bool:
        if self.max_age_s is None:
            return False
        if self.max_age_s == 0:  # a backfill's: no need to read the clock for each of its alerts
            return True
        age_ms = max(0, self._wall_ms() - alert.fired_at_ms)  # fired "in the future": a skewed clock, age 0
        return age_ms >= self.max_age_s * 1000

    def split(self, alerts: Iterable[Alert]) -> tuple[list[Alert], list[Alert]]:
        """(fresh, too old), each in the given order."""
        fresh: list[Alert] = []
        old: list[Alert] = []
        for alert in alerts:
            (old if self.too_old(alert) else fresh).append(alert)
        return fresh, old


@dataclass(frozen=True, slots=True)
class HeldBackReport:
    """The line for one destination: how many alerts it was not sent, fired when (event time). Its
    `delivery_id` is fixed when it is made, so a retried send carries the same one."""

    destination: str
    count: int
    oldest_fired_ms: int
    newest_fired_ms: int
    max_age_s: float | None
    made_ms: int  # wall clock

    @property
    def delivery_id(self) -> str:
        fields = (self.destination, self.count, self.oldest_fired_ms, self.newest_fired_ms, self.made_ms)
        return f"held-back:{hashlib.sha256(repr(fields).encode()).hexdigest()[:16]}"


Message = Notice | HeldBackReport  # what an outbox sends


def message_id(message: Message) -> str:
    return message.delivery_id if isinstance(message, HeldBackReport) else delivery_id(message)


class HeldBackRun:
    """One destination's tally of held-back alerts not yet announced, and when the last one came."""

    def __init__(self) -> None:
        self.count = 0
        self.oldest_fired_ms = 0
        self.newest_fired_ms = 0
        self.last_at = 0.0  # the injected clock (monotonic)

    def add(self, count: int, oldest_fired_ms: int, newest_fired_ms: int, now: float) -> None:
        if count <= 0:
            return
        if self.count == 0:
            self.oldest_fired_ms, self.newest_fired_ms = oldest_fired_ms, newest_fired_ms
        else:
            self.oldest_fired_ms = min(self.oldest_fired_ms, oldest_fired_ms)
            self.newest_fired_ms = max(self.newest_fired_ms, newest_fired_ms)
        self.count += count
        self.last_at = now

    def add_alerts(self, alerts: Iterable[Alert], now: float) -> None:
        fired = [a.fired_at_ms for a in alerts]
        if fired:
            self.add(len(fired), min(fired), max(fired), now)

    def due(self, now: float | None, quiet_s: float) -> bool:
        """Whether the run is over: quiet for `quiet_s`, or (`now` None) the notifier is stopping."""
        return self.count > 0 and (now is None or now - self.last_at >= quiet_s)

    def report(self, destination: str, max_age_s: float | None, made_ms: int) -> HeldBackReport:
        """The line for this run; the tally starts again from zero."""
        report = HeldBackReport(
            destination, self.count, self.oldest_fired_ms, self.newest_fired_ms, max_age_s, made_ms
        )
        self.count = 0
        return report


def render_report(report: HeldBackReport, m: Markup) -> str:
    alerts = f"{report.count:,} historical alert{'s' if report.count != 1 else ''}"
    why = f"older than {human_wait(report.max_age_s)}" if report.max_age_s else "a backfill"
    since = _sql_time(report.oldest_fired_ms)
    until = _sql_time(report.newest_fired_ms + 1000)  # the bound takes in the newest one's milliseconds
    query = (
        f"pulse query \"SELECT kind, count() FROM alerts FINAL WHERE fired_at >= '{since}' "
        f"AND fired_at < '{until}' GROUP BY kind\""
    )
    return "\n".join(
        (
            f"🗄 {m.bold(f'Held back {alerts}')} ({why}): not posted one by one",
            f"fired between {_utc(report.oldest_fired_ms)} and {_utc(report.newest_fired_ms)} (event time)",
            f"They are in ClickHouse: {m.escape(query)}",
        )
    )


def report_payload(report: HeldBackReport, sent_at: datetime, text: str) -> dict[str, Any]:
    """The generic webhook's document for the line (`type` "held_back"), beside "alert" and "digest"."""
    return {
        "type": "held_back",
        "delivery_id": report.delivery_id,
        "sent_at": sent_at.astimezone(UTC).isoformat(),
        "text": text,
        "held_back": report.count,
        "max_age_s": report.max_age_s,
        "oldest_fired_at": _iso(report.oldest_fired_ms),
        "newest_fired_at": _iso(report.newest_fired_ms),
        "alerts": [],
    }


def _utc(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%d %b %Y %H:%M UTC")


def _sql_time(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms // 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
