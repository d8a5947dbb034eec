"""Kafka topics into one ClickHouse table: batched, idempotent, at least once.

A `TableSink` takes records, turns each into JSON rows with its table's `lines_of`, and inserts a batch
when it holds `batch_rows` rows or is `flush_interval_s` old (half as old once its topics go quiet). The
rows go in as JSONEachRow, one insert per batch, into the table's wire-shaped input table (see
schemas/clickhouse/0007_wire_inputs.sql), whose view converts them: ClickHouse parses and converts in
compiled code, the loader only validates and re-encodes (and for a value marked canonical, or the
processors' own outputs, not even that: see `pipeline.warehouse.routes`).
Only after the insert succeeded are the offsets committed, so a crash replays the batch, and the insert is
idempotent twice over: a deterministic `insert_deduplication_token` per batch (table, then
topic/partition:first-last offsets) makes ClickHouse drop a retried batch, and the tables themselves
collapse replays (ReplacingMergeTree with absolute values, distinct event ids).

Failures are sorted at the boundary:
- a record that cannot be turned into rows, or whose rows the server rejects as bad data, goes to the
  dead-letter topic with its original bytes and the reason; the rest of the batch is stored (a rejected
  batch is split in halves, record by record, until the bad records are isolated);
- a transient error (server down, timeouts, 429/503, too many parts) is retried with exponential backoff,
  with the same rows and token, never committing; while it lasts the consumer is paused, so memory stays
  at one batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError
from pydantic import BaseModel, Field

from pipeline.errors import SinkStopped, WarehouseError
from pipeline.warehouse.client import translate
from schemas import InvalidEvent, dead_letter_headers, is_canonical
from schemas.wire import record_source

log = logging.getLogger(__name__)

DeadLetter = Callable[[bytes, bytes | None, list[tuple[str, bytes]]], None]


class SinkSettings(BaseModel):
    group: str = Field(
        default="community-pulse-sink",
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        description="the loader's consumer group",
    )
    instance_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]{1,200}$",
        description="static group membership, unique per loader: one started again with the same id takes "
        "its partitions back at once, where a new member waits out the dead one's session (45 s)",
    )
    batch_rows: int = Field(
        default=200_000,
        ge=1,
        le=1_000_000,
        description="rows per insert at most; below that, the flush interval decides",
    )
    flush_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=300,
        description="the longest a row waits for its insert; half of it once the loader's topics go quiet",
    )
    retry_initial_s: float = Field(default=0.5, gt=0, le=60)
    retry_max_s: float = Field(default=30.0, gt=0, le=600)
    commit_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="the longest an offset commit may hold the loader; then the offsets wait for the next flush",
    )
    progress_log_interval_s: float = Field(
        default=30.0,
        gt=0,
        le=3_600,
        description="how often the loader logs its assignment, rows per table and its slowest calls",
    )
    niceness: int = Field(
        default=10,
        ge=0,
        le=19,
        description="the Unix niceness `pulse sink` takes at start: on cores it shares with stream workers, "
        "the loader yields them the CPU and catches up when they idle (0: compete equally)",
    )


class Lines(NamedTuple):
    """A record's rows as JSONEachRow: `rows` lines in `data`, each ending in a newline."""

    rows: int
    data: bytes


@dataclass(frozen=True, slots=True)
class TableSpec:
    """What a table needs from a record: its name, the table its rows are inserted into (its wire-shaped
    input table; the table itself when the JSON fields are its columns), and how a record value becomes
    JSON rows of that table. `lines_of` raises `InvalidEvent` (or ValueError) for a record that cannot
    become rows. `takes_canonical`: a value marked canonical (`schemas.CANONICAL_HEADER`) is already
    rows of the input table, one a line, and is stored as it is. `complete_rows`: every row names every
    column of the input table, so the server refuses a row that lacks one instead of filling in a default
    (rows whose writer leaves defaults out, as canonical events do, must not set it)."""

    table: str
    lines_of: Callable[[bytes], Lines]
    input_table: str | None = None
    takes_canonical: bool = False
    complete_rows: bool = False

    @property
    def insert_into(self) -> str:
        return self.input_table or self.table


