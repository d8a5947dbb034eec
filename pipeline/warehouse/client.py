"""The ClickHouse connection and schema migrations, one code path for the embedded engine and a server.

The embedded engine is chDB behind clickhouse-connect's `chdb://` DSN; a server is the same client with an
`http(s)://user:password@host:port` DSN. chDB lets only one process open an on-disk store, so whatever
reads the store while the pipeline runs must go through the process that owns it; `StoreLocked` says so.

clickhouse-connect (and chDB behind it) is imported when a client is first made, not with this module:
the settings live here and every command reads them, including the stream workers, which never connect.
"""

from __future__ import annotations

import fcntl
import logging
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from pipeline.errors import MigrationError, StoreLocked, WarehouseError
from schemas import Secret, migrations

log = logging.getLogger(__name__)

_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_CODE = re.compile(r"Code: (\d+)")
# Errors worth retrying: network, timeouts, too many parts/queries, server shutting down, memory pressure.
_RETRYABLE_CODES = frozenset({159, 164, 202, 209, 210, 241, 242, 252, 279, 285, 394, 425, 999})


class ClickHouseSettings(BaseModel):
    """Where aggregates go. `dsn` is `chdb:///path` (embedded, the default under the state directory),
    `chdb://memory`, or `http(s)://host:port` for a server.

    chDB opens one directory per process, for the life of the process: tests share one store per session
    and separate themselves by database name."""

    dsn: str = ""
    database: str = Field(default="pulse", pattern=_DATABASE.pattern)
    username: str | None = None
    password: Secret | None = None
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300)
    ca_cert: str | None = Field(default=None, description="server mode over https: CA bundle to verify it")
    verify_tls: bool = True
    # Analysts' SQL (`pulse query`, the loader's query port, the dashboards' reads) runs on a connection of
    # its own with these limits, set before `readonly = 1`, which then forbids changing them.
    query_timeout_s: int = Field(
        default=60, ge=1, le=3_600, description="ClickHouse stops a query after this"
    )
    query_max_memory_bytes: int = Field(default=2_000_000_000, ge=10_000_000, le=1 << 40)
    query_max_rows: int = Field(default=1_000_000, ge=1, le=1_000_000_000, description="rows of a result")

    @property
    def is_embedded(self) -> bool:
        return self.dsn.startswith("chdb://")


def connect(settings: ClickHouseSettings) -> Any:
    """Opens a client on the settings' database, creating the database first if needed."""
    extra = _client_arguments(settings)
    import clickhouse_connect  # see the module's docstring

    try:
        admin = clickhouse_connect.get_client(dsn=settings.dsn, **extra)
        exists = admin.query("SELECT count() FROM system.databases WHERE name = {db:String}",
                             parameters={"db": settings.database}).result_rows[0][0]  # fmt: skip
        if not exists:  # a read-only user (an analyst) never gets here: the loader made the database
            admin.command(f"CREATE DATABASE IF NOT EXISTS `{settings.database}`")
        return clickhouse_connect.get_client(dsn=settings.dsn, database=settings.database, **extra)
    except Exception as exc:  # chDB and the HTTP driver raise several unrelated types here
        raise _not_opened(settings, exc) from exc


def reader_settings(settings: ClickHouseSettings) -> dict[str, Any]:
    """The session settings of a connection for analysts' SQL, in the order they must be set: the limits
    first, `readonly = 1` last (from then on no setting can change: not by SET, not by a SETTINGS clause).
    readonly = 1 also refuses writes and some table functions; `analyst_sql` refuses the rest."""
    return {
        "max_execution_time": settings.query_timeout_s,
        "timeout_overflow_mode": "throw",
        "max_memory_usage": settings.query_max_memory_bytes,
        "max_result_rows": settings.query_max_rows,
        "result_overflow_mode": "throw",
        "readonly": 1,
    }


