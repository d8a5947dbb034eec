"""The end-to-end benchmark's baselines, on the same file in the same run: what the work costs without us.

- The broker alone: the file replayed into Kafka with our own publisher (parse, batch, lz4, acks=all: what
  `pulse run --replay` does before any processing), then every record read back by one kafka-python
  consumer, no processing. The pipeline cannot be faster than these two passes together.
- ClickHouse alone: the do-it-yourself path a data team would build instead (the Kafka engine and
  materialized views do the same work in the same engine): chDB reads the NDJSON file, keeps each event
  once (ReplacingMergeTree by event id) and counts likes, comments and reposts per post and minute under
  FINAL. It computes no SLA clocks and no alerts, but it is the figure users compare with. It runs in its
  own process (`python -m pulse.bench.baselines FILE`): chDB opens one store per process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer

from agents import EventPublisher, replay
from pulse.errors import PulseError
from pulse.settings import Settings
from pulse.topics import delete_topics, ensure_topics
from schemas import Topics


@dataclass(frozen=True, slots=True)
class BrokerPass:
    events: int
    messages: int
    produce_s: float
    consume_s: float


def broker_pass(settings: Settings, file: Path) -> BrokerPass:
    """Replays `file` into topics of its own, reads every record back, deletes the topics."""
    topics = Topics.prefixed(f"bench-raw-{int(time.time() * 1000)}-")
    replicas = settings.topics.resolved(settings.kafka).replicas
    ensure_topics(settings.kafka, settings.topics.partitions(topics), replicas)
    try:
        started = time.perf_counter()
        with (
            file.open("rb") as lines,
            EventPublisher(settings.kafka, settings.publisher, topics) as publisher,
        ):
            report = replay(lines, publisher, source=str(file))
        produce_s = time.perf_counter() - started
        consumer = KafkaConsumer(
            *topics.event_topics, **settings.kafka.client_config(), group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_bytes=64 << 20, max_partition_fetch_bytes=16 << 20,
            max_poll_records=10_000,
        )  # fmt: skip
        try:
            wanted = publisher.stats.messages
            read = 0
            started = time.perf_counter()
            deadline = started + 600
            while read < wanted and time.perf_counter() < deadline:
                for records in consumer.poll(timeout_ms=500).values():
                    read += len(records)
            consume_s = time.perf_counter() - started
        finally:
            consumer.close()
        if read < wanted:
            raise PulseError(f"the broker pass read {read:,} of {wanted:,} messages back")
        return BrokerPass(report.sent, wanted, produce_s, consume_s)
    finally:
        delete_topics(settings.kafka, list(topics.all))


@dataclass(frozen=True, slots=True)
class ClickHouseAlone:
    events: int  # unique events stored
    window_rows: int
    seconds: float


def clickhouse_alone(file: Path) -> ClickHouseAlone:
    done = subprocess.run(
        [sys.executable, "-m", "pulse.bench.baselines", str(file.resolve())],
        capture_output=True, timeout=900, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise PulseError(
            f"the ClickHouse-alone baseline failed: {done.stderr.decode(errors='replace')[-2000:]}"
        )
    figures = json.loads(done.stdout)
    return ClickHouseAlone(figures["events"], figures["window_rows"], figures["seconds"])


_STATEMENTS = (
    "CREATE TABLE events (event_id String, type LowCardinality(String), platform LowCardinality(String), "
    "community_id String, post_id String, ts DateTime64(3, 'UTC')) "
    "ENGINE = ReplacingMergeTree ORDER BY (platform, community_id, post_id, event_id)",
    "INSERT INTO events SELECT event_id, type, platform, community_id, post_id, fromUnixTimestamp64Milli(ts) "
    "FROM file('{file}', 'JSONEachRow', 'event_id String, type String, platform String, community_id String, "
    "post_id String, ts Int64') SETTINGS input_format_allow_errors_num = 1000000, "
    "input_format_skip_unknown_fields = 1",
    "CREATE TABLE engagement_minute (platform LowCardinality(String), community_id String, post_id String, "
    "minute DateTime('UTC'), likes UInt32, unlikes UInt32, comments UInt32, reposts UInt32) "
    "ENGINE = ReplacingMergeTree ORDER BY (platform, community_id, post_id, minute)",
    "INSERT INTO engagement_minute SELECT platform, community_id, post_id, toStartOfMinute(ts), "
    "countIf(type = 'like'), countIf(type = 'unlike'), countIf(type = 'comment'), countIf(type = 'repost') "
    "FROM events FINAL WHERE type IN ('like', 'unlike', 'comment', 'repost') "
    "GROUP BY platform, community_id, post_id, toStartOfMinute(ts)",
)


def _run(file: str) -> None:
    from chdb import session  # here only: the baseline's own process opens the store

    with tempfile.TemporaryDirectory(prefix="pulse-ch-alone-") as store:
        db: Any = session.Session(store)  # type: ignore[no-untyped-call]  # chDB's API is untyped
        started = time.perf_counter()
        for statement in _STATEMENTS:
            db.query(statement.replace("{file}", file.replace("'", "\\'")))
        seconds = time.perf_counter() - started
        events = int(str(db.query("SELECT count() FROM events FINAL", "CSV")).strip())
        rows = int(str(db.query("SELECT count() FROM engagement_minute FINAL", "CSV")).strip())
        db.close()
    sys.stdout.write(json.dumps({"events": events, "window_rows": rows, "seconds": seconds}) + "\n")


if __name__ == "__main__":
    _run(sys.argv[1])