def insert_lines(
    client: Any, table: str, data: bytes, token: str | None = None, *, complete_rows: bool = False
) -> None:
    """One JSONEachRow insert, synchronous, deduplicated by `token` also in the tables behind views.
    `complete_rows`: a row that lacks a non-Nullable column is an error, not a default."""
    settings: dict[str, Any] = {
        "async_insert": 0,
        "input_format_skip_unknown_fields": 1,  # a newer producer's extra field is not an error
        "deduplicate_blocks_in_dependent_materialized_views": 1,
        # The least CPU per row, measured on 200k events in 50k-row inserts (embedded engine): parsing
        # one block on one thread, and not collapsing replays within a block at insert time (FINAL and
        # merges collapse them anyway): 1.0 s -> 0.7 s.
        "input_format_parallel_parsing": 0,
        "optimize_on_insert": 0,
    }
    if complete_rows:
        settings["input_format_force_null_for_omitted_fields"] = 1
    if token is not None:
        settings["insert_deduplication_token"] = token
    client.raw_insert(table, None, data, settings=settings, fmt="JSONEachRow")


@dataclass(slots=True)
class SinkStats:
    rows_written: int = 0
    batches: int = 0
    dead_letters: int = 0
    retries: int = 0
    commit_failures: int = 0


@dataclass(frozen=True, slots=True)
class _Source:
    """A record in a batch, kept so that it can be dead-lettered as it came if its rows are rejected."""

    tp: TopicPartition
    offset: int
    value: bytes
    key: bytes | None
    lines: Lines


@dataclass(slots=True)
class _Batch:
    rows: int = 0
    sources: list[_Source] = field(default_factory=list)  # records with at least one row
    ranges: dict[TopicPartition, tuple[int, int]] = field(default_factory=dict)
    started_at: float = 0.0

    def token(self, table: str) -> str:
        spans = ",".join(f"{tp.topic}/{tp.partition}:{a}-{b}" for tp, (a, b) in sorted(self.ranges.items()))
        return f"{table}:{spans}"


