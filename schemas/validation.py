"""Turns untrusted JSON into `CanonicalEvent`s, or says exactly which field is wrong and why.

msgspec decodes and type-checks in one compiled pass; its errors name the field by JSON path
("Expected `str`, got `int` - at `$.event_id`"), which we turn into `InvalidEvent(field, problem)`. The
published JSON Schema (`canonical_event.schema.json`) states the same rules for other teams; a test keeps
the two in agreement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

from schemas.errors import InvalidEvent
from schemas.event import AGE_BANDS, GENDERS, CanonicalEvent, EventType

MAX_LINE_BYTES = 1 << 20

_DECODER = msgspec.json.Decoder(CanonicalEvent)
_ENCODER = msgspec.json.Encoder()
_AT = re.compile(r"^(.*) - at `\$\.([A-Za-z0-9_]+)")
_NAMED = re.compile(r"(?:unknown|required) field `([^`]*)`")
_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "object": "object",
               "array": "array", "null": "null"}  # fmt: skip
_EXPECTED = re.compile(r"Expected `([^`]+)`(.*?)(?:, got `([^`]+)`)?$")
_CHOICES = {
    "type": ", ".join(t.value for t in EventType),
    "age_band": ", ".join(AGE_BANDS),
    "gender": ", ".join(GENDERS),
}
_PATTERN_HINTS = {
    "country": "must be an ISO 3166 alpha-2 code like 'DE'",
}


def parse_line(line: bytes | str, *, line_no: int | None = None) -> CanonicalEvent:
    """Decodes one NDJSON line into an event; raises `InvalidEvent` naming the line, field and problem."""
    try:
        if len(line) > MAX_LINE_BYTES:
            raise InvalidEvent(None, f"line is {len(line)} bytes, more than the limit of {MAX_LINE_BYTES}")
        try:
            return _DECODER.decode(line)
        except msgspec.ValidationError as exc:
            raise _translate(exc) from None
        except msgspec.DecodeError as exc:
            raise InvalidEvent(None, f"not valid JSON: {exc}") from None
        except RecursionError:
            raise InvalidEvent(None, "not valid JSON: nested too deeply") from None
    except InvalidEvent as exc:
        if line_no is None:
            raise
        raise exc.at_line(line_no) from None


def parse_lines(value: bytes) -> list[CanonicalEvent]:
    """Every line of an NDJSON value as events, in one compiled pass (blank lines skipped); raises
    `InvalidEvent` if any line breaks the contract, without saying which: `wire.decode_events` then goes
    line by line for the reasons."""
    if len(value) > MAX_LINE_BYTES:  # a line that long would be accepted here: let the line check see it
        raise InvalidEvent(None, f"value is {len(value)} bytes, more than one line may be")
    try:
        return _DECODER.decode_lines(value)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        raise InvalidEvent(None, str(exc)) from None


def validate(obj: Any) -> CanonicalEvent:
    """Checks a decoded JSON value (e.g. a dict built by a webhook mapper) against the contract."""
    try:
        return msgspec.convert(obj, CanonicalEvent)
    except msgspec.ValidationError as exc:
        raise _translate(exc) from None


def encode_event(event: CanonicalEvent) -> bytes:
    """The event's canonical JSON: `ts` as epoch milliseconds, default-valued fields left out."""
    return _ENCODER.encode(event)


def encode_events(events: Iterable[CanonicalEvent]) -> bytes:
    """The events' canonical JSON as NDJSON, each line ending in a newline, in one compiled pass."""
    return _ENCODER.encode_lines(events)


def _translate(exc: msgspec.ValidationError) -> InvalidEvent:
    message = str(exc)
    at = _AT.match(message)
    if at:
        return InvalidEvent(at.group(2), _problem(at.group(2), at.group(1)))
    named = _NAMED.search(message)
    if named:
        problem = (
            "is not a field of the canonical event" if "unknown" in message else "is required but missing"
        )
        return InvalidEvent(named.group(1), problem)
    return InvalidEvent(None, _problem(None, message))


def _problem(field: str | None, text: str) -> str:
    """msgspec's wording, in JSON's type names, with the allowed values where there is a short list."""
    if text.startswith("Invalid enum value") and field in _CHOICES:
        return f"must be one of {_CHOICES[field]}; got {text.removeprefix('Invalid enum value ')}"
    if "matching regex" in text and field in _PATTERN_HINTS:
        return _PATTERN_HINTS[field]
    if text.startswith("Integer value out of range"):
        return "number is out of range"
    expected = _EXPECTED.match(text)
    if expected:
        want, detail, got = expected.groups()
        name = " or ".join(_JSON_TYPES.get(part, part) for part in want.split(" | "))
        sentence = f"must be {'an' if name[0] in 'aeiou' else 'a'} {name}"
        sentence += detail.replace("`", "'").replace("of length", "with length")
        return sentence + (f"; got {_JSON_TYPES.get(got, got)}" if got else "")
    return text.replace("`", "'")
