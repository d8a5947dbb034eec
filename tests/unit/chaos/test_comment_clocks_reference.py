"""The reference's response clocks: comment_sla rows and comment alerts for every documented rule."""

from __future__ import annotations

from pulse.chaos import Expected, SlaRow
from tests.unit.chaos.scenes import T0, Scene


def sla(expected: Expected, cid: str = "m1") -> SlaRow:
    return expected.sla[("vk", "c1", cid)]


def kinds(expected: Expected, cid: str = "m1") -> set[str]:
    return {a.kind for a in expected.alerts.values() if a.comment_id == cid}


def test_a_reply_in_time_answers_without_alerts() -> None:
    s = Scene()
    s.comment("m1", 0)
    s.reply("m1", 30)
    s.ev("like", 500)
    e = s.expected()
    assert sla(e) == SlaRow("p1", T0, 60.0, T0 + 30_000, 30.0, False, False, 2)
    assert kinds(e) == set()


def test_a_late_reply_breaches_then_resolves() -> None:
    s = Scene()
    s.comment("m1", 0, user="author")
    s.reply("m1", 90)
    e = s.expected()
    assert sla(e) == SlaRow("p1", T0, 60.0, T0 + 90_000, 90.0, True, False, 2)
    unanswered, resolved = e.alerts["vk:c1:m1:unanswered_comment"], e.alerts["vk:c1:m1:resolved"]
    assert (unanswered.fired_at_ms, unanswered.waited_seconds, unanswered.response_seconds) == (
        T0 + 60_000,
        60.0,
        None,
    )
    assert (resolved.fired_at_ms, resolved.waited_seconds, resolved.response_seconds) == (
        T0 + 90_000,
        90.0,
        90.0,
    )
    assert unanswered.author_id == "author" and unanswered.sla_seconds == 60.0


def test_a_reply_within_the_grace_after_the_deadline_comes_before_the_judgement() -> None:
    s = Scene()
    s.comment("m1", 0)
    s.reply("m1", 60.5)  # the deadline is judged 1 s after it: answered late, never breached
    e = s.expected()
    assert sla(e).breached is False and sla(e).response_seconds == 60.5
    assert kinds(e) == set()


def test_other_comments_move_the_partition_time_past_a_deadline_before_the_reply() -> None:
    s = Scene()
    s.comment("m1", 0)
    s.ev("comment_edit", 61, comment_id="other", post="p2")  # any comment event moves the time
    s.reply("m1", 60.5)
    e = s.expected()
    assert sla(e).breached is True
    assert kinds(e) == {"unanswered_comment", "resolved"}


def test_likes_do_not_move_response_time() -> None:
    s = Scene()
    s.comment("m1", 0)
    s.ev("like", 3_000)
    s.reply("m1", 60.5)
    assert sla(s.expected()).breached is False


def test_a_reply_before_its_comment_answers_it_on_arrival() -> None:
    s = Scene()
    s.reply("m1", 10)
    s.comment("m1", 5)
    s.ev("like", 500)
    e = s.expected()
    assert sla(e) == SlaRow("p1", T0 + 5_000, 60.0, T0 + 10_000, 5.0, False, False, 2)
    assert kinds(e) == set()


def test_a_reply_written_before_a_comment_that_arrives_late_is_answered_at_the_comment() -> None:
    s = Scene()
    s.comment("other", 200)
    s.reply("m1", 100)
    s.comment("m1", 120)  # its own deadline passed already: answered on arrival, no alert
    e = s.expected()
    assert sla(e).answered_at_ms == T0 + 120_000 and sla(e).response_seconds == 0.0
    assert sla(e).breached is False and kinds(e) == set()


def test_a_comment_never_answered_breaches_only_if_the_input_passed_its_deadline_and_grace() -> None:
    for end_s, breached in ((61, True), (60.999, False), (60, False)):
        s = Scene()
        s.comment("m1", 0)
        s.ev("post", end_s)  # any event type marks where the input ends
        e = s.expected()
        assert sla(e).breached is breached, end_s
        assert sla(e).stage == int(breached)
        assert sla(e).answered_at_ms is None
        assert kinds(e) == ({"unanswered_comment"} if breached else set())


def test_the_first_reply_counts_later_ones_change_nothing() -> None:
    s = Scene()
    s.comment("m1", 0)
    s.reply("m1", 20)
    s.reply("m1", 200)
    assert sla(s.expected()).answered_at_ms == T0 + 20_000


