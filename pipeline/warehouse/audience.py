"""Audience snapshots (schemas/audience.py) into `community_followers` and `post_views`
(schemas/clickhouse/0006_audience.sql), for `pulse audience import`.

Rows go in as JSONEachRow, in batches of up to `batch_rows` per table. Importing a file again stores
nothing twice, twice over: each insert carries a deduplication token made of its table and its content,
so the same batch seen among the table's last inserts (its `non_replicated_deduplication_window`) is
dropped by ClickHouse, and the tables are ReplacingMergeTree keyed by the snapshot's moment, so whatever
does get in again (the same file cut into other batches) collapses under FINAL. A key repeated in a
file keeps its last line: within a batch the writer keeps the later row, and between batches the later
insert is the one FINAL keeps.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import msgspec

from pipeline.errors import WarehouseError
from pipeline.warehouse.client import translate
from pipeline.warehouse.table_sink import insert_lines
from schemas.audience import AudienceSnapshot

log = logging.getLogger(__name__)

TABLES = {"followers": "community_followers", "views": "post_views"}
DEFAULT_BATCH_ROWS = 50_000

_Key = tuple[str, str, str | None, int]


@dataclass(slots=True)
class ImportCounts:
    """What a `SnapshotWriter` sent: rows per table, inserts, and lines a later line of the same key
    replaced before they were sent."""

    rows: dict[str, int]
    inserts: int = 0
    replaced: int = 0


class SnapshotWriter:
    """Buffers checked snapshots per table and inserts them in batches; `flush()` sends the rest. A
    ClickHouse error is raised as `WarehouseError` (with the server's code); the batches inserted before
    it stay, and an import run again sends the same batches, which ClickHouse recognises."""

    def __init__(self, client: Any, batch_rows: int = DEFAULT_BATCH_ROWS) -> None:
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        self.client = client
        self.batch_rows = batch_rows
        self.counts = ImportCounts(rows=dict.fromkeys(TABLES.values(), 0))
        self._pending: dict[str, dict[_Key, bytes]] = {table: {} for table in TABLES.values()}

    def add(self, snapshot: AudienceSnapshot) -> None:
        table = TABLES[snapshot.kind or "followers"]
        pending = self._pending[table]
        key = (snapshot.platform, snapshot.community_id, snapshot.post_id, snapshot.as_of_s)
        if pending.pop(key, None) is not None:
            self.counts.replaced += 1
        pending[key] = _row(snapshot)
        if len(pending) >= self.batch_rows:
            self._insert(table)

    def flush(self) -> None:
        for table in TABLES.values():
            if self._pending[table]:
                self._insert(table)

    def _insert(self, table: str) -> None:
        rows = self._pending[table]
        data = b"".join(rows.values())
        token = f"audience:{table}:{hashlib.sha256(data).hexdigest()}"
        try:
            insert_lines(self.client, table, data, token)
        except WarehouseError:
            raise
        except Exception as exc:  # clickhouse-connect and chDB raise several unrelated types
            raise translate(exc, f"cannot insert {len(rows):,} rows into {table}") from exc
        self.counts.rows[table] += len(rows)
        self.counts.inserts += 1
        log.debug("inserted audience snapshots", extra={"table": table, "rows": len(rows)})
        self._pending[table] = {}


def _row(snapshot: AudienceSnapshot) -> bytes:
    row: dict[str, Any] = {"platform": snapshot.platform, "community_id": snapshot.community_id}
    if snapshot.post_id is not None:
        row["post_id"] = snapshot.post_id
    row["as_of"] = snapshot.as_of_s  # DateTime from unix seconds
    row[snapshot.kind or "followers"] = snapshot.count
    return msgspec.json.encode(row) + b"\n"
