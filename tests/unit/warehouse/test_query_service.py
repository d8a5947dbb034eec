"""Who may open the embedded store, and who the loader's query port answers: its owner, nobody else."""

from __future__ import annotations

import http.client
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.errors import StoreLocked
from pipeline.warehouse import ClickHouseSettings
from pipeline.warehouse.query_service import QueryService, address_file, read_address, run_query


def test_without_the_loaders_address_the_store_is_not_opened(tmp_path: Path) -> None:
    settings = ClickHouseSettings(dsn=f"chdb://{tmp_path / 'store'}")
    assert address_file(settings) == tmp_path / "store.query-address"
    with pytest.raises(StoreLocked, match="does not serve queries yet"):
        run_query(settings, "SELECT 1", open_store=False)
    assert not (tmp_path / "store").exists(), "chDB was not started in this process"


def test_a_dead_loaders_address_is_not_a_reason_to_open_the_store(tmp_path: Path) -> None:
    settings = ClickHouseSettings(dsn=f"chdb://{tmp_path / 'store'}")
    address = orjson.dumps({"address": "127.0.0.1:9", "token": "t"})  # nothing listens there
    (tmp_path / "store.query-address").write_bytes(address)
    with pytest.raises(StoreLocked, match="does not answer queries"):
        run_query(settings, "SELECT 1", open_store=False)
    assert not (tmp_path / "store").exists()


def test_an_address_file_of_another_shape_is_not_followed(tmp_path: Path) -> None:
    settings = ClickHouseSettings(dsn=f"chdb://{tmp_path / 'store'}")
    (tmp_path / "store.query-address").write_text("127.0.0.1:9")  # an older loader's
    with pytest.raises(StoreLocked, match="does not hold a query address"):
        run_query(settings, "SELECT 1", open_store=False)


class UntouchedClient:
    """The reader the service would query through; no request in these tests may reach it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the refused request reached the ClickHouse client ({name})")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[QueryService]:
    running = QueryService(UntouchedClient(), tmp_path / "store.query-address", read_timeout_s=0.5)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def send(
    service: QueryService, body: bytes | None = b'{"sql": "SELECT 1"}', **headers: str
) -> tuple[int, dict[str, Any]]:
    """POSTs to the service with exactly `headers` (underscores for dashes); the answer's status and body."""
    where = read_address(service.address_path)
    host, port = where.address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.putrequest("POST", "/query", skip_host=True, skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name.replace("_", "-"), value.format(token=where.token, address=where.address))
    connection.endheaders(body)
    answer = connection.getresponse()
    return answer.status, orjson.loads(answer.read())


GOOD = {"Host": "{address}", "Authorization": "Bearer {token}", "Content_Type": "application/json"}


def test_the_credential_is_readable_by_the_stores_owner_only(service: QueryService) -> None:
    mode = stat.S_IMODE(os.stat(service.address_path).st_mode)
    assert mode == 0o600, oct(mode)
    assert len(read_address(service.address_path).token) >= 32


@pytest.mark.parametrize(
    ("headers", "status", "says"),
    [
        ({k: v for k, v in GOOD.items() if k != "Authorization"}, 401, "missing credential"),
        (GOOD | {"Authorization": "Bearer "}, 403, "wrong credential"),
        (GOOD | {"Authorization": "Bearer {token}x"}, 403, "wrong credential"),
        (GOOD | {"Authorization": "Basic {token}"}, 401, "missing credential"),
        (GOOD | {"Host": "evil.example:80"}, 403, "local programs only"),
        ({k: v for k, v in GOOD.items() if k != "Host"}, 403, "local programs only"),
        (GOOD | {"Origin": "http://evil.example"}, 403, "local programs only"),
        (GOOD | {"Content_Type": "text/plain"}, 415, "must be JSON"),
        ({k: v for k, v in GOOD.items() if k != "Content_Type"}, 415, "must be JSON"),
        (GOOD | {"Content_Length": "-1"}, 400, "Content-Length must be a number"),
        (GOOD | {"Content_Length": "1e3"}, 400, "Content-Length must be a number"),
        (GOOD | {"Content_Length": str(2 << 20)}, 413, "at most"),
        (GOOD, 411, "Content-Length is required"),
    ],
    ids=[
        "no credential", "empty token", "wrong token", "not bearer", "foreign host", "no host", "a web page",
        "text", "no content type", "negative length", "not a number", "too long", "no length",
    ],
)  # fmt: skip
def test_a_request_without_everything_the_port_wants_is_refused_before_any_query(
    service: QueryService, headers: dict[str, str], status: int, says: str
) -> None:
    body = b'{"sql": "SELECT 1"}' if "Content_Length" in headers else None  # refused before it is read
    answer_status, answer = send(service, body, **headers)
    assert (answer_status, says in answer["error"]) == (status, True), answer


def test_a_body_that_never_arrives_frees_the_connection(service: QueryService) -> None:
    where = read_address(service.address_path)
    host, port = where.address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        head = (
            f"POST /query HTTP/1.1\r\nHost: {where.address}\r\nAuthorization: Bearer {where.token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        connection.sendall(head.encode())
        started = time.monotonic()
        answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.0 408"), answer
    assert time.monotonic() - started < 3


def test_the_address_file_goes_when_the_service_stops(tmp_path: Path) -> None:
    running = QueryService(UntouchedClient(), tmp_path / "store.query-address")
    running.start()
    assert running.address_path.exists()
    running.stop()
    assert not running.address_path.exists()
