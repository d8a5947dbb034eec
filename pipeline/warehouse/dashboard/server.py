"""`pulse dashboard`'s web server: one page, its scripts and styles, and a small JSON API, on aiohttp.

- `GET /`: the page; it polls `/api/dashboard` every `refresh_s` and draws the panels in the browser.
- `GET /api/dashboard`: every panel at one "now" (`panels.read_panels`); `GET /api/{panel}` one of them
  (`now`, `waiting`, `keeping_up`, `engagement`, `alerts`). 503 with `{"error": ...}` while the warehouse
  cannot be read (the loader still starting, a server away): the page says so and keeps what it showed.
- `GET /static/...`: the page's files and the vendored chart library (uPlot, MIT), from the package:
  the page needs no internet.

The warehouse is read through a `WarehouseReader` (the query path of `pulse query`), one read at a time
in a worker thread, and a read serves every request of the next second. Comment texts are other people's
words: the page builds its DOM with `textContent`, and a Content-Security-Policy allows no script but
ours. The server binds the loopback interface by default: comment texts and author ids are personal
data, and the dashboard has no login of its own (put an authenticating proxy in front for remote use).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import orjson
from aiohttp import web

from pipeline.errors import WarehouseError
from pipeline.warehouse.dashboard.panels import read_panels
from pipeline.warehouse.dashboard.settings import DashboardSettings
from pipeline.warehouse.query_service import WarehouseReader

log = logging.getLogger(__name__)

PANELS = ("now", "waiting", "keeping_up", "engagement", "alerts")
STATIC = {  # served name -> (file under static/, content type)
    "dashboard.js": ("dashboard.js", "text/javascript"),
    "dashboard.css": ("dashboard.css", "text/css"),
    "uPlot.iife.min.js": ("vendor/uPlot.iife.min.js", "text/javascript"),
    "uPlot.min.css": ("vendor/uPlot.min.css", "text/css"),
    "uPlot.LICENSE.txt": ("vendor/uPlot.LICENSE", "text/plain"),
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class DashboardServer:
    """Serves the dashboard on `settings.host:port` from `start()` to `stop()`; `wall_clock` is the
    machine's clock (tests give another)."""

    def __init__(
        self,
        settings: DashboardSettings,
        reader: WarehouseReader,
        wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.settings = settings
        self.reader = reader
        self.wall_clock = wall_clock
        self._runner: web.AppRunner | None = None
        self._lock = asyncio.Lock()
        self._latest: tuple[float, dict[str, Any]] | None = None  # (monotonic time read, panels)
        self._files: dict[str, tuple[bytes, str]] = {}

    def app(self) -> web.Application:
        static = resources.files("pipeline.warehouse.dashboard").joinpath("static")
        page = static.joinpath("index.html").read_text(encoding="utf-8")
        self._files = {"": (page.replace("{{refresh_ms}}", str(round(self.settings.refresh_s * 1000))).encode(),
                            "text/html; charset=utf-8")}  # fmt: skip
        for name, (path, kind) in STATIC.items():
            charset = "; charset=utf-8" if kind.startswith("text/") else ""
            self._files[name] = (static.joinpath(path).read_bytes(), kind + charset)
        app = web.Application()
        app.on_response_prepare.append(_security_headers)
        app.router.add_get("/", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/api/dashboard", self._dashboard)
        app.router.add_get("/api/{panel}", self._panel)
        return app

    async def start(self) -> str:
        """Listens; returns the page's address."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def read(self) -> dict[str, Any]:
        """The panels, read again when the last read is older than a second (one read at a time)."""
        async with self._lock:
            if self._latest is not None and time.monotonic() - self._latest[0] < 1.0:
                return self._latest[1]
            panels = await asyncio.to_thread(
                read_panels, self.reader.query, self.wall_clock(), self.settings.windows
            )
            self._latest = (time.monotonic(), panels)
            return panels

    async def _page(self, request: web.Request) -> web.Response:
        return self._file("")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self._files or not name:
            raise web.HTTPNotFound()
        return self._file(name)

    async def _dashboard(self, request: web.Request) -> web.Response:
        return await self._json(lambda panels: panels)

    async def _panel(self, request: web.Request) -> web.Response:
        panel = request.match_info["panel"]
        if panel not in PANELS:
            return _json({"error": f"no panel {panel!r}; there are: {', '.join(PANELS)}"}, status=404)
        return await self._json(lambda panels: {panel: panels[panel]})

    async def _json(self, pick: Callable[[dict[str, Any]], dict[str, Any]]) -> web.Response:
        try:
            panels = await self.read()
        except WarehouseError as exc:
            log.warning("the warehouse cannot be read: %s", exc)
            return _json({"error": str(exc)}, status=503)
        return _json(pick(panels))

    def _file(self, name: str) -> web.Response:
        body, kind = self._files[name]
        return web.Response(body=body, headers={"Content-Type": kind, "Cache-Control": "no-cache"})


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
    )


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
