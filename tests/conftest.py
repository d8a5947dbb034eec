"""Test tiers: `tests/unit` (no network, seconds) and `tests/integration` (the real Kafka broker, started
once per session from the Maven jars, and the embedded ClickHouse engine).

The broker is never mocked and never skipped: if it cannot start, every integration test that needs it
fails with the reason. Set PULSE_TEST_BOOTSTRAP=host:port to run against a broker you started yourself.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from pipeline.warehouse import ClickHouseSettings
from pulse.local.local_kafka import LocalKafka, LocalKafkaSettings, free_port
from schemas import KafkaSettings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("PULSE_TEST_BOOTSTRAP")
    if external:
        yield external
        return
    settings = LocalKafkaSettings(port=free_port(), controller_port=free_port())
    broker = LocalKafka(settings, tmp_path_factory.mktemp("broker-state"))
    info, _ = broker.up()  # raises LocalKafkaError (a failure, not a skip) when the broker cannot start
    print(f"\nreal Kafka broker for this test session: {info.bootstrap} (pid {info.pids[0]})")
    try:
        yield info.bootstrap
    finally:
        broker.down()


@pytest.fixture
def kafka(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap)


@pytest.fixture
def unique() -> str:
    """A fresh suffix for topic, group and database names, so tests never see each other's data."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The session's one embedded store: chDB opens a single directory per process."""
    return f"chdb://{tmp_path_factory.mktemp('clickhouse')}"


@pytest.fixture
def clickhouse(chdb_dsn: str, unique: str) -> ClickHouseSettings:
    """A fresh database in the session's store for each test."""
    return ClickHouseSettings(dsn=chdb_dsn, database=f"t_{unique}")
