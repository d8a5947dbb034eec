"""The saved state's format: the keys and values the stream processors write to their changelog.

A deployment's changelog outlives every deploy: a worker started on new code restores what the old code
wrote. So the format lives here, in one place, and `tests/unit/stream/test_state_format.py` decodes fixed
byte samples of every version still read; a change that would break restoring an existing deployment
fails there.

Keys are msgpack arrays `[partition, namespace, ...]`; the partition is the input partition the entry
belongs to (faust's table may also hold other partitions' entries). Values are msgpack arrays of the
structs below (`array_like`: no field names on the wire, so fields are only ever appended, with defaults).

| namespace | key after it | value |
| --- | --- | --- |
| `w` (`WINDOW`) | platform, community_id, post_id, minute_ms | `WindowState` |
| `c` (`CLOCK`) | platform, community_id, comment_id | `ClockState` (version 1: `ClockStateV1`) |
| `r` (`EARLY_REPLY`) | platform, community_id, comment_id | the reply's event time, epoch ms (int) |
| `v` (`AGE_CURVE`) | platform, community_id (both "" for the partition's own) | `AgeCurveState` |
| `k` (`SPIKE`) | platform, community_id, post_id | `SpikeState`: the post's last spike episode, on or ended (until the post's windows go) |
| `p` (`COUNTERS`) | (nothing) | `PartitionCounters`, written last in every batch |

A deleted entry is a record with no value (a tombstone).

Versions (`STATE_FORMAT_VERSION` is the one written):
1. Clocks kept the whole comment event (`ClockStateV1`, the event as a msgpack map).
2. Clocks keep what their records and alerts tell (`ClockComment`): half the bytes. Version 1 clocks are
   still read (`decode_clock`), told apart by their shape.
3. Age curves (`v`) and spike episodes (`k`) for spike alerts; the counters gain `curves_folded_to_ms`
   (version 2 counters read with 0: the curves start learning).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgspec

from schemas import CanonicalEvent

STATE_FORMAT_VERSION: Final = 3

WINDOW: Final = "w"
CLOCK: Final = "c"
EARLY_REPLY: Final = "r"
AGE_CURVE: Final = "v"
SPIKE: Final = "k"
COUNTERS: Final = "p"

SNIPPET_CHARS = 140  # of a comment's text, in its clock (and so in its alerts)


class PartitionCounters(msgspec.Struct, array_like=True):
    """A partition's counters and clocks: what its windows and SLA clocks resume from."""

    events: int = 0
    late_events: int = 0
    duplicate_events: int = 0
    rejected_lines: int = 0
    max_event_ms_by_topic: dict[str, int] = msgspec.field(default_factory=dict)
    sla_event_ms: int = 0
    sla_anchor_wall_ms: int = 0
    evicted_at_ms: int = 0
    curves_folded_to_ms: int = 0  # event time up to which posts' ages were folded into the age curves


class AgeCurveState(msgspec.Struct, array_like=True):
    """Engagement per post by age bucket (see `pipeline.stream.spikes`): decayed sums and weights."""

    sums: list[float]
    weights: list[float]


class SpikeState(msgspec.Struct, array_like=True):
    """A post's spike episode: the alert that opened it (NDJSON of `schemas.outputs.Alert`) and the input
    message that raised it, to send the alert again if a crash lost it."""

    alert: bytes
    topic: str
    offset: int
    calm: bool = False  # the episode ended (kept until the post's windows go, so it is not raised twice)


class WindowState(msgspec.Struct, array_like=True):
    """One post's engagement in one minute. The sets (msgpack arrays) are None once the window closed."""

    likes: int
    unlikes: int
    comments: int
    reposts: int
    engagers: set[str] | None
    event_ids: set[str] | None
    closed_engagers: int
    applied: dict[str, int]  # input topic -> the offset of the last message applied to the window


