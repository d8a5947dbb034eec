"""The faust app's own corrections to faust, checked on the objects it builds (no broker is contacted)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust
import pytest

from pipeline.errors import DeliveryStalled
from pipeline.stream.app import build_app
from pipeline.stream.faust_fixes import FETCH_MAX_WAIT_MS
from pipeline.stream.settings import ProcessorSettings
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

    from pipeline.stream.faust_fixes import PulseWorker

    root = logging.Logger("a-root-stand-in", logging.WARNING)
    root.addHandler(logging.NullHandler())
    worker = PulseWorker(app(), loglevel="WARNING", quiet=True, recovery_stall_s=120)
    worker.on_setup_root_logger(root, logging.WARNING)
    assert root.level == logging.WARNING and not root.isEnabledFor(logging.DEBUG)


def commit_offset(acked: list[int], committed: int | None, cursor: int,
                  gap: tuple[int, int] | None = None) -> int | None:  # fmt: skip
    """The offset the worker's consumer would commit for one partition, given what faust acked, what was
    committed, and the agent's cursor."""
    from faust.types import TP

    consumer = app().consumer
    tp = TP("likes", 0)
    consumer._committed_offset[tp] = committed
    consumer.cursors.start(tp, cursor)
    consumer._acked[tp] = list(acked)
    consumer._acked_index[tp] = set(acked)
    if gap is not None:
        asyncio.run(consumer._add_gap(tp, *gap))
    result: int | None = consumer._new_offset(tp)
    return result


def test_a_commit_goes_as_far_as_both_faust_acks_and_the_agent_processed() -> None:
    assert commit_offset([0, 1, 2], committed=None, cursor=3) == 3
    assert commit_offset([31, 32, 33], committed=31, cursor=40) == 34
    assert commit_offset([31, 32, 33], committed=31, cursor=33) == 33


def test_a_commit_never_passes_messages_nobody_processed() -> None:
    """faust alone commits 14 for the first, as nothing was committed yet (seen losing comments 3 to 10
    of a partition after a kill -9), and 34 for the second: it lets one missing message pass."""
    assert commit_offset([11, 12, 13], committed=None, cursor=3) == 3
    assert commit_offset([32, 33], committed=31, cursor=31) == 31


def test_a_jump_in_offsets_is_no_gap_to_commit_past() -> None:
    """faust's drain loop records one when offsets jump; ours have none, so a jump is a loss to read again."""
    assert commit_offset([9], committed=5, cursor=5, gap=(6, 8)) is None


def seeking_consumer(log_start: int) -> tuple[Any, list[dict[Any, int]]]:
    """The worker's consumer with a broker stand-in whose logs start at `log_start`, and the seeks it
    asks for."""
    consumer = app().consumer
    sought: list[dict[Any, int]] = []

    async def earliest_offsets(*partitions: Any) -> dict[Any, int]:
        return dict.fromkeys(partitions, log_start)

    async def seek_wait(offsets: dict[Any, int]) -> None:
        sought.append(dict(offsets))

    consumer.earliest_offsets = earliest_offsets  # type: ignore[method-assign]
    consumer.seek_wait = seek_wait  # type: ignore[method-assign]
    return consumer, sought


def test_messages_deleted_before_a_rewind_reached_them_are_skipped_and_committed_past() -> None:
    """Retention deleted offsets 5 to 10 while the worker lagged: a rewind to 5 would be reset to 11 by
    the broker and then drop everything it reads (waiting for 5), for good. It goes on from 11 instead,
    and a commit passes 5 to 10 once what follows them is processed."""
    from faust.types import TP

    consumer, sought = seeking_consumer(log_start=11)
    tp = TP("likes", 0)
    consumer._committed_offset[tp] = 5
    consumer.cursors.start(tp, 5)
    consumer.cursors.admit(tp, 12)  # the hole that asks for the rewind
    asyncio.run(consumer._seek_back(tp))
    assert sought == [{tp: 11}]
    assert consumer.cursors.next_offset(tp) == 11
    assert consumer._new_offset(tp) is None, "nothing processed after the deleted offsets yet"
    for offset in (11, 12, 13):
        consumer.cursors.admit(tp, offset)
    consumer._acked[tp] = [11, 12, 13]
    consumer._acked_index[tp] = {11, 12, 13}
    assert consumer._new_offset(tp) == 14


def test_a_lost_tail_is_rewound_only_once_fetched_batches_were_handed_out_in_full() -> None:
    """A partition fetched past its cursor with nothing tracked: lost, or waiting in a batch the drain loop
    has not handed out yet because the agent is busy. Only a batch handed out in full tells them apart."""
    from faust.types import TP

    consumer, sought = seeking_consumer(log_start=0)
    tp = TP("reposts", 1)
    consumer.assignment = lambda: {tp}  # type: ignore[method-assign]
    consumer._fetch_position = lambda _tp: 20  # type: ignore[method-assign]
    consumer.cursors.start(tp, 4)

    async def checks(count: int, batches_between: int) -> None:
        for _ in range(count):
            consumer._batches_handed_out += batches_between  # what the getmany wrapper counts
            await consumer.rewind_stalled()

    asyncio.run(checks(4, batches_between=0))
    assert sought == [], "a batch still being handed out may hold the records"
    asyncio.run(checks(2, batches_between=1))
    assert sought == [{tp: 4}]


def test_an_agent_that_fails_stops_the_worker_instead_of_committing_and_going_on() -> None:
    built = app()
    crashed: list[BaseException] = []

    async def crash(reason: BaseException) -> None:
        crashed.append(reason)

    built.crash = crash  # type: ignore[method-assign]
    failure = ValueError("a send failed")
    agent = next(iter(built.agents.values()))
    asyncio.run(agent._on_error(agent, failure))  # what faust calls when the agent raises
    assert crashed == [failure]


def test_a_flush_that_does_not_finish_in_time_stops_the_worker_before_any_commit() -> None:
    """aiokafka was seen waiting on a batch for good after a partition leader's restart; faust awaits the
    flush before each commit, so the worker committed nothing more and its run never ended."""
    built = build_app(
        ProcessorSettings(delivery_stall_s=10), KafkaSettings(), Topics(), partitions=2, replication_factor=1
    )
    built.finalize()
    crashed: list[BaseException] = []

    async def crash(reason: BaseException) -> None:
        crashed.append(reason)

    class Aiokafka:  # what faust's flush awaits after its own buffer: here a flush that never ends, or does
        def __init__(self, ends: bool) -> None:
            self.ends = ends

        async def flush(self) -> None:
            await asyncio.sleep(0 if self.ends else 3_600)

    built.crash = crash  # type: ignore[method-assign]
    producer = built.producer
    assert producer.delivery_stall_s == 10  # from the settings
    producer.delivery_stall_s = 0.2

    async def flush(ends: bool) -> None:
        producer._producer = Aiokafka(ends)
        await producer.flush()

    asyncio.run(flush(ends=True))
    assert crashed == []
    with pytest.raises(DeliveryStalled, match=r"within 0\.2 s"):
        asyncio.run(flush(ends=False))
    assert len(crashed) == 1 and isinstance(crashed[0], DeliveryStalled)
