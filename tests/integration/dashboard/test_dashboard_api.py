"""The dashboard's JSON API over known rows (tests/dashboard_rows.py, numbers worked out by hand there),
served in this process from the session's embedded store, directly and through a loader's query port."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from pipeline.warehouse import ClickHouseSettings, connect
from pipeline.warehouse.dashboard import DashboardSettings
from pipeline.warehouse.dashboard.server import DashboardServer
from pipeline.warehouse.query_service import QueryService, WarehouseReader, address_file
from tests import dashboard_rows as known

LONG_AFTER = known.NOW + dt.timedelta(days=3)  # a wall clock far past the data: a replay


@pytest.fixture(scope="module")
def store(chdb_dsn: str) -> ClickHouseSettings:
    settings = ClickHouseSettings(dsn=chdb_dsn, database="dashboard_api")
    known.fill(connect(settings))
    return settings


Reply = tuple[int, dict[str, str], bytes]


def get(reader: WarehouseReader, wall: dt.datetime, *paths: str) -> dict[str, Reply]:
    """Serves the dashboard on a free port and GETs `paths` from it."""

    async def run() -> dict[str, Reply]:
        server = DashboardServer(DashboardSettings(port=0), reader, wall_clock=lambda: wall)
        url = await server.start()
        replies = {}
        try:
            async with aiohttp.ClientSession() as session:
                for path in paths:
                    async with session.get(url + path.lstrip("/")) as response:
                        replies[path] = (response.status, dict(response.headers), await response.read())
        finally:
            await server.stop()
        return replies

    return asyncio.run(run())


def api(reader: WarehouseReader, wall: dt.datetime = LONG_AFTER) -> dict[str, Any]:
    status, headers, body = get(reader, wall, "/api/dashboard")["/api/dashboard"]
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    return dict(orjson.loads(body))


def test_every_panel_at_one_now_the_newest_data_s_for_a_replay(store: ClickHouseSettings) -> None:
    panels = api(WarehouseReader(store))
    now = panels["now"]
    assert (now["at"], now["basis"], now["day_start"]) == (known.NOW.isoformat(), "newest data",
                                                           "2026-11-20T00:00:00+00:00")  # fmt: skip
    assert "3d 0h behind the wall clock" in now["explained"]

    waiting = panels["waiting"]
    assert (waiting["total"], waiting["past_sla"]) == (6, 3)
    comments = waiting["comments"]
    assert [c["comment_id"] for c in comments] == known.WAITING_ORDER
    assert {c["comment_id"]: c["status"] for c in comments} == known.WAITING_STATUS
    assert {c["comment_id"]: c["waited_s"] for c in comments} == known.WAITED_S
    first = comments[0]
    assert first == {
        "platform": "vk", "community_id": known.VK, "post_id": "678", "post_url": "https://vk.com/wall-12345_678",
        "comment_id": "m0", "author_id": "u-m0", "snippet": known.TEXTS["m0"],
        "commented_at": "2026-11-19T23:00:00+00:00", "waited_s": 46_800.0, "sla_s": 600.0, "status": "past_sla",
    }  # fmt: skip
    assert comments[1]["snippet"] == known.M3_EDITED
    assert comments[-1]["snippet"] == known.MARKUP, "data stays data: escaping is the page's job"

    keeping = {row.pop("community_id"): row for row in panels["keeping_up"]["communities"]}
    assert keeping == known.KEEPING_UP

    engagement = panels["engagement"]
    assert engagement["since"] == "2026-11-20T09:00:00+00:00"
    minutes = engagement["minutes"]
    assert len(minutes) == 180 and minutes[0] == known.NOW_S - 3 * 3600 and minutes[-1] == known.NOW_S - 60
    series = {line["name"]: line for line in engagement["series"]}
    assert list(series) == [known.TG, known.VK]
    at = {m: i for i, m in enumerate(minutes)}
    assert series[known.VK]["likes"][at[known.at(20)]] == 10 and sum(series[known.VK]["likes"]) == 18
    assert sum(series[known.TG]["reposts"]) == 2 and series[known.TG]["comments"][-1] == 5
    assert [
        (p["community_id"], p["post_id"], p["score"], p["post_url"]) for p in engagement["top_posts"]
    ] == [tuple(post) for post in known.TOP_POSTS]
    assert engagement["top_posts"][1] | {"post_url": None} == {
        "platform": "vk", "community_id": known.VK, "post_id": "678", "post_url": None,
        "likes": 15, "comments": 2, "reposts": 1, "score": 22.0,
    }  # fmt: skip

    alerts = panels["alerts"]
    assert alerts["today"] == known.ALERTS_TODAY
    assert [(a["kind"], a["comment_id"]) for a in alerts["latest"]] == known.LATEST_ALERTS
    resolved = alerts["latest"][3]
    assert (resolved["response_s"], resolved["waited_s"], resolved["fired_at"]) == (
        900.0, 900.0, "2026-11-20T11:35:00+00:00"
    )  # fmt: skip


def test_a_live_stream_is_read_at_the_wall_clock(store: ClickHouseSettings) -> None:
    wall = known.NOW + dt.timedelta(seconds=89.2)  # the newest data is 89 s old: live
    panels = api(WarehouseReader(store), wall)
    assert (panels["now"]["at"], panels["now"]["basis"]) == ((known.NOW + dt.timedelta(seconds=90)).isoformat(),
                                                             "wall clock")  # fmt: skip
    waited = {c["comment_id"]: c["waited_s"] for c in panels["waiting"]["comments"]}
    assert waited == {comment: s + 90 for comment, s in known.WAITED_S.items()}
    assert {c["comment_id"]: c["status"] for c in panels["waiting"]["comments"]}["m5"] == "past_sla"
    assert panels["waiting"]["past_sla"] == 4, "m5's deadline passed at 12:01"


def test_the_loader_s_query_port_serves_the_same_panels(store: ClickHouseSettings) -> None:
    """As under `pulse run`: the dashboard never opens the store, the loader's query service answers."""
    service = QueryService(connect(store), address_file(store))
    service.start()
    try:
        through_loader = api(WarehouseReader(store, open_store=False))
    finally:
        service.stop()
    assert through_loader == api(WarehouseReader(store))


