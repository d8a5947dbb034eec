"""Alerts too old to post, without the network: which are too old, when the line about them is due, what it
says, what the ledger says was never announced, and an outbox that sets old alerts aside and sends the line
once."""

from __future__ import annotations

import asyncio
import io
import time
from collections import deque
from datetime import UTC, datetime

import aiohttp
import orjson
import pytest

from pipeline.notify.destinations import Destination, Route, StdoutChannel, text_of
from pipeline.notify.held_back import (
    AgeLimit,
    HeldBackReport,
    HeldBackRun,
    Message,
    message_id,
    render_report,
    report_payload,
)
from pipeline.notify.ledger import ledger_key, unannounced
from pipeline.notify.messages import MARKDOWN, PLAIN, SLACK, Digest
from pipeline.notify.outbox import Outbox
from pipeline.notify.pacing import take_next
from pipeline.notify.settings import NotifySettings, Pacing, StdoutDestination
from pulse.settings import load
from schemas.outputs import Alert, AlertKind

NOW_MS = int(datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp() * 1000)
HOUR_MS = 3_600_000


def alert(comment: str = "m1", fired_ago_s: float = 0.0, community: str = "c1") -> Alert:
    return Alert(
        alert_id=f"vk:{community}:{comment}:unanswered_comment", kind=AlertKind.UNANSWERED, platform="vk",
        community_id=community, post_id="p1", comment_id=comment, author_id="u1", snippet="hello?",
        commented_at_ms=NOW_MS - int(fired_ago_s * 1000) - HOUR_MS,
        fired_at_ms=NOW_MS - int(fired_ago_s * 1000), waited_s=3600.0, sla_s=3600.0,
    )  # fmt: skip


def report(count: int = 41_233, max_age_s: float | None = 7_200.0) -> HeldBackReport:
    return HeldBackReport("slack", count, NOW_MS - 30 * 24 * HOUR_MS, NOW_MS - 3 * HOUR_MS, max_age_s, NOW_MS)


# --- the age limit ----------------------------------------------------------------------------------------


def test_an_alert_is_too_old_from_the_limit_on_by_the_wall_clock() -> None:
    limit = AgeLimit(7_200.0, lambda: NOW_MS)
    assert not limit.too_old(alert(fired_ago_s=7_199.9))
    assert limit.too_old(alert(fired_ago_s=7_200))
    assert limit.too_old(alert(fired_ago_s=30 * 86_400)), "last month's replay"
    assert not limit.too_old(alert(fired_ago_s=-60)), "stamped ahead of our clock: age 0"


def test_no_limit_posts_everything_and_zero_holds_back_everything() -> None:
    assert not AgeLimit(None, lambda: NOW_MS).too_old(alert(fired_ago_s=365 * 86_400))
    everything = AgeLimit(0.0, lambda: NOW_MS)
    assert everything.too_old(alert(fired_ago_s=0)) and everything.too_old(alert(fired_ago_s=-60))


def test_a_backfill_holds_back_every_alert_without_reading_the_clock_for_each() -> None:
    def no_clock() -> int:
        raise AssertionError("read the clock")

    assert AgeLimit(0, no_clock).too_old(alert(fired_ago_s=-60))


def test_split_keeps_the_order_of_each_side() -> None:
    alerts = [alert("a", 10), alert("b", 9_000), alert("c", 20), alert("d", 8_000)]
    fresh, old = AgeLimit(7_200.0, lambda: NOW_MS).split(alerts)
    assert [a.comment_id for a in fresh] == ["a", "c"] and [a.comment_id for a in old] == ["b", "d"]


# --- the run and its line ---------------------------------------------------------------------------------


def test_a_run_is_due_once_quiet_or_at_shutdown_and_starts_again_after_its_line() -> None:
    run = HeldBackRun()
    assert not run.due(100.0, 60) and not run.due(None, 60), "nothing held back: no line"
    run.add_alerts([alert("a", 9_000), alert("b", 20_000)], now=10.0)
    run.add_alerts([alert("c", 8_000)], now=50.0)
    assert not run.due(109.9, 60), "alerts came 59.9 s ago: the run may go on"
    assert run.due(110.0, 60) and run.due(None, 60)
    line = run.report("slack", 7_200.0, NOW_MS)
    assert (line.count, line.oldest_fired_ms, line.newest_fired_ms) == (
        3, NOW_MS - 20_000_000, NOW_MS - 8_000_000,
    )  # fmt: skip
    assert run.count == 0 and not run.due(None, 60)
    run.add_alerts([alert("d", 10_000)], now=200.0)
    assert run.report("slack", 7_200.0, NOW_MS).count == 1, "a new run counts only its own"


def test_the_line_says_how_many_how_old_when_and_how_to_find_them() -> None:
    text = render_report(report(), PLAIN)
    first, second, third = text.splitlines()
    assert "Held back 41,233 historical alerts" in first and "older than 2h 00m" in first
    assert second == "fired between 02 May 2026 12:00 UTC and 01 Jun 2026 09:00 UTC (event time)"
    assert third.startswith('They are in ClickHouse: pulse query "SELECT kind, count() FROM alerts FINAL')
    assert "fired_at >= '2026-05-02 12:00:00' AND fired_at < '2026-06-01 09:00:01'" in third
    assert "(a backfill)" in render_report(report(max_age_s=0.0), PLAIN)
    assert "1 historical alert " in render_report(report(count=1), PLAIN)


