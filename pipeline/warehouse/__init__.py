"""The warehouse loader: Kafka topics into ClickHouse tables (embedded chDB or a server), the query service
that answers while the loader holds the embedded store, and the named analytics queries.

- `client`: the ClickHouse connection and the DDL migrations.
- `table_sink`: one table's batches: records to rows, dedup tokens, retries, bad-row isolation.
- `routes`: which topic feeds which table, and how a record becomes rows.
- `loader`: `pulse sink`, every table's sink fed by one consumer in one process.
- `query_service`, `named_queries`, `queries/`: read-only SQL and the ready-made queries.
"""

from pipeline.warehouse.client import ClickHouseSettings, apply_migrations, connect

__all__ = ["ClickHouseSettings", "apply_migrations", "connect"]