def test_each_panel_on_its_own(store: ClickHouseSettings) -> None:
    paths = ["/api/now", "/api/waiting", "/api/keeping_up", "/api/engagement", "/api/alerts", "/api/nothing"]
    replies = get(WarehouseReader(store), LONG_AFTER, *paths)
    whole = api(WarehouseReader(store))
    for path in paths[:-1]:
        status, _, body = replies[path]
        panel = path.removeprefix("/api/")
        assert (status, orjson.loads(body)) == (200, {panel: whole[panel]})
    status, _, body = replies["/api/nothing"]
    assert status == 404 and "there are: now, waiting" in orjson.loads(body)["error"]


def test_the_page_and_its_files_come_from_this_process_under_a_strict_policy(
    store: ClickHouseSettings,
) -> None:
    files = ["/", "/static/dashboard.js", "/static/dashboard.css", "/static/uPlot.iife.min.js",
             "/static/uPlot.min.css", "/static/uPlot.LICENSE.txt", "/static/nothing.js", "/static/..%2Fpanels.py"]  # fmt: skip
    replies = get(WarehouseReader(store), LONG_AFTER, *files)
    for path, (status, headers, body) in replies.items():
        assert "script-src 'self'" in headers["Content-Security-Policy"], path
        assert headers["X-Content-Type-Options"] == "nosniff"
        if "nothing" in path or ".." in path:
            assert status == 404, path
            continue
        assert status == 200 and body, path
    status, headers, page = replies["/"]
    assert headers["Content-Type"].startswith("text/html") and b'data-refresh-ms="2000"' in page
    assert replies["/static/uPlot.iife.min.js"][1]["Content-Type"].startswith("text/javascript")
    assert b"The MIT License" in replies["/static/uPlot.LICENSE.txt"][2]


def test_while_the_warehouse_cannot_be_read_the_api_says_so(tmp_path: Path) -> None:
    nobody = WarehouseReader(ClickHouseSettings(dsn=f"chdb://{tmp_path / 'store'}"), open_store=False)
    status, headers, body = get(nobody, LONG_AFTER, "/api/dashboard")["/api/dashboard"]
    assert status == 503 and headers["Cache-Control"] == "no-store"
    assert "does not serve queries yet" in orjson.loads(body)["error"]
