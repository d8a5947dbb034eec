"""Read-only SQL over the warehouse, for the local tools, whichever process holds the embedded store.

chDB lets one process open an on-disk store. While the loader runs it is that process, so it serves
queries for `pulse query` on a loopback port (`QueryService`) and leaves the address in a file beside the
store; `run_query` opens the store itself when it can and otherwise asks the process that has it. Every
query runs with `readonly = 2`: it can read and set query settings, never change data or schema.

A ClickHouse server needs none of this: `run_query` simply connects.
"""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import json
import logging
import threading
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from pipeline.errors import StoreLocked, WarehouseError
from pipeline.warehouse.client import ClickHouseSettings, connect, translate

log = logging.getLogger(__name__)

READ_ONLY = {"readonly": 2}
MAX_REQUEST_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]


def execute(client: Any, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
    """Runs one read-only statement; values come back as JSON-friendly Python values (datetimes as UTC)."""
    try:
        result = client.query(sql, parameters=parameters or None, settings=READ_ONLY)
    except WarehouseError:
        raise
    except Exception as exc:  # chDB and the HTTP driver raise unrelated types: translated here
        raise translate(exc, "query failed") from exc
    return QueryResult(list(result.column_names), [[_plain(v) for v in row] for row in result.result_rows])


def address_file(settings: ClickHouseSettings) -> Path | None:
    """Where the owner of an embedded store leaves its query address (None for a server)."""
    if not settings.is_embedded or settings.dsn == "chdb://memory":
        return None
    return Path(settings.dsn.removeprefix("chdb://") + ".query-address")


def run_query(
    settings: ClickHouseSettings,
    sql: str,
    parameters: dict[str, Any] | None = None,
    *,
    open_store: bool = True,
) -> QueryResult:
    """Asks the process that holds the embedded store, if one has left its address; otherwise opens the
    store (or the server) and queries it. With `open_store=False` an embedded store is never opened here:
    a process that starts the loader must not take the store from it."""
    return WarehouseReader(settings, open_store=open_store).query(sql, parameters)


class WarehouseReader:
    """`run_query` for a reader that queries again and again (the dashboard): the same way to the data,
    but a store or server it opened itself stays open between queries instead of costing a connection
    each time. Its calls must not overlap (the caller serialises them)."""

    def __init__(self, settings: ClickHouseSettings, *, open_store: bool = True) -> None:
        self.settings = settings
        self.open_store = open_store
        self._client: Any = None

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        if self._client is not None:  # an embedded store opened here: nobody else can serve it now
            return execute(self._client, sql, parameters)
        where = address_file(self.settings)
        if where is not None and where.exists():
            try:
                return _ask(where.read_text().strip(), sql, parameters)
            except StoreLocked:
                if not self.open_store:
                    raise
                log.info("stale query address in %s, opening the store directly", where)
        if where is not None and not self.open_store:
            raise StoreLocked(f"the loader does not serve queries yet ({where} is missing)")
        self._client = connect(self.settings)
        return execute(self._client, sql, parameters)


class QueryService:
    """Serves `POST /query` ({"sql": ..., "parameters": {...}}) on a loopback port, through `client`
    (whose calls the caller serialises). Writes its address to `address_path` while it runs."""

    def __init__(self, client: Any, address_path: Path | None, host: str = "127.0.0.1") -> None:
        self.client = client
        self.address_path = address_path
        self.host = host
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                service._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("query service: " + format, *args)

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        address = f"{self.host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="query-service", daemon=True)
        self._thread.start()
        if self.address_path is not None:
            self.address_path.write_text(address)
        return address

    def stop(self) -> None:
        if self.address_path is not None:
            self.address_path.unlink(missing_ok=True)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        if request.path != "/query":
            return _reply(request, 404, {"error": "only POST /query is served here"})
        length = int(request.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            return _reply(request, 413, {"error": f"a query request is at most {MAX_REQUEST_BYTES} bytes"})
        try:
            body = json.loads(request.rfile.read(length))
            sql, parameters = body["sql"], body.get("parameters")
            if not isinstance(sql, str) or not (parameters is None or isinstance(parameters, dict)):
                raise TypeError("sql must be a string and parameters an object")
        except (ValueError, KeyError, TypeError) as exc:
            return _reply(request, 400, {"error": f"bad query request: {exc}"})
        try:
            result = execute(self.client, sql, parameters)
        except WarehouseError as exc:
            return _reply(request, 400, {"error": str(exc), "code": exc.code})
        _reply(request, 200, {"columns": result.columns, "rows": result.rows})


def _ask(address: str, sql: str, parameters: dict[str, Any] | None) -> QueryResult:
    request = urllib.request.Request(
        f"http://{address}/query",
        data=orjson.dumps({"sql": sql, "parameters": parameters}),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            body = orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = orjson.loads(exc.read() or b"{}")
        raise WarehouseError(str(detail.get("error", exc)), code=detail.get("code")) from exc
    except OSError as exc:
        raise StoreLocked(
            f"the embedded store is open in another process, which does not answer queries at {address} "
            f"({exc}); stop that process or query it while it runs the loader"
        ) from exc
    return QueryResult(body["columns"], body["rows"])


def _reply(request: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    data = orjson.dumps(body, default=_plain)
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


def _plain(value: Any) -> Any:
    """A value orjson and the terminal both understand; naive datetimes from the driver are UTC."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
