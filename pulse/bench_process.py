"""Stream-processor benchmark: events/s through one real `pulse process` worker, end-to-end latency, and
alert latency after the SLA deadline, with batched messages against one event per message.

Throughput: the input is loaded into fresh topics first (so the producer does not compete with the worker
for the CPU), then one worker drains it; the rate is events / (last output's broker timestamp - the
worker's first output's), i.e. measured by Kafka, not by polling. Latency: the worker then runs live, the
events stamped with the wall clock as they are sent at a steady rate; each engagement output carries the
record timestamp of the input message behind it, so latency = output timestamp - input timestamp.
Alert latency: subscriber comments with a 3 s SLA that nobody answers; latency = alert timestamp -
deadline.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from agents import EventPublisher, PublisherSettings, Simulator, SimulatorSettings
from pipeline.processor import SOURCE_TS_HEADER
from pulse.bench import BenchTopics
from pulse.errors import PulseError, TopicError
from pulse.topics import group_lag
from schemas import CanonicalEvent, KafkaSettings, Topics, validate
from schemas.outputs import Alert, decode_outputs

SLA_COMMUNITY = "bench-sla"
SLA_S = 3.0


@dataclass(frozen=True, slots=True)
class ProcessResult:
    batch_events: int
    events: int
    seconds: float
    latency_p50_ms: float
    latency_p99_ms: float
    live_events_per_s: float
    alert_p50_ms: float | None
    alert_p99_ms: float | None
    alerts: int
    worker_peak_mb: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


class _Worker:
    def __init__(self, kafka: KafkaSettings, topics: Topics, prefix: str, partitions: int, log: Path) -> None:
        self.kafka, self.topics, self.app_id, self.log = kafka, topics, f"{prefix}app", log
        env = {
            **os.environ,
            "PULSE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "PULSE_TOPICS__PREFIX": prefix,
            "PULSE_TOPICS__EVENT_PARTITIONS": str(partitions),
            "PULSE_PROCESSOR__APP_ID": self.app_id,
            "PULSE_PROCESSOR__SLA_PER_COMMUNITY_S": json.dumps({SLA_COMMUNITY: SLA_S}),
            "PULSE_PROCESSOR__AT_RISK_FRACTION": "0.5",
            "PULSE_LOG_LEVEL": "WARNING",
        }
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pulse", "process"], stdout=out, stderr=subprocess.STDOUT, env=env
            )

    def wait_drained(self, timeout_s: float) -> None:
        inputs = [self.topics.likes, self.topics.comments, self.topics.reposts]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PulseError(f"the worker exited with {self.process.returncode}; see {self.log}")
            try:
                if sum(group_lag(self.kafka, self.app_id, inputs).values()) == 0:
                    return
            except TopicError:
                pass  # no group coordinator yet
            time.sleep(0.25)
        raise PulseError(f"the worker did not drain its input in {timeout_s:.0f} s; see {self.log}")

    def peak_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _records(kafka: KafkaSettings, topic: str) -> list[tuple[int, bytes, dict[str, bytes]]]:
    consumer = KafkaConsumer(**kafka.client_config(), enable_auto_commit=False)
    try:
        consumer.topics()
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        end = consumer.end_offsets(partitions)
        out, remaining = [], {tp for tp in partitions if end[tp] > 0}
        while remaining:
            for tp, batch in consumer.poll(timeout_ms=1000, max_records=50_000).items():
                out += [(r.timestamp, r.value, dict(r.headers)) for r in batch]
                if consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        return out
    finally:
        consumer.close()


def _live(event: CanonicalEvent, now_ms: int) -> CanonicalEvent:
    raw = {f: getattr(event, f) for f in event.__struct_fields__ if getattr(event, f) is not None}
    return validate({**raw, "ts": now_ms, "event_id": f"live-{raw['event_id']}"})


def _unanswered(i: int, now_ms: int) -> CanonicalEvent:
    return validate(
        {"event_id": f"sla-{i}", "type": "comment", "platform": "sim", "community_id": SLA_COMMUNITY,
         "post_id": f"sla-p{i % 20}", "user_id": f"u{i}", "comment_id": f"sla-m{i}", "text": "anyone?",
         "ts": now_ms}
    )  # fmt: skip


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def run_process(
    kafka: KafkaSettings, state_dir: Path, batch_events: int, events: int, live_s: float, live_rate: float,
    partitions: int, with_alerts: bool,
) -> ProcessResult:  # fmt: skip
    label = f"proc{batch_events}"
    bench_topics = BenchTopics(kafka, label, partitions)
    with bench_topics as topics:
        prefix = topics.likes.removesuffix("likes")
        bench_topics.extra.append(f"{prefix}app-state-changelog")
        publisher_settings = PublisherSettings(batch_events=batch_events)
        simulator = Simulator(SimulatorSettings(communities=50, seed=9, events_per_sim_s=500))
        stream = simulator.events(count=events + int(live_s * live_rate) + 1_000)
        # The backlog is stamped as the last minutes before now, so the live part continues it (a jump
        # from simulated history to now would fire every open comment's SLA at once and measure that).
        backlog = [event for _, event in zip(range(events), stream, strict=False)]
        shift = int(time.time() * 1000) - backlog[-1].ts_ms
        with EventPublisher(kafka, publisher_settings, topics) as publisher:
            for event in backlog:
                publisher.publish(_live(event, event.ts_ms + shift))
            publisher.flush()
        del backlog
        log = state_dir / "bench" / f"{label}-worker.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        worker = _Worker(kafka, topics, prefix, partitions, log)
        try:
            worker.wait_drained(timeout_s=600)
            drained = _records(kafka, topics.engagement)
            first = min(ts for ts, _, _ in drained)
            last = max(ts for ts, _, _ in drained)
            seconds = max(last - first, 1) / 1000

            # Live: events stamped with the wall clock, sent at a steady rate, while the worker runs.
            sent, started = 0, time.time()
            with EventPublisher(kafka, publisher_settings, topics) as publisher:
                while (elapsed := time.time() - started) < live_s:
                    due = int(elapsed * live_rate)
                    now_ms = int(time.time() * 1000)
                    while sent < due:
                        publisher.publish(_live(next(stream), now_ms))
                        sent += 1
                    publisher.poll()
                    time.sleep(0.002)
                if with_alerts:
                    for i in range(200):
                        publisher.publish(_unanswered(i, int(time.time() * 1000)))
                        publisher.poll()
                        time.sleep(0.01)
                publisher.flush()
            worker.wait_drained(timeout_s=120)
            if with_alerts:
                time.sleep(SLA_S + 3)  # the last deadlines pass on the wall clock
            live = [r for r in _records(kafka, topics.engagement) if r[0] > last]
            latencies = [float(ts - int(h[SOURCE_TS_HEADER])) for ts, _, h in live if SOURCE_TS_HEADER in h]
            alert_latencies: list[float] = []
            for ts, value, _ in _records(kafka, topics.alerts):
                for alert in decode_outputs(value):
                    if (
                        isinstance(alert, Alert)
                        and alert.kind.value == "unanswered_comment"
                        and alert.community_id == SLA_COMMUNITY
                    ):
                        alert_latencies.append(float(ts - alert.fired_at_ms))
            peak = worker.peak_mb()
        finally:
            worker.stop()
    if not latencies:
        raise PulseError(f"no live output to measure latency from; see {log}")
    return ProcessResult(
        batch_events=batch_events,
        events=events,
        seconds=seconds,
        latency_p50_ms=_percentile(latencies, 50),
        latency_p99_ms=_percentile(latencies, 99),
        live_events_per_s=sent / live_s,
        alert_p50_ms=_percentile(alert_latencies, 50) if alert_latencies else None,
        alert_p99_ms=_percentile(alert_latencies, 99) if alert_latencies else None,
        alerts=len(alert_latencies),
        worker_peak_mb=peak,
    )
