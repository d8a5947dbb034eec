"""Analysts' SQL only reads, on the embedded engine: hostile statements are refused and change nothing, the
limits hold and cannot be lifted, and the loader's own connection is never touched."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import QueryRefused, WarehouseError
from pipeline.warehouse import ClickHouseSettings, apply_migrations, connect
from pipeline.warehouse.client import connect_reader
from pipeline.warehouse.query_service import execute
from pipeline.warehouse.routes import ALERT_COLUMNS

ALERT = ["vk:c1:m1:unanswered_comment", "unanswered_comment", "vk", "c1", "p1", "m1", "u1", "hello?",
         1_795_000_000_000, 1_795_000_600_000, 600.0, 600.0, None, None, None]  # fmt: skip


class Listener:
    """A TCP port that counts who connects to it: where `url()` and friends would go."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    running = Listener()
    yield running
    running.close()


@pytest.fixture
def writer(clickhouse: ClickHouseSettings) -> Any:
    client = connect(clickhouse)
    apply_migrations(client)
    client.insert("alerts", [ALERT], column_names=list(ALERT_COLUMNS))
    return client


@pytest.fixture
def reader(clickhouse: ClickHouseSettings, writer: Any) -> Iterator[Any]:
    client = connect_reader(clickhouse)
    yield client
    client.close()


def state(writer: Any) -> tuple[Any, ...]:
    """What a statement must not change: the tables, and the rows of `alerts`."""
    tables = tuple(row[0] for row in writer.query("SHOW TABLES").result_rows)
    return tables, writer.query("SELECT count() FROM alerts").result_rows[0][0]


HOSTILE = {
    "insert into function": ("INSERT INTO FUNCTION file('{tmp}/x.csv', 'CSV') SELECT 1", "only reading"),
    "into outfile": ("SELECT 1 INTO OUTFILE '{tmp}/out.csv'", "INTO OUTFILE"),
    "into outfile and stdout": ("select 1 into outfile '{tmp}/out.csv' and stdout", "INTO OUTFILE"),
    "into outfile compressed": (
        "SELECT * FROM alerts INTO OUTFILE '{tmp}/out.gz' COMPRESSION 'gzip' LEVEL 3",
        "INTO OUTFILE",
    ),
    "describe into outfile": ("DESCRIBE TABLE alerts INTO OUTFILE '{tmp}/out.csv'", "INTO OUTFILE"),
    "explain into outfile": ("EXPLAIN SELECT 1 INTO OUTFILE '{tmp}/out.csv'", "INTO OUTFILE"),
    "file table function": ("SELECT * FROM file('/etc/hostname', 'LineAsString')", "table functions"),
    "file in a join": ("SELECT * FROM alerts AS a JOIN file('/etc/hostname') AS b ON 1", "table functions"),
    "file in a subquery": (
        "SELECT 1 WHERE 1 IN (SELECT * FROM file('/etc/hostname', 'LineAsString'))",
        "table functions",
    ),
    "describe file": ("DESCRIBE file('/etc/hostname', 'LineAsString')", "table functions"),
    "describe a subquery on url": ("DESC (SELECT * FROM url('http://127.0.0.1:{port}/'))", "table functions"),
    "file function": ("SELECT file('/etc/hostname')", "reads files"),
    "FILE function": ("SELECT length(FILE('/etc/hostname'))", "reads files"),
    "url": ("SELECT * FROM url('http://127.0.0.1:{port}/x', 'LineAsString')", "table functions"),
    "remote": ("SELECT * FROM remote('127.0.0.1:{port}', system.one)", "table functions"),
    "s3 in IN": ("SELECT 1 WHERE 1 IN (SELECT * FROM s3('http://127.0.0.1:{port}/b/k'))", "table functions"),
    "numbers": ("SELECT * FROM numbers(3)", "table functions"),
    "two statements": ("SELECT 1; DROP TABLE alerts", "one statement at a time"),
    "semicolon in a string": ("SELECT 'a;b'; DROP TABLE alerts", "one statement at a time"),
    "semicolon in a comment": ("SELECT 1 /* ; */ ; TRUNCATE TABLE alerts", "one statement at a time"),
    "after a line comment": ("-- SELECT\nDROP TABLE alerts", "only reading"),
    "after a block comment": ("/* SELECT 1 */ drop table alerts", "only reading"),
    "lowercase, leading blanks": ("   \n\t truncate table alerts", "only reading"),
    "with then insert": ("WITH 1 AS x INSERT INTO alerts (alert_id) SELECT toString(x)", "only reading"),
    "parenthesised then drop": ("(SELECT 1); DROP TABLE alerts", "one statement at a time"),
    "set": ("SET max_threads = 2", "only reading"),
    "alter": ("ALTER TABLE alerts DELETE WHERE 1", "only reading"),
    "optimize": ("OPTIMIZE TABLE alerts FINAL", "only reading"),
    "explain insert": ("EXPLAIN INSERT INTO alerts (alert_id) SELECT 'x'", "EXPLAIN is allowed of reading"),
    "explain ast alter": ("EXPLAIN AST ALTER TABLE alerts DELETE WHERE 1", "EXPLAIN is allowed of reading"),
    "not sql": ("SELEC 1", "not valid SQL"),
}