def test_the_line_is_escaped_and_formatted_for_each_markup() -> None:
    assert "*Held back 41,233 historical alerts*" in render_report(report(), SLACK)
    markdown = render_report(report(), MARKDOWN)
    assert "**Held back" in markdown and "count\\(\\)" in markdown, "Markdown would eat the parentheses"


def test_a_line_keeps_its_delivery_id_and_another_line_has_its_own() -> None:
    assert report().delivery_id == report().delivery_id == message_id(report())
    assert report().delivery_id.startswith("held-back:")
    assert report(count=5).delivery_id != report().delivery_id


def test_the_webhook_document_of_the_line_has_the_figures() -> None:
    sent_at = datetime(2026, 6, 1, 12, 0, 5, tzinfo=UTC)
    document = report_payload(report(), sent_at, text_of(report(), PLAIN))
    assert document["type"] == "held_back" and document["held_back"] == 41_233
    assert document["alerts"] == [] and document["delivery_id"] == report().delivery_id
    assert document["oldest_fired_at"] == "2026-05-02T12:00:00.000+00:00"
    assert document["text"].startswith("🗄 Held back 41,233")


def test_stdout_prints_the_line_and_when() -> None:
    out = io.StringIO()
    channel = StdoutChannel(StdoutDestination(name="log", kind="stdout"), Pacing(20, 5, 5, 60), out,
                            clock_ms=lambda: NOW_MS)  # fmt: skip
    asyncio.run(channel.send(None, report()))  # type: ignore[arg-type]
    assert out.getvalue().startswith("🗄 Held back 41,233") and "\ndelivered " in out.getvalue()


# --- what the ledger says was never announced -------------------------------------------------------------


def held(destination: str, comment: str, fired_ms: int) -> tuple[str, bytes]:
    value = {"outcome": "held_back", "at_ms": NOW_MS, "fired_at_ms": fired_ms}
    return ledger_key(destination, f"vk:c1:{comment}:unanswered_comment"), orjson.dumps(value)


def said(destination: str, count: int) -> tuple[str, bytes]:
    line = HeldBackReport(destination, count, 0, 0, 7_200.0, NOW_MS + count)
    value = {"outcome": "delivered", "at_ms": NOW_MS, "held_back": count}
    return ledger_key(destination, line.delivery_id), orjson.dumps(value)


def delivered(destination: str, comment: str) -> tuple[str, bytes]:
    return ledger_key(destination, comment), orjson.dumps({"outcome": "delivered", "at_ms": NOW_MS})


def test_held_back_entries_after_the_last_line_are_unannounced() -> None:
    records = [
        held("slack", "a", 1_000), held("slack", "b", 2_000), delivered("slack", "x"), said("slack", 2),
        held("slack", "c", 5_000), held("slack", "d", 4_000), held("telegram", "a", 1_000),
        said("telegram", 1), delivered("telegram", "y"),
    ]  # fmt: skip
    left = unannounced(records)
    assert set(left) == {"slack"}, "telegram's one was announced"
    assert (left["slack"].count, left["slack"].oldest_fired_ms, left["slack"].newest_fired_ms) == (
        2,
        4_000,
        5_000,
    )


def test_alerts_held_back_while_a_line_was_on_its_way_stay_unannounced() -> None:
    """The line counts 2; a third alert was held back (and written) before the line's own entry."""
    records = [held("slack", "a", 1), held("slack", "b", 2), held("slack", "c", 3), said("slack", 2)]
    assert unannounced(records)["slack"].count == 1


def test_entries_gone_with_the_retention_never_count_below_zero() -> None:
    records = [held("slack", "c", 3), said("slack", 3), held("slack", "d", 4)]
    assert unannounced(records)["slack"].count == 1
    assert unannounced([said("slack", 2)]) == {}
    assert unannounced([delivered("slack", "x"), ("slack\tvk:c1:z", None)]) == {}


# --- the backlog and the outbox ---------------------------------------------------------------------------


def test_the_line_leaves_alone_and_is_never_taken_into_a_digest() -> None:
    alerts = [alert(f"m{i}") for i in range(4)]
    backlog: deque[Message] = deque([alerts[0], report(), *alerts[1:]])
    first = take_next(backlog, 2)
    assert isinstance(first, Digest) and len(first.alerts) == 4
    assert list(backlog) == [report()]
    backlog = deque([report(), *alerts])
    assert take_next(backlog, 2) == report() and len(backlog) == 4


class Recording(Destination):
    kind = "recording"

    def __init__(self, digest_threshold: int = 1000) -> None:
        super().__init__("recording", Route(), Pacing(6000, 100, digest_threshold, 60))
        self.sent: list[Message] = []

    def describe(self) -> str:
        return "recording"

    async def send(self, session: aiohttp.ClientSession, message: Message) -> None:
        self.sent.append(message)


