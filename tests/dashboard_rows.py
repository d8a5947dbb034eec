"""A small warehouse whose dashboard is known by hand: the rows, and what every panel must show for them.

Run as a script (`python -m tests.dashboard_rows chdb:///path`), it writes the rows into a store of its
own, so a dashboard in another process can open that store (chDB lets one process open a directory).

The newest data ends at NOW (12:00 UTC): the newest engagement minute is 11:59, the newest comment 11:58.
SLA 10 minutes everywhere; "due soon" from 8 minutes.

community 12345 (VK), posts 678 and 679; community pulse_news (Telegram), post 42.
  m0  12345/678  23:00 the day before   unanswered, breached          waiting 13h, past SLA
  m1  12345/678  11:10  answered 11:12 (120 s)
  m6  12345/678  11:15  answered 11:20 (300 s)
  m2  12345/678  11:20  answered 11:35 (900 s, late)
  m3  12345/678  11:30  unanswered, breached, text edited         waiting 30m, past SLA
  m5  12345/679  11:51  unanswered                                 waiting 9m, due soon
  m4  12345/679  11:55  unanswered                                 waiting 5m
  n1  pulse_news/42  11:40  answered 11:41 (60 s)
  n2  pulse_news/42  11:45  unanswered, not flagged yet             waiting 15m, past SLA
  n3  pulse_news/42  11:48  deleted                                 not waiting, not counted
  n4  pulse_news/42  11:58  unanswered, text is markup              waiting 2m
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

from pipeline.warehouse import ClickHouseSettings, apply_migrations, connect
from pipeline.warehouse.routes import ALERT_COLUMNS, COMMENT_SLA_COLUMNS, ENGAGEMENT_COLUMNS, EVENT_COLUMNS
from tests.warehouse_rows import minute_row

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
NOW_S = int(NOW.timestamp())
MIN = 60
SLA_S = 600.0
MARKUP = "<img src=x onerror=alert(1)>"

VK, TG = "12345", "pulse_news"
TEXTS = {
    "m0": "Where is my order from yesterday?",
    "m1": "When is the next meetup?",
    "m6": "Love this!",
    "m2": "Is delivery available in my city?",
    "m3": "The link does not open",  # edited below to M3_EDITED
    "m5": "How much does it cost?",
    "m4": "Will there be a stream?",
    "n1": "Great post, thanks",
    "n2": "Why was my order cancelled?",
    "n3": "oops, wrong chat",
    "n4": MARKUP,
}
M3_EDITED = "The link does not open, still broken"

# What the panels must show (worked out by hand from the rows above).
WAITING_ORDER = ["m0", "m3", "n2", "m5", "m4", "n4"]
WAITING_STATUS = {
    "m0": "past_sla",
    "m3": "past_sla",
    "n2": "past_sla",
    "m5": "due_soon",
    "m4": "ok",
    "n4": "ok",
}
WAITED_S = {"m0": 13 * 3600.0, "m3": 1800.0, "n2": 900.0, "m5": 540.0, "m4": 300.0, "n4": 120.0}
KEEPING_UP = {
    VK: {"comments": 6, "answered": 3, "response_rate_pct": 50.0, "within_sla_pct": 33.33, "median_s": 300.0,
         "p90_s": 900.0, "waiting": 4, "past_sla": 2},
    TG: {"comments": 3, "answered": 1, "response_rate_pct": 33.33, "within_sla_pct": 33.33, "median_s": 60.0,
         "p90_s": 60.0, "waiting": 2, "past_sla": 1},
}  # fmt: skip
TOP_POSTS = [(TG, "42", 36.0, "https://t.me/pulse_news/42"), (VK, "678", 22.0, "https://vk.com/wall-12345_678"),
             (VK, "679", 5.0, "https://vk.com/wall-12345_679")]  # fmt: skip
ALERTS_TODAY = {"at_risk": 2, "unanswered_comment": 1, "resolved": 1}
LATEST_ALERTS = [("at_risk", "n2"), ("unanswered_comment", "m3"), ("at_risk", "m3"), ("resolved", "m2"),
                 ("unanswered_comment", "m0")]  # fmt: skip


def at(minutes_before_now: float) -> int:
    return int(NOW_S - minutes_before_now * MIN)


def fill(client: Any) -> None:
    """Writes the rows into `client`'s database (its tables created first)."""
    apply_migrations(client)
    written = NOW_S * 1000
    minute = [
        (VK, "678", at(20), 10, 2, 1, "vk"),
        (VK, "678", at(10), 5, 0, 0, "vk"),
        (VK, "679", at(5), 3, 1, 0, "vk"),
        (TG, "42", at(1), 20, 5, 2, "telegram"),
    ]
    client.insert(
        "engagement_minute",
        [[platform, *minute_row(c, p, t, likes, comments, reposts)[1:], written]
         for c, p, t, likes, comments, reposts, platform in minute],
        column_names=[*ENGAGEMENT_COLUMNS, "written_at"],
    )  # fmt: skip

    # comment id -> (community, post, commented, answered or None, breached, cancelled)
    comments: dict[str, tuple[str, str, int, int | None, int, int]] = {
        "m0": (VK, "678", at(13 * 60), None, 1, 0),
        "m1": (VK, "678", at(50), at(48), 0, 0),
        "m6": (VK, "678", at(45), at(40), 0, 0),
        "m2": (VK, "678", at(40), at(25), 1, 0),
        "m3": (VK, "678", at(30), None, 1, 0),
        "m5": (VK, "679", at(9), None, 0, 0),
        "m4": (VK, "679", at(5), None, 0, 0),
        "n1": (TG, "42", at(20), at(19), 0, 0),
        "n2": (TG, "42", at(15), None, 0, 0),
        "n3": (TG, "42", at(12), None, 0, 1),
        "n4": (TG, "42", at(2), None, 0, 0),
    }
    sla_rows, events = [], []
    for comment, (community, post, commented, answered, breached, cancelled) in comments.items():
        platform = "vk" if community == VK else "telegram"
        stage = 2 if answered is not None or cancelled else breached
        response = None if answered is None else float(answered - commented)
        sla_rows.append([platform, comment, community, post, commented * 1000,
                         None if answered is None else answered * 1000, response, breached, cancelled, SLA_S,
                         stage, written])  # fmt: skip
        events.append(_event(f"e-{comment}", "comment", platform, community, post, f"u-{comment}",
                             commented, comment, TEXTS[comment]))  # fmt: skip
        if answered is not None:
            events.append(_event(f"e-{comment}-reply", "comment", platform, community, post, "admin",
                                 answered, f"{comment}-reply", "Thanks!", parent=comment, by_community=True))  # fmt: skip
    events.append(_event("e-m3-edit", "comment_edit", "vk", VK, "678", "u-m3", at(29), "m3", M3_EDITED))
    client.insert("comment_sla", sla_rows, column_names=[*COMMENT_SLA_COLUMNS, "written_at"])
    client.insert("events", events, column_names=list(EVENT_COLUMNS))

    def alert(kind: str, comment: str, fired: int, response_s: float | None = None) -> list[Any]:
        community, post, commented, *_ = comments[comment]
        platform = "vk" if community == VK else "telegram"
        return [f"{platform}:{community}:{comment}:{kind}", kind, platform, community, post, comment,
                f"u-{comment}", TEXTS[comment], commented * 1000, fired * 1000, (fired - commented) * 1.0,
                SLA_S, response_s, None, None, written]  # fmt: skip

    client.insert(
        "alerts",
        [
            alert("unanswered_comment", "m0", at(13 * 60 - 10)),
            alert("at_risk", "m3", at(22)),
            alert("unanswered_comment", "m3", at(20)),
            alert("resolved", "m2", at(25), 900.0),
            alert("at_risk", "n2", at(7)),
        ],
        column_names=[*ALERT_COLUMNS, "written_at"],
    )


def _event(
    event_id: str, kind: str, platform: str, community: str, post: str, user: str, at_s: int,
    comment: str, text: str, parent: str | None = None, by_community: bool = False,
) -> list[Any]:  # fmt: skip
    return [event_id, kind, platform, community, post, user, at_s * 1000, comment, parent, by_community, text,
            None, None, None, (at_s + 1) * 1000]  # fmt: skip


if __name__ == "__main__":  # python -m tests.dashboard_rows chdb:///path [database]
    settings = ClickHouseSettings(dsn=sys.argv[1], database=sys.argv[2] if len(sys.argv) > 2 else "pulse")
    fill(connect(settings))
