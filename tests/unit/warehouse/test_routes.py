"""How the processors' outputs become rows: stored as they came when every line is a known kind, decoded
when not (the server's own checks of stored rows are in tests/integration/warehouse/test_loader.py)."""

from __future__ import annotations

import msgspec
import pytest

from pipeline.warehouse.routes import alerts_spec, comment_sla_spec, engagement_minute_spec, line_start
from schemas.outputs import (
    Alert,
    AlertKind,
    Output,
    PartitionStats,
    RollingValue,
    SlaRecord,
    SpanTotals,
    WindowValue,
    encode_outputs,
)

WINDOW = WindowValue("vk", "c1", "p1", 1_795_000_020_000, 3, 0, 1, 0, 2, 5.0)
ROLLING = RollingValue("vk", "c1", "p1", 1_795_000_020_000, {"5m": SpanTotals(3, 0, 1, 0, 5.0)})
SLA = SlaRecord("vk", "m1", "c1", "p1", "u1", 1_795_000_020_000, 600.0, None, False, False)
ALERT = Alert(
    "vk:c1:m1:at_risk", AlertKind.AT_RISK, "vk", "c1", "p1", "m1", "u1", "line one\nline two", 1, 2, 3.0, 4.0
)
STATS = PartitionStats(0, 1, 0, 0, 0, 0, 0, 0)


@pytest.mark.parametrize("record", [WINDOW, ROLLING, SLA, ALERT, STATS])
def test_every_kind_is_written_tag_first(record: Output) -> None:
    assert encode_outputs([record]).startswith(line_start(type(record)))


def test_a_value_of_the_tables_kind_is_stored_as_it_came() -> None:
    for spec, records in [
        (engagement_minute_spec(), [WINDOW, WINDOW]),
        (comment_sla_spec(), [SLA, SLA, SLA]),
        (alerts_spec(), [ALERT]),  # a newline inside a field is escaped: still one line
    ]:
        value = encode_outputs(records)
        lines = spec.lines_of(value)
        assert lines.rows == len(records) and lines.data is value
        assert spec.complete_rows


def test_the_other_kinds_a_topic_carries_are_cut_out() -> None:
    value = encode_outputs([WINDOW, ROLLING, WINDOW, ROLLING])
    assert engagement_minute_spec().lines_of(value) == (2, encode_outputs([WINDOW, WINDOW]))
    assert engagement_minute_spec().lines_of(encode_outputs([ROLLING])) == (0, b"")


def test_a_value_with_an_unexpected_line_is_decoded() -> None:
    spec = engagement_minute_spec()
    with_stats = encode_outputs([WINDOW]) + b"\n" + encode_outputs([STATS, WINDOW])  # a blank line too
    assert spec.lines_of(with_stats) == (2, encode_outputs([WINDOW, WINDOW]))
    unterminated = encode_outputs([WINDOW]).rstrip(b"\n")
    assert spec.lines_of(unterminated) == (1, encode_outputs([WINDOW]))
    assert spec.lines_of(b"") == (0, b"")
    with pytest.raises(msgspec.DecodeError):
        spec.lines_of(encode_outputs([WINDOW]) + b"not json\n")
    with pytest.raises(msgspec.ValidationError):
        comment_sla_spec().lines_of(b'{"record":"comment_sla","platform":"vk"}\n{"record":"x"}\n')
