"""The unanswered-comment state machine, driven by hand-made event sequences with known answers."""

from __future__ import annotations

from pipeline.stream.sla import AlertKind, CommentSlaBook, EventClock, SlaPolicy
from schemas import validate
from tests.events import BASE_TS_MS, wire

MIN = 60_000
SLA = SlaPolicy(default_s=30 * 60, per_community_s={"vip": 5 * 60}, at_risk_fraction=0.8)


def comment(
    cid: str,
    at_min: float,
    *,
    parent: str | None = None,
    by_community: bool = False,
    community: str = "c1",
    text: str = "hi",
):  # type: ignore[no-untyped-def]
    return validate(wire("comment", event_id=f"e-{cid}", comment_id=cid, parent_id=parent, by_community=by_community,
                         community_id=community, ts=BASE_TS_MS + int(at_min * MIN), text=text))  # fmt: skip


def delete(cid: str, at_min: float):  # type: ignore[no-untyped-def]
    return validate(
        wire("comment_delete", event_id=f"d-{cid}", comment_id=cid, ts=BASE_TS_MS + int(at_min * MIN))
    )


def run(events, until_min: float):  # type: ignore[no-untyped-def]
    book = CommentSlaBook(SLA)
    alerts, records = [], []
    for event in events:
        out = book.advance(event.ts_ms)
        alerts += out.alerts
        records += out.records
        out = book.on_event(event)
        alerts += out.alerts
        records += out.records
    out = book.advance(BASE_TS_MS + int(until_min * MIN))
    return book, alerts + out.alerts, records + out.records


def test_answered_in_time_gives_no_alert_and_a_response_time() -> None:
    book, alerts, records = run(
        [comment("m1", 0), comment("r1", 12.5, parent="m1", by_community=True)], until_min=120
    )
    assert alerts == []
    assert records[-1].answered_at_ms == BASE_TS_MS + int(12.5 * MIN) and records[-1].response_s == 750.0
    assert not records[-1].breached and book.waiting == 0


def test_unanswered_comment_warns_then_alerts_exactly_once() -> None:
    _, alerts, records = run([comment("m1", 0, text="where is my order?")], until_min=500)
    assert [(a.kind, a.fired_at_ms - BASE_TS_MS) for a in alerts] == [
        (AlertKind.AT_RISK, 24 * MIN),
        (AlertKind.UNANSWERED, 30 * MIN),
    ]
    breach = alerts[1]
    assert breach.alert_id == "vk:c1:m1:unanswered_comment"
    assert (breach.waited_s, breach.sla_s, breach.snippet, breach.author_id) == (
        1800.0,
        1800.0,
        "where is my order?",
        "u1",
    )
    assert records[-1].breached and records[-1].answered_at_ms is None


def test_reply_after_breach_resolves_with_response_time() -> None:
    _, alerts, records = run(
        [comment("m1", 0), comment("r1", 45, parent="m1", by_community=True)], until_min=60
    )
    assert [a.kind for a in alerts] == [AlertKind.AT_RISK, AlertKind.UNANSWERED, AlertKind.RESOLVED]
    assert alerts[-1].response_s == 45 * 60
    assert records[-1].breached and records[-1].response_s == 45 * 60


def test_reply_before_its_comment_means_no_alert() -> None:
    _, alerts, records = run(
        [comment("r1", 3, parent="m1", by_community=True), comment("m1", 1)], until_min=100
    )
    assert alerts == []
    assert records[-1].comment_id == "m1" and records[-1].response_s == 120.0


def test_subscriber_replies_do_not_close_the_clock() -> None:
    _, alerts, _ = run([comment("m1", 0), comment("m2", 5, parent="m1")], until_min=31)
    assert {(a.comment_id, a.kind) for a in alerts if a.kind is AlertKind.UNANSWERED} == {
        ("m1", AlertKind.UNANSWERED)
    }


def test_deleted_comment_cancels_its_clock() -> None:
    book, alerts, records = run([comment("m1", 0), delete("m1", 10)], until_min=100)
    assert alerts == [] and records[-1].cancelled and book.waiting == 0


def test_per_community_sla_and_redelivered_comment() -> None:
    _, alerts, _ = run([comment("m1", 0, community="vip"), comment("m1", 0, community="vip")], until_min=6)
    breaches = [a for a in alerts if a.kind is AlertKind.UNANSWERED]
    assert len(breaches) == 1 and breaches[0].sla_s == 300.0


def test_no_alert_before_the_deadline() -> None:
    _, alerts, _ = run([comment("m1", 0)], until_min=29.9)
    assert [a.kind for a in alerts] == [AlertKind.AT_RISK]


