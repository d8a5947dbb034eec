"""The quiet-source watch against the embedded engine: events stored with their arrival times feed
`community_ingest_minute` through its materialized view, and the watch's queries judge from it; the
episodes it opened are read back from `alerts` by a watch started later."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.warehouse import ClickHouseSettings, apply_migrations, connect
from pipeline.warehouse.routes import ALERT_COLUMNS, EVENT_COLUMNS
from pipeline.warehouse.source_watch import SourceWatch, SourceWatchSettings
from schemas.outputs import AlertKind
from tests.warehouse_rows import like_row

MIN_S = 60
DAY_S = 86_400
NOW_S = 1_796_000_400  # the check's time, a minute boundary
SETTINGS = SourceWatchSettings(span_s=1_800, check_interval_s=1)


@pytest.fixture
def client(clickhouse: ClickHouseSettings) -> Any:
    client = connect(clickhouse)
    apply_migrations(client)
    rows = []
    for day in range(1, 4):  # three earlier days: 25 events in the same half hour of the day
        rows += [like_row(day * 100 + i, "stops", NOW_S - day * DAY_S - 1_700 + i * 68) for i in range(25)]
        rows += [like_row(day * 100 + i, "steady", NOW_S - day * DAY_S - 1_700 + i * 100) for i in range(30)]
    # Today: "stops" went quiet 50 minutes ago; "steady" goes on; "replayed" only got old history now.
    rows += [like_row(900 + i, "stops", NOW_S - 3_000 - i * 60) for i in range(30)]
    rows += [like_row(900 + i, "steady", NOW_S - 1_700 + i * 50) for i in range(30)]
    rows += [like_row(900 + i, "replayed", NOW_S - 1_000, stamped_s=NOW_S - 5 * DAY_S) for i in range(500)]
    client.insert("events", rows, column_names=list(EVENT_COLUMNS))
    return client


def test_a_community_that_stopped_is_quiet_and_old_history_replayed_says_nothing(client: Any) -> None:
    counted = dict(
        client.query("SELECT community_id, sum(events) FROM community_ingest_minute GROUP BY 1").result_rows
    )
    assert counted == {"stops": 105, "steady": 120}, "replayed history is not live traffic"

    (quiet,) = SourceWatch(client, SETTINGS).check(NOW_S * 1000, monotonic_s=0)
    assert (quiet.kind, quiet.community_id) == (AlertKind.SOURCE_QUIET, "stops")
    assert quiet.expected == 25 and quiet.observed == 0, "usually 25 in this half hour, none today"
    assert quiet.commented_at_ms == (NOW_S - 3_000) // MIN_S * MIN_S * 1000, "the minute of its last event"

    client.insert("alerts", [[getattr(quiet, f) for f in (
        "alert_id", "kind", "platform", "community_id", "post_id", "comment_id", "author_id", "snippet",
        "commented_at_ms", "fired_at_ms", "waited_s", "sla_s", "response_s", "observed", "expected")]],
        column_names=list(ALERT_COLUMNS))  # fmt: skip
    later = SourceWatch(client, SETTINGS)  # a restarted loader reads the open episode back
    assert later.check(NOW_S * 1000 + 60_000, monotonic_s=0) == []

    client.insert("events", [like_row(990 + i, "stops", NOW_S + 120 + i) for i in range(5)],
                  column_names=list(EVENT_COLUMNS))  # fmt: skip
    (back,) = later.check(NOW_S * 1000 + 240_000, monotonic_s=0)
    assert (back.kind, back.community_id) == (AlertKind.SOURCE_RECOVERED, "stops")
