"""Per-minute engagement in event time: exact counts, duplicates once, late events refused and counted."""

from __future__ import annotations

from pipeline.stream.engagement import EngagementBook, Verdict
from schemas import validate
from tests.events import BASE_TS_MS, wire

MIN = 60_000
T0 = BASE_TS_MS - BASE_TS_MS % MIN  # a minute boundary


def ev(type_: str, eid: str, at_s: float, *, post: str = "p1", user: str = "u1"):  # type: ignore[no-untyped-def]
    extra = {"comment_id": f"m-{eid}"} if type_ == "comment" else {}
    return validate(wire(type_, event_id=eid, post_id=post, user_id=user, ts=T0 + int(at_s * 1000), **extra))


def test_counts_per_minute_and_post_with_unique_engagers() -> None:
    book = EngagementBook(allowed_lateness_ms=5 * MIN)
    events = [ev("like", "a", 1, user="u1"), ev("like", "b", 30, user="u2"), ev("comment", "c", 59, user="u1"),
              ev("repost", "d", 61, user="u3"), ev("like", "e", 10, post="p2")]  # fmt: skip
    assert [book.add(e) for e in events] == [Verdict.COUNTED] * 5
    values = {(v.post_id, v.minute_ms - T0): v for v in book.drain_touched()}
    first = values[("p1", 0)]
    assert (first.likes, first.comments, first.reposts, first.unique_engagers) == (2, 1, 0, 2)
    assert first.score == 2 * 1 + 1 * 2
    assert (values[("p1", MIN)].reposts, values[("p2", 0)].likes) == (1, 1)
    assert book.drain_touched() == [], "nothing changed since"


def test_duplicates_count_once() -> None:
    book = EngagementBook(allowed_lateness_ms=5 * MIN)
    assert [book.add(ev("like", "a", 1)) for _ in range(3)] == [
        Verdict.COUNTED,
        Verdict.DUPLICATE,
        Verdict.DUPLICATE,
    ]
    assert book.drain_touched()[0].likes == 1 and book.duplicate_events == 2


def test_out_of_order_within_lateness_lands_in_its_own_minute() -> None:
    book = EngagementBook(allowed_lateness_ms=5 * MIN)
    book.add(ev("like", "a", 4 * 60 + 10))
    book.drain_touched()
    assert book.add(ev("like", "b", 30)) is Verdict.COUNTED
    (value,) = book.drain_touched()
    assert value.minute_ms == T0 and value.likes == 1


def test_too_late_is_counted_as_late_and_changes_no_window() -> None:
    book = EngagementBook(allowed_lateness_ms=2 * MIN)
    book.add(ev("like", "a", 10 * 60))
    book.drain_touched()
    assert book.add(ev("like", "b", 60)) is Verdict.LATE
    assert book.late_events == 1 and book.drain_touched() == []


def test_rolling_totals() -> None:
    book = EngagementBook(allowed_lateness_ms=DAY)
    for i, at_min in enumerate([0, 3, 30, 59, 61, 24 * 60 - 1]):
        book.add(ev("like", f"e{i}", at_min * 60 + 1, user=f"u{i % 2}"))
    now = T0 + 24 * 60 * MIN - 1
    totals = book.rolling("vk", "c1", "p1", now)
    assert (totals["5m"].likes, totals["1h"].likes, totals["24h"].likes) == (1, 1, 6)
    assert totals["24h"].score == 6.0


def test_a_message_read_again_after_a_crash_counts_once_but_is_re_emitted() -> None:
    book = EngagementBook(allowed_lateness_ms=5 * MIN)
    assert book.add(ev("like", "a", 1), ("likes", 7)) is Verdict.COUNTED
    book.drain_touched()
    restarted = EngagementBook(allowed_lateness_ms=5 * MIN)
    for key, state in book.drain_changes().items():
        assert state is not None
        restarted.restore(key, state)
    assert restarted.add(ev("like", "a", 1), ("likes", 7)) is Verdict.REPLAYED
    assert restarted.add(ev("like", "b", 2), ("likes", 7)) is Verdict.REPLAYED, (
        "the whole message was applied"
    )
    (value,) = restarted.drain_touched()
    assert value.likes == 1, "re-emitted as it is, not counted again"
    assert restarted.add(ev("like", "a", 1), ("likes", 8)) is Verdict.DUPLICATE, "ids survive the restart"
    assert restarted.add(ev("like", "c", 3), ("likes", 8)) is Verdict.COUNTED
    assert restarted.drain_touched()[0].likes == 2


def test_eviction_closes_passed_windows_then_forgets_them_a_day_later() -> None:
    book = EngagementBook(allowed_lateness_ms=MIN)
    book.add(ev("like", "a", 1, user="u1"))
    book.add(ev("like", "b", 2, user="u2"))
    book.add(ev("like", "z", 10 * 60))  # moves the watermark past the first minute
    book.evict()
    changes = book.drain_changes()
    assert book.rolling("vk", "c1", "p1", T0 + 11 * MIN)["1h"].likes == 3
    book.add(ev("like", "y", 2 * 86_400))
    book.evict()
    assert changes and book.drain_changes()[("vk", "c1", "p1", T0)] is None, "a day past: deleted"
    assert book.window_count == 1


