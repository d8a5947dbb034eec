"""DDL migrations on the embedded ClickHouse engine (chDB), through the same client a server would use."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from pipeline.warehouse import ClickHouseSettings, apply_migrations, connect
from schemas import migrations


def test_migrations_apply_once(clickhouse: ClickHouseSettings) -> None:
    client = connect(clickhouse)
    assert apply_migrations(client) == [m.version for m in migrations()]
    assert apply_migrations(client) == []
    tables = {row[0] for row in client.query("SHOW TABLES").result_rows}
    assert {"events", "schema_migrations"} <= tables
    columns = [row[0] for row in client.query("DESCRIBE TABLE events").result_rows]
    assert columns[:3] == ["event_id", "type", "platform"] and columns[-1] == "ingested_at"


def test_events_table_deduplicates_a_resent_batch(clickhouse: ClickHouseSettings) -> None:
    client = connect(clickhouse)
    apply_migrations(client)
    row = [
        "e1",
        "like",
        "vk",
        "c1",
        "p1",
        "u1",
        1_795_000_000_000,
        None,
        None,
        False,
        None,
        None,
        None,
        None,
        time.time_ns() // 1_000_000,  # stored now: the tables keep rows 400 days from when they were stored
    ]
    names = ["event_id", "type", "platform", "community_id", "post_id", "user_id", "ts", "comment_id",
             "parent_id", "by_community", "text", "age_band", "gender", "country", "ingested_at"]  # fmt: skip
    for _ in range(3):
        client.insert(
            "events", [row], column_names=names, settings={"insert_deduplication_token": "events:t:0:0-0"}
        )
    client.insert(
        "events", [row], column_names=names, settings={"insert_deduplication_token": "events:t:0:1-1"}
    )
    assert client.query("SELECT count() FROM events").result_rows == [(2,)]
    assert client.query("SELECT count() FROM events FINAL").result_rows == [(1,)]


def test_store_open_in_another_process_gives_a_clear_error(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'store'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import pathlib, sys, time, clickhouse_connect
            client = clickhouse_connect.get_client(dsn={dsn!r})
            client.command("CREATE TABLE held (x UInt8) ENGINE = MergeTree ORDER BY x")
            # chDB takes the store's lock while it finishes starting, a moment after the first query.
            while not (pathlib.Path({str(tmp_path / 'store')!r}) / "status").exists():
                time.sleep(0.05)
            time.sleep(0.5)
            print("open", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        result = subprocess.run(
            [sys.executable, "-m", "pulse", "migrate", "--clickhouse", dsn],
            capture_output=True, text=True, timeout=120, check=False, env={**os.environ, "COLUMNS": "300"},
        )  # fmt: skip
    finally:
        holder.communicate("", timeout=60)
    assert result.returncode == 1
    assert "the embedded store is open in another process" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_migrate_command_applies_then_reports_up_to_date(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'store'}"
    command = [sys.executable, "-m", "pulse", "migrate", "--clickhouse", dsn]
    first = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    assert "applied: 0001" in first.stdout
    second = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    assert "schema is up to date" in second.stdout


EVENT_COLUMNS = ["event_id", "type", "platform", "community_id", "post_id", "user_id", "ts", "comment_id",
                 "parent_id", "by_community", "text", "age_band", "gender", "country", "ingested_at"]  # fmt: skip


def test_engagement_minute_final_keeps_the_fullest_window(clickhouse: ClickHouseSettings) -> None:
    client = connect(clickhouse)
    apply_migrations(client)
    columns = ["platform", "community_id", "post_id", "minute", "likes", "unlikes", "comments", "reposts",
               "unique_engagers", "score", "events"]  # fmt: skip
    minute = 1_795_000_020  # seconds
    later = ["vk", "c1", "p1", minute, 5, 0, 2, 1, 6, 12.0, 8]
    earlier = ["vk", "c1", "p1", minute, 3, 0, 1, 0, 3, 5.0, 4]
    for token, row in (("a", later), ("b", earlier), ("a", later)):  # out of order, and a retried batch
        client.insert(
            "engagement_minute", [row], column_names=columns, settings={"insert_deduplication_token": token}
        )
    rows = client.query("SELECT likes, comments, reposts, events FROM engagement_minute FINAL").result_rows
    assert rows == [(5, 2, 1, 8)]


def test_segment_counts_ignore_duplicate_events(clickhouse: ClickHouseSettings) -> None:
    client = connect(clickhouse)
    apply_migrations(client)
    ts = 1_795_000_000_000
    rows = [
        [f"e{i}", kind, "vk", "c1", "p1", f"u{i % 3}", ts + i, None if kind != "comment" else f"m{i}", None, False,
         None, "18-24", "female", "DE", ts]
        for i, kind in enumerate(["like", "like", "comment", "repost", "like"])
    ]  # fmt: skip
    client.insert("events", rows, column_names=EVENT_COLUMNS, settings={"insert_deduplication_token": "x1"})
    client.insert(
        "events", rows[:2], column_names=EVENT_COLUMNS, settings={"insert_deduplication_token": "x2"}
    )
    result = client.query(
        "SELECT age_band, gender, country, likes, comments, reposts, engagers FROM engagement_by_segment"
    ).result_rows
    assert result == [("18-24", "female", "DE", 3, 1, 1, 3)]


def test_rows_expire_400_days_after_they_were_stored_not_after_their_event_time(
    clickhouse: ClickHouseSettings,
) -> None:
    """A replay of history two years old is kept; a row stored 401 days ago is dropped (by its part)."""
    client = connect(clickhouse)
    apply_migrations(client)
    now_ms = time.time_ns() // 1_000_000
    old_history = ["old", "like", "vk", "c1", "p1", "u1", now_ms - 730 * 86_400_000, None, None, False,
                   None, None, None, None, now_ms]  # fmt: skip
    stored_long_ago = ["gone", "like", "vk", "c1", "p1", "u1", now_ms - 60_000, None, None, False,
                       None, None, None, None, now_ms - 401 * 86_400_000]  # fmt: skip
    client.insert("events", [old_history], column_names=EVENT_COLUMNS)
    client.insert("events", [stored_long_ago], column_names=EVENT_COLUMNS)
    client.command("OPTIMIZE TABLE events FINAL")
    assert [row[0] for row in client.query("SELECT event_id FROM events").result_rows] == ["old"]
    ttl = {row[0]: row[1] for row in client.query(
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()").result_rows}  # fmt: skip
    for table, column in (("events", "ingested_at"), ("engagement_minute", "written_at"),
                          ("comment_sla", "written_at"), ("alerts", "written_at"),
                          ("engagement_segment_hour", "written_at")):  # fmt: skip
        assert (
            f"TTL {column} + toIntervalDay(400)" in ttl[table]
            or f"TTL toDateTime({column}) + toIntervalDay(400)" in ttl[table]
        ), ttl[table]
