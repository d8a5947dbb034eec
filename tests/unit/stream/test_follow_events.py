"""Follows and unfollows reach the stream processors only from producers we do not control (ours send them
to the followers topic, which no processor reads). On an input topic they are valid events the
processors have no use for: passed over, never dead-lettered, never counted as engagement, never a clock."""

from __future__ import annotations

from pipeline.stream.partition import PartitionProcessor, ProcessingRules
from pipeline.stream.sla import SlaPolicy
from schemas import encode_message, validate
from tests.events import BASE_TS_MS, wire

RULES = ProcessingRules(allowed_lateness_ms=60_000, sla=SlaPolicy(default_s=600), sla_grace_ms=0)
WALL_MS = BASE_TS_MS + 86_400_000
HOUR_MS = 3_600_000


def test_follows_on_an_input_topic_are_passed_over_cleanly() -> None:
    processor = PartitionProcessor(0, RULES)
    message = encode_message(
        [
            validate(wire("like", event_id="l1")),
            validate(wire("follow", event_id="f1", post_id="-", ts=BASE_TS_MS + HOUR_MS)),
            validate(wire("unfollow", event_id="f2", post_id="-", ts=BASE_TS_MS + HOUR_MS)),
            validate(wire("comment", event_id="c1")),
        ]
    )
    effects = processor.process("likes", 0, message, WALL_MS)
    assert effects.rejected == []  # not a dead letter
    assert [r.comment_id for r in effects.sla_records] == ["m1"]  # the comment's clock, nothing else
    windows = processor.settle().windows
    assert [(w.post_id, w.likes, w.comments) for w in windows] == [("p1", 1, 1)]  # no post "-"

    # A follow an hour later did not move the topic's event time: a like from before it is not late.
    later = processor.process("likes", 1, encode_message([validate(wire("like", event_id="l2"))]), WALL_MS)
    assert later.rejected == []
    assert [(w.post_id, w.likes) for w in processor.settle().windows] == [("p1", 2)]