DAY = 86_400_000


def test_lateness_is_judged_per_source_topic() -> None:
    book = EngagementBook(allowed_lateness_ms=MIN)
    book.add(ev("like", "a", 30 * 60), ("likes", 0))  # likes ran ahead while comments were still draining
    assert book.add(ev("comment", "c", 60), ("comments", 0)) is Verdict.COUNTED
    assert book.add(ev("like", "b", 60), ("likes", 1)) is Verdict.LATE
    book.evict()
    assert book.add(ev("comment", "c", 60), ("comments", 1)) is Verdict.DUPLICATE, "its window is still open"


def test_an_unread_topic_never_seen_holds_windows_open_however_far_the_others_ran() -> None:
    """A replay on a slow machine: one partition's likes ran two hours of event time ahead of its first
    comment. While the comments topic has messages unread there, no window closes, so the comment of the
    first minute finds its window's sets and the unique engagers stay exact (they were undercounted when
    an unseen topic held windows for only an hour)."""
    book = EngagementBook(allowed_lateness_ms=MIN)
    book.add(ev("like", "a", 1, user="u1"), ("likes", 0))
    book.add(ev("like", "b", 2, user="u1"), ("likes", 1))
    book.add(ev("like", "z", 2 * 3600, user="u9"), ("likes", 2))
    assert book.closing_ms(("likes", "comments")) == T0 + 3600_000 - MIN, "held for an hour, unread or not"
    book.evict(("likes", "comments"), unread_topics=("comments",))
    assert book.add(ev("comment", "c", 3, user="u6"), ("comments", 0)) is Verdict.COUNTED
    first = next(w for w in book.drain_touched() if w.minute_ms == T0)
    assert (first.likes, first.comments, first.unique_engagers) == (2, 1, 2)
    assert book.add(ev("comment", "c", 3, user="u6"), ("comments", 1)) is Verdict.DUPLICATE, "ids kept"
    book.evict(("likes", "comments"))  # everything read: the comments' watermark closes the first minute
    assert book.closing_ms() == 3000 + T0 - MIN
    book.add(ev("comment", "d", 2 * 3600, user="u7"), ("comments", 2))
    book.evict(("likes", "comments"))
    assert book.add(ev("like", "e", 4, user="u2"), ("likes", 3)) is Verdict.LATE


def test_a_topic_a_day_behind_holds_windows_only_while_it_has_messages_unread() -> None:
    book = EngagementBook(allowed_lateness_ms=MIN)
    book.add(ev("comment", "c", 60), ("comments", 0))
    book.add(ev("like", "a", 2 * 86_400), ("likes", 0))
    assert book.closing_ms(unread_topics=("comments",)) == T0 + 60_000 - MIN, "its backlog may reach them"
    assert book.closing_ms(unread_topics=()) == T0 + 2 * DAY - MIN, "a trickle a day behind holds nothing"


def test_every_event_of_one_message_counts() -> None:
    book = EngagementBook(allowed_lateness_ms=MIN)
    verdicts = [book.add(ev("like", f"e{i}", i), ("likes", 3)) for i in range(5)]
    assert verdicts == [Verdict.COUNTED] * 5 and book.drain_touched()[0].likes == 5


def test_windows_restored_past_the_closing_time_come_back_as_closing_them_would_leave_them() -> None:
    # A restore builds the windows it knows to be closed without their sets; the result must be what
    # restoring every window open and then closing the passed ones gives (the path it replaced).
    source = EngagementBook(allowed_lateness_ms=2 * MIN)
    events = [ev("like", f"l{i}", i * 7, post=f"p{i % 3}", user=f"u{i % 5}") for i in range(120)]
    events += [ev("repost", f"r{i}", i * 11, post=f"p{i % 2}", user=f"u{i % 4}") for i in range(60)]
    for n, event in enumerate(events):
        source.add(event, ("likes" if event.type == "like" else "reposts", n))
    saved = source.drain_changes()
    topics = ["likes", "reposts"]
    old, new = EngagementBook(2 * MIN), EngagementBook(2 * MIN)
    for book in (old, new):
        book.max_event_ms_by_topic = dict(source.max_event_ms_by_topic)
    closing = new.closing_ms(topics, unread_topics=topics)
    for key, state in saved.items():
        assert state is not None
        old.restore(key, state)
        new.restore(key, state, closing)
    for book in (old, new):
        book.close_passed(topics, unread_topics=topics)
    closed = [key for key, w in new._by_key.items() if w.event_ids is None]
    assert closed and len(closed) < len(saved), "some windows closed, some still open"
    assert new._by_key == old._by_key
    assert new.drain_touched() == old.drain_touched()
