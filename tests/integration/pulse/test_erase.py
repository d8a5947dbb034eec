"""`pulse erase` on the whole path: events through a real stream worker and `pulse sink` into an embedded
store, then one person erased. Afterwards no row of theirs is in any table, the worker's saved state (its
changelog, as compaction leaves it: the last value per key) names them nowhere, and everybody else's rows
are unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from agents import EventPublisher, PublisherSettings
from pipeline.warehouse import ClickHouseSettings
from pipeline.warehouse.query_service import address_file, run_query
from pulse.topics import TopicSettings, ensure_topics
from schemas import CanonicalEvent, KafkaSettings, validate
from schemas.wire import state_changelog_topic
from tests.kafka_reading import read_all
from tests.processor_worker import Worker

PERSON, OTHER = "u-erase-me-7", "u-stays-8"
TABLES = {  # what of a person each table holds, by the person's id
    "events": "SELECT count() FROM events WHERE user_id = {u:String}",
    "alerts": "SELECT count() FROM alerts WHERE author_id = {u:String}",
    "comment_sla": "SELECT count() FROM comment_sla WHERE comment_id IN "
    "(SELECT comment_id FROM events WHERE user_id = {u:String}) OR comment_id LIKE concat('m-', {u:String}, '%')",
}
ENGAGERS = "SELECT uniqExactMerge(engagers) AS n FROM engagement_segment_hour"  # distinct people counted


def pulse(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pulse", *args], env=env, capture_output=True, text=True,
                          timeout=180)  # fmt: skip


def query(env: dict[str, str], sql: str, **parameters: str) -> list[dict[str, Any]]:
    """Through `pulse query` (its own process: this one keeps the session's store open)."""
    for name, value in parameters.items():
        sql = sql.replace(f"{{{name}:String}}", "'" + value.replace("'", "\\'") + "'")
    done = pulse(env, "query", sql, "--format", "json")
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout)  # type: ignore[no-any-return]


def history(now_ms: int) -> list[CanonicalEvent]:
    """Two hours ago: both comment and like; an hour later the other's comment passes both deadlines."""
    start = now_ms - 2 * 3_600_000
    rows: list[dict[str, Any]] = []
    for i, user in enumerate((PERSON, OTHER)):
        rows += [
            {"event_id": f"vk:l{i}", "type": "like", "user_id": user, "ts": start + i * 1000},
            {"event_id": f"vk:c{i}", "type": "comment", "user_id": user, "ts": start + 10_000 + i * 1000,
             "comment_id": f"m-{user}", "text": f"call me, {user}"},
        ]  # fmt: skip
    rows.append({"event_id": "vk:later", "type": "comment", "user_id": OTHER, "ts": start + 3_600_000,
                 "comment_id": "m-later", "text": "anyone?"})  # fmt: skip
    base = {"platform": "vk", "community_id": "c1", "post_id": "p1", "age_band": "18-24"}
    return [validate(base | row) for row in rows]


def test_pulse_erase_leaves_no_trace_in_the_tables_and_the_worker_state(
    kafka: KafkaSettings, unique: str, tmp_path: Path
) -> None:
    prefix = f"e{unique}-"
    store = tmp_path / "store"
    env = {
        **os.environ,
        "PULSE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "PULSE_TOPICS__PREFIX": prefix,
        "PULSE_TOPICS__EVENT_PARTITIONS": "2",
        "PULSE_CLICKHOUSE__DSN": f"chdb://{store}",
        "PULSE_PROCESSOR__APP_ID": f"{prefix}app",
        "PULSE_SINK__GROUP": f"{prefix}sink",
        "PULSE_SINK__FLUSH_INTERVAL_S": "0.2",
    }
    settings = TopicSettings(prefix=prefix, event_partitions=2)
    ensure_topics(
        kafka, settings.partitions(settings.names), 1, 1 << 30, settings.retention_ms(settings.names)
    )
    worker = Worker(kafka, prefix, tmp_path / "worker.log", sla_default_s=600)
    with EventPublisher(kafka, PublisherSettings(), worker.topics) as publisher:
        for event in history(time.time_ns() // 1_000_000):
            publisher.publish(event)
    worker.start()
    sink = subprocess.Popen(
        [sys.executable, "-m", "pulse", "sink"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        worker.wait_drained(timeout_s=120)
        served = ClickHouseSettings(dsn=f"chdb://{store}")
        deadline = time.monotonic() + 90
        count = "SELECT (SELECT count() FROM events FINAL), (SELECT count() FROM alerts FINAL)"
        while time.monotonic() < deadline:
            if address_file(served).exists() and run_query(served, count, open_store=False).rows == [[5, 4]]:  # type: ignore[union-attr]
                break
            time.sleep(0.5)
        assert run_query(served, count, open_store=False).rows == [[5, 4]], "2 unanswered, 2 at risk"
    finally:
        sink.terminate()
        _, err = sink.communicate(timeout=60)
    assert sink.returncode == 0, err
    try:
        before = [next(iter(query(env, sql, u=PERSON)[0].values())) for sql in TABLES.values()]
        assert before[0] == 2 and before[1] >= 2 and before[2] >= 1, before
        assert query(env, ENGAGERS) == [{"n": 2}]
        others = query(
            env, f"SELECT * EXCEPT ingested_at FROM events WHERE user_id = '{OTHER}' ORDER BY event_id"
        )
        other_alerts = query(
            env, f"SELECT alert_id, snippet FROM alerts FINAL WHERE author_id = '{OTHER}' ORDER BY 1"
        )

        done = pulse(env, "erase", "--platform", "vk", "--user-id", PERSON, "--wait", "60s")
        assert done.returncode == 0, done.stderr
        report = " ".join(done.stdout.split())
        assert f"erased vk:{PERSON}" in report and "clickhouse events: 2 rows removed" in report, report
        assert (
            "clickhouse alerts: 2 rows removed" in report
            and "applied by the workers on every partition" in report
        )

        after = [next(iter(query(env, sql, u=PERSON)[0].values())) for sql in TABLES.values()]
        assert after == [0, 0, 0], after
        assert query(env, ENGAGERS) == [{"n": 1}], "the segments count the other person only"
        assert (
            query(env, f"SELECT * EXCEPT ingested_at FROM events WHERE user_id = '{OTHER}' ORDER BY event_id")
            == others
        )
        assert (
            query(env, f"SELECT alert_id, snippet FROM alerts FINAL WHERE author_id = '{OTHER}' ORDER BY 1")
            == other_alerts
        )
    finally:
        assert worker.stop() == 0, worker.log_tail()
    latest: dict[bytes | None, bytes] = {}
    for record in read_all(kafka, state_changelog_topic(worker.app_id)):
        latest[record.key] = record.value
    assert latest and not [k for k, v in latest.items() if v and PERSON.encode() in v], "the saved state"
    assert any(v and OTHER.encode() in v for v in latest.values()), "the other person's state is kept"
    assert "erased vk:u-erase-me-7 from" in worker.log.read_text()
    admin = KafkaAdminClient(**kafka.client_config())
    try:
        changelog = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, state_changelog_topic(worker.app_id))]
        )
    finally:
        admin.close()
    (config,) = changelog["topic"].values()
    assert config["max.compaction.lag.ms"]["value"] == "86400000", "older values compacted away within a day"
