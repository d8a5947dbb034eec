"""`pulse replay` and the producer core against the real broker."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from kafka.partitioner.default import murmur2

from agents import EventPublisher, PublisherSettings, Simulator, SimulatorSettings, replay
from agents import publisher as publisher_module
from pulse.topics import ensure_topics
from schemas import (
    CANONICAL_HEADER,
    DLQ_CODE,
    DLQ_REASON,
    DLQ_SOURCE,
    DLQ_STAGE,
    EventType,
    KafkaSettings,
    Topics,
    decode_events,
    encode_event,
    encode_events,
    validate,
)
from tests.kafka_reading import read_all

PARTITIONS = 3


@pytest.fixture
def topics(kafka: KafkaSettings, unique: str) -> Topics:
    names = Topics.prefixed(f"t{unique}-")
    ensure_topics(kafka, dict.fromkeys(names.all, PARTITIONS), 1)
    return names


def simulated_lines(count: int, seed: int = 11) -> list[bytes]:
    sim = Simulator(SimulatorSettings(communities=3, seed=seed))
    return [encode_event(e) for e in sim.events(count=count)]


def test_replay_routes_keys_orders_and_timestamps(kafka: KafkaSettings, topics: Topics) -> None:
    lines = simulated_lines(3000)
    with EventPublisher(kafka, PublisherSettings(batch_events=50, linger_ms=10), topics) as publisher:
        report = replay(iter(lines), publisher, source="sim")
    assert (report.sent, report.rejected, report.duplicates) == (3000, 0, 0)

    records = read_all(kafka, *topics.event_topics)
    landed = [(r, e) for r in records for e in r.events]
    assert sorted(e.event_id for _, e in landed) == sorted(orjson.loads(x)["event_id"] for x in lines)
    per_post_sent: dict[str, list[str]] = defaultdict(list)
    for line in lines:
        obj = orjson.loads(line)
        per_post_sent[f"{obj['platform']}:{obj['community_id']}:{obj['post_id']}"].append(obj["event_id"])
    per_post_landed: dict[str, list[str]] = defaultdict(list)
    for record, event in landed:
        assert record.topic == topics.for_type(event.type)
        assert record.partition == (murmur2(event.post_key.encode()) & 0x7FFFFFFF) % PARTITIONS
        assert record.timestamp == record.events[0].ts_ms
        if record.key is not None:
            assert {e.post_key for e in record.events} == {record.key.decode()}
        else:
            assert len({e.post_key for e in record.events}) > 1
        per_post_landed[event.post_key].append(event.event_id)
    # Each post's events are in one topic-partition per type; compare the order within each type's topic.
    for post, sent in per_post_sent.items():
        for topic in topics.event_topics:
            in_topic = [e.event_id for r, e in landed if r.topic == topic and e.post_key == post]
            assert in_topic == [i for i in sent if i in set(in_topic)]
    assert max(len(r.events) for r in records) > 1, "events should be batched several to a message"


def test_routes_stay_right_when_the_remembered_ones_are_forgotten(
    kafka: KafkaSettings, topics: Topics, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher_module, "ROUTES_REMEMBERED", 10)
    lines = simulated_lines(600)
    with EventPublisher(kafka, PublisherSettings(batch_events=20), topics) as publisher:
        report = replay(iter(lines), publisher, source="sim")
        assert 0 < len(publisher._route) <= 10
    routes = {
        (topics.for_type(EventType(e["type"])), e["community_id"], e["post_id"])
        for e in map(orjson.loads, lines)
    }
    assert report.sent == 600 and len(routes) > 20, "more routes than remembered"
    landed = [(r, e) for r in read_all(kafka, *topics.event_topics) for e in r.events]
    assert len(landed) == 600
    assert all(r.partition == (murmur2(e.post_key.encode()) & 0x7FFFFFFF) % PARTITIONS for r, e in landed)


def test_one_event_per_message_when_batching_is_off(kafka: KafkaSettings, topics: Topics) -> None:
    with EventPublisher(kafka, PublisherSettings(batch_events=1), topics) as publisher:
        replay(iter(simulated_lines(200)), publisher, source="sim")
    records = read_all(kafka, *topics.event_topics)
    assert len(records) == 200
    assert all(len(r.events) == 1 and r.key == r.events[0].post_key.encode() for r in records)


def test_cli_replay_dead_letters_bad_lines_and_counts(
    kafka: KafkaSettings, topics: Topics, unique: str, tmp_path: Path
) -> None:
    good = simulated_lines(500)
    bad = [
        (3, b'{"event_id": "no-type"}', "field 'type': is required but missing"),
        (250, b"this is not json", "not valid JSON"),
        (400, orjson.dumps({**orjson.loads(good[0]), "event_id": "late", "ts": "yesterday"}), "field 'ts'"),
    ]
    lines = list(good)
    for line_no, raw, _ in bad:
        lines.insert(line_no - 1, raw)
    lines.append(good[10])  # a duplicate of an event already sent
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")

    env = {
        **os.environ,
        "PULSE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "PULSE_TOPICS__PREFIX": f"t{unique}-",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pulse", "replay", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "500 sent, 3 rejected (dead-lettered), 1 duplicates skipped, 504 lines" in " ".join(
        result.stdout.split()
    )

    assert sum(len(r.events) for r in read_all(kafka, *topics.event_topics)) == 500
    dead = sorted(
        read_all(kafka, topics.dead_letters), key=lambda r: int(r.headers[DLQ_SOURCE].rsplit(b":", 1)[1])
    )
    assert [r.value for r in dead] == [raw for _, raw, _ in bad]
    for record, (line_no, _, reason) in zip(dead, bad, strict=True):
        assert record.headers[DLQ_STAGE] == b"ingest-replay"
        assert record.headers[DLQ_CODE] == b"invalid_event"
        assert record.headers[DLQ_SOURCE] == f"{path}:{line_no}".encode()
        assert record.headers[DLQ_REASON].decode().startswith(f"line {line_no}: ")
        assert reason in record.headers[DLQ_REASON].decode()


def test_a_file_read_in_blocks_keeps_line_numbers_and_lands_canonical(
    kafka: KafkaSettings, topics: Topics, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small blocks, so that bad lines fall in several of them; lines in RFC 3339 time, with explicit
    defaults, blank lines and a last line without its newline: all land as canonical NDJSON."""
    monkeypatch.setattr(importlib.import_module("agents.replay"), "BLOCK_BYTES", 2048)
    good = simulated_lines(300, seed=5)
    lines = list(good)
    rfc = orjson.loads(good[7])
    rfc.update(event_id="rfc-time", ts="2026-11-23T18:04:05.250+03:00", age_band=None, by_community=False)
    lines[7] = orjson.dumps(rfc)
    bad_at = [2, 41, 42, 150, 299]
    for line_no in bad_at:
        lines[line_no - 1] = b'{"event_id": "broken", "type": "like"'
    lines.insert(100, b"   ")
    path = tmp_path / "blocks.ndjson"
    path.write_bytes(b"\n".join(lines))  # no newline after the last line
    with (
        path.open("rb") as source,
        EventPublisher(kafka, PublisherSettings(batch_events=25), topics) as publisher,
    ):
        report = replay(source, publisher, source="blocks")

    assert (report.lines, report.sent, report.rejected) == (301, 295, 5)
    assert report.bytes_read == path.stat().st_size
    dead = read_all(kafka, topics.dead_letters)
    assert sorted(int(r.headers[DLQ_SOURCE].rsplit(b":", 1)[1]) for r in dead) == [2, 41, 42, 151, 300]
    records = read_all(kafka, *topics.event_topics)
    events = [e for r in records for e in r.events]
    assert len(events) == 295
    expected = {
        orjson.loads(x)["event_id"]
        for i, x in enumerate(lines, 1)
        if x.strip() and i not in {2, 41, 42, 151, 300}
    }
    assert {e.event_id for e in events} == expected
    for record in records:
        assert record.headers == {CANONICAL_HEADER: b"1"}
        assert record.value == encode_events(decode_events(record.value)[0])  # canonical: nothing to redo
    moved = next(e for e in events if e.event_id == "rfc-time")
    assert moved.ts_ms == 1795446245250  # 15:04:05.250 UTC
    on_wire = next(line for r in records for line in r.value.split(b"\n") if b'"rfc-time"' in line)
    assert b'"ts":1795446245250' in on_wire and b"by_community" not in on_wire and b"age_band" not in on_wire


