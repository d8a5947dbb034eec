"""Analysts' SQL over the warehouse, whichever process holds the embedded store; it only ever reads.

Every statement runs on a reader connection (`client.connect_reader`: its own, never the loader's, with
`readonly = 1` and limits on time, memory and result rows that cannot be lifted) after `analyst_sql`
checked it: one reading statement, no table function, no INTO OUTFILE.

chDB lets one process open an on-disk store. While the loader runs it is that process, so it serves
queries for `pulse query` on a loopback port (`QueryService`) and leaves the port's address and a random
credential in a file beside the store that only the store's owner can read (mode 0600); `run_query` opens
the store itself when it can and otherwise asks the process that has it, with that credential. The port
answers nobody else: no credential 401, a wrong one 403, and only `POST /query` with a JSON body of a
stated, bounded length, a loopback `Host` and no `Origin` (no web page can reach it through a browser).

A ClickHouse server needs none of the port: `run_query` simply connects (deploy/clickhouse/users.sql
gives the analyst's profile the same limits as constraints).
"""

from __future__ import annotations

import datetime as dt
import decimal
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import threading
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from pipeline.errors import QueryRefused, StoreLocked, WarehouseError
from pipeline.warehouse.analyst_sql import checked
from pipeline.warehouse.client import ClickHouseSettings, connect_reader, translate

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1 << 20
READ_TIMEOUT_S = 10.0  # a request's headers and body must arrive within this, or the connection is closed
ANSWER_TIMEOUT_S = 3_600.0  # how long `run_query` waits for an answer (the reader's time limit applies)
_LENGTH = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]


@dataclass(frozen=True, slots=True)
class QueryAddress:
    """Where the loader answers queries, and the credential it wants: the content of the address file."""

    address: str  # host:port
    token: str