def test_an_outbox_sets_old_alerts_aside_and_sends_the_line_once() -> None:
    wall = [NOW_MS]
    destination = Recording()
    settled: list[tuple[str, str]] = []

    async def settle(outbox: Outbox, message: Message, outcome: str, reason: str) -> None:
        settled.append((message_id(message), outcome))

    async def scenario() -> Outbox:
        outbox = Outbox(destination, settle, retry_initial_s=0.01, retry_max_s=0.1, clock=time.monotonic,
                        age_limit=AgeLimit(7_200.0, lambda: wall[0]))  # fmt: skip
        async with aiohttp.ClientSession() as session:  # the destination makes no connection
            outbox.offer(alert("old", fired_ago_s=3 * 3_600), time.monotonic())
            outbox.offer(alert("new", fired_ago_s=60), time.monotonic())
            assert [a.comment_id for a in outbox.too_old] == ["old"] and not outbox.idle
            taken = outbox.take_too_old()
            outbox.held_back.add_alerts(taken, time.monotonic())  # as the notifier does, after the ledger
            worker = asyncio.create_task(outbox.run(session))
            assert outbox.release_report(time.monotonic(), quiet_s=60) is None, "the run may go on"
            line = outbox.release_report(None, quiet_s=60)
            assert line is not None and line.count == 1
            assert outbox.release_report(None, quiet_s=60) is None, "once"
            for _ in range(200):
                if len(settled) == 2:
                    break
                await asyncio.sleep(0.01)
            outbox.stop()
            await worker
        return outbox

    outbox = asyncio.run(scenario())
    assert [type(m).__name__ for m in destination.sent] == ["HeldBackReport", "Alert"], "the line goes first"
    assert settled[1] == ("vk:c1:new:unanswered_comment", "delivered")
    assert outbox.idle and outbox.too_old == []


def test_alerts_that_aged_while_waiting_are_set_aside_and_the_rest_still_go() -> None:
    wall = [NOW_MS]
    destination = Recording(digest_threshold=2)  # the backlog leaves as one digest

    async def settle(outbox: Outbox, message: Message, outcome: str, reason: str) -> None:
        pass

    async def scenario() -> Outbox:
        outbox = Outbox(destination, settle, retry_initial_s=0.01, retry_max_s=0.1, clock=time.monotonic,
                        age_limit=AgeLimit(7_200.0, lambda: wall[0]))  # fmt: skip
        # Queued while the destination was away: two old enough to go stale, three recent.
        for i, (comment, ago) in enumerate((("a", 7_000), ("b", 100), ("c", 7_100), ("d", 200), ("e", 300))):
            outbox.offer(alert(comment, fired_ago_s=ago), i * 100.0)  # no storm: one at a time
        wall[0] += 600_000  # ten minutes later it is back
        async with aiohttp.ClientSession() as session:
            worker = asyncio.create_task(outbox.run(session))
            for _ in range(200):
                if not outbox.backlog and not outbox.sending:
                    break
                await asyncio.sleep(0.01)
            outbox.stop()
            await worker
        return outbox

    outbox = asyncio.run(scenario())
    (digest,) = destination.sent
    assert isinstance(digest, Digest) and [a.comment_id for a in digest.alerts] == ["b", "d", "e"]
    assert sorted(a.comment_id for a in outbox.too_old) == ["a", "c"]


# --- settings ---------------------------------------------------------------------------------------------


def test_the_age_limit_defaults_to_two_hours_and_null_lifts_it(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = NotifySettings()
    assert defaults.max_alert_age_s == 7_200 and defaults.held_back_quiet_s == 60
    monkeypatch.setenv("PULSE_NOTIFY__MAX_ALERT_AGE_S", "null")
    assert load().notify.max_alert_age_s is None
    monkeypatch.setenv("PULSE_NOTIFY__MAX_ALERT_AGE_S", "-1")
    with pytest.raises(ValueError, match="max_alert_age_s"):
        load()


def held_many(destination: str, comments: list[str], fired_ms: list[int]) -> tuple[str, bytes]:
    value = {
        "outcome": "held_back_many", "at_ms": NOW_MS,
        "alert_ids": [f"vk:c1:{c}:unanswered_comment" for c in comments],
        "oldest_fired_ms": min(fired_ms), "newest_fired_ms": max(fired_ms),
    }  # fmt: skip
    return ledger_key(destination, f"held-back:{comments[0]}:{comments[-1]}:{len(comments)}"), orjson.dumps(
        value
    )


def test_records_of_many_held_back_alerts_count_each_beside_the_older_one_per_alert_records() -> None:
    records = [
        held("slack", "a", 1_000), held_many("slack", ["b", "c", "d"], [3_000, 2_000, 6_000]), said("slack", 2),
        held_many("telegram", ["e"], [500]),
    ]  # fmt: skip
    left = unannounced(records)
    assert (left["slack"].count, left["slack"].oldest_fired_ms, left["slack"].newest_fired_ms) == (
        2,
        1_000,
        6_000,
    )
    assert (left["telegram"].count, left["telegram"].oldest_fired_ms) == (1, 500)
