"""The warehouse loader on the real broker and the embedded engine: processor outputs into their tables,
exactly once under FINAL across replays, and `pulse query` with and without a running `pulse sink`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from agents import EventPublisher, PublisherSettings
from pipeline import QueryRefused
from pipeline.warehouse import ClickHouseSettings, apply_migrations, connect
from pipeline.warehouse.loader import Route, SerializedClient, WarehouseLoader
from pipeline.warehouse.query_service import read_address, run_query
from pipeline.warehouse.routes import sink_routes
from pipeline.warehouse.table_sink import SinkSettings
from pulse.topics import ensure_topics, wait_committed
from schemas import CanonicalEvent, KafkaSettings, Topics
from schemas.outputs import Alert, AlertKind, RollingValue, SlaRecord, SpanTotals, WindowValue, encode_outputs

MINUTE_MS = 1_795_000_020_000 - 1_795_000_020_000 % 60_000


def window(post: str, likes: int, comments: int, minute: int = 0) -> WindowValue:
    return WindowValue(
        "vk", "c1", post, MINUTE_MS + minute * 60_000, likes, 0, comments, 0, likes, likes + 2.0 * comments
    )


def sla(comment: str, answered_after_s: int | None, breached: bool = False) -> SlaRecord:
    answered = None if answered_after_s is None else MINUTE_MS + answered_after_s * 1000
    return SlaRecord("vk", comment, "c1", "p1", "u1", MINUTE_MS, 600.0, answered, breached, False)


def alert(comment: str, kind: AlertKind) -> Alert:
    return Alert(
        f"vk:c1:{comment}:{kind.value}", kind, "vk", "c1", "p1", comment, "u1", "hello?", MINUTE_MS,
        MINUTE_MS + 600_000, 600.0, 600.0, None,
    )  # fmt: skip


def publish_outputs(kafka: KafkaSettings, topics: Topics) -> None:
    producer = KafkaProducer(**kafka.client_config(), acks="all")
    rolling = RollingValue("vk", "c1", "p1", MINUTE_MS, {"5m": SpanTotals(1, 0, 0, 0, 1.0)})
    engagement = [
        [window("p1", 1, 0), rolling],
        [window("p1", 3, 1), window("p2", 2, 0)],
        [window("p1", 2, 0)],  # an older version arriving late: FINAL keeps the fullest
        [window("p1", 5, 1, minute=1)],
    ]
    for records in engagement:
        producer.send(topics.engagement, value=encode_outputs(records), partition=0)
    for records in ([sla("m1", None), sla("m2", None)], [sla("m1", 90)], [sla("m2", None, breached=True)]):
        producer.send(topics.comment_sla, value=encode_outputs(records), partition=1)
    for records in ([alert("m2", AlertKind.UNANSWERED)], [alert("m2", AlertKind.UNANSWERED)]):  # redelivered
        producer.send(topics.alerts, value=encode_outputs(records))
    producer.flush()
    producer.close()
    with EventPublisher(kafka, PublisherSettings(batch_events=2), topics) as publisher:
        for i in range(5):
            publisher.publish(
                CanonicalEvent(f"e{i}", "like", "vk", "c1", "p1", f"u{i}", MINUTE_MS + i, age_band="18-24")
            )


def load_all(kafka: KafkaSettings, topics: Topics, client: Any, group: str) -> WarehouseLoader:
    routes = [Route(spec, sources) for spec, sources in sink_routes(topics)]
    settings = SinkSettings(batch_rows=3, flush_interval_s=0.2)
    loader = WarehouseLoader(kafka, routes, SerializedClient(client), topics.dead_letters, group, settings)
    loader.start()
    try:
        wait_committed(kafka, group, [topic for r in routes for topic in r.topics], 60, "the loader")
        return loader
    finally:
        loader.stop()


def snapshot(client: Any) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        "engagement": "SELECT post_id, toUnixTimestamp(minute), likes, comments, events "
        "FROM engagement_minute FINAL ORDER BY post_id, minute",
        "sla": "SELECT comment_id, response_seconds, breached, stage FROM comment_sla FINAL ORDER BY comment_id",
        "alerts": "SELECT alert_id, kind, toUnixTimestamp64Milli(fired_at) FROM alerts FINAL",
        "events": "SELECT count(), uniqExact(event_id) FROM events FINAL",
        "segments": "SELECT age_band, likes, engagers FROM engagement_by_segment",
    }
    return {name: client.query(sql).result_rows for name, sql in queries.items()}


def test_outputs_land_once_and_a_replay_changes_nothing(
    kafka: KafkaSettings, clickhouse: ClickHouseSettings, unique: str
) -> None:
    topics = Topics.prefixed(f"l{unique}-")
    ensure_topics(kafka, dict.fromkeys(topics.all, 2), 1)
    publish_outputs(kafka, topics)
    client = connect(clickhouse)
    apply_migrations(client)

    first = load_all(kafka, topics, client, f"g1{unique}")
    expected = {
        "engagement": [("p1", MINUTE_MS // 1000, 3, 1, 4), ("p1", MINUTE_MS // 1000 + 60, 5, 1, 6),
                       ("p2", MINUTE_MS // 1000, 2, 0, 2)],
        "sla": [("m1", 90.0, 0, 2), ("m2", None, 1, 1)],
        "alerts": [("vk:c1:m2:unanswered_comment", "unanswered_comment", MINUTE_MS + 600_000)],
        "events": [(5, 5)],
        "segments": [("18-24", 5, 5)],
    }  # fmt: skip
    assert snapshot(client) == expected
    assert all(s.dead_letters == 0 for s in first.stats().values())

    # A loader that crashed before committing anything reads it all again: the same answers.
    second = load_all(kafka, topics, client, f"g2{unique}")
    assert sum(s.rows_written for s in second.stats().values()) > 0
    assert snapshot(client) == expected


def test_output_lines_the_server_refuses_are_dead_lettered_with_its_reason(
    kafka: KafkaSettings, clickhouse: ClickHouseSettings, unique: str
) -> None:
    """Outputs of a known kind are stored as they came, so the server is their check: a value with a line
    that lacks a field, or has one of the wrong type, is dead-lettered whole, with the server's reason; the
    values around it are stored."""
    from schemas import DLQ_CODE, DLQ_REASON, DLQ_SOURCE
    from tests.kafka_reading import read_all

    topics = Topics.prefixed(f"r{unique}-")
    ensure_topics(kafka, dict.fromkeys(topics.all, 2), 1)
    good = encode_outputs([window("p1", 1, 0), window("p2", 2, 0)])
    missing = encode_outputs([window("p3", 3, 0)]).replace(b'"likes":3,', b"")
    wrong = encode_outputs([window("p4", 4, 0)]).replace(b'"likes":4', b'"likes":"four"')
    later = encode_outputs([window("p5", 5, 0)])
    producer = KafkaProducer(**kafka.client_config(), acks="all")
    for value in (good, missing, wrong, later):
        producer.send(topics.engagement, value=value, partition=0)
    producer.flush()
    producer.close()
    client = connect(clickhouse)
    apply_migrations(client)

    loader = load_all(kafka, topics, client, f"g{unique}")
    stored = client.query("SELECT post_id, likes FROM engagement_minute FINAL ORDER BY post_id").result_rows
    assert stored == [("p1", 1), ("p2", 2), ("p5", 5)]
    assert loader.stats()["engagement_minute"].dead_letters == 2
    dead = read_all(kafka, topics.dead_letters)
    assert sorted(r.value for r in dead) == sorted([missing, wrong])
    for record in dead:
        assert record.headers[DLQ_CODE] == b"sink_rejected"
        assert record.headers[DLQ_SOURCE].startswith(f"{topics.engagement}/0/".encode())
        assert b"likes" in record.headers[DLQ_REASON], record.headers[DLQ_REASON]


def pulse(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pulse", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_query_works_with_and_without_a_running_sink(
    kafka: KafkaSettings, unique: str, tmp_path: Path
) -> None:
    topics = Topics.prefixed(f"q{unique}-")
    store = tmp_path / "store"
    env = {
        **os.environ,
        "PULSE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "PULSE_TOPICS__PREFIX": f"q{unique}-",
        "PULSE_TOPICS__EVENT_PARTITIONS": "2",
        "PULSE_CLICKHOUSE__DSN": f"chdb://{store}",
        "PULSE_SINK__FLUSH_INTERVAL_S": "0.2",
        "PULSE_SINK__NICENESS": "7",
    }
    ensure_topics(kafka, dict.fromkeys(topics.all, 2), 1)
    publish_outputs(kafka, topics)
    until = [
        "--until",
        "2026-11-18T12:00:00",
        "--since",
        "1h",
        "--format",
        "json",
    ]  # MINUTE_MS is 11:07 that day
    sink = subprocess.Popen(
        [sys.executable, "-m", "pulse", "sink"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        address = Path(f"{store}.query-address")
        deadline = time.monotonic() + 90
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline and len(rows) < 2:
            time.sleep(0.3)
            if address.exists():
                done = pulse(env, "query", "--named", "top-posts", *until)
                assert done.returncode == 0, done.stderr
                rows = orjson.loads(done.stdout)
        assert [(r["post_id"], r["likes"]) for r in rows] == [("p1", 8), ("p2", 2)], (
            "through the running sink"
        )
        threads = [
            (stat.with_name("comm").read_text().strip(), int(stat.read_text().rpartition(")")[2].split()[16]))
            for stat in Path(f"/proc/{sink.pid}/task").glob("*/stat")
        ]
        # chDB's memory tracker raises its own thread's priority; every other thread took the niceness.
        assert len(threads) > 5 and {n for name, n in threads if name != "MemoryWorker"} == {7}, threads
        refused = pulse(env, "query", "SELECT 1; DROP TABLE alerts")
        assert refused.returncode == 1 and "one statement at a time" in refused.stderr, refused.stderr
        served = ClickHouseSettings(dsn=f"chdb://{store}")
        for hostile in (
            "INSERT INTO alerts (alert_id) VALUES ('x')",
            f"INSERT INTO FUNCTION file('{tmp_path}/x.csv', 'CSV') SELECT 1",
            f"SELECT 1 INTO OUTFILE '{tmp_path}/out.csv'",
            "SELECT * FROM file('/etc/hostname', 'LineAsString')",
            "SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString')",
            "SET max_threads = 2",
            "TRUNCATE TABLE alerts",
        ):
            with pytest.raises(QueryRefused):
                run_query(served, hostile, open_store=False)
        assert not list(tmp_path.glob("*.csv"))
        where = read_address(address)
        stranger = urllib.request.Request(
            f"http://{where.address}/query", data=b'{"sql": "SELECT 1"}', method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as unauthorised:
            urllib.request.urlopen(stranger, timeout=10)
        assert unauthorised.value.code == 401
        # The loader still inserts after all that: a new alert lands.
        producer = KafkaProducer(**kafka.client_config(), acks="all")
        producer.send(topics.alerts, value=encode_outputs([alert("m3", AlertKind.UNANSWERED)])).get(30)
        producer.close()
        count = "SELECT count() FROM alerts FINAL"
        while time.monotonic() < deadline and run_query(served, count, open_store=False).rows != [[2]]:
            time.sleep(0.3)
        assert run_query(served, count, open_store=False).rows == [[2]]
        counted = pulse(env, "query", "SELECT count() FROM alerts FINAL", "--format", "csv")
        assert counted.returncode == 0 and counted.stdout.splitlines()[-1] == "2", counted.stderr
    finally:
        sink.terminate()
        _, err = sink.communicate(timeout=60)
    assert sink.returncode == 0, err
    assert "engagement_minute: " in err and not Path(f"{store}.query-address").exists()
    alone = pulse(env, "query", "SELECT count() AS alerts FROM alerts FINAL", "--format", "csv")
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.splitlines() == ["alerts", "2"], "the store opened directly once the sink is gone"


def test_the_loader_holding_the_alerts_topic_sends_a_quiet_source_alert_once(
    kafka: KafkaSettings, clickhouse: ClickHouseSettings, unique: str
) -> None:
    """Events of a community that arrived every minute from 4 h to 40 min ago, then none: the loader's
    watch sends `source_quiet` to the alerts topic, and the loader itself stores it; a second loader on
    the same store (a restart) reads the episode back and sends nothing more."""
    from pipeline.warehouse.routes import EVENT_COLUMNS
    from pipeline.warehouse.source_watch import SourceWatch, SourceWatchSettings
    from tests.kafka_reading import read_all
    from tests.warehouse_rows import like_row

    topics = Topics.prefixed(f"w{unique}-")
    ensure_topics(kafka, dict.fromkeys(topics.all, 2), 1)
    client = connect(clickhouse)
    apply_migrations(client)
    now_s = int(time.time())
    arrived = [now_s - 4 * 3_600 + i * 60 for i in range(200)]  # the last, 40 minutes ago
    rows = [like_row(i, "quiet1", at) for i, at in enumerate(arrived)]
    client.insert("events", rows, column_names=list(EVENT_COLUMNS))
    watch_settings = SourceWatchSettings(check_interval_s=1)

    def run_loader(group: str) -> None:
        routes = [Route(spec, sources) for spec, sources in sink_routes(topics)]
        watch = (SourceWatch(SerializedClient(client), watch_settings), topics.alerts)
        settings = SinkSettings(flush_interval_s=0.2)
        loader = WarehouseLoader(
            kafka, routes, SerializedClient(client), topics.dead_letters, group, settings, watch
        )
        loader.start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                stored = client.query("SELECT count() FROM alerts WHERE kind = 'source_quiet'").result_rows[
                    0
                ][0]
                if stored:
                    break
                time.sleep(0.3)
            time.sleep(3)  # a few more checks
        finally:
            loader.stop()

    run_loader(f"w1{unique}")
    run_loader(f"w2{unique}")
    sent = [r for r in read_all(kafka, topics.alerts) if b"source_quiet" in r.value]
    assert len(sent) == 1, [r.value for r in sent]
    (row,) = client.query(
        "SELECT community_id, observed, expected FROM alerts FINAL WHERE kind = 'source_quiet'"
    ).result_rows
    assert row[0] == "quiet1" and row[1] == 0.0 and row[2] is not None and row[2] >= 20