def execute(client: Any, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
    """Runs one analyst's statement on `client`, a reader (`connect_reader`), once `analyst_sql` allowed
    it; values come back as JSON-friendly Python values (datetimes as UTC)."""
    statement = checked(client, sql, parameters)
    try:
        result = client.query(statement, parameters=parameters or None)
    except Exception as exc:  # chDB and the HTTP driver raise unrelated types: translated here
        raise translate(exc, "query failed") from exc
    return QueryResult(list(result.column_names), [[_plain(v) for v in row] for row in result.result_rows])


def address_file(settings: ClickHouseSettings) -> Path | None:
    """Where the owner of an embedded store leaves its query address and credential (None for a server)."""
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
    reader = WarehouseReader(settings, open_store=open_store)
    try:
        return reader.query(sql, parameters)
    finally:
        reader.close()


class WarehouseReader:
    """`run_query` for a reader that queries again and again (the dashboard): the same way to the data,
    but a reader connection it opened itself stays open between queries instead of costing a connection
    each time. Its calls must not overlap (the caller serialises them); `close()` when done."""

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
                return _ask(read_address(where), sql, parameters)
            except StoreLocked:
                if not self.open_store:
                    raise
                log.info("stale query address in %s, opening the store directly", where)
        if where is not None and not self.open_store:
            raise StoreLocked(f"the loader does not serve queries yet ({where} is missing)")
        self._client = connect_reader(self.settings)
        return execute(self._client, sql, parameters)

    def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            client.close()


def read_address(path: Path) -> QueryAddress:
    """The address file's content; `StoreLocked` if it cannot be read (another user's store) or is not one."""
    try:
        content = orjson.loads(path.read_bytes())
        return QueryAddress(str(content["address"]), str(content["token"]))
    except PermissionError as exc:
        raise StoreLocked(
            f"cannot read {path}: the loader's query port answers only the user who owns the store"
        ) from exc
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise StoreLocked(f"{path} does not hold a query address ({exc})") from exc


class QueryService:
    """Serves `POST /query` ({"sql": ..., "parameters": {...}}) on a loopback port through `client` (a
    reader, one query at a time), to holders of the credential it writes with its address to
    `address_path` (mode 0600) while it runs."""

    def __init__(
        self,
        client: Any,
        address_path: Path,
        host: str = "127.0.0.1",
        read_timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        self.client = client
        self.address_path = address_path
        self.host = host
        self.read_timeout_s = read_timeout_s
        self._token = ""
        self._hosts: frozenset[str] = frozenset()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._one_at_a_time = threading.Lock()

    def start(self) -> str:
        service = self

        class Handler(BaseHTTPRequestHandler):
            timeout = service.read_timeout_s  # a client that stops sending cannot hold a thread

            def do_POST(self) -> None:
                service._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("query service: " + format, *args)

        self._token = secrets.token_urlsafe(32)
        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        port = self._server.server_address[1]
        address = f"{self.host}:{port}"
        self._hosts = frozenset({address, f"localhost:{port}"})
        _write_private(self.address_path, orjson.dumps({"address": address, "token": self._token}))
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="query-service", daemon=True
        )
        self._thread.start()
        return address

    def stop(self) -> None:
        self.address_path.unlink(missing_ok=True)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        refused = self._refusal(request)
        if refused is not None:
            status, reason = refused
            return _reply(request, status, {"error": reason})
        try:
            body = json.loads(request.rfile.read(int(request.headers["Content-Length"])))
            sql, parameters = body["sql"], body.get("parameters")
            if not isinstance(sql, str) or not (parameters is None or isinstance(parameters, dict)):
                raise TypeError("sql must be a string and parameters an object")
        except TimeoutError:
            return _reply(request, 408, {"error": f"the body did not arrive within {self.read_timeout_s} s"})
        except (ValueError, KeyError, TypeError) as exc:
            return _reply(request, 400, {"error": f"bad query request: {exc}"})
        try:
            with self._one_at_a_time:
                result = execute(self.client, sql, parameters)
        except QueryRefused as exc:
            return _reply(request, 400, {"error": exc.reason, "refused": True})
        except WarehouseError as exc:
            return _reply(request, 400, {"error": str(exc), "code": exc.code})
        _reply(request, 200, {"columns": result.columns, "rows": result.rows})

    def _refusal(self, request: BaseHTTPRequestHandler) -> tuple[int, str] | None:
        """Why a request is not served, as (HTTP status, reason), or None: checked before the body is read."""
        headers = request.headers
        if request.path != "/query":
            return 404, "only POST /query is served here"
        if headers.get("Host") not in self._hosts or "Origin" in headers:
            return 403, "queries are answered for local programs only (Host must be this address, no Origin)"
        given = headers.get("Authorization", "")
        if not given.startswith("Bearer "):
            return 401, "missing credential (Authorization: Bearer, from the address file beside the store)"
        if not hmac.compare_digest(given.removeprefix("Bearer ").encode(), self._token.encode()):
            return 403, "wrong credential"
        if headers.get_content_type() != "application/json" or "Content-Type" not in headers:
            return 415, "the body must be JSON (Content-Type: application/json)"
        length = headers.get("Content-Length")
        if length is None:
            return 411, "Content-Length is required"
        if not _LENGTH.fullmatch(length):
            return 400, "Content-Length must be a number of bytes"
        if int(length) > MAX_REQUEST_BYTES:
            return 413, f"a query request is at most {MAX_REQUEST_BYTES} bytes"
        return None


def _write_private(path: Path, data: bytes) -> None:
    """Writes `data` to `path` readable by this user only, whole or not at all (a reader never sees half)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)


def _ask(where: QueryAddress, sql: str, parameters: dict[str, Any] | None) -> QueryResult:
    request = urllib.request.Request(
        f"http://{where.address}/query",
        data=orjson.dumps({"sql": sql, "parameters": parameters}),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {where.token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=ANSWER_TIMEOUT_S) as response:
            body = orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = orjson.loads(exc.read() or b"{}")
        except orjson.JSONDecodeError:
            detail = {}
        if detail.get("refused"):
            raise QueryRefused(str(detail.get("error"))) from exc
        raise WarehouseError(str(detail.get("error", exc)), code=detail.get("code")) from exc
    except OSError as exc:
        raise StoreLocked(
            f"the embedded store is open in another process, which does not answer queries at "
            f"{where.address} ({exc}); stop that process or query it while it runs the loader"
        ) from exc
    return QueryResult(body["columns"], body["rows"])


def _reply(request: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    data = orjson.dumps(body, default=_plain)
    request.send_response(status)
    if status == 401:
        request.send_header("WWW-Authenticate", 'Bearer realm="pulse query"')
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
