"""Turns untrusted JSON into `CanonicalEvent`s, or says exactly which field is wrong and why.

msgspec decodes and type-checks in one compiled pass; its errors name the field by JSON path
("Expected `str`, got `int` - at `$.event_id`"), which we turn into `InvalidEvent(field, problem)`. The
published JSON Schema (`canonical_event.schema.json`) states the same rules for other teams; a test keeps
the two in agreement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from schemas.errors import EventAhead, InvalidEvent
from schemas.event import AGE_BANDS, GENDERS, CanonicalEvent, EventType

MAX_LINE_BYTES = 1 << 20
MAX_CLOCK_SKEW_S = 300.0  # how far ahead of the wall clock an event time may be (PULSE_MAX_CLOCK_SKEW_S)

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


# An object closed and another opened on the same line: outside a string, never inside one JSON document.
_TWO_ON_A_LINE = re.compile(rb"}[ \t\r]*{")


def parse_lines(value: bytes) -> list[CanonicalEvent]:
    """Every line of an NDJSON value as events, in one compiled pass (blank lines skipped); raises
    `InvalidEvent` if any line breaks the contract, without saying which: `wire.decode_events` then goes
    line by line for the reasons.

    msgspec's `decode_lines` reads any whitespace between documents as a separator, so it took two events
    written on one line (`{...} {...}`) as two valid lines where `parse_line` refuses the line: a replay
    published both and a worker counted both while `pulse validate` called the line bad. A value where an
    object ends and another begins on one line goes line by line instead (also, harmlessly, one whose text
    merely contains `} {`); the search costs about 0.08 us an event against 0.85 us for the decoding."""
    if len(value) > MAX_LINE_BYTES:  # a line that long would be accepted here: let the line check see it
        raise InvalidEvent(None, f"value is {len(value)} bytes, more than one line may be")
    try:
        events = _DECODER.decode_lines(value)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        raise InvalidEvent(None, str(exc)) from None
    if len(events) > 1 and _TWO_ON_A_LINE.search(value):
        raise InvalidEvent(None, "an object ends and another begins on one line")
    return events


def validate(obj: Any) -> CanonicalEvent:
    """Checks a decoded JSON value (e.g. a dict built by a webhook mapper) against the contract."""
    try:
        return msgspec.convert(obj, CanonicalEvent)
    except msgspec.ValidationError as exc:
        raise _translate(exc) from None


@dataclass(frozen=True, slots=True)
class ClockLimit:
    """The latest event time accepted at wall-clock time `now_ms`: the wall clock plus `skew_ms`.

    The contract's own bounds (2000..2100) cannot see the present, and one event stamped a day ahead used
    to move its partition's event-time clocks a day forward: every later event was late and dropped from
    the windows, every open SLA clock fired at once, and the saved state kept it. Kafka refuses record
    timestamps over an hour ahead, but only the first event of a message sets the record's. So every entry
    point (webhooks, replay, simulator) and the stream processors, for producers we do not control, judge
    each event against this limit and dead-letter those beyond it; `pulse validate` reports them."""

    now_ms: int
    skew_ms: int

    @classmethod
    def of(cls, now_ms: int, skew_s: float = MAX_CLOCK_SKEW_S) -> ClockLimit:
        return cls(now_ms, int(skew_s * 1000))

    @property
    def latest_ms(self) -> int:
        return self.now_ms + self.skew_ms

    def refusal(self, event: CanonicalEvent) -> EventAhead | None:
        """Why `event` is refused (its `ts` too far ahead), or None."""
        ahead_ms = event.ts_ms - self.now_ms
        if ahead_ms <= self.skew_ms:
            return None
        return EventAhead(
            "ts",
            f"{_utc(event.ts_ms)} is {_span(ahead_ms)} ahead of the wall clock ({_utc(self.now_ms)}); "
            f"at most {_span(self.skew_ms)} ahead is accepted",
        )


def encode_event(event: CanonicalEvent) -> bytes:
    """The event's canonical JSON: `ts` as epoch milliseconds, default-valued fields left out."""
    return _ENCODER.encode(event)


def encode_events(events: Iterable[CanonicalEvent]) -> bytes:
    """The events' canonical JSON as NDJSON, each line ending in a newline, in one compiled pass."""
    return _ENCODER.encode_lines(events)


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _span(ms: int) -> str:
    """Seconds, exactly, with hours or days beside them when there are many."""
    seconds = ms / 1000
    if seconds < 7200:
        return f"{seconds:.15g} s"
    human = f"{seconds / 3600:.3g} h" if seconds < 172_800 else f"{seconds / 86_400:.3g} days"
    return f"{seconds:.15g} s ({human})"


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