def test_event_clock_extrapolates_a_live_stream_by_the_wall_clock() -> None:
    clock = EventClock(live_lag_ms=300_000)
    clock.observe(event_ms=BASE_TS_MS, wall_ms=BASE_TS_MS + 2_000)  # seen 2 s after it happened: live
    assert clock.now(wall_ms=BASE_TS_MS + 2_000) == BASE_TS_MS
    assert clock.now(wall_ms=BASE_TS_MS + 62_000) == BASE_TS_MS + 60_000, "a quiet live post still ages"
    clock.observe(event_ms=BASE_TS_MS - 5_000, wall_ms=BASE_TS_MS + 70_000)  # out of order: no step back
    assert clock.now(wall_ms=BASE_TS_MS + 62_000) == BASE_TS_MS + 60_000


def test_a_live_clock_runs_on_the_smallest_recent_lag_not_the_newest_events() -> None:
    """VK stamps whole seconds: a comment seen 0.9 s 'late' must not hold the clock back by 0.9 s when
    another event just showed the pipeline's own lag is 0.1 s."""
    clock = EventClock(live_lag_ms=300_000)
    clock.observe(event_ms=BASE_TS_MS, wall_ms=BASE_TS_MS + 100)
    clock.observe(event_ms=BASE_TS_MS + 1_000, wall_ms=BASE_TS_MS + 1_900)
    assert clock.now(wall_ms=BASE_TS_MS + 61_900) == BASE_TS_MS + 61_800
    # Ten seconds on, a slower delivery is the stream's lag again: a backlog is judged by its own times.
    clock.observe(event_ms=BASE_TS_MS + 20_000, wall_ms=BASE_TS_MS + 50_000)
    assert clock.now(wall_ms=BASE_TS_MS + 50_000) == BASE_TS_MS + 20_000


def test_a_restored_live_clock_learns_its_lag_afresh() -> None:
    clock = EventClock(live_lag_ms=300_000)
    clock.restore(max_event_ms=BASE_TS_MS, anchor_wall_ms=BASE_TS_MS + 100)
    assert clock.live and clock.now(wall_ms=BASE_TS_MS + 5_100) == BASE_TS_MS + 5_000
    clock.observe(event_ms=BASE_TS_MS + 1_000, wall_ms=BASE_TS_MS + 61_000)  # a backlog after the restart
    assert clock.now(wall_ms=BASE_TS_MS + 61_000) == BASE_TS_MS + 1_000


def test_event_clock_of_a_replay_follows_event_time_only() -> None:
    clock = EventClock(live_lag_ms=300_000)
    clock.observe(event_ms=BASE_TS_MS - 86_400_000, wall_ms=BASE_TS_MS)  # last week's history
    assert clock.now(wall_ms=BASE_TS_MS + 3_600_000) == BASE_TS_MS - 86_400_000, "waiting moves nothing"
    clock.observe(event_ms=BASE_TS_MS - 80_000_000, wall_ms=BASE_TS_MS + 1)
    assert clock.now(wall_ms=BASE_TS_MS + 2) == BASE_TS_MS - 80_000_000


def test_restored_book_keeps_its_clocks_and_re_emits_what_a_crash_may_have_lost() -> None:
    book = CommentSlaBook(SLA)
    book.on_event(comment("m1", 0), ("comments", 1))
    book.on_event(comment("m2", 1), ("comments", 2))
    fired = book.advance(BASE_TS_MS + 30 * MIN + 30_000, ("ticks", 40))
    assert [a.comment_id for a in fired.alerts if a.kind is AlertKind.UNANSWERED] == ["m1"]
    restarted = CommentSlaBook(SLA)
    for (ns, key), state in book.drain_changes().items():
        assert state is not None
        restarted.restore(ns, key, state)
    again = restarted.reemit("ticks", 40)
    assert {(a.comment_id, a.kind) for a in again.alerts} == {(a.comment_id, a.kind) for a in fired.alerts}
    assert restarted.reemit("ticks", 41).alerts == [], "alerts of committed ticks are not sent again"
    assert restarted.advance(BASE_TS_MS + 30 * MIN + 30_000).alerts == [], "no second alert after the restart"
    assert [a.comment_id for a in restarted.advance(BASE_TS_MS + 32 * MIN).alerts] == ["m2"]
    assert restarted.on_event(comment("m1", 0), ("comments", 1)).records == [], "a re-read comment is a no-op"


