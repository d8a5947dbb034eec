"""The producer the stream worker sends outputs and state with (see `IdempotentProducer`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from faust.transport.drivers.aiokafka import Producer as AIOKafkaProducer

from pipeline.errors import DeliveryStalled

log = logging.getLogger(__name__)


class IdempotentProducer(AIOKafkaProducer):
    """faust's aiokafka producer with acks=all and idempotence, and a bulk send for state records.

    Corrects: faust 0.15.3 builds its aiokafka producer with `acks` from `producer_acks` but never asks for
    idempotence (`faust/transport/drivers/aiokafka.py`, `Producer._settings_default` and
    `_settings_extra`, which returns nothing); a retried produce after a leader change could then write a
    record twice, or out of order. `_settings_extra` is faust's own hook for driver settings.

    Adds: `send_records`, which builds aiokafka record batches itself (`create_batch`/`send_batch`,
    public aiokafka API) from the producer faust keeps (`_ensure_producer`): `Topic.send` goes through
    faust's per-message futures and callbacks, ~40 us a record, and through a bounded send buffer that
    stalls an agent writing thousands of state records per batch.

    Bounds: `flush`, which faust awaits before every offset commit, to `delivery_stall_s`. Seen in a
    3-broker test whose partition leader was killed and started again: aiokafka's flush waited on a batch
    for good (faust sets aiokafka's request timeout to its `producer_request_timeout`, 20 minutes), so
    the worker committed nothing more and `pulse run` never ended. A flush that takes longer now stops
    the worker with an error, before any commit, for its supervisor to start it again: it restores its
    state and reads again from the last commit, whose outputs were all delivered.
    """

    delivery_stall_s = 60.0  # PulseApp sets it from PULSE_PROCESSOR__DELIVERY_STALL_S

    def _settings_extra(self) -> Mapping[str, Any]:
        return {"acks": "all", "enable_idempotence": True}

    async def flush(self) -> None:
        """faust's flush (its buffer, then aiokafka's), or `DeliveryStalled` after `delivery_stall_s`, once
        the app is crashed with it."""
        try:
            await asyncio.wait_for(super().flush(), self.delivery_stall_s)
        except TimeoutError:
            stalled = DeliveryStalled(
                f"the producer did not deliver what it held within {self.delivery_stall_s:g} s"
            )
            log.error(
                "%s: stopping this worker, to be started again (PULSE_PROCESSOR__DELIVERY_STALL_S)", stalled
            )
            await self.transport.app.crash(stalled)
            raise stalled from None

    async def partition_count(self, topic: str) -> int:
        """The topic's partitions, from the producer's metadata (fetched once if it has none)."""
        return len(await self._ensure_producer().partitions_for(topic))

    async def send_records(
        self,
        topic: str,
        partition: int,
        records: list[tuple[bytes, bytes | None]],
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Many records to one partition as few record batches: ~3 us a record against ~40 us through
        `Topic.send`. Delivery is awaited by faust's flush before each offset commit, like any send.
        `headers`: the same for every record."""
        producer = self._ensure_producer()
        batch = producer.create_batch()
        for key, value in records:
            while batch.append(timestamp=None, key=key, value=value, headers=headers or []) is None:
                if batch.record_count() == 0:
                    raise ValueError(f"a record of {len(value or b'')} bytes does not fit a batch")
                await producer.send_batch(batch, topic, partition=partition)
                batch = producer.create_batch()
        if batch.record_count():
            await producer.send_batch(batch, topic, partition=partition)
