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


def commit_offset(acked: list[int], committed: int | None = None, head: int | None = None,
                  gap: tuple[int, int] | None = None) -> int | None:  # fmt: skip
    """The offset faust would commit for one partition, given what was acked and where it starts."""
    from faust.types import TP

    consumer = app().consumer
    tp = TP("likes", 0)
    consumer._committed_offset[tp] = committed
    if head is not None:
        consumer._heads[tp] = head
    consumer._acked[tp] = list(acked)
    consumer._acked_index[tp] = set(acked)
    if gap is not None:
        consumer._gap[tp].addi(*gap)
    result: int | None = consumer._new_offset(tp)
    return result


def test_a_first_commit_starts_where_the_partition_was_sought_to() -> None:
    assert commit_offset([0, 1, 2], head=0) == 3
    assert commit_offset([5, 6], head=3, gap=(3, 5)) == 7, "a gap faust recorded covers the head"
    assert commit_offset([31, 32, 33], committed=31) == 34


def test_a_first_commit_never_passes_messages_nobody_processed() -> None:
    """faust alone commits 14 here: with no committed offset it does not look at where the acked
    messages start (seen losing comments 3 to 10 of a partition after a kill -9)."""
    assert commit_offset([11, 12, 13], head=3) is None


def test_a_later_commit_is_left_to_faust() -> None:
    """One missing message at the head passes, as faust has it (see `_ProcessedAckConsumer`): holding
    there stalled on a skipped tick. Known, and not mended yet."""
    assert commit_offset([32, 33], committed=31, head=0) == 34


def test_offsets_that_never_reached_the_agent_are_named() -> None:
    from pipeline.processor import skipped_offsets

    assert skipped_offsets(None, 12) is None, "nothing processed yet from the partition"
    assert skipped_offsets(11, 12) is None
    assert skipped_offsets(13, 12) is None, "read again after a seek back: not a drop"
    assert skipped_offsets(0, 12) == (1, 11)