def test_a_deleted_comment_is_cancelled_without_alerts() -> None:
    s = Scene()
    s.comment("m1", 0)
    s.ev("comment_delete", 10, comment_id="m1")
    s.ev("post", 5_000)
    s.reply("m1", 5_000)  # a reply to a deleted comment changes nothing
    e = s.expected()
    assert sla(e) == SlaRow("p1", T0, 60.0, None, None, False, True, 2)
    assert kinds(e) == set()


def test_a_comment_deleted_after_its_breach_stays_breached_and_never_resolves() -> None:
    s = Scene()
    s.comment("m1", 0)
    s.ev("comment_delete", 100, comment_id="m1")
    s.reply("m1", 120)
    e = s.expected()
    assert (sla(e).breached, sla(e).cancelled, sla(e).answered_at_ms, sla(e).stage) == (True, True, None, 2)
    assert kinds(e) == {"unanswered_comment"}


def test_a_delete_before_its_comment_cancels_nothing() -> None:
    s = Scene()
    s.ev("comment_delete", 1, comment_id="m1")
    s.comment("m1", 0)
    s.ev("post", 30)
    assert sla(s.expected()).cancelled is False


def test_edits_change_nothing_but_time() -> None:
    s = Scene()
    s.comment("m1", 0)
    s.ev("comment_edit", 10, comment_id="m1", text="edited")
    s.reply("m1", 30)
    assert sla(s.expected()).response_seconds == 30.0


def test_only_subscriber_comments_start_clocks_and_only_community_replies_answer() -> None:
    s = Scene()
    s.comment("m1", 0, user="a")
    s.comment("m2", 5, user="b", parent_id="m1")  # a subscriber's reply: its own clock, answers nothing
    s.ev("comment", 6, comment_id="m3", by_community=True, user="admin")  # a community post: no clock
    s.reply("m2", 20)
    s.ev("post", 100)
    e = s.expected()
    assert set(e.sla) == {("vk", "c1", "m1"), ("vk", "c1", "m2")}
    assert sla(e, "m1").breached is True and sla(e, "m1").answered_at_ms is None
    assert sla(e, "m2").answered_at_ms == T0 + 20_000


def test_a_repeated_comment_id_keeps_the_first_clock() -> None:
    s = Scene()
    s.comment("m1", 0)
    s.comment("m1", 30)  # another event id, the same comment
    s.reply("m1", 40)
    assert sla(s.expected()).commented_at_ms == T0


def test_at_risk_fires_at_its_fraction_while_the_clock_runs() -> None:
    s = Scene()
    s.comment("m1", 0)
    s.comment("m2", 0.5)
    s.reply("m2", 10)
    s.comment("m3", 1)
    s.ev("comment_edit", 50, comment_id="x")  # 49 s: m1's warning (48 s) is judged, m3's (48.8 s) too
    s.reply("m1", 55)
    e = s.expected(at_risk_fraction=0.8)
    assert kinds(e, "m1") == {"at_risk"}
    assert e.alerts["vk:c1:m1:at_risk"].fired_at_ms == T0 + 48_000
    assert kinds(e, "m2") == set()
    assert kinds(e, "m3") == {"at_risk"}
    assert "at_risk" in e.alert_kinds
    assert "at_risk" not in s.expected().alert_kinds


def test_a_community_of_its_own_sla() -> None:
    s = Scene()
    s.comment("m1", 0)
    s.comment("m2", 0, community="fast")
    s.ev("post", 40)
    e = s.expected(sla_per_community_s={"fast": 30})
    assert e.sla[("vk", "fast", "m2")].breached is True and e.sla[("vk", "fast", "m2")].sla_seconds == 30.0
    assert sla(e).breached is False


def test_replies_meet_their_comments_only_in_their_partition() -> None:
    from pulse.chaos import partition_of

    posts = {partition_of(f"vk:c1:p{i}", 4): f"p{i}" for i in range(40)}
    s = Scene()
    s.comment("m1", 0, post=posts[0])
    s.reply("m1", 10, post=posts[1])  # written under another post, in another partition
    s.ev("post", 100, post=posts[0])
    assert sla(s.expected(partitions=4)).breached is True
    assert sla(s.expected(partitions=1)).breached is False