class TableSink:
    def __init__(
        self,
        spec: TableSpec,
        consumer: KafkaConsumer,
        client: Any,
        dead_letter: DeadLetter,
        settings: SinkSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.spec = spec
        self.consumer = consumer
        self.client = client
        self.dead_letter = dead_letter
        self.settings = settings or SinkSettings()
        self.stats = SinkStats()
        self._should_stop = should_stop
        self._clock = clock
        self._sleep = sleep
        self._batch = _Batch(started_at=clock())
        self._uncommitted: dict[TopicPartition, int] = {}  # stored rows whose offsets a commit refused

    def run(self, should_stop: Callable[[], bool], poll_timeout_ms: int = 200) -> None:
        while not should_stop():
            self.poll_once(poll_timeout_ms)
        self.flush()

    def poll_once(self, timeout_ms: int = 200) -> None:
        """Polls the consumer (which reads this table's topics only) and flushes what is due."""
        polled = self.consumer.poll(timeout_ms=timeout_ms)
        for tp, records in polled.items():
            self.take(tp, records)
        self.flush_if_due(quiet=not polled)

    def take(self, tp: TopicPartition, records: Sequence[Any]) -> None:
        """Records of one of this table's partitions, polled by whoever owns the consumer."""
        for record in records:
            self._add(tp, record.offset, record.value, record.key, record.headers)
            if self._batch.rows >= self.settings.batch_rows:
                self.flush()

    @property
    def pending_rows(self) -> int:
        """Rows taken and not yet inserted."""
        return self._batch.rows

    @property
    def uncommitted_partitions(self) -> int:
        """Partitions whose stored rows wait for a commit a broker refused."""
        return len(self._uncommitted)

    def flush_if_due(self, quiet: bool = False) -> None:
        """Flushes a batch `flush_interval_s` old (or stored rows whose commit a broker refused). `quiet`:
        the last poll found nothing new, so the rows taken are all there is for now (the end of a replay,
        or of a burst): a batch half as old is inserted at once, so a sparse stream still makes at most
        about two inserts per interval."""
        age = self._clock() - self._batch.started_at
        interval = self.settings.flush_interval_s
        due = (self._batch.ranges or self._uncommitted) and age >= interval
        if due or (quiet and self._batch.ranges and age >= interval / 2):
            self.flush()

    def flush(self) -> None:
        """Inserts the pending batch (retrying transient errors), then commits its offsets."""
        batch = self._batch
        self._batch = _Batch(started_at=self._clock())
        if not batch.ranges and not self._uncommitted:
            return
        if batch.sources:
            self._insert_isolating_bad_records(batch.sources, batch.token(self.spec.table))
            self.stats.batches += 1
        offsets = dict(self._uncommitted)
        for tp, (_, last) in batch.ranges.items():
            offsets[tp] = max(offsets.get(tp, 0), last + 1)
        try:
            self.consumer.commit(
                {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()},
                timeout_ms=int(self.settings.commit_timeout_s * 1000),
            )
            self._uncommitted = {}
        except KafkaError as exc:
            # Seen: RebalanceInProgress at start-up (and for good, from a join kafka-python strands, until
            # pipeline.kafka_clients repaired it). The rows are stored, so the offsets are kept and
            # committed with the next flush; after a rebalance (which rewinds to the committed offsets) the
            # rows may be read and stored again, which FINAL collapses. Not a reason to stop loading.
            # Bounded: kafka-python retries a commit for up to its request timeout (305 s), and while it
            # does, nothing polls, so the rebalance it waits for cannot finish (seen under load: a loader
            # silent for minutes after two refused commits).
            self._uncommitted = offsets
            self.stats.commit_failures += 1
            log.warning(
                "offset commit failed, kept for the next flush",
                extra={"table": self.spec.table, "error": str(exc)},
            )

    def _add(
        self,
        tp: TopicPartition,
        offset: int,
        value: bytes,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> None:
        first, _ = self._batch.ranges.get(tp, (offset, offset))
        self._batch.ranges[tp] = (first, offset)
        try:
            if self.spec.takes_canonical and is_canonical(headers):
                lines = Lines(value.count(b"\n"), value)
            else:
                lines = self.spec.lines_of(value)
        except (InvalidEvent, ValueError, TypeError, KeyError, msgspec.MsgspecError) as exc:
            self._dead_letter(value, key, tp, offset, "undecodable", str(exc))
            return
        if lines.rows:
            self._batch.rows += lines.rows
            self._batch.sources.append(_Source(tp, offset, value, key, lines))

    def _insert_isolating_bad_records(self, sources: list[_Source], token: str) -> None:
        try:
            self._insert_with_retry(b"".join(s.lines.data for s in sources), token)
            self.stats.rows_written += sum(s.lines.rows for s in sources)
        except WarehouseError as exc:
            if exc.retryable:
                raise
            if len(sources) == 1:
                bad = sources[0]
                reason = f"{self.spec.table}: {exc}"
                self._dead_letter(bad.value, bad.key, bad.tp, bad.offset, "sink_rejected", reason)
                return
            half = len(sources) // 2
            self._insert_isolating_bad_records(sources[:half], f"{token}#a")
            self._insert_isolating_bad_records(sources[half:], f"{token}#b")

    def _insert_with_retry(self, data: bytes, token: str) -> None:
        delay = self.settings.retry_initial_s
        paused = False
        try:
            while True:
                try:
                    insert_lines(
                        self.client, self.spec.insert_into, data, token, complete_rows=self.spec.complete_rows
                    )
                    return
                except Exception as exc:  # the driver and chDB raise unrelated types: sorted just below
                    error = translate(exc, f"insert into {self.spec.table}")
                    if not error.retryable:
                        raise error from exc
                    self.stats.retries += 1
                    log.warning(
                        "ClickHouse insert failed, retrying",
                        extra={"table": self.spec.table, "in_s": delay, "error": str(exc)[:200]},
                    )
                    if not paused:
                        self.consumer.pause(*self.consumer.assignment())
                        paused = True
                    self._wait(delay)
                    self.consumer.poll(
                        timeout_ms=0
                    )  # keeps the group membership alive; paused: returns nothing
                    delay = min(delay * 2, self.settings.retry_max_s)
        finally:
            if paused:
                self.consumer.resume(*self.consumer.assignment())

    def _wait(self, delay_s: float) -> None:
        """Sleeps `delay_s` in short steps; raises `SinkStopped` as soon as a stop is asked for."""
        waited = 0.0
        while True:
            if self._should_stop():
                raise SinkStopped(
                    f"stopped while {self.spec.table} could not be stored; its batch is not committed"
                )
            step = min(0.5, delay_s - waited)
            if step <= 0:
                return
            self._sleep(step)
            waited += step

    def _dead_letter(
        self, value: bytes, key: bytes | None, tp: TopicPartition, offset: int, code: str, reason: str
    ) -> None:
        self.stats.dead_letters += 1
        source = record_source(tp.topic, tp.partition, offset)
        self.dead_letter(value, key, dead_letter_headers(f"sink-{self.spec.table}", code, reason, source))
