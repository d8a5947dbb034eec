"""What `pulse run` shows while it runs: traffic per topic, lag, top posts now, comments waiting, alerts,
rows in the warehouse, dead letters. A live table on a terminal, a log line now and then otherwise.

Everything is read from where the pipeline puts it (end offsets and group offsets in Kafka, the workers'
counters on the metrics topic, the alerts topic, the warehouse through the loader), never from inside the
pieces, so the view shows what a user of the system would see.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer
from kafka.errors import KafkaError
from rich.console import Console, Group
from rich.table import Table

from pipeline.errors import PipelineError
from pipeline.warehouse.query_service import run_query
from pulse.errors import TopicError
from pulse.settings import Settings
from pulse.topics import OffsetReader, topic_partitions
from schemas.outputs import Alert, PartitionStats, decode_outputs

log = logging.getLogger(__name__)

FETCH_BYTES = 8 << 20

TOP_POSTS_NOW = """
SELECT community_id, post_id, sum(likes) AS likes, sum(comments) AS comments, sum(reposts) AS reposts,
       round(sum(score), 1) AS score
FROM engagement_minute FINAL
WHERE minute >= (SELECT max(minute) FROM engagement_minute) - INTERVAL 4 MINUTE
GROUP BY community_id, post_id ORDER BY score DESC LIMIT 5
"""
ROWS = """
SELECT (SELECT count() FROM events FINAL), (SELECT count() FROM engagement_minute FINAL),
       (SELECT count() FROM comment_sla FINAL), (SELECT count() FROM alerts FINAL)