@pytest.mark.parametrize(("sql", "says"), HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_statement_is_refused_and_changes_nothing(
    reader: Any, writer: Any, tmp_path: Path, listener: Listener, sql: str, says: str
) -> None:
    before = state(writer)
    with pytest.raises(QueryRefused) as refused:
        execute(reader, sql.format(tmp=tmp_path, port=listener.port))
    assert says in refused.value.reason
    assert state(writer) == before
    assert list(tmp_path.iterdir()) == [], "no file was written"
    assert listener.connections == 0, "no request went out"
    assert execute(reader, "SELECT count() FROM alerts").rows == [[1]], "the reader still answers"
    later = ["vk:c1:m2:unanswered_comment", *ALERT[1:]]
    writer.insert("alerts", [later], column_names=list(ALERT_COLUMNS))  # the loader's connection still writes
    assert writer.query("SELECT count() FROM alerts").result_rows == [(2,)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 SETTINGS readonly = 0",
        "SELECT 1 SETTINGS max_execution_time = 100000",
        "SELECT count() FROM alerts SETTINGS max_result_rows = 0, result_overflow_mode = 'break'",
    ],
)
def test_settings_cannot_be_changed_by_a_query(reader: Any, sql: str) -> None:
    with pytest.raises(WarehouseError) as refused:
        execute(reader, sql)
    assert refused.value.code == 164 and "readonly" in str(refused.value).lower()
    assert execute(reader, "SELECT getSetting('readonly'), getSetting('max_execution_time')").rows == [
        [1, 60]
    ]


@pytest.mark.parametrize(
    ("sql", "rows"),
    [
        ("  -- the count\n  (SELECT count() FROM alerts)  ;  ", [[1]]),
        ("select 'INTO OUTFILE; DROP TABLE alerts' AS s", [["INTO OUTFILE; DROP TABLE alerts"]]),
        ("WITH n AS (SELECT count() AS c FROM alerts) SELECT c FROM n", [[1]]),
        ("SELECT kind FROM alerts FINAL LIMIT 1 OFFSET 0", [["unanswered_comment"]]),
        ("SELECT 1 UNION ALL SELECT 2 ORDER BY 1", [[1], [2]]),
        ("SHOW TABLES LIKE 'alerts'", [["alerts"]]),
        ("DESCRIBE TABLE alerts", None),
        ("EXPLAIN SELECT 1", None),
        (
            "SELECT count() FROM system.numbers WHERE number < 10 LIMIT 1 SETTINGS max_execution_time = 60",
            None,
        ),
    ],
)
def test_reading_statements_run(reader: Any, sql: str, rows: list[list[Any]] | None) -> None:
    result = execute(reader, sql)
    if rows is not None:
        assert result.rows == rows
    assert result.rows


def test_parameters_are_bound_not_spliced(reader: Any) -> None:
    result = execute(reader, "SELECT {text:String} AS t, {n:UInt32} + 1 AS n", {"text": "'); DROP", "n": 41})
    assert result.rows == [["'); DROP", 42]]


def test_the_limits_hold(clickhouse: ClickHouseSettings, writer: Any) -> None:
    tight = clickhouse.model_copy(
        update={"query_timeout_s": 1, "query_max_rows": 100, "query_max_memory_bytes": 10_000_000}
    )
    client = connect_reader(tight)
    try:
        with pytest.raises(WarehouseError) as rows:
            execute(client, "SELECT number FROM system.numbers LIMIT 101")
        assert rows.value.code == 396
        with pytest.raises(WarehouseError) as timed_out:
            execute(client, "SELECT count() FROM system.numbers")
        assert timed_out.value.code == 159
        with pytest.raises(WarehouseError) as memory:
            execute(client, "SELECT uniqExact(number) FROM (SELECT number FROM system.numbers LIMIT 5000000)")
        assert memory.value.code == 241
        assert execute(client, "SELECT number FROM system.numbers LIMIT 100").rows[-1] == [99]
    finally:
        client.close()


def test_the_servers_users_and_analyst_profile_parse(reader: Any) -> None:
    """deploy/clickhouse/users.sql is run by a server we do not start here: ClickHouse's own parser (the
    engine's `formatQuery`) checks each of its statements, the profile's constraints included."""
    text = (Path(__file__).parents[3] / "deploy" / "clickhouse" / "users.sql").read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    statements = [s.strip() for s in code.split(";") if s.strip()]
    parse = "SELECT formatQuerySingleLine({sql:String})"
    parsed = [reader.query(parse, parameters={"sql": s}).result_rows[0][0] for s in statements]
    assert any(p.startswith("CREATE SETTINGS PROFILE") and "MIN 1 MAX 60" in p for p in parsed), parsed
