"""`pulse dashboard` in a real browser: headless Chromium loads the page from a dashboard process that
opened a store of known rows (tests/dashboard_rows.py), runs its scripts, and the rendered DOM shows
what the rows say, with no script error. Screenshots at a laptop's and a phone's size are kept in the
test's tmp_path for people to look at."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pulse.local.child_process import PulseChild
from pulse.local.local_kafka import free_port
from tests import dashboard_rows as known
from tests.browser import Node, png_size, rendered_dom, screenshot

ROOT = Path(__file__).resolve().parents[3]


@contextlib.contextmanager
def dashboard(args: list[str], log: Path) -> Iterator[str]:
    """`pulse dashboard ARGS` on a free port until the block ends; yields the page's address."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    child = PulseChild("the dashboard", ["dashboard", *args, "--port", str(port)], env, log).start()
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            child.check_alive()
            try:
                urllib.request.urlopen(url + "static/dashboard.css", timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"the dashboard did not answer; {child.log_tail()}") from None
                time.sleep(0.2)
        yield url
    finally:
        assert child.stop() == 0, child.log_tail()


@pytest.fixture(scope="module")
def dashboard_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `pulse dashboard` process on a store of its own (chDB: one store per process), filled by
    another process first, as after a backfill."""
    base = tmp_path_factory.mktemp("dashboard")
    dsn = f"chdb://{base / 'store'}"
    subprocess.run([sys.executable, "-m", "tests.dashboard_rows", dsn], cwd=ROOT, check=True, timeout=120)
    with dashboard(["--clickhouse", dsn], base / "dashboard.log") as url:
        yield url


@pytest.fixture(scope="module")
def page(dashboard_url: str) -> Node:
    return rendered_dom(dashboard_url)


def test_the_page_ran_its_scripts_without_an_error(page: Node) -> None:
    body = page.one("body")
    assert body.attrs["data-errors"] == "0", page.by_id("script-errors").text
    assert int(body.attrs["data-refreshes"]) >= 1, "the page read the API at least once"
    assert page.by_id("problem").attrs.get("hidden") is not None, page.by_id("problem").text


def test_it_says_which_now_it_uses(page: Node) -> None:
    now = page.by_id("now")
    assert "20 Nov 2026, 12:00 UTC" in now.text
    assert "event time of the newest data" in now.text
    assert "replay or a simulation" in now.attrs["title"]


def test_the_comments_that_never_got_an_answer_are_listed_oldest_first_against_their_sla(page: Node) -> None:
    items = page.by_id("waiting").all("li")
    assert [li.attrs["data-comment-id"] for li in items] == known.WAITING_ORDER
    by_id = {li.attrs["data-comment-id"]: li for li in items}
    assert {c: li.attrs["data-status"] for c, li in by_id.items()} == known.WAITING_STATUS
    for comment, li in by_id.items():
        shown = {"past_sla": "Past SLA", "due_soon": "Due soon", "ok": "Within SLA"}[
            known.WAITING_STATUS[comment]
        ]
        assert li.one(class_="badge").text == shown
    assert by_id["m0"].one(class_="waited").text == "13h 00m"
    assert by_id["m3"].one(class_="waited").text == "30m"
    assert by_id["m3"].one("blockquote").text == known.M3_EDITED, "the edited text"
    assert by_id["m0"].one("blockquote").text == known.TEXTS["m0"]
    assert "SLA 10m" in by_id["m5"].text
    assert by_id["m0"].one("a").attrs["href"] == "https://vk.com/wall-12345_678"
    assert by_id["n2"].one("a").attrs["href"] == "https://t.me/pulse_news/42"
    assert "19 Nov 23:00" in by_id["m0"].one("time").text, "another day than now's is dated"
    assert "6 comments, 3 past SLA" in page.by_id("waiting-summary").text


def test_comment_text_shows_as_text_never_as_markup(page: Node) -> None:
    (n4,) = [li for li in page.by_id("waiting").all("li") if li.attrs["data-comment-id"] == "n4"]
    assert n4.one("blockquote").text == known.MARKUP
    assert n4.one("blockquote").all() == [], "no element was made from the comment"
    assert page.all("img") == [], "no <img> anywhere on the page"


def test_keeping_up_today_per_community(page: Node) -> None:
    rows = {tr.attrs["data-community-id"]: [td.text for td in tr.all("td")]
            for tr in page.by_id("keeping-up").one("tbody").all("tr")}  # fmt: skip
    assert rows == {
        known.VK: ["6", "3", "50%", "33.3%", "5m", "15m", "2"],
        known.TG: ["3", "1", "33.3%", "33.3%", "1m", "1m", "1"],
    }
    kpis = [(k.one(class_="kpi-label").text, k.one(class_="kpi-value").text)
            for k in page.by_id("kpis").all(class_="kpi")]  # fmt: skip
    assert kpis == [("waiting for an answer", "6"), ("past the SLA", "3"), ("answered today", "4"),
                    ("response rate today", "44.4%"), ("alerts today", "4")]  # fmt: skip


def test_alerts_latest_of_each_kind_and_today_s_counts(page: Node) -> None:
    items = page.by_id("alerts").all("li")
    assert [(li.attrs["data-kind"], li.attrs["data-comment-id"]) for li in items] == known.LATEST_ALERTS
    assert "answered after 15m (late), SLA 10m" in items[3].text
    chips = [chip.text for chip in page.by_id("alerts-today").all("span")]
    assert chips == ["Unanswered today: 1", "At risk today: 2", "Answered today: 1"]


def test_engagement_charts_and_top_posts(page: Node) -> None:
    legend = [key.text for key in page.by_id("engagement-legend").all(class_="key")]
    assert legend == [known.TG, known.VK], "busiest community first"
    for metric in ("likes", "comments", "reposts"):
        chart = page.by_id(f"chart-{metric}")
        assert chart.all(class_="uplot") and chart.all("canvas"), f"uPlot drew the {metric} chart"
    rows = page.by_id("top-posts").one("tbody").all("tr")
    assert [tr.attrs["data-post-id"] for tr in rows] == [post for _, post, _, _ in known.TOP_POSTS]
    assert [tr.one("a").attrs["href"] for tr in rows] == [url for *_, url in known.TOP_POSTS]
    assert [tr.all("td")[-1].text for tr in rows] == ["36", "22", "5"]


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)], ids=["laptop", "phone"])
def test_screenshots_for_people_to_look_at(
    dashboard_url: str, tmp_path: Path, width: int, height: int
) -> None:
    path = screenshot(dashboard_url, tmp_path / f"dashboard-{width}x{height}.png", width, height)
    assert png_size(path) == (width, height)
    assert path.stat().st_size > 20_000, "a rendered page, not a blank one"
    print(f"\nscreenshot: {path}")


def test_while_the_loader_does_not_serve_yet_the_page_says_so_and_keeps_trying(tmp_path: Path) -> None:
    """As under `pulse run` in its first seconds: the dashboard reads only through the loader."""
    args = ["--via-loader", "--clickhouse", f"chdb://{tmp_path / 'store'}"]
    with dashboard(args, tmp_path / "dashboard.log") as url:
        page = rendered_dom(url)
    body = page.one("body")
    assert body.attrs["data-errors"] == "0", page.by_id("script-errors").text
    assert body.attrs["data-refreshes"] == "0"
    problem = page.by_id("problem")
    assert "hidden" not in problem.attrs
    assert "The warehouse cannot be read right now: the loader does not serve queries yet" in problem.text
    assert not (tmp_path / "store").exists(), "the dashboard never opened the store itself"
