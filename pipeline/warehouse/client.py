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

from pydantic import BaseModel, Field, SecretStr

from pipeline.errors import MigrationError, StoreLocked, WarehouseError
from schemas import migrations

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
    password: SecretStr | None = None
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300)
    ca_cert: str | None = Field(default=None, description="server mode over https: CA bundle to verify it")
    verify_tls: bool = True

    @property
    def is_embedded(self) -> bool:
        return self.dsn.startswith("chdb://")


def connect(settings: ClickHouseSettings) -> Any:
    """Opens a client on the settings' database, creating the database first if needed."""
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
    import clickhouse_connect  # see the module's docstring

    try:
        admin = clickhouse_connect.get_client(dsn=settings.dsn, **extra)
        exists = admin.query("SELECT count() FROM system.databases WHERE name = {db:String}",
                             parameters={"db": settings.database}).result_rows[0][0]  # fmt: skip
        if not exists:  # a read-only user (an analyst) never gets here: the loader made the database
            admin.command(f"CREATE DATABASE IF NOT EXISTS `{settings.database}`")
        return clickhouse_connect.get_client(dsn=settings.dsn, database=settings.database, **extra)
    except Exception as exc:  # chDB and the HTTP driver raise several unrelated types here
        context = f"cannot open ClickHouse at {redacted_dsn(settings.dsn)}"
        if settings.is_embedded and _locked_by_another_process(settings.dsn.removeprefix("chdb://")):
            raise StoreLocked(
                f"{context}: the embedded store is open in another process (chDB lets one process open a "
                "directory; stop the running pipeline, or query through it)"
            ) from exc
        raise translate(exc, context) from exc


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
