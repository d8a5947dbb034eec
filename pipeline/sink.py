"""Kafka topics into one ClickHouse table: batched, idempotent, at least once.

A `TableSink` polls records, turns each into rows with its table's `rows_of`, and inserts a batch when it
holds `batch_rows` rows or is `flush_interval_s` old. Only after the insert succeeded are the offsets
committed, so a crash replays the batch, and the insert is idempotent twice over: a deterministic
`insert_deduplication_token` per batch (table, then topic/partition:first-last offsets) makes ClickHouse
drop a retried batch, and the tables themselves collapse replays (ReplacingMergeTree with absolute values,
distinct event ids).

Failures are sorted at the boundary:
- a record that cannot be turned into rows, or rows the server rejects as bad data, go to the dead-letter
  topic with the original bytes and the reason; the rest of the batch is stored (a rejected batch is split
  in halves until the bad rows are isolated);
- a transient error (server down, timeouts, 429/503, too many parts) is retried with exponential backoff,
  with the same rows and token, never committing; while it lasts the consumer is paused, so memory stays
  at one batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from pydantic import BaseModel, Field

from pipeline.errors import SinkStopped, WarehouseError
from pipeline.warehouse import translate
from schemas import InvalidEvent, dead_letter_headers

log = logging.getLogger(__name__)

Row = Sequence[Any]
DeadLetter = Callable[[bytes, bytes | None, list[tuple[str, bytes]]], None]


class SinkSettings(BaseModel):
    group: str = Field(
        default="community-pulse-sink",
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        description="the loader's consumer group",
    )
    batch_rows: int = Field(default=10_000, ge=1, le=1_000_000)
    flush_interval_s: float = Field(default=1.0, gt=0, le=300)
    retry_initial_s: float = Field(default=0.5, gt=0, le=60)
    retry_max_s: float = Field(default=30.0, gt=0, le=600)


@dataclass(frozen=True, slots=True)
class TableSpec:
    """What a table needs from a record: its name, its columns, and how to turn a record value into rows.

    `rows_of` raises `InvalidEvent` (or ValueError) for a record that cannot become rows."""

    table: str
    columns: tuple[str, ...]
    rows_of: Callable[[bytes], list[Row]]


@dataclass(slots=True)
class SinkStats:
    rows_written: int = 0
    batches: int = 0
    dead_letters: int = 0
    retries: int = 0


@dataclass(slots=True)
class _Batch:
    rows: list[Row] = field(default_factory=list)
    sources: list[tuple[TopicPartition, int, bytes, bytes | None]] = field(default_factory=list)  # per row
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

    def run(self, should_stop: Callable[[], bool], poll_timeout_ms: int = 200) -> None:
        while not should_stop():
            self.poll_once(poll_timeout_ms)
        self.flush()

    def poll_once(self, timeout_ms: int = 200) -> None:
        """Polls the consumer (which reads this table's topics only) and flushes what is due."""
        for tp, records in self.consumer.poll(timeout_ms=timeout_ms).items():
            self.take(tp, records)
        self.flush_if_due()

    def take(self, tp: TopicPartition, records: Sequence[Any]) -> None:
        """Records of one of this table's partitions, polled by whoever owns the consumer."""
        for record in records:
            self._add(tp, record.offset, record.value, record.key)
            if len(self._batch.rows) >= self.settings.batch_rows:
                self.flush()

    def flush_if_due(self) -> None:
        if self._batch.ranges and self._clock() - self._batch.started_at >= self.settings.flush_interval_s:
            self.flush()

    def flush(self) -> None:
        """Inserts the pending batch (retrying transient errors), then commits its offsets."""
        batch = self._batch
        self._batch = _Batch(started_at=self._clock())
        if not batch.ranges:
            return
        if batch.rows:
            self._insert_isolating_bad_rows(batch.rows, batch.sources, batch.token(self.spec.table))
            self.stats.batches += 1
        self.consumer.commit(
            {tp: OffsetAndMetadata(last + 1, "", -1) for tp, (_, last) in batch.ranges.items()}
        )

    def _add(self, tp: TopicPartition, offset: int, value: bytes, key: bytes | None) -> None:
        first, _ = self._batch.ranges.get(tp, (offset, offset))
        self._batch.ranges[tp] = (first, offset)
        try:
            rows = self.spec.rows_of(value)
        except (InvalidEvent, ValueError, TypeError, KeyError) as exc:
            self._dead_letter(value, key, tp, offset, "undecodable", str(exc))
            return
        self._batch.rows.extend(rows)
        self._batch.sources.extend((tp, offset, value, key) for _ in rows)

    def _insert_isolating_bad_rows(self, rows: list[Row], sources: list[Any], token: str) -> None:
        try:
            self._insert_with_retry(rows, token)
            self.stats.rows_written += len(rows)
        except WarehouseError as exc:
            if exc.retryable:
                raise
            if len(rows) == 1:
                tp, offset, value, key = sources[0]
                self._dead_letter(value, key, tp, offset, "sink_rejected", f"{self.spec.table}: {exc}")
                return
            half = len(rows) // 2
            self._insert_isolating_bad_rows(rows[:half], sources[:half], f"{token}#a")
            self._insert_isolating_bad_rows(rows[half:], sources[half:], f"{token}#b")

    def _insert_with_retry(self, rows: list[Row], token: str) -> None:
        delay = self.settings.retry_initial_s
        paused = False
        try:
            while True:
                try:
                    self.client.insert(
                        self.spec.table,
                        rows,
                        column_names=list(self.spec.columns),
                        settings={"insert_deduplication_token": token, "async_insert": 0},
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
        source = f"{tp.topic}/{tp.partition}/{offset}"
        self.dead_letter(value, key, dead_letter_headers(f"sink-{self.spec.table}", code, reason, source))
