"""`pulse dashboard`: the community manager's web page over the warehouse."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import click

from pipeline.warehouse.dashboard.server import DashboardServer
from pipeline.warehouse.query_service import WarehouseReader
from pulse.commands.support import Context, err_console, fail_cleanly
from pulse.errors import PulseError


@click.command("dashboard")
@click.option("--host", help="Listen address. Env: PULSE_DASHBOARD__HOST. Default: 127.0.0.1")
@click.option("--port", type=click.IntRange(0, 65535),
              help="Listen port (0: any free one). Env: PULSE_DASHBOARD__PORT. Default: 8800")  # fmt: skip
@click.option(
    "--clickhouse", "dsn", help="ClickHouse DSN. Env: PULSE_CLICKHOUSE__DSN. Default: embedded store"
)
@click.option("--via-loader", is_flag=True,
              help="Never open the embedded store: read it only through the loader that holds it (as under "
                   "`pulse run`, which starts the dashboard this way).")  # fmt: skip
@click.pass_obj
@fail_cleanly
def dashboard(obj: Context, host: str | None, port: int | None, dsn: str | None, via_loader: bool) -> None:
    """Serve the dashboard: comments waiting for an answer against their SLA, how each community keeps up
    today, engagement per minute and the top posts, the latest alerts. The page refreshes itself every
    2 s (PULSE_DASHBOARD__REFRESH_S) and needs no internet.

    It reads the warehouse as `pulse query` does: through the loader's query port while `pulse sink`
    holds the embedded store, otherwise by opening the store (or the server) itself. A dashboard that
    opened the embedded store holds it until it stops, so start it after a backfill, or let `pulse run`
    start it. For replays and simulations "now" is the newest data's event time, and the page says so.
    No login: it listens on 127.0.0.1 unless told otherwise, since comment texts are personal data.
    """
    overrides: dict[str, Any] = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = obj.settings(clickhouse={"dsn": dsn} if dsn else None, dashboard=overrides or None)
    reader = WarehouseReader(settings.clickhouse, open_store=not via_loader)
    asyncio.run(_serve(DashboardServer(settings.dashboard, reader)))


async def _serve(server: DashboardServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        address = await server.start()
    except OSError as exc:
        where = f"{server.settings.host}:{server.settings.port}"
        raise PulseError(
            f"the dashboard cannot listen on {where}: {exc} (choose another port: --port, or PULSE_DASHBOARD__PORT)"
        ) from exc
    err_console.print(f"dashboard at {address} (Ctrl-C stops it)", highlight=False)
    try:
        await stop.wait()
    finally:
        await server.stop()
