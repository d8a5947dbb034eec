"""How events travel through Kafka: which topic, which key, and NDJSON values holding 1..N events.

A message value is one or more canonical events as NDJSON (one JSON object per line, `\\n`-separated, a
trailing newline allowed). Every event of a message belongs to the same partition; a message holding one
post's events carries that post's key. Producers stamp a record with the event time of its first event;
the topics that `pulse topics` creates restamp it with the broker's append time (their time retention
counts from arrival). Batching
several events per message is what makes the stream processors fast: faust pays ~45 us per message
whatever it carries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter

import msgspec
from kafka.partitioner.default import murmur2

from schemas.errors import InvalidEvent
from schemas.event import FOLLOW_TYPES, CanonicalEvent, EventType
from schemas.validation import ClockLimit, encode_events, parse_line, parse_lines

_TS = attrgetter("ts")  # an event's time in epoch milliseconds, without the property call


@dataclass(frozen=True, slots=True)
class Topics:
    """The pipeline's topic names; a deployment may prefix or rename them, the roles stay."""

    likes: str = "likes"
    comments: str = "comments"
    reposts: str = "reposts"
    posts: str = "posts"
    followers: str = "followers"  # follow and unfollow: about a community, read by the loader only
    engagement: str = "engagement"  # processor output: window values and rolling totals
    comment_sla: str = "comment-sla"  # processor output: one comment's response clock
    alerts: str = "alerts"
    metrics: str = "pipeline-metrics"  # processor output: per-partition counters (late events, ...)
    ticks: str = "pipeline-ticks"  # internal: the processors' wall-clock beat, one per partition
    dead_letters: str = "dead-letters"

    def for_type(self, event_type: EventType) -> str:
        if event_type in (EventType.LIKE, EventType.UNLIKE):
            return self.likes
        if event_type.is_comment:
            return self.comments
        if event_type is EventType.REPOST:
            return self.reposts
        if event_type in FOLLOW_TYPES:
            return self.followers
        return self.posts

    @classmethod
    def prefixed(cls, prefix: str) -> Topics:
        """The same roles with every name prefixed, e.g. for several pipelines sharing one cluster."""
        defaults = cls()
        return cls(**{name: prefix + getattr(defaults, name) for name in cls.__dataclass_fields__})

    @property
    def processor_inputs(self) -> tuple[str, ...]:
        """The event topics the stream processors count, in the order their partitions are read."""
        return (self.likes, self.comments, self.reposts)

    @property
    def event_topics(self) -> tuple[str, ...]:
        return (*self.processor_inputs, self.posts, self.followers)

    @property
    def output_topics(self) -> tuple[str, ...]:
        return (self.engagement, self.comment_sla, self.metrics)

    @property
    def all(self) -> tuple[str, ...]:
        return (*self.event_topics, *self.output_topics, self.ticks, self.alerts, self.dead_letters)


def encode_message(events: Iterable[CanonicalEvent]) -> bytes:
    """One Kafka message value: the events as NDJSON, each line ending in a newline."""
    return encode_events(events)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A line of a message that broke the contract: its 1-based line number, raw bytes and reason."""

    line: int
    raw: bytes
    error: InvalidEvent


def decode_message(value: bytes, limit: ClockLimit | None = None) -> Iterator[CanonicalEvent | Rejected]:
    """Yields each line of a message value as an event, or as `Rejected` with the reason (an event time
    after `limit` is one); never raises for bad content, so one bad line cannot hide its good neighbours."""
    for line_no, raw in enumerate(value.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            event = parse_line(raw)
        except InvalidEvent as exc:
            yield Rejected(line_no, raw, exc.at_line(line_no))
            continue
        refused = limit.refusal(event) if limit is not None else None
        yield event if refused is None else Rejected(line_no, raw, refused.at_line(line_no))


def decode_events(
    value: bytes, limit: ClockLimit | None = None
) -> tuple[list[CanonicalEvent], list[Rejected]]:
    """A message's valid events in order, and its rejected lines (with `limit`, those stamped after it
    too). One compiled pass over the whole value when every line is valid (the usual case, and several
    times cheaper per event); line by line, to keep the good lines and say why the others are bad, when
    one is not."""
    try:
        events = parse_lines(value)
    except InvalidEvent:
        pass
    else:
        if limit is None or not events or max(map(_TS, events)) <= limit.latest_ms:
            return events, []
    events = []
    rejected: list[Rejected] = []
    for item in decode_message(value, limit):
        if isinstance(item, Rejected):
            rejected.append(item)
        else:
            events.append(item)
    return events, rejected


# A message whose every line was checked against the contract and written by `encode_events` (so `ts` is
# epoch milliseconds and each line ends in a newline) carries this header; community-pulse's publishers
# set it on every message they write. The warehouse sink stores such a value's lines as they are instead
# of decoding and re-encoding them. A producer elsewhere must not set it unless it can promise the same:
# its lines would reach the `events` table unchecked (the stream processors still judge every line).
CANONICAL_HEADER = "pulse.canonical"
CANONICAL_HEADERS: list[tuple[str, bytes]] = [(CANONICAL_HEADER, b"1")]


def is_canonical(headers: Sequence[tuple[str, bytes]] | None) -> bool:
    """Whether a record's headers say its value is canonical NDJSON (see `CANONICAL_HEADER`)."""
    return headers is not None and (CANONICAL_HEADER, b"1") in headers


