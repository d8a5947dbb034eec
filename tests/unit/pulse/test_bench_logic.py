"""`pulse bench logic`'s machinery: the file packed as the replay sends it, the processors fed as the worker
feeds them, the same outputs every run."""

from __future__ import annotations

from pathlib import Path

from pipeline.stream.settings import ProcessorSettings
from pulse.bench.logic import MESSAGE_EVENTS, pack_messages, run_logic
from pulse.bench.shapes import write_file
from schemas import ClockLimit, Topics, decode_events


def test_the_file_is_packed_per_topic_and_partition_each_event_once(tmp_path: Path) -> None:
    file = tmp_path / "events.ndjson"
    shape = write_file(file, "realistic", 3_000)
    messages, events = pack_messages(file, partitions=4)
    inputs = set(Topics().processor_inputs)
    assert {topic for topic, _, _, _ in messages} <= inputs
    assert {partition for _, partition, _, _ in messages} == {0, 1, 2, 3}
    decoded = [e for *_, value in messages for e in decode_events(value, ClockLimit(2**62, 0))[0]]
    assert len(decoded) == events == len({e.event_id for e in decoded})
    assert shape.counted <= events <= shape.events  # the counted types, plus comment edits and deletes
    assert all(len(decode_events(v, ClockLimit(2**62, 0))[0]) <= MESSAGE_EVENTS for *_, v in messages)
    for topic, partition in {(t, p) for t, p, _, _ in messages}:
        offsets = [o for t, p, o, _ in messages if (t, p) == (topic, partition)]
        assert offsets == list(range(len(offsets)))


def test_the_same_messages_give_the_same_outputs_every_run(tmp_path: Path) -> None:
    file = tmp_path / "events.ndjson"
    write_file(file, "realistic", 3_000)
    messages, events = pack_messages(file, partitions=2)
    settings = ProcessorSettings(sla_default_s=300)
    first = run_logic(messages, events, 2, settings, wall_ms=4_000_000_000_000)
    again = run_logic(messages, events, 2, settings, wall_ms=4_000_000_000_000)
    assert first.events == events and first.messages == len(messages)
    assert first.state_records > 0 and first.window_values > 0 and first.sla_records > 0
    assert (first.state_records, first.window_values, first.sla_records, first.alerts) == (
        again.state_records, again.window_values, again.sla_records, again.alerts,
    )  # fmt: skip
    assert first.logic_cpu_s > first.decode_cpu_s > 0
