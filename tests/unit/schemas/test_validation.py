"""The contract's validator: good events normalise, every bad one names its field and problem."""

from __future__ import annotations

import orjson
import pytest

from schemas import (
    COMMUNITY_POST_ID,
    CanonicalEvent,
    EventType,
    InvalidEvent,
    encode_event,
    parse_line,
    validate,
)
from tests.events import BASE_TS_MS, wire


def test_like_normalises_to_canonical_event() -> None:
    event = validate(wire("like", age_band="18-24", gender="female", country="DE"))
    assert event == CanonicalEvent(
        event_id="like-1", type=EventType.LIKE, platform="vk", community_id="c1", post_id="p1",
        user_id="u1", ts=BASE_TS_MS, age_band="18-24", gender="female", country="DE",
    )  # fmt: skip
    assert event.post_key == "vk:c1:p1"


def test_comment_keeps_thread_fields() -> None:
    event = validate(wire("comment", comment_id="m2", parent_id="m1", by_community=True, text="thanks!"))
    assert (event.comment_id, event.parent_id, event.by_community, event.text) == (
        "m2",
        "m1",
        True,
        "thanks!",
    )


def test_follows_are_about_the_community_not_a_post() -> None:
    follow = validate(wire("follow", post_id=COMMUNITY_POST_ID))
    assert (follow.type, follow.post_key) == (EventType.FOLLOW, "vk:c1:-")
    assert validate(wire("unfollow", post_id="-")).type is EventType.UNFOLLOW
    with pytest.raises(InvalidEvent, match=r"field 'post_id': must be '-' on follow events") as on_a_post:
        validate(wire("follow", post_id="p1"))
    assert on_a_post.value.field == "post_id"
    with pytest.raises(InvalidEvent, match=r"field 'post_id': '-' names the community itself"):
        validate(wire("like", post_id="-"))
    with pytest.raises(InvalidEvent, match=r"field 'text': belongs to comment events only, not unfollow"):
        validate(wire("unfollow", post_id="-", text="bye"))


def test_by_community_defaults_to_false() -> None:
    raw = wire("comment")
    del raw["by_community"]
    assert validate(raw).by_community is False


@pytest.mark.parametrize(
    ("ts", "expected_ms"),
    [
        ("2026-11-23T18:04:05+03:00", 1_795_446_245_000),
        ("2026-11-23T15:04:05Z", 1_795_446_245_000),
        ("2026-11-23T15:04:05.250Z", 1_795_446_245_250),
        ("2026-11-23 15:04:05-00:00", 1_795_446_245_000),
        (1_795_014_245_123, 1_795_014_245_123),
    ],
)
def test_event_time_is_stored_as_utc_epoch_ms(ts: object, expected_ms: int) -> None:
    event = validate(wire("like", ts=ts))
    assert event.ts_ms == expected_ms
    assert event.event_time.utcoffset() is not None and event.event_time.utcoffset().total_seconds() == 0


def test_wire_form_round_trips() -> None:
    event = validate(wire("comment", parent_id="m0", age_band="25-34"))
    assert parse_line(encode_event(event)) == event
    assert orjson.loads(encode_event(event))["ts"] == event.ts_ms


@pytest.mark.parametrize(
    ("line", "field", "problem"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"\xff\xfe{}", None, "not valid JSON"),
        (b'{"ts": NaN}', None, "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, None, "must be an object; got array"),
        (b'{"text": ' + b"[" * 5000 + b"]" * 5000 + b"}", "text", "got array"),
        (b"[1, 2]", None, "must be an object; got array"),
        (b'"a string"', None, "must be an object; got string"),
        (
            orjson.dumps({k: v for k, v in wire("like").items() if k != "event_id"}),
            "event_id",
            "required but missing",
        ),
        (orjson.dumps(wire("like", event_id="")), "event_id", "must be a string with length >= 1"),
        (orjson.dumps(wire("like", event_id=17)), "event_id", "must be a string; got integer"),
        (orjson.dumps(wire("like", type="love")), "type", "must be one of like, unlike, comment"),
        (orjson.dumps(wire("like", type=None)), "type", "must be a string; got null"),
        (orjson.dumps(wire("like", platform="VK!")), "platform", "lowercase name"),
        (orjson.dumps(wire("like", user_id=None)), "user_id", "must be a string; got null"),
        (orjson.dumps(wire("like", ts="yesterday")), "ts", "not an RFC 3339 time"),
        (orjson.dumps(wire("like", ts="2026-11-23T15:04:05")), "ts", "with a UTC offset"),
        (orjson.dumps(wire("like", ts="2026-11-23")), "ts", "not an RFC 3339 time"),
        (orjson.dumps(wire("like", ts="2026-02-30T10:00:00Z")), "ts", "not a real time"),
        (orjson.dumps(wire("like", ts=1_795_014_245)), "ts", "looks like seconds"),
        (orjson.dumps(wire("like", ts=1.5e12)), "ts", "must be an integer or string; got number"),
        (orjson.dumps(wire("like", ts=True)), "ts", "must be an integer or string; got boolean"),
        (
            b'{"event_id":"e","type":"like","platform":"vk","community_id":"c","post_id":"p","user_id":"u","ts":'
            + b"9" * 100_000
            + b"}",
            "ts",
            "number is out of range",
        ),
        (
            orjson.dumps({k: v for k, v in wire("comment").items() if k != "comment_id"}),
            "comment_id",
            "required on comment",
        ),
        (orjson.dumps(wire("comment", by_community="yes")), "by_community", "must be a boolean; got string"),
        (orjson.dumps(wire("comment", text=["x"])), "text", "must be a string or null; got array"),
        (orjson.dumps(wire("like", text="hi")), "text", "comment events only"),
        (orjson.dumps(wire("like", evnt_id="x")), "evnt_id", "not a field of the canonical event"),
        (orjson.dumps(wire("like", age_band="20s")), "age_band", "must be one of"),
        (orjson.dumps(wire("like", gender="f")), "gender", "must be one of"),
        (orjson.dumps(wire("like", country="Germany")), "country", "ISO 3166"),
        (orjson.dumps(wire("like", country="de")), "country", "ISO 3166"),
        (orjson.dumps(wire("like", country="DE\n")), "country", "ISO 3166"),
        (orjson.dumps(wire("like", country=49)), "country", "must be a string or null; got integer"),
        (b'{"x": "' + b"a" * (1 << 20) + b'"}', None, "more than the limit"),
    ],
)
def test_rejection_names_field_and_problem(line: bytes, field: str | None, problem: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_line(line, line_no=7)
    assert caught.value.field == field
    assert problem in caught.value.problem
    assert caught.value.line == 7
    assert caught.value.reason.startswith("line 7: " + (f"field '{field}': " if field else ""))


def test_reason_reads_as_one_sentence() -> None:
    with pytest.raises(InvalidEvent) as caught:
        validate(wire("like", type="love"))
    assert str(caught.value) == (
        "field 'type': must be one of like, unlike, comment, comment_edit, comment_delete, repost, post, follow, unfollow; got 'love'"
    )
