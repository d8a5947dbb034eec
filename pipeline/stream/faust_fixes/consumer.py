"""The stream worker's consumer: faust's aiokafka consumer, corrected so that every input message is
processed, in order, and no commit passes one that was not (see `ProcessedAckConsumer`).

What each override answers, in faust-streaming 0.15.3 (`faust/transport/consumer.py` unless named):
- `admit`, `getmany`, `_new_offset`, `_add_gap`: `Consumer._drain_messages` drops records below its read
  offset and counts a jump in offsets as a gap (`_add_gap`) that `_new_offset` lets a commit pass; records
  fetched around a rebalance are thrown away by its generation and flow checks. Seen: comments lost after a
  kill -9 under load. Our topics have consecutive offsets, so a jump is a loss: `InputCursors` holds what
  follows a hole, the partition is read again from the hole, and no commit passes the cursor.
- `rewind_stalled`, `_fetch_position`: the same losses at a partition's tail, which no later message
  reveals. Reads aiokafka's subscription state (`aiokafka/consumer/subscription_state.py`) without
  waiting, as `AIOKafkaConsumer.position()` would on the fetching thread.
- `ack`: `Consumer.ack` acks messages an agent never received (those skipped during recovery are acked
  with `tracked` False); acking them lets a commit pass them.
- `resume_partitions`, `perform_seek`: at the end of a table recovery faust resumes the stream partitions
  (`faust/tables/recovery.py`, `Recovery._resume_streams`) before `perform_seek` seeks them to their
  committed offsets, so a fetch in between reads from wherever the partition stood (seen: a worker that
  never drained). And `perform_seek` leaves a partition with nothing committed where it stood: aiokafka
  seeks only to a committed offset above 0.
- `_new_consumer_thread` / `BriefFetchThread`: `AIOKafkaConsumerThread._create_worker_consumer`
  (`faust/transport/drivers/aiokafka.py`) fixes `fetch_max_wait_ms=1500`.
- `on_partitions_revoked`: forgets our own per-partition cursors too.
- `unread_topics` adds to faust: which input partitions still have messages to process (from aiokafka's
  highwater, as `Consumer.highwater` gives it, and our cursors).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, cast

import faust
from aiokafka.errors import IllegalStateError, KafkaError
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP, Message

from pipeline.stream.faust_fixes.input_cursors import Admission, InputCursors, Passage

log = logging.getLogger(__name__)

FETCH_MAX_WAIT_MS = 100


class BriefFetchThread(AIOKafkaConsumerThread):
    """faust fixes the consumer's `fetch_max_wait_ms` at 1500. aiokafka keeps one fetch in flight per
    broker, for the partitions that have nothing buffered; while the agent works through one partition's
    records, the fetch for the others waits at the broker until data comes or 1.5 s pass, and the busy
    partition cannot be fetched again meanwhile. Seen at the end of the end-to-end bench: the worker busy
    for 4.4 s, then fed a few messages every second for 2.5 s more. A short wait costs a few empty fetches
    a second when idle."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by its Fetcher, created on start()
        return consumer


