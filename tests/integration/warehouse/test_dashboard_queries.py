"""Every query of the provisioned Grafana dashboard runs on the embedded engine, over a small data set, and
returns rows: SQL that only Grafana ever runs is checked like the code that feeds the tables.

Grafana does not send a panel's SQL as written; `grafana_sql` below does what Grafana 12 with the ClickHouse
plugin 4.x does to it, in the same order:
1. the plugin's front end expands `$__conditionalAll(<condition>, $var)` to `1=1` when the variable is "All"
   and to the condition otherwise;
2. Grafana replaces template variables; the plugin formats a multi-value variable as quoted, comma-joined
   values, so `${community}` with c1 selected becomes `'c1'`;
3. the plugin's back end expands its macros (pkg/macros/macros.go in grafana/clickhouse-datasource):
   `$__timeFilter(col)` -> `col >= toDateTime(<from>) AND col <= toDateTime(<to>)`, `$__fromTime` and
   `$__toTime` -> `toDateTime(<unix seconds>)`, `$__timeInterval(col)` ->
   `toStartOfInterval(toDateTime(col), INTERVAL <interval> second)`, `$__interval_s` -> `<interval>`.
Whatever still starts with `$` afterwards fails the test: a macro this file does not know would reach
ClickHouse unexpanded.

The queries run with `readonly = 2`, as the dashboard's `analyst` user does.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from pipeline.warehouse import ClickHouseSettings, apply_migrations, connect
from pipeline.warehouse.routes import ALERT_COLUMNS, COMMENT_SLA_COLUMNS, ENGAGEMENT_COLUMNS, EVENT_COLUMNS
from tests.warehouse_rows import minute_row

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "dashboards" / "community-pulse.json"

# The dashboard's time range in these tests, and the bucket Grafana would pick for it.
FROM = dt.datetime(2026, 11, 20, 11, 0, tzinfo=dt.UTC)
TO = dt.datetime(2026, 11, 20, 13, 0, tzinfo=dt.UTC)
INTERVAL_S = 60
NOON_S = int(dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC).timestamp())
MIN = 60
COMMUNITIES = ["c1", "c2"]  # what the dashboard's `community` variable lists on this data set
ALL = "$__all"


def load_dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def query_panels() -> list[dict[str, Any]]:
    return [p for p in load_dashboard()["panels"] if p.get("targets")]


def community_variable() -> dict[str, Any]:
    (variable,) = [v for v in load_dashboard()["templating"]["list"] if v["name"] == "community"]
    return dict(variable)


def grafana_sql(sql: str, community: str) -> str:
    """The SQL ClickHouse receives for `sql` with the variable `community` set to one id or to ALL."""
    sql = _conditional_all(sql, community)
    values = COMMUNITIES if community == ALL else [community]
    quoted = ",".join(f"'{value}'" for value in values)
    sql = sql.replace("${community}", quoted).replace("$community", quoted)
    frm, to = f"toDateTime({int(FROM.timestamp())})", f"toDateTime({int(TO.timestamp())})"
    sql = re.sub(r"\$__timeFilter\(([^)]*)\)", lambda m: f"{m[1]} >= {frm} AND {m[1]} <= {to}", sql)
    sql = re.sub(
        r"\$__timeInterval\(([^)]*)\)",
        lambda m: f"toStartOfInterval(toDateTime({m[1]}), INTERVAL {INTERVAL_S} second)",
        sql,
    )
    sql = sql.replace("$__fromTime", frm).replace("$__toTime", to).replace("$__interval_s", str(INTERVAL_S))
    left = re.findall(r"\$\{?\w+", sql)
    assert not left, f"not expanded: {left}"
    return sql


def _conditional_all(sql: str, community: str) -> str:
    """The plugin's applyConditionalAll: the first argument may hold parentheses, the second names the
    variable."""
    macro = "$__conditionalAll("
    while (start := sql.find(macro)) != -1:
        depth, arguments, begin = 1, [], start + len(macro)
        for i in range(begin, len(sql)):
            if sql[i] == "(":
                depth += 1
            elif sql[i] == ")":
                depth -= 1
            if (sql[i] == "," and depth == 1) or depth == 0:
                arguments.append(sql[begin:i])
                begin = i + 1
            if depth == 0:
                break
        condition, variable = arguments
        assert variable.strip() in ("$community", "${community}"), variable
        sql = sql[:start] + ("1=1" if community == ALL else condition) + sql[begin:]
    return sql


@pytest.fixture(scope="module")
def client(chdb_dsn: str) -> Any:
    client = connect(ClickHouseSettings(dsn=chdb_dsn, database="dashboard_queries"))
    apply_migrations(client)
    written = (NOON_S + 30 * MIN) * 1000  # when the loader wrote the rows below

    client.insert(
        "engagement_minute",
        [
            [*minute_row("c1", "p1", NOON_S - 20 * MIN, 10, 2, 1), written],
            [*minute_row("c1", "p1", NOON_S + 10 * MIN, 5, 0, 0), written],
            [*minute_row("c1", "p2", NOON_S + 30 * MIN, 3, 1, 0), written],
            [*minute_row("c2", "p9", NOON_S + 50 * MIN, 20, 5, 2), written],
        ],
        column_names=[*ENGAGEMENT_COLUMNS, "written_at"],
    )

    def clock(comment: str, community: str, at_s: int, answered_s: int | None, breached: int) -> list[Any]:
        response = None if answered_s is None else float(answered_s - at_s)
        stage = 2 if answered_s is not None else breached
        answered_ms = None if answered_s is None else answered_s * 1000
        return ["vk", comment, community, "p1", at_s * 1000, answered_ms, response, breached, 0, 600.0, stage]

    client.insert(
        "comment_sla",
        [
            [*clock("m1", "c1", NOON_S - 30 * MIN, NOON_S - 28 * MIN, 0), written],
            [*clock("m2", "c1", NOON_S, NOON_S + 15 * MIN, 1), written],
            [*clock("m3", "c1", NOON_S + 10 * MIN, None, 1), written],  # waiting past its SLA
            [*clock("n1", "c2", NOON_S + 5 * MIN, NOON_S + 6 * MIN, 0), written],
            [*clock("n2", "c2", NOON_S + 20 * MIN, None, 0), written],  # past its deadline, not flagged yet
        ],
        column_names=[*COMMENT_SLA_COLUMNS, "written_at"],
    )

    def alert(kind: str, community: str, comment: str, fired_s: int) -> list[Any]:
        return [
            f"vk:{community}:{comment}:{kind}", kind, "vk", community, "p1", comment, "u1", "when?",
            (fired_s - 600) * 1000, fired_s * 1000, 600.0, 600.0, None, None, None, written,
        ]  # fmt: skip

    client.insert(
        "alerts",
        [
            alert("at_risk", "c1", "m3", NOON_S + 18 * MIN),
            alert("unanswered_comment", "c1", "m3", NOON_S + 20 * MIN),
            alert("unanswered_comment", "c2", "n2", NOON_S + 30 * MIN),
        ],
        column_names=[*ALERT_COLUMNS, "written_at"],
    )

    def event(
        event_id: str, kind: str, community: str, at_s: int, segment: tuple[str, str, str]
    ) -> list[Any]:
        comment = f"x{event_id}" if kind == "comment" else None
        return [
            event_id, kind, "vk", community, "p1", f"u{event_id}", at_s * 1000, comment, None, False, None,
            *segment, (at_s + 3) * 1000,
        ]  # fmt: skip

    young, older = ("18-24", "female", "DE"), ("25-34", "male", "US")
    client.insert(
        "events",
        [
            event("e1", "like", "c1", NOON_S + 10 * MIN, young),
            event("e2", "comment", "c1", NOON_S + 10 * MIN, young),
            event("e3", "repost", "c1", NOON_S + 11 * MIN, older),
            event("e4", "like", "c2", NOON_S + 50 * MIN, older),
        ],
        column_names=list(EVENT_COLUMNS),
    )
    return client


def test_the_dashboard_has_query_panels_for_every_topic_of_the_issue() -> None:
    titles = " | ".join(p["title"].lower() for p in load_dashboard()["panels"])
    for topic in ("engagement per community", "top posts", "response time", "response rate",
                  "waiting past sla", "alerts", "segment", "events loaded", "lag and dead letters"):  # fmt: skip
        assert topic in titles, topic


def test_the_community_variable_lists_the_communities(client: Any) -> None:
    variable = community_variable()
    assert variable["multi"] and variable["includeAll"]  # the plugin quotes only multi-value variables
    rows = client.query(grafana_sql(variable["query"], ALL), settings={"readonly": 2}).result_rows
    assert [row[0] for row in rows] == COMMUNITIES


@pytest.mark.parametrize("community", [ALL, "c1"])
@pytest.mark.parametrize("panel", query_panels(), ids=lambda p: str(p["title"]))
def test_every_panel_query_runs_and_returns_rows(client: Any, panel: dict[str, Any], community: str) -> None:
    for target in panel["targets"]:
        sql = grafana_sql(target["rawSql"], community)
        result = client.query(sql, settings={"readonly": 2})
        assert result.result_rows, f"no rows for {panel['title']!r} with community={community}:\n{sql}"
        if target["format"] == 0:  # a time series: Grafana needs a time column first, in time order
            assert result.column_names[0] == "time"
            assert result.column_types[0].name.startswith("DateTime")
            times = [row[0] for row in result.result_rows]
            assert times == sorted(times)


def test_the_community_filter_filters(client: Any) -> None:
    (panel,) = [p for p in query_panels() if p["title"] == "Top posts"]
    sql = panel["targets"][0]["rawSql"]
    every = client.query(grafana_sql(sql, ALL), settings={"readonly": 2}).result_rows
    only_c2 = client.query(grafana_sql(sql, "c2"), settings={"readonly": 2}).result_rows
    assert {row[0] for row in every} == {"c1", "c2"}
    assert [(row[0], row[1]) for row in only_c2] == [("c2", "p9")]