def test_messages_are_split_to_stay_under_batch_bytes(kafka: KafkaSettings, topics: Topics) -> None:
    """Texts of control characters take 6 bytes a character in JSON, more than a batch's estimate
    counts: the encoded message is checked and split, so none exceeds `batch_bytes`."""
    base = orjson.loads(simulated_lines(1)[0])
    comments = [
        validate({**{k: base[k] for k in ("platform", "community_id", "post_id", "user_id", "ts")},
                  "event_id": f"long-{i}", "type": "comment", "comment_id": f"m{i}", "text": "\x01" * 500})
        for i in range(9)
    ]  # fmt: skip
    settings = PublisherSettings(batch_events=100, batch_bytes=4096, linger_ms=60_000)
    with EventPublisher(kafka, settings, topics) as publisher:
        for comment in comments:
            publisher.publish(comment)
    records = read_all(kafka, topics.comments)
    assert [e.event_id for r in records for e in r.events] == [c.event_id for c in comments]
    assert all(len(r.value) <= 4096 for r in records), [len(r.value) for r in records]
    assert all(r.headers == {CANONICAL_HEADER: b"1"} for r in records)


def test_cli_replay_dead_letters_a_line_stamped_a_day_ahead(
    kafka: KafkaSettings, topics: Topics, unique: str, tmp_path: Path
) -> None:
    import time

    now = time.time_ns() // 1_000_000
    good = [orjson.loads(line) | {"ts": now - 60_000 + i} for i, line in enumerate(simulated_lines(50))]
    lines = [orjson.dumps(event) for event in good]
    tomorrow = orjson.dumps(good[0] | {"event_id": "tomorrow", "ts": now + 86_400_000})
    lines.insert(1, tomorrow)
    path = tmp_path / "ahead.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    env = {
        **os.environ,
        "PULSE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "PULSE_TOPICS__PREFIX": f"t{unique}-",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pulse", "replay", str(path)], capture_output=True, text=True, env=env,
        timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "50 sent, 1 rejected (dead-lettered)" in " ".join(result.stdout.split())
    (dead,) = read_all(kafka, topics.dead_letters)
    assert dead.value == tomorrow and dead.headers[DLQ_SOURCE] == f"{path}:2".encode()
    assert dead.headers[DLQ_CODE] == b"ts_ahead_of_clock"
    assert dead.headers[DLQ_REASON].decode().startswith("line 2: field 'ts': ")
    assert "ahead of the wall clock" in dead.headers[DLQ_REASON].decode()
    landed = {e.event_id for r in read_all(kafka, *topics.event_topics) for e in r.events}
    assert "tomorrow" not in landed and len(landed) == 50