class ClockComment(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """What a clock keeps of its comment: what its records and alerts tell (the text only as their
    snippet). Persisted with the clock, in every changelog record of it: a whole event as a msgpack map
    took about twice the bytes (field names, ids and audience fields no output uses, the full text)."""

    platform: str
    community_id: str
    post_id: str
    comment_id: str
    author_id: str
    commented_at_ms: int
    snippet: str

    @classmethod
    def of(cls, event: CanonicalEvent) -> ClockComment:
        return cls(
            event.platform, event.community_id, event.post_id, event.comment_id or "", event.user_id,
            event.ts_ms, (event.text or "")[:SNIPPET_CHARS],
        )  # fmt: skip


class ClockState(msgspec.Struct, array_like=True):
    """One comment's response clock (version 2)."""

    comment: ClockComment
    deadline_ms: int
    at_risk_ms: int | None
    answered_at_ms: int | None
    warned: bool
    breached: bool
    cancelled: bool
    changed_by: tuple[str, int]  # (topic, offset) of the message that last changed it
    fired_by: dict[str, tuple[str, int, int]]  # alert kind -> (topic, offset, at_ms)


class ClockStateV1(msgspec.Struct, array_like=True):
    """A clock as version 1 persisted it: with the whole event. Still read on restore."""

    event: CanonicalEvent
    deadline_ms: int
    at_risk_ms: int | None
    answered_at_ms: int | None
    warned: bool
    breached: bool
    cancelled: bool
    changed_by: tuple[str, int]
    fired_by: dict[str, tuple[str, int, int]]


_ENCODER = msgspec.msgpack.Encoder()
_KEY_DECODER = msgspec.msgpack.Decoder(tuple)
_COUNTERS_DECODER = msgspec.msgpack.Decoder(PartitionCounters)
_WINDOW_DECODER = msgspec.msgpack.Decoder(WindowState)
_CLOCK_DECODER = msgspec.msgpack.Decoder(ClockState)
_CLOCK_V1_DECODER = msgspec.msgpack.Decoder(ClockStateV1)
_REPLY_DECODER = msgspec.msgpack.Decoder(int)
_CURVE_DECODER = msgspec.msgpack.Decoder(AgeCurveState)
_SPIKE_DECODER = msgspec.msgpack.Decoder(SpikeState)


def state_key(partition: int, namespace: str, *parts: str | int) -> bytes:
    return _ENCODER.encode((partition, namespace, *parts))


def decode_key(key: bytes) -> tuple[Any, ...]:
    """`(partition, namespace, *parts)`."""
    return _KEY_DECODER.decode(key)


def key_partition(key: bytes) -> int:
    """The input partition a state entry belongs to."""
    return int(decode_key(key)[0])


def belongs_to(key: bytes, partition: int) -> bool:
    """Whether a state entry is `partition`'s, mostly without decoding its key: a key is a msgpack array
    (a one-byte header up to 15 items) whose first item is the partition, a one-byte positive fixint below
    128. A restoring worker reads its partitions' entries out of the whole table, one partition at a time."""
    if 0 <= partition < 128 and len(key) > 1 and 0x90 <= key[0] <= 0x9F:
        return key[1] == partition
    return key_partition(key) == partition


def encode_counters(counters: PartitionCounters) -> bytes:
    return _ENCODER.encode(counters)


def decode_counters(value: bytes) -> PartitionCounters:
    return _COUNTERS_DECODER.decode(value)


def encode_window(window: WindowState) -> bytes:
    return _ENCODER.encode(window)


def encode_window_of(
    counts: tuple[int, int, int, int],
    engagers: Iterable[str] | None,
    event_ids: Iterable[str] | None,
    closed_engagers: int,
    applied: dict[str, int],
) -> bytes:
    """The bytes of `encode_window(WindowState(*counts, engagers, event_ids, closed_engagers, applied))`
    from any iterables of members (the engagement book keeps them as dict keys), without the struct."""
    return _ENCODER.encode(
        (
            *counts,
            None if engagers is None else list(engagers),
            None if event_ids is None else list(event_ids),
            closed_engagers,
            applied,
        )
    )


def decode_window(value: bytes) -> WindowState:
    return _WINDOW_DECODER.decode(value)


def encode_clock(clock: ClockState) -> bytes:
    return _ENCODER.encode(clock)


def decode_clock(value: bytes) -> ClockState:
    """A persisted clock, in today's form or as version 1 wrote it (a map for the event)."""
    try:
        return _CLOCK_DECODER.decode(value)
    except msgspec.ValidationError:
        old = _CLOCK_V1_DECODER.decode(value)
        return ClockState(ClockComment.of(old.event), *msgspec.structs.astuple(old)[1:])


def encode_reply_ts(ts_ms: int) -> bytes:
    return _ENCODER.encode(ts_ms)


def decode_reply_ts(value: bytes) -> int:
    return _REPLY_DECODER.decode(value)


def encode_curve(curve: AgeCurveState) -> bytes:
    return _ENCODER.encode(curve)


def decode_curve(value: bytes) -> AgeCurveState:
    return _CURVE_DECODER.decode(value)


def encode_spike(spike: SpikeState) -> bytes:
    return _ENCODER.encode(spike)


def decode_spike(value: bytes) -> SpikeState:
    return _SPIKE_DECODER.decode(value)
