"""`pulse audience import` on the embedded engine: good lines are stored around bad ones, and importing a
file again (or a key again) stores nothing twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from pipeline.warehouse import ClickHouseSettings, apply_migrations, connect
from pipeline.warehouse.audience import SnapshotWriter
from schemas.audience import read_snapshots

NEW_YEAR = "2026-01-01T00:00:00Z"


def snapshot_lines(n: int, followers: int = 100) -> list[bytes]:
    return [
        orjson.dumps({"kind": "followers", "platform": "vk", "community_id": f"c{i}", "as_of": NEW_YEAR,
                      "followers": followers + i}) + b"\n"
        for i in range(n)
    ]  # fmt: skip


def write(client: Any, lines: list[bytes], batch_rows: int) -> SnapshotWriter:
    writer = SnapshotWriter(client, batch_rows)
    for snapshot in read_snapshots(lines, "ndjson"):
        assert not isinstance(snapshot, Exception)
        writer.add(snapshot)
    writer.flush()
    return writer


def rows(client: Any, table: str, final: bool = False) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in client.query(f"SELECT * FROM {table} {'FINAL' if final else ''} ORDER BY ALL").result_rows
    ]


def test_the_same_file_again_stores_nothing_twice_even_without_final(clickhouse: ClickHouseSettings) -> None:
    client = connect(clickhouse)
    apply_migrations(client)
    lines = snapshot_lines(7)
    first = write(client, lines, batch_rows=3)
    assert (first.counts.rows["community_followers"], first.counts.inserts) == (7, 3)
    once = rows(client, "community_followers")
    write(client, lines, batch_rows=3)  # the same batches: ClickHouse recognises their tokens
    assert rows(client, "community_followers") == once
    write(client, lines, batch_rows=2)  # cut otherwise: stored again, collapsed under FINAL
    assert rows(client, "community_followers", final=True) == once
    assert len(once) == 7 and once[0][1:] == ("c0", once[0][2], 100)


def test_a_key_given_again_keeps_the_later_line(clickhouse: ClickHouseSettings) -> None:
    client = connect(clickhouse)
    apply_migrations(client)
    lines = [*snapshot_lines(3, followers=100), *snapshot_lines(2, followers=500)]  # c0, c1 corrected
    writer = write(client, lines, batch_rows=2)  # c0's correction lands in a later batch than c0
    assert writer.counts.replaced == 0
    assert [r[3] for r in rows(client, "community_followers", final=True)] == [500, 501, 102]
    writer = write(client, lines, batch_rows=100)  # one batch: the writer keeps the later line itself
    assert writer.counts.replaced == 2 and writer.counts.rows["community_followers"] == 3


def pulse(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")} | {"COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "pulse", "--log-level", "WARNING", "--state-dir", str(tmp_path / "state"), *args],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_the_command_imports_good_lines_around_bad_ones_and_names_each_bad_line(tmp_path: Path) -> None:
    good = [
        {"kind": "followers", "platform": "vk", "community_id": "1", "as_of": NEW_YEAR, "followers": 12000},
        {"platform": "vk", "community_id": "1", "post_id": "77", "as_of": NEW_YEAR, "views": 3400},
        {"kind": "views", "platform": "telegram", "community_id": "-100", "post_id": "5", "as_of": 1767225600000,
         "views": 90},
    ]  # fmt: skip
    lines = [orjson.dumps(good[0]), b"{not json", orjson.dumps({**good[0], "followers": -3}), b"",
             orjson.dumps(good[1]), b"\x00\xff" * 40, orjson.dumps({**good[0], "as_of": "2099-01-01T00:00:00Z"}),
             b'{"platform": "' + b"x" * 300_000, orjson.dumps(good[2])]  # fmt: skip
    file = tmp_path / "export.ndjson"
    file.write_bytes(b"\n".join(lines) + b"\n")
    done = pulse(tmp_path, "audience", "import", str(file))
    assert done.returncode == 1, done.stderr
    assert (
        "imported 3 snapshots" in done.stdout
        and "community_followers 1 row, post_views 2 rows" in done.stdout
    )
    reasons = [line for line in done.stderr.splitlines() if line.startswith("line ")]
    assert [r.split(":")[0] for r in reasons] == ["line 2", "line 3", "line 6", "line 7", "line 8"]
    assert "field 'followers': must be a whole number" in reasons[1]
    assert "ahead of the wall clock" in reasons[3]
    assert reasons[4] == "line 8: longer than a snapshot may be (more than 65,536 bytes)"
    assert "5 lines rejected" in done.stderr

    again = pulse(tmp_path, "audience", "import", str(file))
    assert again.returncode == 1 and "imported 3 snapshots" in again.stdout
    csv = tmp_path / "followers.csv"
    csv.write_text(f"platform,community_id,as_of,followers\nvk,2,{NEW_YEAR},50\n")
    assert pulse(tmp_path, "audience", "import", str(csv)).returncode == 0
    stored = pulse(tmp_path, "query", "--format", "json",
                   "SELECT (SELECT count() FROM community_followers), (SELECT count() FROM post_views)")  # fmt: skip
    assert stored.returncode == 0, stored.stderr
    assert list(orjson.loads(stored.stdout)[0].values()) == [2, 2]  # not doubled, even without FINAL


def test_a_csv_header_that_cannot_describe_snapshots_imports_nothing(tmp_path: Path) -> None:
    file = tmp_path / "export.csv"
    file.write_text(f"platform,community,as_of,followers\nvk,1,{NEW_YEAR},5\n")
    done = pulse(tmp_path, "audience", "import", str(file))
    assert done.returncode == 1
    assert "line 1: the header names 'community', which is not a snapshot field" in done.stderr
