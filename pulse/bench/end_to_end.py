"""End-to-end benchmark: the whole pipeline (broker, a stream worker, the loader into a fresh embedded
store) as `pulse run` starts it, on private topics and groups deleted afterwards.

- Throughput: N events are written to a file (untimed), then replayed through the real broker; the clock
  runs from the first line read until the workers have committed everything and the loader has
  committed every output, i.e. until every event is a row in ClickHouse. The pipeline is started, its
  workers have settled into their group, and it is warmed up first, so its start-up is not counted.
- Latency, on live traffic stamped with the wall clock at a steady rate: record timestamp to row in
  ClickHouse, measured on subscriber comments (first `comment_sla` row written, `written_at` -
  `commented_at`), and for alerts from the SLA deadline to the alert's row (`written_at` - `fired_at`).
- Peak memory (VmHWM) of the worker and the loader.
Batched messages (500 events) and one event per message run in the same invocation.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agents import EventPublisher, replay
from pipeline.warehouse.query_service import run_query
from pulse.errors import PulseError
from pulse.local.child_process import cpu_seconds
from pulse.local.local_pipeline import LocalPipeline, RunOptions
from pulse.settings import Settings
from pulse.topics import OffsetReader, read_records, records_written
from schemas import CanonicalEvent, validate
from schemas.outputs import Alert, AlertKind, decode_outputs
from schemas.wire import state_changelog_topic

SLA_COMMUNITY = "bench-sla"
SLA_S = 3.0  # the live probes' SLA
REPLAY_SLA_S = 1_800.0  # the replayed file's: 30 min, as real teams set it; the file spans hours


@dataclass(frozen=True, slots=True)
class EndToEndResult:
    batch_events: int
    events: int
    seconds: float
    latency_p50_ms: float
    latency_p99_ms: float
    alert_p50_ms: float | None
    alert_p99_ms: float | None
    alert_topic_p50_ms: float | None  # from the deadline to the alert's record on the alerts topic
    alert_topic_p99_ms: float | None
    peak_mb: dict[str, float]
    cpu_s: dict[str, float]  # CPU seconds each process spent during the timed replay
    phases_s: dict[str, float]  # seconds from the start until: the file was read, processed, loaded
    records: dict[str, int]  # records written to each topic during the timed replay (prefix removed)
    window_rows: int  # engagement_minute rows after the replay (FINAL), the warm-up's included
    sla_rows: int
    alert_rows: int

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def python_speed_ms() -> float:
    """A fixed pure-Python workload, best of five: the figures above scale with it. The machines here
    change speed by half from one hour to the next, so a run's figures are read against its own
    reference (about 16 ms when a machine of this kind is quiet)."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(1_000):
            sum(range(1000))
        best = min(best, time.perf_counter() - started)
    return best * 1000


def _kill_worker_at(pipeline: LocalPipeline, s: Settings, fractions: list[float]) -> None:
    """SIGKILLs the first stream worker each time the workers' commits pass one of `fractions` of the
    input's messages (all in Kafka by now); `pipeline.check()`, in every wait, starts it again."""
    inputs = list(pipeline.topics.processor_inputs)
    total = sum(records_written(s.kafka, inputs).values())
    with OffsetReader(s.kafka) as reader:
        for fraction in fractions:
            while True:
                pipeline.check()
                left = sum(reader.lag(s.processor.app_id, inputs).values())
                if total - left >= fraction * total:
                    break
                time.sleep(0.05)
            if left == 0:
                return
            pipeline.workers[0].kill()


def _comment(i: int, now_ms: int, community: str) -> CanonicalEvent:
    return validate(
        {"event_id": f"live-{community}-{i}", "type": "comment", "platform": "sim", "community_id": community,
         "post_id": f"live-p{i % 20}", "user_id": f"u{i}", "comment_id": f"live-{community}-m{i}",
         "text": "anyone?", "ts": now_ms}
    )  # fmt: skip


