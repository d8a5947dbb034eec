"""The faust app's own corrections to faust, checked on the objects it builds (no broker is contacted)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import faust
import pytest

from pipeline.processor import FETCH_MAX_WAIT_MS, build_app
from pipeline.processor_settings import ProcessorSettings
from schemas import KafkaSettings, Topics


def app() -> faust.App:
    built = build_app(ProcessorSettings(), KafkaSettings(), Topics(), partitions=2, replication_factor=1)
    built.finalize()
    return built


def test_the_worker_consumer_waits_briefly_for_fetches() -> None:
    """faust creates it with fetch_max_wait_ms=1500, which starved the agent while a backlog drained."""

    async def created() -> int:
        built = app()
        consumer = built.consumer._new_consumer_thread()._create_worker_consumer(built.transport)
        try:
            return int(consumer._fetch_max_wait_ms)
        finally:
            await consumer.stop()

    assert asyncio.run(created()) == FETCH_MAX_WAIT_MS


def test_the_in_memory_table_creates_no_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app()._create_directories()
    assert list(tmp_path.iterdir()) == []


def test_a_worker_logging_at_warning_keeps_debug_records_off() -> None:
    """faust's own worker sets the root logger to DEBUG for its spinner at WARNING and above."""
    import logging

    from pipeline.processor import _Worker

    root = logging.Logger("a-root-stand-in", logging.WARNING)
    root.addHandler(logging.NullHandler())
    _Worker(app(), loglevel="WARNING", quiet=True).on_setup_root_logger(root, logging.WARNING)
    assert root.level == logging.WARNING and not root.isEnabledFor(logging.DEBUG)
