"""How the panels shape what the warehouse answers (the SQL itself runs in tests/integration/dashboard)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipeline.warehouse.dashboard.panels import CHART_COMMUNITIES, PanelWindows, _sql, read_panels
from pipeline.warehouse.data_clock import NEWEST_DATA_END
from pipeline.warehouse.query_service import QueryResult

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
NOW_S = int(NOW.timestamp())
WINDOWS = PanelWindows(chart_s=600, top_posts_s=300, waiting_shown=10)


class Warehouse:
    """Answers the dashboard's queries from canned rows, by which file the SQL came from."""

    def __init__(self, **rows: tuple[list[str], list[list[Any]]]) -> None:
        self.rows = {_sql(name.replace("_", "-")): result for name, result in rows.items()}

    def query(self, sql: str, parameters: dict[str, Any] | None) -> QueryResult:
        if sql == NEWEST_DATA_END:
            return QueryResult(["end"], [[NOW_S]])
        columns, rows = self.rows.get(sql, ([], []))
        return QueryResult(columns, rows)


def test_the_six_busiest_communities_get_a_line_each_and_the_rest_share_one() -> None:
    columns = ["community_id", "minute_s", "likes", "comments", "reposts"]
    rows = [[f"c{n}", NOW_S - 120, n, 0, 1] for n in range(1, 9)]  # c8 busiest
    rows.append(["c1", NOW_S - 3600, 99, 99, 99])  # before the chart's span: not drawn
    panels = read_panels(Warehouse(engagement_per_minute=(columns, rows)).query, NOW, WINDOWS)
    engagement = panels["engagement"]
    assert engagement["minutes"] == list(range(NOW_S - 600, NOW_S, 60))
    names = [line["name"] for line in engagement["series"]]
    assert names == ["c8", "c7", "c6", "c5", "c4", "c3", "2 more"] and CHART_COMMUNITIES == 6
    assert engagement["series"][-1]["likes"] == [0, 0, 0, 0, 0, 0, 0, 0, 3, 0], "c1 + c2, two minutes ago"
    assert engagement["series"][-1]["reposts"][8] == 2
    assert engagement["series"][0]["comments"] == [0] * 10


def test_a_waiting_comment_is_due_soon_from_four_fifths_of_its_sla() -> None:
    columns = ["platform", "community_id", "post_id", "comment_id", "author_id", "text", "commented_at",
               "waited_s", "sla_s", "past_sla"]  # fmt: skip
    rows = [
        ["vk", "1", "2", "a", "", None, "t", 479.0, 600.0, 0],
        ["vk", "1", "2", "b", "u", "  several\n  lines  ", "t", 480.0, 600.0, 0],
        ["vk", "1", "2", "c", "u", "x" * 400, "t", 10.0, 600.0, 1],  # flagged by the workers: past
    ]
    comments = read_panels(Warehouse(waiting_now=(columns, rows)).query, NOW, WINDOWS)["waiting"]["comments"]
    assert [c["status"] for c in comments] == ["ok", "due_soon", "past_sla"]
    assert [c["author_id"] for c in comments] == [None, "u", "u"]
    assert comments[0]["snippet"] == "" and comments[1]["snippet"] == "several lines"
    assert len(comments[2]["snippet"]) == 280 and comments[2]["snippet"].endswith("…")
    assert comments[0]["post_url"] == "https://vk.com/wall-1_2"
