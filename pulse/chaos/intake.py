"""Which lines of an NDJSON file the pipeline takes in, and where each accepted event travels.

The replay path (`pulse replay`, `pulse run --replay`) drops three kinds of line before anything is
counted, and so does this: a line the contract rejects (judged by `schemas.parse_line`, the contract's own
validator: that is the one piece of the pipeline this package leans on), an event stamped more than the
allowed clock skew ahead of the wall clock (docs/contract.md, "No event from the future"), and a second
line with an `event_id` already taken (the contract's deduplication key: the first line wins). Blank lines
are skipped, not rejected.

Where an event travels decides what it is judged against: its topic follows its type (docs/contract.md,
"On Kafka"), its partition is murmur2 of its post key as Kafka's clients compute it, and the stream
workers judge lateness per (partition, topic) and run response clocks per partition. So each accepted
event is handed on with its lane.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kafka.partitioner.default import murmur2

from schemas import CanonicalEvent, EventType, InvalidEvent, parse_line

# The input topic of each type the stream workers read (follows go to the loader only, posts are not
# counted): docs/contract.md, "On Kafka".
TOPIC_OF: dict[EventType, str] = {
    EventType.LIKE: "likes",
    EventType.UNLIKE: "likes",
    EventType.COMMENT: "comments",
    EventType.COMMENT_EDIT: "comments",
    EventType.COMMENT_DELETE: "comments",
    EventType.REPOST: "reposts",
}


@dataclass(frozen=True, slots=True)
class Accepted:
    """One accepted event, and the partition its post key sends it to."""

    event: CanonicalEvent
    partition: int

    @property
    def topic(self) -> str | None:
        """The stream workers' input topic it travels on; None for what they do not read."""
        return TOPIC_OF.get(self.event.type)


@dataclass(frozen=True, slots=True)
class Intake:
    """What a file gives the pipeline: its accepted events in file order, and what was turned away."""

    accepted: tuple[Accepted, ...]
    rejected_lines: tuple[int, ...]  # 1-based line numbers: malformed, or stamped too far ahead
    duplicate_lines: tuple[int, ...]  # 1-based line numbers of repeated event ids

    @property
    def newest_event_ms(self) -> int | None:
        """Where the input ends in event time: the newest accepted event of any type (what `pulse run`
        tells every partition once the file is read)."""
        return max((a.event.ts_ms for a in self.accepted), default=None)


def partition_of(post_key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a record keyed `post_key`."""
    partition: int = (murmur2(post_key.encode()) & 0x7FFFFFFF) % partitions
    return partition


def read_intake(
    lines: Iterable[bytes], *, partitions: int, wall_clock_ms: int, max_clock_skew_s: float
) -> Intake:
    """Judges every line of `lines` (with or without their newlines) the way the replay path does."""
    if partitions < 1:
        raise ValueError("partitions must be at least 1")
    latest_ms = wall_clock_ms + int(max_clock_skew_s * 1000)
    accepted: list[Accepted] = []
    rejected: list[int] = []
    duplicates: list[int] = []
    seen: set[str] = set()
    routes: dict[str, int] = {}
    for line_no, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            event = parse_line(line)
        except InvalidEvent:
            rejected.append(line_no)
            continue
        if event.ts_ms > latest_ms:
            rejected.append(line_no)
            continue
        if event.event_id in seen:
            duplicates.append(line_no)
            continue
        seen.add(event.event_id)
        key = event.post_key
        partition = routes.get(key)
        if partition is None:
            partition = routes[key] = partition_of(key, partitions)
        accepted.append(Accepted(event, partition))
    return Intake(tuple(accepted), tuple(rejected), tuple(duplicates))
