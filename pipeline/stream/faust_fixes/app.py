"""The faust app class the stream worker runs (see `PulseApp`)."""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.types import ConsumerT, ProducerT

from pipeline.stream.faust_fixes.consumer import ProcessedAckConsumer
from pipeline.stream.faust_fixes.producer import IdempotentProducer

log = logging.getLogger(__name__)


class PulseApp(faust.App):
    """faust's app with our consumer and producer, no table directories, and a crash on an agent's error.

    Corrects, in faust-streaming 0.15.3 (`faust/app/base.py`): `App._on_agent_error` logs the error and lets
    the agent's supervisor start a new actor that goes on with the next messages; `_create_directories`
    makes `<app id>-data/` even for in-memory tables; `_new_producer` and `_new_consumer` are the factory
    hooks that give the worker `IdempotentProducer` and `ProcessedAckConsumer`.
    """

    async def _on_agent_error(self, agent: Any, exc: BaseException) -> None:
        """An agent that raised stopped in the middle of a batch, whose windows and state were drained
        from the processors and maybe never sent. faust would commit and start a new actor that goes on
        with the next messages: outputs lost, the processors' memory ahead of their changelog (seen: an
        output message too large for the producer, every later window wrong). Instead the worker stops
        with the error, for its supervisor to start it again: it restores its state and re-reads from
        the last commit."""
        log.error("the agent failed: stopping this worker, to be started again", exc_info=exc)
        await self.crash(exc)

    def _create_directories(self) -> None:
        """None: the table lives in memory (and its changelog), so nothing is written to disk, and faust's
        `<app id>-data/v1/tables` directories would only pile up in the worker's working directory."""

    delivery_stall_s = IdempotentProducer.delivery_stall_s  # build_app sets it from the settings

    def _new_producer(self) -> ProducerT:
        producer = IdempotentProducer(self.transport, loop=self.loop, beacon=self.beacon)
        producer.delivery_stall_s = self.delivery_stall_s
        return producer

    def _new_consumer(self) -> ConsumerT:
        return ProcessedAckConsumer(
            self.transport,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
        )