def test_a_clock_persisted_with_its_whole_event_restores_and_is_persisted_with_its_snippet() -> None:
    """Clocks written before they kept only what their outputs tell (the whole event, as a msgpack map)
    are still in changelogs: a worker restoring one keeps its deadline, its alerts and its text."""
    import msgspec

    text = "where is my order? " * 20
    first = comment("m1", 0, text=text)
    legacy = msgspec.msgpack.encode(
        (first, first.ts_ms + 30 * MIN, first.ts_ms + 24 * MIN, None, True, False, False, ("comments", 3),
         {"at_risk": ("ticks", 7, first.ts_ms + 24 * MIN)})
    )  # fmt: skip
    book = CommentSlaBook(SLA)
    book.restore("c", ("vk", "c1", "m1"), legacy)
    assert book.waiting == 1
    (warned,) = book.reemit("ticks", 7).alerts
    assert (warned.kind, warned.snippet, warned.author_id) == (AlertKind.AT_RISK, text[:140], first.user_id)
    (alert,) = book.advance(first.ts_ms + 30 * MIN, ("ticks", 8)).alerts
    assert (alert.kind, alert.commented_at_ms) == (AlertKind.UNANSWERED, first.ts_ms)
    (state,) = book.drain_changes().values()
    assert state is not None and text[:140].encode() in state and text[:141].encode() not in state
    assert len(state) < len(legacy) / 2


def test_an_alert_re_emitted_after_the_reply_is_the_alert_first_emitted() -> None:
    from pipeline.stream.sla import CommentSlaBook, SlaPolicy
    from schemas import CanonicalEvent, EventType

    book = CommentSlaBook(SlaPolicy(default_s=600, at_risk_fraction=None))
    ts = 1_795_000_000_000
    comment = CanonicalEvent(
        "c1", EventType.COMMENT, "vk", "g1", "p1", "u1", ts, comment_id="m1", text="hello?"
    )
    reply = CanonicalEvent("c2", EventType.COMMENT, "vk", "g1", "p1", "-g1", ts + 900_000, comment_id="r1",
                           parent_id="m1", by_community=True)  # fmt: skip
    book.on_event(comment, ("comments", 0))
    fired = book.advance(ts + 600_000, ("ticks", 0)).alerts
    book.on_event(reply, ("comments", 1))
    again = [a for a in book.reemit("ticks", 0).alerts if a.kind.value == "unanswered_comment"]
    assert [a.kind.value for a in fired] == ["unanswered_comment"] and again == fired


def test_waiting_counts_the_clocks_that_still_run_through_replies_deletes_evictions_and_restores() -> None:
    from agents import Simulator, SimulatorSettings

    def running(book: CommentSlaBook) -> int:
        return sum(
            1 for clock in book._clocks.values() if clock.answered_at_ms is None and not clock.cancelled
        )

    sim = Simulator(SimulatorSettings(communities=3, events_per_sim_s=2.0, answer_median_s=400, seed=8))
    events = [e for e in sim.events(count=8_000) if e.type.is_comment]
    deletes = [delete(e.comment_id or "", (e.ts_ms - BASE_TS_MS) / MIN + 1) for e in events[::17]]
    book, seen = CommentSlaBook(SLA), set()
    for i, event in enumerate(sorted([*events, *deletes], key=lambda e: e.ts_ms)):
        book.on_event(event)
        seen.add(book.waiting)
        if i % 500 == 0:
            book.evict(event.ts_ms + 20 * 86_400_000)  # forgets every clock so far, open or not
        assert book.waiting == running(book), i
    assert len(seen) > 20, "the count moved"
    restarted = CommentSlaBook(SLA)
    for (ns, key), state in book.drain_changes().items():
        if state is not None:
            restarted.restore(ns, key, state)
            restarted.restore(ns, key, state)  # twice: a changelog may hold a key more than once
    assert restarted.waiting == running(restarted) == running(book)


def test_a_lag_of_zero_is_event_time_only_even_for_an_event_stamped_ahead_of_the_wall_clock() -> None:
    """`pulse run --exit-when-done` sets the live lag to 0: a file whose newest events are stamped at or
    after the wall clock (accepted within the allowed skew) must not make its clocks follow the wall."""
    clock = EventClock(live_lag_ms=0)
    wall = 1_800_000_000_000
    clock.observe(wall + 60_000, wall)  # stamped a minute ahead: an ingestion lag of 0
    assert not clock.live
    assert clock.now(wall + 80_000) == wall + 60_000
    live = EventClock(live_lag_ms=300_000)
    live.observe(wall + 60_000, wall)
    assert live.live and live.now(wall + 100_000) == wall + 100_000  # follows the wall from its anchor
