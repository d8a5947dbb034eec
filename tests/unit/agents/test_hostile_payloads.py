"""Arbitrary JSON and bytes into the contract's validator and every platform mapper: each gives an event, a
reason (`InvalidEvent`, `PayloadError`: a 400 or a dead letter) or nothing to do, never another exception.

Two kinds of input: anything at all, and the recorded sample payloads with one value somewhere replaced by
anything (or removed), which reaches the code behind the first checks."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.platforms import Delivery, PayloadError, TelegramThreads, map_meta, map_telegram, map_vk
from schemas import CanonicalEvent, InvalidEvent, decode_events, parse_line, validate
from tests import webhook_payloads as p
from tests.events import wire

EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(EXAMPLES, max_examples=100)  # anything at all: most of it is refused at the first field

# What orjson can hand a mapper: JSON's values, integers up to 64 bits, finite floats, any text.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
json_objects = st.dictionaries(st.text(max_size=12), json_values, max_size=6)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value that holds a value: dictionary keys and list positions."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += paths(inner, (*prefix, index))
    return found


@st.composite
def disturbed(draw: st.DrawFn, sample: dict[str, Any]) -> dict[str, Any]:
    """`sample` with one value replaced by any JSON value, or removed."""
    body = copy.deepcopy(sample)
    where = draw(st.sampled_from(paths(body)))
    parent = body
    for step in where[:-1]:
        parent = parent[step]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent[where[-1]] = draw(json_values)
    return body


VK = [p.VK_COMMENT, p.VK_COMMUNITY_REPLY, p.VK_LIKE, p.VK_REPOST, p.VK_DELETE, p.VK_JOIN, p.VK_LEAVE]
TELEGRAM = [p.TG_COMMENT, p.TG_ANSWER, p.TG_REACTION, {"update_id": 9, "message": p.TG_FORWARD},
            p.TG_SUBSCRIBED, p.TG_UNSUBSCRIBED]  # fmt: skip
META = [p.FB_BATCH, p.IG_COMMENT]
CHANNELS = {str(p.TG_GROUP): str(p.TG_CHANNEL)}


def vk(body: dict[str, Any]) -> Delivery | None:
    try:
        return map_vk(body, ["55501"], 1_795_446_245_000)
    except PayloadError as exc:
        assert exc.reason
        return None


def telegram(body: dict[str, Any]) -> Delivery | None:
    try:
        return map_telegram(body, CHANNELS, TelegramThreads())
    except PayloadError as exc:
        assert exc.reason
        return None


def meta(body: dict[str, Any]) -> list[Delivery]:
    out = []
    for platform in ("facebook", "instagram"):
        try:
            out += map_meta(body, platform)
        except PayloadError as exc:
            assert exc.reason
    return out


def test_the_samples_map_to_events() -> None:
    """The disturbed samples start from payloads that map: the properties below reach past the checks."""
    assert all(vk(body) is not None for body in VK)
    assert sum(telegram(body) is not None for body in TELEGRAM) == 5  # the forward itself is not a comment
    assert len(meta(p.FB_BATCH)) == 8 and len(meta(p.IG_COMMENT)) == 1


@FEW
@given(json_objects)
def test_vk_any_object(body: dict[str, Any]) -> None:
    vk(body)


@EXAMPLES
@given(st.sampled_from(VK).flatmap(disturbed))
def test_vk_disturbed(body: dict[str, Any]) -> None:
    vk(body)


@FEW
@given(json_objects)
def test_telegram_any_object(body: dict[str, Any]) -> None:
    telegram(body)


@EXAMPLES
@given(st.sampled_from(TELEGRAM).flatmap(disturbed))
def test_telegram_disturbed(body: dict[str, Any]) -> None:
    telegram(body)


@FEW
@given(json_objects)
def test_meta_any_object(body: dict[str, Any]) -> None:
    meta(body)


@EXAMPLES
@given(st.sampled_from(META).flatmap(disturbed))
def test_meta_disturbed(body: dict[str, Any]) -> None:
    meta(body)


CANONICAL = [wire("like"), wire("comment", comment_id="m1", text="hi", parent_id="m0", by_community=True),
             wire("follow", post_id="-")]  # fmt: skip


@EXAMPLES
@given(json_values | st.sampled_from(CANONICAL).flatmap(disturbed))
def test_the_validator_gives_an_event_or_a_reason(value: Any) -> None:
    try:
        assert isinstance(validate(value), CanonicalEvent)
    except InvalidEvent as exc:
        assert exc.reason


@EXAMPLES
@given(st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_a_line_of_any_bytes_gives_an_event_or_a_reason(line: bytes) -> None:
    try:
        assert isinstance(parse_line(line), CanonicalEvent)
    except InvalidEvent as exc:
        assert exc.reason


@EXAMPLES
@given(st.lists(st.binary(max_size=80) | st.just(b'{"event_id": "x"}'), max_size=5).map(b"\n".join))
def test_a_message_of_any_bytes_is_decoded_line_by_line(value: bytes) -> None:
    events, rejected = decode_events(value)
    assert len(events) + len(rejected) == sum(1 for line in value.split(b"\n") if line.strip())