def _alert_topic_latencies(s: Settings, alerts_topic: str) -> list[int]:
    """Per live probe's `unanswered_comment` alert: ms from its deadline (`fired_at`) to its first record
    on the alerts topic (the record's timestamp, set by the worker's producer when it sent it)."""
    waited: dict[str, int] = {}
    key = f"sim:{SLA_COMMUNITY}".encode()
    for record in read_records(s.kafka, alerts_topic):
        if record.key != key:
            continue
        for output in decode_outputs(record.value):
            if isinstance(output, Alert) and output.kind is AlertKind.UNANSWERED:
                ms = record.timestamp - output.fired_at_ms
                waited[output.alert_id] = min(ms, waited.get(output.alert_id, ms))
    return sorted(waited.values())


def _quantile(ordered: list[int], q: float) -> float | None:
    """The exact `q` quantile of sorted values (the lower of two neighbours), as quantileExact picks."""
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))]) if ordered else None


def _cpu_readings(pipeline: LocalPipeline, broker_pid: int | None) -> dict[str, float]:
    """CPU seconds so far by process name (the stream workers summed)."""
    readings: dict[str, float] = {}
    for child in pipeline.children:
        readings[child.name] = readings.get(child.name, 0.0) + child.cpu_s()
    readings["the replay"] = time.process_time()
    if broker_pid is not None:
        readings["the broker"] = cpu_seconds(broker_pid)
    return readings


