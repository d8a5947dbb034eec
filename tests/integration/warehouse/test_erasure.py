"""Erasing one person from the warehouse on the embedded engine: none of their rows remains in any table,
the audience segments are rebuilt without them, and everybody else's rows are as they were."""

from __future__ import annotations

import time
from typing import Any

from pipeline.warehouse import ClickHouseSettings, apply_migrations, connect
from pipeline.warehouse.erasure import erase_person
from pipeline.warehouse.routes import ALERT_COLUMNS, COMMENT_SLA_COLUMNS, EVENT_COLUMNS

PERSON, OTHER = "u-erase-me", "u-stays"
HOUR = 1_795_000_000_000 - 1_795_000_000_000 % 3_600_000


def event(event_id: str, kind: str, user: str, at: int, **fields: Any) -> list[Any]:
    row = {"event_id": event_id, "type": kind, "platform": "vk", "community_id": "c1", "post_id": "p1",
           "user_id": user, "ts": at, "comment_id": None, "parent_id": None, "by_community": False,
           "text": None, "age_band": "18-24", "gender": "female", "country": "DE",
           "ingested_at": time.time_ns() // 1_000_000} | fields  # fmt: skip
    return [row[c] for c in EVENT_COLUMNS]


def snapshot(client: Any, where: str) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "events": client.query(f"SELECT * FROM events WHERE {where} ORDER BY event_id").result_rows,
        "alerts": client.query(
            f"SELECT * EXCEPT written_at FROM alerts WHERE {where.replace('user_id', 'author_id')} "
            "ORDER BY alert_id"
        ).result_rows,
        "sla": client.query(
            "SELECT comment_id, stage FROM comment_sla WHERE comment_id = 'm-stays'"
        ).result_rows,
    }


def test_no_row_of_the_person_remains_and_the_others_are_unchanged(clickhouse: ClickHouseSettings) -> None:
    client = connect(clickhouse)
    apply_migrations(client)
    events = [
        event("vk:1", "like", PERSON, HOUR + 1_000),
        event("vk:2", "like", OTHER, HOUR + 2_000),
        event("vk:3", "comment", PERSON, HOUR + 3_000, comment_id="m-erase", text="my phone is 555"),
        event("vk:4", "comment", OTHER, HOUR + 4_000, comment_id="m-stays", text="hello"),
        event("vk:5", "like", PERSON, HOUR + 7_200_000, age_band="25-34"),  # another hour and segment
        event("tg:9", "repost", OTHER, HOUR + 7_200_000, age_band="25-34"),
    ]
    client.insert("events", events, column_names=list(EVENT_COLUMNS))
    alerts = [[f"vk:c1:{c}:unanswered_comment", "unanswered_comment", "vk", "c1", "p1", c, author, text,
               HOUR, HOUR + 600_000, 600.0, 600.0, None, None, None]
              for c, author, text in (("m-erase", PERSON, "my phone is 555"), ("m-stays", OTHER, "hello"))]  # fmt: skip
    client.insert("alerts", alerts, column_names=list(ALERT_COLUMNS))
    clocks = [["vk", c, "c1", "p1", HOUR, None, None, 1, 0, 600.0, 1] for c in ("m-erase", "m-stays")]
    client.insert("comment_sla", clocks, column_names=list(COMMENT_SLA_COLUMNS))
    segments = "SELECT toUnixTimestamp(hour), age_band, likes, comments, reposts, engagers FROM engagement_by_segment ORDER BY 1, 2"
    assert client.query(segments).result_rows == [(HOUR // 1000, "18-24", 2, 2, 0, 2),
                                                  (HOUR // 1000 + 7200, "25-34", 1, 0, 1, 2)]  # fmt: skip
    others = snapshot(client, f"user_id = '{OTHER}'")

    erased = erase_person(client, "vk", PERSON)

    assert erased.rows == {"events": 3, "alerts": 1, "comment_sla": 1, "engagement_segment_hour": 2}
    assert snapshot(client, f"user_id = '{PERSON}'") == {"events": [], "alerts": [], "sla": others["sla"]}
    assert client.query("SELECT count() FROM comment_sla WHERE comment_id = 'm-erase'").result_rows == [(0,)]
    assert client.query("SELECT count() FROM alerts WHERE snippet LIKE '%555%'").result_rows == [(0,)]
    assert snapshot(client, f"user_id = '{OTHER}'") == others, "everybody else's rows as they were"
    assert client.query(segments).result_rows == [(HOUR // 1000, "18-24", 1, 1, 0, 1),
                                                  (HOUR // 1000 + 7200, "25-34", 0, 0, 1, 1)]  # fmt: skip
    # The segments' distinct-count states hold only the other person's hash: their union counts one.
    merged = "SELECT uniqExactMerge(engagers), uniqExactMerge(likes) FROM engagement_segment_hour"
    assert client.query(merged).result_rows == [(1, 1)]
    assert erase_person(client, "vk", PERSON).total == 0, "a second erasure finds nothing"