def connect_reader(settings: ClickHouseSettings) -> Any:
    """Opens a connection for analysts' SQL on the settings' database (which must exist): a client of its
    own, never the loader's, so nothing an analyst sends can change the loader's session (a refused
    statement once left the shared session read-only, and every insert after it failed). With chDB every
    client is a handle of its own on the process's one engine, with its own session settings.

    On a server, a setting the user's profile does not let it change (deploy/clickhouse/users.sql gives the
    analyst constraints) is left to the profile."""
    extra = _client_arguments(settings)
    import clickhouse_connect  # see the module's docstring

    try:
        client = clickhouse_connect.get_client(dsn=settings.dsn, database=settings.database, **extra)
        for name, value in reader_settings(settings).items():
            fixed = client.server_settings.get(name)
            if fixed is not None and fixed.readonly:
                log.debug("the server's profile fixes %s for this user: left as it is", name)
                continue
            client.set_client_setting(name, value)
    except Exception as exc:  # chDB and the HTTP driver raise several unrelated types here
        raise _not_opened(settings, exc) from exc
    return client


def _client_arguments(settings: ClickHouseSettings) -> dict[str, Any]:
    if not settings.dsn:
        raise WarehouseError("no ClickHouse DSN configured (set PULSE_CLICKHOUSE__DSN or pass --clickhouse)")
    extra: dict[str, Any] = {}
    if not settings.is_embedded:
        extra = {"connect_timeout": settings.connect_timeout_s, "verify": settings.verify_tls}
        if settings.ca_cert:
            extra["ca_cert"] = settings.ca_cert
    if settings.username:
        extra["username"] = settings.username
    if settings.password is not None:
        extra["password"] = settings.password.get_secret_value()
    return extra


def _not_opened(settings: ClickHouseSettings, exc: BaseException) -> WarehouseError:
    context = f"cannot open ClickHouse at {redacted_dsn(settings.dsn)}"
    if settings.is_embedded and _locked_by_another_process(settings.dsn.removeprefix("chdb://")):
        return StoreLocked(
            f"{context}: the embedded store is open in another process (chDB lets one process open a "
            "directory; stop the running pipeline, or query through it)"
        )
    return translate(exc, context)


def apply_migrations(client: Any) -> list[int]:
    """Applies every DDL file not yet recorded in `schema_migrations`; returns the versions applied."""
    from clickhouse_connect.driver.exceptions import ClickHouseError  # loaded with the client

    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    done = {
        row[0]: row[1]
        for row in client.query("SELECT version, checksum FROM schema_migrations FINAL").result_rows
    }
    applied = []
    for migration in migrations():
        if migration.version in done:
            if done[migration.version] != migration.checksum:
                log.warning(
                    "DDL file changed after it was applied",
                    extra={"version": migration.version, "migration": migration.name},
                )
            continue
        for statement in migration.statements:
            try:
                client.command(statement)
            except ClickHouseError as exc:
                raise MigrationError(migration.version, f"{migration.name}: {exc}") from exc
        client.insert(
            "schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        applied.append(migration.version)
        log.info("applied DDL", extra={"version": migration.version, "migration": migration.name})
    return applied


def translate(exc: BaseException, context: str) -> WarehouseError:
    """Turns a clickhouse-connect or chDB error into a `WarehouseError` carrying the server's code."""
    from clickhouse_connect.driver.exceptions import OperationalError  # loaded with the client

    text = str(exc)
    if "EmbeddedServer already initialized with path" in text:
        return StoreLocked(
            f"{context}: this process already has another embedded store open (chDB opens one directory "
            f"per process): {text}"
        )
    match = _CODE.search(text)
    code = int(match.group(1)) if match else None
    retryable = (
        code in _RETRYABLE_CODES
        or isinstance(exc, OSError | TimeoutError | OperationalError)
        or any(status in text for status in ("HTTP 429", "HTTP 503", "status 429", "status 503"))
    )
    return WarehouseError(f"{context}: {text}", code=code, retryable=retryable)


def _locked_by_another_process(path: str) -> bool:
    """ClickHouse holds an exclusive flock on `<path>/status` while a server (or chDB) has the store open."""
    status = Path(path) / "status"
    try:
        with status.open("rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def redacted_dsn(dsn: str) -> str:
    """The DSN as it may be shown or logged: a password in its user info or its query replaced by ***."""
    dsn = re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", dsn)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", dsn, flags=re.IGNORECASE)