def run_end_to_end(
    settings: Settings,
    batch_events: int,
    file: Path,
    events: int,
    live_s: float,
    live_rate: float,
    partitions: int,
    workers: int = 1,
    broker_pid: int | None = None,
    kill_at: Sequence[float] = (),
) -> EndToEndResult:
    """Replays `file` (`events` valid events; the caller owns the file). `workers` stream workers share
    the partitions; `broker_pid`: the local broker's process, for its CPU share (None: a broker
    elsewhere). `kill_at`: fractions of the input's messages committed at which the first stream worker
    is killed (SIGKILL, like a crash), to be started again as `pulse run` does."""
    run_id = f"bench-e2e-{int(time.time() * 1000)}-{batch_events}-"
    store = (settings.state_dir / "bench" / f"store-{run_id.rstrip('-')}").resolve()
    s = settings.model_copy(
        update={
            "topics": settings.topics.model_copy(update={"prefix": run_id, "event_partitions": partitions}),
            "processor": settings.processor.model_copy(
                update={
                    "app_id": f"{run_id}processor",
                    "sla_default_s": REPLAY_SLA_S,
                    "sla_per_community_s": {SLA_COMMUNITY: SLA_S},
                }
            ),
            "sink": settings.sink.model_copy(update={"group": f"{run_id}sink"}),
            "clickhouse": settings.clickhouse.model_copy(
                update={"dsn": f"chdb://{store}", "database": "bench"}
            ),
            "publisher": settings.publisher.model_copy(update={"batch_events": batch_events}),
            "log_level": "WARNING",
        }
    )
    log_dir = settings.state_dir.resolve() / "bench" / run_id.rstrip("-")
    pipeline = LocalPipeline(s, RunOptions(workers=workers, notify=False), log_dir)
    try:
        pipeline.start()
        pipeline.wait_settled(timeout_s=180)  # a worker joining late would stop the group mid-run
        with EventPublisher(s.kafka, s.publisher, pipeline.topics) as publisher:  # warm-up: one comment
            publisher.publish(_comment(0, int(time.time() * 1000), "bench-warmup"))
        pipeline.wait_processed(timeout_s=180)
        pipeline.wait_loaded(timeout_s=180)

        topics = [*pipeline.topics.all, state_changelog_topic(s.processor.app_id)]
        written_before = records_written(s.kafka, topics)
        cpu_before = _cpu_readings(pipeline, broker_pid)
        started = time.perf_counter()
        with file.open("rb") as lines, EventPublisher(s.kafka, s.publisher, pipeline.topics) as publisher:
            replay(lines, publisher, source=str(file))
        phases = {"read": time.perf_counter() - started}
        if kill_at:
            _kill_worker_at(pipeline, s, sorted(kill_at))
        pipeline.wait_processed(timeout_s=1800)
        phases["processed"] = time.perf_counter() - started
        pipeline.wait_loaded(timeout_s=1800)
        seconds = time.perf_counter() - started
        phases["loaded"] = seconds
        cpu = {name: spent - cpu_before[name] for name, spent in _cpu_readings(pipeline, broker_pid).items()}
        written = {
            topic.removeprefix(run_id): n - written_before.get(topic, 0)
            for topic, n in records_written(s.kafka, topics).items()
        }
        rows = run_query(
            s.clickhouse,
            "SELECT (SELECT count() FROM engagement_minute FINAL), (SELECT count() FROM comment_sla FINAL), "
            "(SELECT count() FROM alerts FINAL)",
            open_store=False,
        ).rows[0]

        live_from_ms = int(time.time() * 1000)
        sent = 0
        with EventPublisher(s.kafka, s.publisher, pipeline.topics) as publisher:
            begun = time.time()
            while (elapsed := time.time() - begun) < live_s:
                now_ms = int(time.time() * 1000)
                while sent < int(elapsed * live_rate):
                    community = SLA_COMMUNITY if sent % 10 == 0 else "bench-live"
                    publisher.publish(_comment(sent, now_ms, community))
                    sent += 1
                publisher.poll()
                time.sleep(0.002)
        time.sleep(SLA_S + 2)  # the last deadlines pass on the wall clock
        pipeline.wait_processed(timeout_s=300)
        pipeline.wait_loaded(timeout_s=300)
        latency = run_query(
            s.clickhouse,
            "SELECT quantileExact(0.5)(ms), quantileExact(0.99)(ms), count() FROM (SELECT comment_id, "
            "toUnixTimestamp64Milli(min(written_at)) - toUnixTimestamp64Milli(any(commented_at)) AS ms "
            "FROM comment_sla WHERE community_id = 'bench-live' AND commented_at >= fromUnixTimestamp64Milli("
            f"{live_from_ms}) GROUP BY comment_id)",
            open_store=False,
        ).rows[0]
        alerts = run_query(
            s.clickhouse,
            "SELECT quantileExact(0.5)(ms), quantileExact(0.99)(ms), count() FROM (SELECT "
            "toUnixTimestamp64Milli(min(written_at)) - toUnixTimestamp64Milli(any(fired_at)) AS ms FROM alerts "
            f"WHERE community_id = '{SLA_COMMUNITY}' AND kind = 'unanswered_comment' GROUP BY alert_id)",
            open_store=False,
        ).rows[0]
        on_topic = _alert_topic_latencies(s, pipeline.topics.alerts)
        peaks: dict[str, float] = {}  # the largest stream worker's
        for child in pipeline.children:
            peaks[child.name] = max(peaks.get(child.name, 0.0), child.peak_mb())
    finally:
        try:
            pipeline.stop()
            pipeline.delete_topics_and_groups()
        finally:  # the store goes even when the broker does not answer
            shutil.rmtree(store, ignore_errors=True)
    if not latency[2]:
        raise PulseError(f"no live comment reached ClickHouse; logs in {log_dir}")
    return EndToEndResult(
        batch_events=batch_events,
        events=events,
        seconds=seconds,
        latency_p50_ms=float(latency[0]),
        latency_p99_ms=float(latency[1]),
        alert_p50_ms=float(alerts[0]) if alerts[2] else None,
        alert_p99_ms=float(alerts[1]) if alerts[2] else None,
        alert_topic_p50_ms=_quantile(on_topic, 0.5),
        alert_topic_p99_ms=_quantile(on_topic, 0.99),
        peak_mb=peaks,
        cpu_s=cpu,
        phases_s=phases,
        records=written,
        window_rows=int(rows[0]),
        sla_rows=int(rows[1]),
        alert_rows=int(rows[2]),
    )
