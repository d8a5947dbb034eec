"""The workers' state table, restored in bulk: what faust's recovery does record by record, done with a
plain consumer that reads a changelog partition as fast as the broker sends it.

faust (`faust/tables/recovery.py`, `Recovery._restart_recovery` and `_slurp_changelogs`) restores a table
by feeding every changelog record through its stream machinery: measured on our workers, about 12,000
records a second (117k records in 9.8 s after a kill -9 at 40% of a 400k-event replay), most of a
crash's cost. With the in-memory store (`faust/stores/memory.py`), whose `persisted_offset()` is always
None, it also reads every active changelog partition from its start again at every rebalance, even the
partitions a worker keeps.

`BulkRestoreStore` is that in-memory store, plus: when the worker gains a changelog partition it is active
for (the same partition of its input topics), `on_rebalance` (which faust calls before its recovery builds
its offsets, `TableManager.on_rebalance`) reads the partition from its start to its end with an aiokafka
consumer (see `read_changelog`), applies it (the last value of a key wins, a tombstone deletes), and answers
`persisted_offset()` with the last offset read. faust's recovery then finds nothing left to read. For the
partitions it keeps, the store is current (the worker wrote every change itself, to the store and the
changelog), so it answers with the partition's end. Standby partitions are left to faust as before.

`StateTable` is faust's Table with this store (`Table._new_store` picks the store class).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from faust.stores.memory import Store as MemoryStore
from faust.tables import TableManager
from faust.types import TP

from pipeline.stream.state_format import key_partition

log = logging.getLogger(__name__)

POLL_RECORDS = 50_000


class BulkRestoreStore(MemoryStore[bytes, bytes]):
    """faust's in-memory store, restoring the worker's active changelog partitions in bulk."""

    client_config: Mapping[str, Any] = {}  # aiokafka connection settings; set by `StateTable`
    inputs: frozenset[str] = frozenset()  # the input topics: their partitions tell the active changelog ones

    def __post_init__(self) -> None:
        super().__post_init__()
        self._read_to: dict[TP, int] = {}  # active changelog partition -> the last offset this store holds

    def persisted_offset(self, tp: TP) -> int | None:
        return self._read_to.get(tp)

    async def on_rebalance(
        self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP], generation_id: int = 0
    ) -> None:
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        changelog = self.table.changelog_topic.get_topic_name()
        owned = {tp.partition for tp in assigned if tp.topic in self.inputs}
        active = {tp for tp in assigned if tp.topic == changelog and tp.partition in owned}
        for tp in list(self._read_to):
            if tp not in active:
                del self._read_to[tp]
        if not active:
            return
        started = time.monotonic()
        kept = {tp for tp in active if tp in self._read_to}
        entries, ends = await read_changelog(
            dict(self.client_config), changelog, sorted(active - kept), sorted(kept)
        )
        gained = {tp.partition for tp in active - kept}
        data = self.data
        for key in [k for k in data if key_partition(k) in gained]:
            del data[key]
        for key, value in entries.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        for tp in active:
            end = ends.get(tp.partition, 0)
            if end > 0:
                self._read_to[tp] = end - 1
            else:
                self._read_to.pop(tp, None)
        if gained:
            log.info(
                "restored changelog partitions %s in bulk: %d entries in %.2f s",
                sorted(gained), sum(1 for v in entries.values() if v is not None), time.monotonic() - started,
            )  # fmt: skip


async def read_changelog(
    client_config: dict[str, Any], topic: str, read: Iterable[TP], kept: Iterable[TP]
) -> tuple[dict[bytes, bytes | None], dict[int, int]]:
    """The last value of every key of the `read` partitions (None: deleted), and the end offset of
    those and of the `kept` ones, by partition.

    With aiokafka, whose record batches are parsed in C: kafka-python's consumer (pure Python) took 2.3-2.8 s
    of CPU for the 272,000 records a worker restores near the end of a 400k-event replay, aiokafka's
    0.6-0.9 s (the same records, measured side by side). It runs on the worker's event loop, which has
    nothing else to do while its partitions are restored; it yields between fetches."""
    read, kept = list(read), list(kept)
    parts = [TopicPartition(topic, tp.partition) for tp in read]
    consumer = AIOKafkaConsumer(
        **client_config, enable_auto_commit=False, auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 << 20, fetch_max_bytes=32 << 20,
    )  # fmt: skip
    try:
        await consumer.start()
        every = [*parts, *(TopicPartition(topic, tp.partition) for tp in kept)]
        ends = {tp.partition: end for tp, end in (await consumer.end_offsets(every)).items()}
        entries: dict[bytes, bytes | None] = {}
        starts = await consumer.beginning_offsets(parts) if parts else {}
        pending = [tp for tp in parts if ends[tp.partition] > starts[tp]]
        if not pending:
            return entries, ends
        consumer.assign(pending)
        for tp in pending:
            consumer.seek(tp, starts[tp])
        while pending:
            fetched = await consumer.getmany(*pending, timeout_ms=500, max_records=POLL_RECORDS)
            for records in fetched.values():
                for record in records:
                    entries[record.key] = record.value
            pending = [tp for tp in pending if await consumer.position(tp) < ends[tp.partition]]
        return entries, ends
    finally:
        await consumer.stop()


class StateTable(faust.Table[bytes, bytes]):
    """faust's Table on a `BulkRestoreStore` (`Table._new_store`, `faust/tables/base.py`)."""

    def __init__(
        self, *args: Any, client_config: Mapping[str, Any], inputs: Iterable[str], **kwargs: Any
    ) -> None:
        self._client_config = dict(client_config)
        self._inputs = frozenset(inputs)
        super().__init__(*args, **kwargs)

    def _new_store(self) -> Any:
        store = BulkRestoreStore(
            "memory://", self.app, self, table_name=self.name, key_type=self.key_type,
            key_serializer=self.key_serializer, value_serializer=self.value_serializer,
            value_type=self.value_type, loop=self.loop, options=self.options,
        )  # fmt: skip
        store.client_config = self._client_config
        store.inputs = self._inputs
        return store


class QuickTableManager(TableManager):
    """faust's table manager without the second it sleeps before starting (`TableManager.on_start`,
    `faust/tables/manager.py`: `await self.sleep(1.0)`, giving tables declared late a chance to register).
    The worker's one table is declared in `build_app`, before the worker starts; the sleep was a second of
    every (re)start: of the 7 s from a kill -9 to the partitions resumed, measured."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()