"""


@dataclass(slots=True)
class Snapshot:
    at: float
    messages: dict[str, int] = field(default_factory=dict)  # topic -> end offsets summed
    events: int = 0  # counted by the workers (from their counters)
    waiting: int = 0
    late: int = 0
    duplicates: int = 0
    rejected: int = 0
    lag: int | None = None
    alerts: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    top_posts: list[list[Any]] = field(default_factory=list)
    rows: list[Any] = field(default_factory=list)


class PipelineWatcher:
    """Reads the pipeline's state from Kafka and the warehouse; `snapshot()` is cheap enough each second.

    For a final summary, `follow()` reads the counters and alerts in a thread of its own while the pipeline
    still works, and `read_to_end()` then reads only what came after: read all at once at the end, a
    400k-event replay's 110k alerts (12k messages) took 0.5-1.2 s of its wall time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = settings.topics.names
        self._consumer: KafkaConsumer | None = None
        self._offsets: OffsetReader | None = None  # opened on the first snapshot that needs it
        self._stats: dict[int, PartitionStats] = {}
        self._alerts: dict[str, int] = {}
        self._seen_alerts: set[str] = set()
        self._follower: threading.Thread | None = None
        self._stop_following = threading.Event()

    def start(self) -> PipelineWatcher:
        parts = topic_partitions(self.settings.kafka, [self.topics.metrics, self.topics.alerts])
        # Fetches of up to 8 MiB: the alerts of a backfill in a third fewer round trips (kafka-python's 1 MiB
        # default made a 110k-alert read 0.55 s, 0.32 s with this).
        consumer = KafkaConsumer(
            **self.settings.kafka.client_config(), enable_auto_commit=False,
            max_partition_fetch_bytes=FETCH_BYTES, fetch_max_bytes=FETCH_BYTES,
        )  # fmt: skip
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        self._consumer = consumer
        return self

    def follow(self) -> PipelineWatcher:
        """Reads the counters and alerts as they come, in a thread, until `read_to_end()` or `stop()`."""
        self._follower = threading.Thread(target=self._follow, name="pipeline-watcher", daemon=True)
        self._follower.start()
        return self

    def stop(self) -> None:
        self._stop_follower()
        if self._consumer is not None:
            self._consumer.close()
        if self._offsets is not None:
            self._offsets.close()

    def snapshot(self, with_warehouse: bool = True) -> Snapshot:
        try:
            self._catch_up(timeout_s=1.0)
        except KafkaError as exc:
            log.debug("live view: Kafka did not answer: %s", exc)
        snap = self._counted()
        inputs = list(self.topics.processor_inputs)
        try:
            self._offsets = self._offsets or OffsetReader(self.settings.kafka)
            parts = self._offsets.partitions([*inputs, self.topics.dead_letters])
            for tp, end in self._offsets.end_offsets(parts).items():
                snap.messages[tp.topic] = snap.messages.get(tp.topic, 0) + end
            snap.dead_letters = snap.messages.pop(self.topics.dead_letters, 0)
            snap.lag = sum(self._offsets.lag(self.settings.processor.app_id, inputs).values())
        except (KafkaError, TopicError) as exc:
            log.debug("live view: Kafka did not answer: %s", exc)
        if with_warehouse:
            try:
                snap.top_posts = run_query(self.settings.clickhouse, TOP_POSTS_NOW, open_store=False).rows
                snap.rows = run_query(self.settings.clickhouse, ROWS, open_store=False).rows[0]
            except PipelineError as exc:  # the loader may still be starting
                log.debug("live view: the warehouse did not answer: %s", exc)
        return snap

    def read_to_end(self, timeout_s: float = 60.0) -> Snapshot:
        """Reads the counters and alerts up to the current end of their topics, for a final summary: the
        workers' counters and the alerts by kind (no lag, no warehouse)."""
        self._stop_follower()
        if not self._catch_up(timeout_s):
            raise TopicError("could not read the workers' counters and alerts to their end in time")
        return self._counted()

    def _counted(self) -> Snapshot:
        snap = Snapshot(at=time.monotonic())
        for stats in self._stats.values():
            snap.events += stats.events
            snap.waiting += stats.waiting_comments
            snap.late += stats.late_events
            snap.duplicates += stats.duplicate_events
            snap.rejected += stats.rejected_lines
        snap.alerts = dict(self._alerts)
        return snap

    def _follow(self) -> None:
        try:
            while not self._stop_following.is_set():
                self._read_outputs(timeout_ms=100)
        except KafkaError as exc:  # `read_to_end` reads what is left, and raises if it cannot
            log.warning("the pipeline watcher stopped following the counters and alerts: %s", exc)

    def _stop_follower(self) -> None:
        if self._follower is not None:
            self._stop_following.set()
            self._follower.join()
            self._follower = None

    def _catch_up(self, timeout_s: float) -> bool:
        """Reads the counters and alerts up to the end their topics have now; False if time ran out.
        A single poll is not enough: it hands out what the previous one fetched, so a view that looks
        every 10 s would show what was there 10 s before."""
        assert self._consumer is not None
        ends = self._consumer.end_offsets(list(self._consumer.assignment()))
        deadline = time.monotonic() + timeout_s
        while any(self._consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                return False
            self._read_outputs(timeout_ms=100)
        return True

    def _read_outputs(self, timeout_ms: int = 0) -> None:
        assert self._consumer is not None
        for records in self._consumer.poll(timeout_ms=timeout_ms, max_records=10_000).values():
            for record in records:
                for out in decode_outputs(record.value):
                    if isinstance(out, PartitionStats):
                        self._stats[out.partition] = out
                    elif isinstance(out, Alert) and out.alert_id not in self._seen_alerts:
                        self._seen_alerts.add(out.alert_id)
                        self._alerts[out.kind.value] = self._alerts.get(out.kind.value, 0) + 1


def render(now: Snapshot, before: Snapshot | None) -> Group:
    """The live tables: rates from the difference between two snapshots."""
    seconds = (now.at - before.at) if before else 0.0
    traffic = Table("topic", "messages", "messages/s", title="traffic", title_justify="left")
    for topic, count in sorted(now.messages.items()):
        rate = (count - before.messages.get(topic, 0)) / seconds if before and seconds > 0 else 0.0
        traffic.add_row(topic, f"{count:,}", f"{rate:,.0f}")
    events_rate = (now.events - before.events) / seconds if before and seconds > 0 else 0.0
    pipeline = Table("events counted", "events/s", "lag (messages)", "late", "duplicates", "rejected",
                     "dead letters", "comments waiting", "alerts", title="stream workers", title_justify="left")  # fmt: skip
    alerts = ", ".join(f"{kind} {n}" for kind, n in sorted(now.alerts.items())) or "none yet"
    pipeline.add_row(
        f"{now.events:,}", f"{events_rate:,.0f}", "-" if now.lag is None else f"{now.lag:,}", f"{now.late:,}",
        f"{now.duplicates:,}", f"{now.rejected:,}", f"{now.dead_letters:,}", f"{now.waiting:,}", alerts,
    )  # fmt: skip
    posts = Table("community", "post", "likes", "comments", "reposts", "score",
                  title="top posts, last 5 minutes of event time", title_justify="left")  # fmt: skip
    for row in now.top_posts:
        posts.add_row(*(str(v) for v in row))
    rows = Table("events", "engagement_minute", "comment_sla", "alerts", title="rows in ClickHouse (FINAL)",
                 title_justify="left")  # fmt: skip
    if now.rows:
        rows.add_row(*(f"{v:,}" for v in now.rows))
    return Group(traffic, pipeline, posts, rows)


ROW_LABELS = ("events", "minutes", "sla", "alerts")  # the tables of ROWS, in its order


def one_line(now: Snapshot, before: Snapshot | None) -> str:
    seconds = (now.at - before.at) if before else 0.0
    rate = (now.events - before.events) / seconds if before and seconds > 0 else 0.0
    alerts = sum(now.alerts.values())
    if now.rows:
        rows = ", ".join(f"{label} {n:,}" for label, n in zip(ROW_LABELS, now.rows, strict=True))
    else:
        rows = "not read yet (the loader serves queries once it has started)"
    return (
        f"events {now.events:,} ({rate:,.0f}/s), lag {now.lag if now.lag is not None else '-'}, waiting "
        f"{now.waiting:,}, alerts {alerts:,}, dead letters {now.dead_letters:,}; rows in ClickHouse: {rows}"
    )


def print_line(console: Console, now: Snapshot, before: Snapshot | None) -> None:
    """`one_line` as one line, whatever its length: a console that is not a terminal wraps at 80 columns,
    which put the rows' values on a line of their own and left `rows` looking empty."""
    console.print(one_line(now, before), highlight=False, soft_wrap=True)
