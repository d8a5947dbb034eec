"""The live view's log line, as `pulse run` prints it when its output is not a terminal."""

from __future__ import annotations

from io import StringIO

from rich.console import Console

from pulse.local.live_view import Snapshot, print_line


def printed(now: Snapshot, before: Snapshot | None = None) -> str:
    out = StringIO()
    print_line(Console(file=out, width=80), now, before)  # a log file: rich's default width
    return out.getvalue()


def test_the_rows_in_clickhouse_share_the_line_with_their_labels() -> None:
    before = Snapshot(at=10.0, events=1_000)
    now = Snapshot(at=20.0, events=21_000, waiting=83, lag=1, alerts={"at_risk": 150, "resolved": 47},
                   rows=[1_944_000, 1_023, 276, 298])  # fmt: skip
    line = printed(now, before)
    assert line.count("\n") == 1, line
    assert "events 21,000 (2,000/s)" in line
    assert "alerts 197" in line
    assert line.rstrip().endswith("rows in ClickHouse: events 1,944,000, minutes 1,023, sla 276, alerts 298")


def test_rows_not_read_yet_say_so() -> None:
    line = printed(Snapshot(at=0.0))
    assert line.count("\n") == 1
    assert "rows in ClickHouse: not read yet" in line
