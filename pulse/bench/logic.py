"""The stream worker's own logic alone: what a worker's CPU per event is made of once Kafka, faust and the
other processes are taken away, on the same file the end-to-end bench replays.

The file's events are packed as the publisher packs them (up to 500 per message, per topic and partition,
by post), then handed to one `PartitionProcessor` per partition as the worker's agent hands them over:
`process` per message, `settle` per partition after each batch of `batch_messages` messages, a wall-clock
beat (`tick`) every few batches; every output is encoded as the agent encodes it for Kafka. The cycle
collector is set as the worker sets it. No clock but CPU time counts, so the figure is steadier than the
end-to-end one on a shared machine; the baseline is the decoding alone, the least any processor of these
messages pays.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.stream.faust_fixes.worker import FULL_COLLECTION_AFTER
from pipeline.stream.partition import Effects, PartitionProcessor
from pipeline.stream.settings import ProcessorSettings
from schemas import CanonicalEvent, ClockLimit, InvalidEvent, Topics, decode_events, encode_events, parse_line
from schemas.outputs import encode_output_messages
from schemas.wire import partition_of

MESSAGE_EVENTS = 500  # the publisher's default batch
OUTPUT_MESSAGE_BYTES = 512 * 1024
TICK_EVERY = 8  # batches between two wall-clock beats of every partition

Message = tuple[str, int, int, bytes]  # topic, partition, offset, NDJSON value


@dataclass(frozen=True, slots=True)
class LogicResult:
    events: int
    messages: int
    decode_cpu_s: float  # the baseline: decoding every message, nothing else
    logic_cpu_s: float
    gc_s: float  # of logic_cpu_s, in the cycle collector
    state_records: int  # what the worker writes to its changelog
    window_values: int  # engagement outputs (windows and rolling totals)
    sla_records: int
    alerts: int

    def per_event_us(self, seconds: float) -> float:
        return seconds / self.events * 1e6


def pack_messages(path: Path, partitions: int) -> tuple[list[Message], int]:
    """The file's valid events of the processors' topics as the replay would send them (each event once);
    their number."""
    topics = Topics()
    inputs = set(topics.processor_inputs)
    open_batches: dict[tuple[str, int], list[CanonicalEvent]] = {}
    offsets: dict[tuple[str, int], int] = {}
    messages: list[Message] = []
    events = 0
    seen: set[str] = set()  # the replay sends a redelivered line once

    def send(where: tuple[str, int]) -> None:
        batch = open_batches.pop(where)
        offset = offsets.get(where, 0)
        offsets[where] = offset + 1
        messages.append((*where, offset, encode_events(batch)))

    with path.open("rb") as lines:
        for line in lines:
            try:
                event = parse_line(line)
            except InvalidEvent:
                continue
            topic = topics.for_type(event.type)
            if topic not in inputs or event.event_id in seen:
                continue
            seen.add(event.event_id)
            where = (topic, partition_of(event.post_key.encode(), partitions))
            open_batches.setdefault(where, []).append(event)
            events += 1
            if len(open_batches[where]) >= MESSAGE_EVENTS:
                send(where)
    for where in list(open_batches):
        send(where)
    return messages, events


def run_logic(
    messages: list[Message], events: int, partitions: int, settings: ProcessorSettings, wall_ms: int
) -> LogicResult:
    rules = settings.rules()
    decode_started = time.process_time()
    limit = ClockLimit(wall_ms, rules.max_clock_skew_ms)
    for _, _, _, value in messages:
        decode_events(value, limit)
    decode_cpu_s = time.process_time() - decode_started

    counts = {"state": 0, "windows": 0, "sla": 0, "alerts": 0}

    def carry(effects: Effects) -> None:  # as the agent's carry_out encodes them
        if effects.windows or effects.rolling:
            counts["windows"] += len(effects.windows) + len(effects.rolling)
            encode_output_messages([*effects.windows, *effects.rolling], OUTPUT_MESSAGE_BYTES)
        if effects.sla_records:
            counts["sla"] += len(effects.sla_records)
            encode_output_messages(effects.sla_records, OUTPUT_MESSAGE_BYTES)
        if effects.alerts:
            counts["alerts"] += len(effects.alerts)
            encode_output_messages(effects.alerts, OUTPUT_MESSAGE_BYTES)
        counts["state"] += len(effects.state)

    gc_spent = [0.0, 0.0]  # total, start of the current collection

    def on_gc(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            gc_spent[1] = time.process_time()
        else:
            gc_spent[0] += time.process_time() - gc_spent[1]

    inputs = Topics().processor_inputs
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], FULL_COLLECTION_AFTER)
    gc.callbacks.append(on_gc)
    started = time.process_time()
    try:
        processors = {p: PartitionProcessor(p, rules) for p in range(partitions)}
        beats = 0
        step = settings.batch_messages
        for first in range(0, len(messages), step):
            touched = set()
            for topic, partition, offset, value in messages[first : first + step]:
                carry(processors[partition].process(topic, offset, value, wall_ms))
                touched.add(partition)
            for partition in touched:
                carry(processors[partition].settle())
            if (first // step) % TICK_EVERY == 0:
                for processor in processors.values():
                    carry(processor.tick("ticks", beats, wall_ms, None, inputs, ()))
                    carry(processor.settle())
                    beats += 1
        logic_cpu_s = time.process_time() - started
    finally:
        gc.callbacks.remove(on_gc)
        gc.set_threshold(*thresholds)
        gc.unfreeze()
    return LogicResult(
        events=events, messages=len(messages), decode_cpu_s=decode_cpu_s, logic_cpu_s=logic_cpu_s,
        gc_s=gc_spent[0], state_records=counts["state"], window_values=counts["windows"],
        sla_records=counts["sla"], alerts=counts["alerts"],
    )  # fmt: skip