# Dead-letter records keep the original key and value bytes; these headers say where they came from and why.
DLQ_STAGE = "pulse.error.stage"  # ingest-replay, ingest-webhook, processor, sink, ...
DLQ_REASON = "pulse.error.reason"  # the human-readable reason, e.g. "line 3: field 'ts': ..."
DLQ_CODE = "pulse.error.code"  # a stable machine-readable code: invalid_event, too_large, sink_rejected, ...
DLQ_SOURCE = "pulse.source"  # where the bytes came from: "topic/partition/offset", "file:line", "webhook:vk"


def dead_letter_headers(stage: str, code: str, reason: str, source: str) -> list[tuple[str, bytes]]:
    return [
        (DLQ_STAGE, stage.encode()),
        (DLQ_CODE, code.encode()),
        (DLQ_REASON, reason.encode()),
        (DLQ_SOURCE, source.encode()),
    ]


def partition_of(key: bytes, partitions: int) -> int:
    """The partition of a keyed record: murmur2 of the key, as Kafka's own clients (and so every producer
    of ours) choose one; what keeps a post's events, or a community's alerts, in one partition in order."""
    return key_hash(key) % partitions


def key_hash(key: bytes) -> int:
    """What `partition_of` takes modulo the partition count: worth remembering per key, as it is computed
    in Python (microseconds) and one post's events go to several topics."""
    positive: int = murmur2(key) & 0x7FFFFFFF
    return positive


def record_source(topic: str, partition: int, offset: int) -> str:
    """Where a record came from, as a dead letter's `DLQ_SOURCE` names it: "topic/partition/offset"."""
    return f"{topic}/{partition}/{offset}"


# Topics the processes create for themselves, named after what runs them.


def state_changelog_topic(app_id: str) -> str:
    """The stream processors' saved state (faust's changelog of their one table, named "state")."""
    return f"{app_id}-state-changelog"


DEFAULT_LEDGER_TOPIC = "notify-deliveries"  # the notifier's record of what it posted where


# The stream processors' internal beat on the ticks topic. A tick's value is empty (a beat of the wall
# clock), the newest event time of a bounded input, in epoch milliseconds as ASCII digits, sent to every
# partition once the input is all in Kafka (`pulse run --replay --exit-when-done`), or an erasure:
# `erase:` and a JSON object naming a platform and a user id, sent to every partition by `pulse erase`.


@dataclass(frozen=True, slots=True)
class Erasure:
    """A tick asking every partition's processor to forget one person (`pulse erase`)."""

    platform: str
    user_id: str


_ERASE = b"erase:"


def erasure_tick(platform: str, user_id: str) -> bytes:
    """The value of a tick that asks a partition's processor to forget (`platform`, `user_id`)."""
    return _ERASE + msgspec.json.encode({"platform": platform, "user_id": user_id})


def read_erasure(value: bytes | None) -> Erasure | None:
    """The person an erasure tick names; None for any other tick. Raises ValueError for an erasure tick
    that names nobody."""
    if not value or not value.startswith(_ERASE):
        return None
    try:
        named = msgspec.json.decode(value[len(_ERASE) :], type=dict[str, str])
        return Erasure(named["platform"], named["user_id"])
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError) as exc:
        raise ValueError(f"an erasure tick that names nobody: {value[:80]!r}") from exc


def end_of_input_tick(event_ms: int) -> bytes:
    """The value of a tick that tells every partition the newest event time of a bounded input."""
    return str(event_ms).encode()


def read_tick(value: bytes | None) -> int | None:
    """The end-of-input event time a tick carries; None for a plain beat. Raises ValueError for a value
    that is neither."""
    if not value:
        return None
    return int(value)


# On the processors' outputs: the record timestamp (epoch ms, ASCII) of the input message behind them, so
# a consumer can tell how long an event took to become a row or an alert.
SOURCE_TS_HEADER = "pulse.source.ts_ms"
