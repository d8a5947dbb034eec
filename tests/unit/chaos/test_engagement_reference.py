"""The reference's intake and engagement minutes: what is accepted, counted, deduplicated or late."""

from __future__ import annotations

import orjson

from pulse.chaos import partition_of
from schemas.wire import partition_of as pipeline_partition_of
from tests.unit.chaos.scenes import T0, WALL, Scene

MINUTE = (T0 - T0 % 60_000) + 0


def row(scene: Scene, post: str = "p1", minute_ms: int = MINUTE, **rules: object) -> tuple[int, ...]:
    r = scene.expected(**rules).engagement[("vk", "c1", post, minute_ms)]
    return (r.likes, r.unlikes, r.comments, r.reposts, r.unique_engagers)


def test_each_kind_counts_in_the_minute_of_its_own_time() -> None:
    s = Scene()
    s.ev("like", 1, user="a")
    s.ev("like", 2, user="b")
    s.ev("unlike", 3, user="c")
    s.ev("repost", 4, user="a")
    s.comment("m1", 5, user="d")
    s.ev("like", 61, user="a")
    expected = s.expected()
    first = expected.engagement[("vk", "c1", "p1", MINUTE)]
    assert (first.likes, first.unlikes, first.comments, first.reposts) == (2, 1, 1, 1)
    assert first.unique_engagers == 3  # a, b, d: an unlike engages nobody
    assert first.score == 1 + 2 + 3
    assert row(s, minute_ms=MINUTE + 60_000) == (1, 0, 0, 0, 1)


def test_the_score_never_counts_unlikes_below_zero() -> None:
    s = Scene()
    s.ev("unlike", 1)
    s.ev("unlike", 2)
    s.ev("repost", 3)
    assert s.expected().engagement[("vk", "c1", "p1", MINUTE)].score == 3.0


def test_a_repeated_event_id_counts_once_and_the_first_line_wins() -> None:
    s = Scene()
    first = s.ev("like", 1, event_id="x")
    s.lines.append(first)
    s.ev("like", 70, event_id="x")  # the same id, another minute: a duplicate still
    expected = s.expected()
    assert row(s) == (1, 0, 0, 0, 1)
    assert ("vk", "c1", "p1", MINUTE + 60_000) not in expected.engagement
    assert expected.duplicate_lines == (2, 3)


def test_edits_deletes_posts_and_follows_count_nothing() -> None:
    s = Scene()
    s.comment("m1", 1)
    s.ev("comment_edit", 2, comment_id="m1", text="edited")
    s.ev("comment_delete", 3, comment_id="m1")
    s.ev("post", 4)
    s.ev("follow", 5, post="-")
    assert row(s) == (0, 0, 1, 0, 1)


def test_community_replies_count_as_comments_and_their_authors_as_engagers() -> None:
    s = Scene()
    s.comment("m1", 1, user="a")
    s.reply("m1", 2)
    assert row(s) == (0, 0, 2, 0, 2)


def test_out_of_order_within_the_lateness_counts_beyond_it_is_late() -> None:
    s = Scene()
    s.ev("like", 300, user="new")
    s.ev("like", 181, user="within")  # 119 s behind the newest like: counted
    s.ev("like", 179, user="beyond")  # 121 s behind: late
    expected = s.expected(allowed_lateness_s=120)
    assert expected.late_events == 1
    assert row(s, minute_ms=MINUTE + 180_000, allowed_lateness_s=120) == (1, 0, 0, 0, 1)
    assert ("vk", "c1", "p1", MINUTE + 120_000) not in expected.engagement


def test_lateness_is_judged_per_topic_and_partition() -> None:
    posts = {partition_of(f"vk:c1:p{i}", 4): f"p{i}" for i in range(40)}
    s = Scene()
    s.ev("like", 600, post=posts[0])
    s.ev("repost", 1, post=posts[0])  # another topic: not late
    s.comment("m1", 1, post=posts[0])  # another topic: not late
    s.ev("like", 1, post=posts[1])  # another partition: not late
    s.ev("like", 1, post=posts[0])  # the same lane: late
    expected = s.expected(partitions=4)
    assert expected.late_events == 1
    assert row(s, post=posts[0], partitions=4) == (0, 0, 1, 1, 1)
    assert row(s, post=posts[1], partitions=4) == (1, 0, 0, 0, 1)


def test_late_events_do_not_move_the_lane_forward() -> None:
    s = Scene()
    s.ev("like", 1000)
    s.ev("like", 1)  # late
    s.ev("like", 880)  # 120 s behind the newest counted: on the boundary, counted
    assert s.expected(allowed_lateness_s=120).late_events == 1


def test_malformed_lines_and_events_from_the_future_are_rejected_blank_lines_skipped() -> None:
    s = Scene()
    s.ev("like", 1)
    s.lines += [b"not json at all", b"", b"   ", b'{"event_id": "x1", "type": "like"}', b'{"event_id": 5}']
    ahead = {"event_id": "f", "type": "like", "platform": "vk", "community_id": "c1", "post_id": "p1",
             "user_id": "u", "ts": WALL + 301_000}  # fmt: skip
    at_limit = ahead | {"event_id": "g", "ts": WALL + 300_000}
    s.lines += [orjson.dumps(ahead), orjson.dumps(at_limit)]
    s.lines.append(b'{"event_id": "c", "type": "like", "platform": "vk", "community_id": "c1", "post_id": "p1", '
                   b'"user_id": "u", "ts": 1, "comment_id": "m"}')  # fmt: skip
    expected = s.expected()
    assert expected.rejected_lines == (2, 5, 6, 7, 9)
    assert expected.accepted == 2
    assert expected.input_end_ms == WALL + 300_000


def test_partitions_are_kafkas_default_partitioner_on_the_post_key() -> None:
    for i in range(200):
        key = f"vk:{i % 7}:post-{i}"
        for partitions in (1, 2, 4, 12):
            assert partition_of(key, partitions) == pipeline_partition_of(key.encode(), partitions)
