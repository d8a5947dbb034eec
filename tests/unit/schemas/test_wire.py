"""Messages on Kafka: NDJSON of 1..N events, routed to the topic for their type."""

from __future__ import annotations

import orjson

from schemas import (
    CanonicalEvent,
    EventType,
    Rejected,
    Topics,
    decode_events,
    decode_message,
    encode_event,
    encode_message,
    validate,
)
from tests.events import wire


def test_message_of_many_events_round_trips() -> None:
    events = [validate(wire("like", event_id=f"e{i}", ts=1_795_000_000_000 + i)) for i in range(5)]
    value = encode_message(events)
    assert value.count(b"\n") == 5
    assert list(decode_message(value)) == events


def test_single_event_without_trailing_newline_is_accepted() -> None:
    event = validate(wire("repost"))
    value = encode_message([event]).rstrip(b"\n")
    assert list(decode_message(value)) == [event]


def test_bad_line_is_reported_and_neighbours_survive() -> None:
    good = [validate(wire("like", event_id=f"e{i}")) for i in range(2)]
    value = encode_message(good[:1]) + b'{"event_id": "broken"}\n' + encode_message(good[1:])
    decoded = list(decode_message(value))
    assert decoded[0] == good[0] and decoded[2] == good[1]
    rejected = decoded[1]
    assert isinstance(rejected, Rejected)
    assert rejected.line == 2
    assert rejected.raw == b'{"event_id": "broken"}'
    assert rejected.error.field == "type" and rejected.error.reason.startswith("line 2: field 'type'")


def test_each_type_has_a_topic() -> None:
    topics = Topics()
    assert topics.for_type(EventType.LIKE) == topics.for_type(EventType.UNLIKE) == "likes"
    assert {
        topics.for_type(t) for t in (EventType.COMMENT, EventType.COMMENT_EDIT, EventType.COMMENT_DELETE)
    } == {"comments"}
    assert topics.for_type(EventType.REPOST) == "reposts"
    assert topics.for_type(EventType.FOLLOW) == topics.for_type(EventType.UNFOLLOW) == "followers"
    assert "followers" in topics.event_topics and "followers" not in topics.processor_inputs
    assert set(topics.all) >= {"likes", "comments", "reposts", "alerts", "dead-letters"}


def test_comment_fields_stay_off_non_comment_events() -> None:
    like = CanonicalEvent("e", EventType.LIKE, "vk", "c", "p", "u", 1_795_000_000_000)
    wire_form = orjson.loads(encode_event(like))
    assert "comment_id" not in wire_form and "by_community" not in wire_form


def test_outputs_are_cut_into_messages_under_a_size_between_lines() -> None:
    from schemas.outputs import WindowValue, decode_outputs, encode_output_messages, encode_outputs

    windows = [
        WindowValue("vk", "c1", f"p{i}" * (i % 7 + 1), 60_000 * i, i, 0, 1, 0, 2, 1.5) for i in range(3_000)
    ]
    whole = encode_outputs(windows)
    messages = encode_output_messages(windows, 10_000)
    assert len(messages) > len(whole) // 10_000 and all(len(m) <= 10_000 for m in messages)
    assert b"".join(messages) == whole and all(m.endswith(b"\n") for m in messages)
    assert [w for m in messages for w in decode_outputs(m)] == windows
    assert encode_output_messages(windows[:10], 10_000) == [encode_outputs(windows[:10])], (
        "small: one message"
    )
    assert encode_output_messages([], 10_000) == []
    assert encode_output_messages(windows[:3], 10) == [encode_outputs([w]) for w in windows[:3]], (
        "a line alone"
    )


def test_an_event_stamped_beyond_the_clock_limit_is_rejected_naming_ts() -> None:
    from schemas import ClockLimit, EventAhead, decode_events

    now = 1_795_000_000_000
    limit = ClockLimit.of(now, 300)
    in_time = [validate(wire("like", event_id=f"e{i}", ts=now + 300_000 * i)) for i in range(2)]  # 0, +5 min
    ahead = validate(wire("like", event_id="late-night", ts=now + 300_001))
    assert decode_events(encode_message(in_time), limit) == (in_time, []), "the compiled pass, all in time"
    events, rejected = decode_events(encode_message([in_time[0], ahead, in_time[1]]), limit)
    assert events == in_time
    (refused,) = rejected
    assert refused.line == 2 and refused.raw == encode_event(ahead)
    assert isinstance(refused.error, EventAhead) and refused.error.code == "ts_ahead_of_clock"
    assert str(refused.error).startswith(
        "line 2: field 'ts': 2026-11-18T11:11:40.001Z is 300.001 s ahead of the wall clock"
    )
    assert decode_events(encode_message([ahead]))[1] == [], "without a limit the contract alone judges"


def test_an_erasure_tick_names_its_person_and_no_other_tick_does() -> None:
    import pytest

    from schemas.wire import Erasure, end_of_input_tick, erasure_tick, read_erasure, read_tick

    tick = erasure_tick("vk", 'id:with "quotes" and ünicode')
    assert read_erasure(tick) == Erasure("vk", 'id:with "quotes" and ünicode')
    assert read_erasure(b"") is None and read_erasure(end_of_input_tick(5)) is None
    with pytest.raises(ValueError, match="names nobody"):
        read_erasure(b"erase:{}")
    with pytest.raises(ValueError):
        read_tick(tick)  # an erasure is never taken for an end-of-input time


def test_two_events_on_one_line_are_one_rejected_line_as_pulse_validate_says() -> None:
    """The one-pass decoder took `{...} {...}` on one line for two valid lines, where the line-by-line
    check (the reasons, `pulse validate`) refuses the line: now both agree, and the good lines around it
    are kept."""
    a, b, c = (validate(wire("like", event_id=f"e{i}")) for i in range(3))
    for gap in (b" ", b"", b"\t ", b" \r "):
        value = encode_event(a) + b"\n" + encode_event(b) + gap + encode_event(c) + b"\n" + encode_event(a)
        events, rejected = decode_events(value)
        assert events == [a, a], gap
        assert [r.line for r in rejected] == [2], gap
        assert "not valid JSON" in rejected[0].error.reason


def test_braces_inside_a_text_do_not_change_what_is_decoded() -> None:
    """`} {` inside a comment's text sends the value down the line-by-line path: same events."""
    events = [validate(wire("comment", event_id=f"e{i}", text="it works } { honestly")) for i in range(3)]
    assert decode_events(encode_message(events)) == (events, [])