class ProcessedAckConsumer(AIOKafkaConsumer):
    """faust's consumer, corrected so that a worker processes every input message in order and never
    commits past one it did not process, whatever faust skipped around a rebalance.

    Admits each message through `InputCursors` (see there: a message after a hole is held, and the
    partition is read again from the hole) and commits no further than the cursor. faust's own drain loop
    counts a jump in offsets as a gap a commit may pass, and its check of where a commit starts lets one
    missing message through, or none at all when nothing was committed yet: each was seen losing comments
    after a kill -9 under load.

    Acks only messages an agent actually received (faust also acks messages it skips).

    Fetches a stream partition only once it has been sought to its committed offset. At the end of a
    recovery faust resumes the stream partitions and only then seeks them; a fetch in between delivers
    messages from wherever the partition stood (seen as a worker that never drained, in CI and with two
    workers). Resuming after the seek closes that window.

    Seeks a stream partition nobody committed yet back to its earliest offset: faust's seek to the
    committed offsets leaves such a partition where it stood (aiokafka seeks only to a committed offset
    above 0).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_seek: set[Any] = set()  # stream partitions resumed by recovery, not yet sought
        self.cursors = InputCursors()
        self._batches_handed_out = self._batches_at_last_check = 0  # fetched batches, see rewind_stalled

    async def admit(self, message: Message) -> bool:
        """Whether the agent processes this message; after a hole, starts reading its partition again."""
        tp, offset = message.tp, message.offset
        admission = self.cursors.admit(tp, offset)
        if admission is Admission.REWIND:
            start = self.cursors.next_offset(tp)
            assert start is not None
            log.warning(
                "%s/%d: offsets %d to %d never reached the agent (faust dropped them): reading them again",
                tp.topic, tp.partition, start, offset - 1,
            )  # fmt: skip
            await self._seek_back(tp)
        return admission is Admission.PROCESS

    async def rewind_stalled(self) -> None:
        """Rewinds the partitions whose messages from the cursor on were fetched and lost, which no later
        message reveals (seen: a kill -9 run whose last 16 reposts never reached the agent).

        Only once a fetched batch was handed out in full since the last check: until then its records may
        still be on their way, untracked (the drain loop waits while the agent works through a backlog).
        With this, the rewinds still seen (of ticks, in a worker just started on a backlog) follow records
        faust's getmany took from aiokafka and never handed out: real losses, which its flow and
        generation checks can cause."""
        settled = self._batches_handed_out != self._batches_at_last_check
        self._batches_at_last_check = self._batches_handed_out
        in_flight = {message.tp for message in self._unacked_messages}
        for tp in self.assignment():
            start = self.cursors.stalled(tp, self._fetch_position(tp), not settled or tp in in_flight)
            if start is None:
                continue
            log.warning(
                "%s/%d: fetched from offset %d on, and none of it reached the agent: reading it again",
                tp.topic, tp.partition, start,
            )  # fmt: skip
            await self._seek_back(tp)

    def unread_topics(self, topics: Iterable[str], partition: int) -> list[str]:
        """Those of `topics` whose partition `partition` may hold messages the agent has not processed:
        its end is not known yet (nothing fetched), or lies past the cursor, or it is not ours."""
        assigned = set(self.assignment())
        unread = []
        for topic in topics:
            tp = TP(topic, partition)
            end = self.highwater(tp) if tp in assigned else None
            cursor = self.cursors.next_offset(tp)
            if end is None or cursor is None or end > cursor:
                unread.append(topic)
        return unread

    def _fetch_position(self, tp: Any) -> int | None:
        """The next offset aiokafka fetches for the partition (read without waiting: aiokafka's own
        `position()` waits for a position being reset, on the thread that also fetches)."""
        subscription = self._thread._ensure_consumer()._subscription.subscription
        state = subscription and subscription.assignment and subscription.assignment.state_value(tp)
        return state.position if state is not None and state.has_valid_position else None

    async def _seek_back(self, tp: Any) -> None:
        """Reads the partition again from its cursor, or from where its log starts if the messages at the
        cursor were deleted meanwhile (a seek there would be reset to the log's start, whose records a
        rewind to the cursor drops: stuck for good)."""
        try:
            log_start = (await self.earliest_offsets(tp)).get(tp)
        except KafkaError as exc:
            log.warning("%s/%d: where its log starts is unknown (%s): reading it again from the cursor",
                        tp.topic, tp.partition, exc)  # fmt: skip
        else:
            if log_start is not None:
                await self._skip_deleted(tp, log_start)
        offset = self.cursors.next_offset(tp)
        if offset is None:
            return
        try:
            await self.seek_wait({tp: offset})  # on the consumer's thread, like its fetches
        except IllegalStateError:  # revoked meanwhile: its next owner reads from the committed offset
            self.cursors.forget(tp)

    async def _skip_deleted(self, tp: Any, log_start: int) -> bool:
        """Whether messages from the cursor on were deleted; if so the cursor moves up to `log_start`, and
        a commit may pass the deleted offsets once the messages after them are processed."""
        start = self.cursors.next_offset(tp)
        lost = self.cursors.skip_deleted(tp, log_start)
        if not lost:
            return False
        log.error(
            "%s/%d: offsets %d to %d were deleted before they were processed (retention, or deleted "
            "records): %d messages lost; going on from offset %d",
            tp.topic, tp.partition, start, log_start - 1, lost, log_start,
        )  # fmt: skip
        await super()._add_gap(tp, cast(int, start), log_start - 1)
        return True

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Message]]:
        async for tp, message in super().getmany(timeout):
            passage = self.cursors.passage(tp, message.offset)
            if passage is Passage.DROP:
                continue
            if passage is Passage.REREAD:
                # The drain loop drops what lies below its read offset, which records fetched before the
                # rewind's seek may have moved past.
                self._read_offset[tp] = message.offset
            yield tp, message
        self._batches_handed_out += 1  # each record delivered or dropped by now

    def _new_offset(self, tp: Any) -> int | None:
        return self.cursors.committable(tp, super()._new_offset(tp))

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        """None: our topics have no gaps, so a jump is a loss, mended by a rewind. faust would count the
        offsets as committable, including ones read again and processed but whose batch is not settled."""

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return BriefFetchThread(self, loop=self.loop, beacon=self.beacon)

    def ack(self, message: Message) -> bool:
        if not message.tracked:
            return False
        return super().ack(message)

    def resume_partitions(self, tps: Iterable[Any]) -> None:
        wanted = set(tps)
        streams = {tp for tp in wanted if not self._is_changelog_tp(tp)}
        self._awaiting_seek |= streams
        super().resume_partitions(wanted - streams)

    async def perform_seek(self) -> None:
        await super().perform_seek()
        streams = [tp for tp in self.assignment() if not self._is_changelog_tp(tp)]
        log_starts = await self.earliest_offsets(*streams) if streams else {}
        # Partitions whose reading starts elsewhere than at the committed offset faust sought: nothing
        # committed yet, or the committed offset deleted since (`skipped`).
        moved: dict[Any, int] = {}
        skipped: dict[Any, int] = {}
        for tp in streams:
            committed, log_start = self._committed_offset[tp], log_starts.get(tp)
            if committed is not None:
                self.cursors.start(tp, committed)
                if log_start is not None and await self._skip_deleted(tp, log_start):
                    moved[tp] = skipped[tp] = log_start
            elif log_start is not None:
                self.cursors.start(tp, log_start)
                moved[tp] = log_start
        if moved:
            await self.seek_wait(moved)
        if skipped:
            # Nothing of these partitions is processed yet: their commit can move past the deleted
            # messages now (otherwise only once a message after them is processed), so that the lag and
            # the next start know they are gone.
            await self._commit_offsets(skipped)
        sought, self._awaiting_seek = self._awaiting_seek, set()
        super().resume_partitions(sought & set(self.assignment()))

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        self._awaiting_seek -= set(revoked)
        for tp in revoked:
            self.cursors.forget(tp)
        await super().on_partitions_revoked(revoked)


def consumer_of(app: faust.types.AppT) -> ProcessedAckConsumer:
    consumer = app.consumer
    assert isinstance(consumer, ProcessedAckConsumer)
    return consumer


def or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)


def not_fetched(consumer: Any, topics: set[str]) -> str:
    """The assigned input partitions faust does not fetch, and why: what a worker that sits idle with
    messages waiting shows (seen once under load after a takeover; cause not known yet)."""
    active = consumer._active_partitions or set()  # faust keeps no public view of these
    reasons = {
        "paused": consumer._paused_partitions,
        "buffer full": consumer._buffered_partitions,
        "awaiting its seek": consumer._awaiting_seek,
    }
    idle = [
        f"{tp.topic}/{tp.partition} ({', '.join(r for r, tps in reasons.items() if tp in tps) or 'not active'})"
        for tp in sorted(consumer.assignment())
        if tp.topic in topics and tp not in active
    ]
    return f"; not fetched: {'; '.join(idle)}" if idle else ""
