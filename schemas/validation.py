"""Turns untrusted JSON into `CanonicalEvent`s, or says exactly which field is wrong and why.

This runs once per event on every ingest path (hundreds of thousands a second on replay), so it is plain
Python over the dict orjson returns, checking the fields in a fixed order and stopping at the first
problem. The published JSON Schema (`canonical_event.schema.json`) states the same rules for other teams; a
test keeps the two in agreement.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson

from schemas.errors import InvalidEvent
from schemas.event import AGE_BANDS, GENDERS, CanonicalEvent, EventType

MAX_LINE_BYTES = 1 << 20
MAX_ID_CHARS = 256
MAX_TEXT_CHARS = 65_536
# Event times outside these bounds are almost always seconds sent as milliseconds, or garbage.
MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z

_TYPES = {t.value: t for t in EventType}
_PLATFORM = re.compile(r"[a-z][a-z0-9_]{0,31}")
_COUNTRY = re.compile(r"[A-Z]{2}")
# RFC 3339 date-time: full date, full time, optional fraction, and a mandatory offset.
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
_REQUIRED = ("event_id", "type", "platform", "community_id", "post_id", "user_id", "ts")
_ID_FIELDS = ("event_id", "community_id", "post_id", "user_id")
_COMMENT_FIELDS = frozenset({"comment_id", "parent_id", "by_community", "text"})
_KNOWN = frozenset(_REQUIRED) | _COMMENT_FIELDS | {"age_band", "gender", "country"}
_JSON_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def parse_line(line: bytes | str, *, line_no: int | None = None) -> CanonicalEvent:
    """Decodes one NDJSON line into an event; raises `InvalidEvent` naming the line, field and problem."""
    try:
        if len(line) > MAX_LINE_BYTES:
            raise InvalidEvent(None, f"line is {len(line)} bytes, more than the limit of {MAX_LINE_BYTES}")
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InvalidEvent(None, f"not valid JSON: {exc}") from None
        return validate(obj)
    except InvalidEvent as exc:
        if line_no is None:
            raise
        raise exc.at_line(line_no) from None


def validate(obj: Any) -> CanonicalEvent:
    """Checks a decoded JSON value against the contract and returns the normalised event."""
    if not isinstance(obj, dict):
        raise InvalidEvent(None, f"an event must be a JSON object, got {_json_type(obj)}")
    for name in _REQUIRED:
        if name not in obj:
            raise InvalidEvent(name, "is required but missing")
    unknown = obj.keys() - _KNOWN
    if unknown:
        raise InvalidEvent(sorted(unknown)[0], "is not a field of the canonical event")
    for name in _ID_FIELDS:
        _check_id(name, obj[name])

    type_value = obj["type"]
    event_type = _TYPES.get(type_value) if isinstance(type_value, str) else None
    if event_type is None:
        raise InvalidEvent("type", f"must be one of {', '.join(_TYPES)}; got {_show(type_value)}")

    platform = obj["platform"]
    if not isinstance(platform, str) or not _PLATFORM.fullmatch(platform):
        raise InvalidEvent(
            "platform", f"must be a lowercase name like 'vk' or 'telegram'; got {_show(platform)}"
        )

    ts_ms = parse_ts(obj["ts"])

    comment_id = parent_id = text = None
    by_community = False
    if event_type.is_comment:
        if "comment_id" not in obj:
            raise InvalidEvent("comment_id", f"is required on {event_type.value} events")
        comment_id = _check_id("comment_id", obj["comment_id"])
        parent_id = obj.get("parent_id")
        if parent_id is not None:
            _check_id("parent_id", parent_id)
        by_community = obj.get("by_community", False)
        if not isinstance(by_community, bool):
            raise InvalidEvent("by_community", f"must be true or false; got {_show(by_community)}")
        text = obj.get("text")
        if text is not None:
            if not isinstance(text, str):
                raise InvalidEvent("text", f"must be a string; got {_json_type(text)}")
            if len(text) > MAX_TEXT_CHARS:
                raise InvalidEvent("text", f"has {len(text)} characters, more than {MAX_TEXT_CHARS}")
    else:
        stray = obj.keys() & _COMMENT_FIELDS
        if stray:
            raise InvalidEvent(sorted(stray)[0], f"belongs to comment events only, not {event_type.value}")

    age_band = obj.get("age_band")
    if age_band is not None and age_band not in AGE_BANDS:
        raise InvalidEvent("age_band", f"must be one of {', '.join(AGE_BANDS)}; got {_show(age_band)}")
    gender = obj.get("gender")
    if gender is not None and gender not in GENDERS:
        raise InvalidEvent("gender", f"must be one of {', '.join(GENDERS)}; got {_show(gender)}")
    country = obj.get("country")
    if country is not None and not (isinstance(country, str) and _COUNTRY.fullmatch(country)):
        raise InvalidEvent("country", f"must be an ISO 3166 alpha-2 code like 'DE'; got {_show(country)}")

    return CanonicalEvent(
        event_id=obj["event_id"],
        type=event_type,
        platform=platform,
        community_id=obj["community_id"],
        post_id=obj["post_id"],
        user_id=obj["user_id"],
        ts_ms=ts_ms,
        comment_id=comment_id,
        parent_id=parent_id,
        by_community=by_community,
        text=text,
        age_band=age_band,
        gender=gender,
        country=country,
    )


def parse_ts(value: Any) -> int:
    """Event time as UTC epoch milliseconds, from RFC 3339 with an offset or integer epoch milliseconds."""
    if type(value) is int:
        if not MIN_TS_MS <= value < MAX_TS_MS:
            hint = " (looks like seconds; the contract wants milliseconds)" if 0 < value < 10**11 else ""
            raise InvalidEvent("ts", f"epoch milliseconds {value} is outside 2000..2100{hint}")
        return value
    if isinstance(value, str):
        if not RFC3339.fullmatch(value):
            raise InvalidEvent(
                "ts",
                f"is not an RFC 3339 time with a UTC offset (e.g. '2026-11-23T18:04:05+03:00'): {_show(value)}",
            )
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidEvent("ts", f"is not a real time ({exc}): {_show(value)}") from None
        ts_ms = round(parsed.timestamp() * 1000)
        if not MIN_TS_MS <= ts_ms < MAX_TS_MS:
            raise InvalidEvent("ts", f"{_show(value)} is outside 2000..2100")
        return ts_ms
    raise InvalidEvent(
        "ts", f"must be an RFC 3339 string or integer epoch milliseconds; got {_json_type(value)}"
    )


def _check_id(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidEvent(name, f"must be a string; got {_json_type(value)} {_show(value)}")
    if not value or len(value) > MAX_ID_CHARS:
        raise InvalidEvent(name, f"must have 1 to {MAX_ID_CHARS} characters; got {len(value)}")
    return value


def _json_type(value: Any) -> str:
    return "null" if value is None else _JSON_NAMES.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
