"""`pulse sink` (Kafka into ClickHouse) and `pulse query` (SQL or a named query, as a table, CSV or JSON)."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import logging
import sys
from typing import Any

import click
import orjson
from rich.table import Table

from pipeline.warehouse import ClickHouseSettings, apply_migrations, connect
from pipeline.warehouse.client import connect_reader, redacted_dsn
from pipeline.warehouse.data_clock import newest_data_end
from pipeline.warehouse.loader import Route, SerializedClient, WarehouseLoader
from pipeline.warehouse.named_queries import catalogue, named
from pipeline.warehouse.query_service import QueryResult, QueryService, address_file, run_query
from pipeline.warehouse.routes import sink_routes
from pipeline.warehouse.source_watch import SourceWatch
from pulse.commands.support import (
    Context,
    Duration,
    console,
    err_console,
    fail_cleanly,
    print_wide,
    stop_on_signals,
    yield_cpu,
)
from pulse.settings import on_cluster
from pulse.topics import ensure_topics

log = logging.getLogger(__name__)


@click.command("sink")
@click.option(
    "--clickhouse", "dsn", help="ClickHouse DSN. Env: PULSE_CLICKHOUSE__DSN. Default: embedded store"
)
@click.option(
    "--batch-rows",
    type=click.IntRange(1, 1_000_000),
    help="Rows per insert at most. Env: PULSE_SINK__BATCH_ROWS. Default: 200000",
)
@click.pass_obj
@fail_cleanly
def sink(obj: Context, dsn: str | None, batch_rows: int | None) -> None:
    """Load the pipeline's topics into ClickHouse: raw events into `events`, window values into
    `engagement_minute`, response clocks into `comment_sla`, alerts into `alerts` (and, from the events,
    `engagement_segment_hour`). Applies the DDL first.

    Each table commits the offsets of its own topics only after an insert succeeded, with a
    deterministic deduplication token, so a crash or a retry never doubles a row. Transient ClickHouse
    errors are retried with backoff; rows ClickHouse rejects go to the dead-letter topic. With the
    embedded engine this process owns the store: `pulse query` asks it while it runs. Runs at niceness
    PULSE_SINK__NICENESS (10): on cores shared with stream workers it yields them the CPU and catches up
    when they idle. Stops cleanly on SIGTERM/Ctrl-C (flushes every batch first).
    """
    settings = obj.settings(
        clickhouse={"dsn": dsn} if dsn else None,
        sink={"batch_rows": batch_rows} if batch_rows else None,
    )
    yield_cpu(settings.sink.niceness)  # first: threads started from here on inherit it
    settings = on_cluster(settings)
    topics = settings.topics.names
    ensure_topics(
        settings.kafka, settings.topics.partitions(topics), settings.topics.replicas,
        settings.topics.retention_bytes, settings.topics.retention_ms(topics),
    )  # fmt: skip
    raw = connect(settings.clickhouse)
    applied = apply_migrations(raw)
    if applied:
        err_console.print(f"applied DDL {', '.join(f'{v:04d}' for v in applied)}")
    client = SerializedClient(raw)
    routes = [Route(spec, sources) for spec, sources in sink_routes(topics, settings.max_clock_skew_s)]
    # The group coordinator's warnings (session expired, member unknown, rejoin failed) belong in the
    # loader's log: a loader whose commits were refused for minutes under load logged nothing to say why.
    logging.getLogger("kafka.coordinator").setLevel(logging.WARNING)
    watch = (SourceWatch(client, settings.sources), topics.alerts) if settings.sources.enabled else None
    loader = WarehouseLoader(
        settings.kafka, routes, client, topics.dead_letters, settings.sink.group, settings.sink, watch
    )
    # The embedded store answers queries through this process, on a connection of its own (a reader),
    # never the loader's: nothing an analyst sends can change the session the inserts run in.
    served_at = address_file(settings.clickhouse)
    service = QueryService(connect_reader(settings.clickhouse), served_at) if served_at else None
    with stop_on_signals() as should_stop:
        loader.start()
        queries = "query the server directly"
        if service is not None:
            queries = f"queries served at {service.start()} (credential in {served_at}, for this user only)"
        err_console.print(
            f"loading {', '.join(r.spec.table for r in routes)} into {settings.clickhouse.database} "
            f"({_where(settings.clickhouse.dsn)}); {queries}"
        )
        try:
            loader.run_until(should_stop)
        finally:
            if service is not None:
                service.stop()
    for table, stats in loader.stats().items():
        err_console.print(
            f"{table}: {stats.rows_written} rows in {stats.batches} inserts, {stats.retries} retries, "
            f"{stats.dead_letters} dead letters, {stats.commit_failures} refused commits"
        )


@click.command("query")
@click.argument("sql", required=False)
@click.option("--named", "name", help="Run a ready-made query by name (see --list).")
@click.option("--list", "show_list", is_flag=True, help="List the named queries and what they answer.")
@click.option("--since", "since_s", type=Duration(), default="1h", show_default=True,
              help="Named queries: the period's length, ending at --until.")  # fmt: skip
@click.option("--until", help="Named queries: end of the period, ISO 8601 (UTC if no offset), or 'latest' "
              "(just after the newest data: for backfills and simulated time). Default: now")  # fmt: skip
@click.option("--community", default="", help="Named queries: only this community id.")
@click.option("--post", default="", help="Named queries: only this post id (rolling-60m).")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=20, show_default=True,
              help="Named queries: at most this many rows.")  # fmt: skip
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
@click.option(
    "--clickhouse", "dsn", help="ClickHouse DSN. Env: PULSE_CLICKHOUSE__DSN. Default: embedded store"
)
@click.pass_obj
@fail_cleanly
def query(
    obj: Context, sql: str | None, name: str | None, show_list: bool, since_s: float, until: str | None,
    community: str, post: str, limit: int, fmt: str, dsn: str | None,
) -> None:  # fmt: skip
    """Run read-only SQL on the warehouse, or a named query, and print the result.

    Works whether or not the pipeline runs: with the embedded engine, a running `pulse sink` owns the
    store and answers through its query port. Examples:

      pulse query "SELECT count() FROM engagement_minute FINAL"

      pulse query --named top-posts --since 1h --limit 10

      pulse query --named first-response --since 7d --format csv
    """
    if show_list:
        for query_ in catalogue().values():
            console.print(f"[bold]{query_.name}[/bold]: {query_.about}", highlight=False)
        return
    if bool(sql) == bool(name):
        raise click.UsageError("give either SQL or --named NAME (or --list)")
    settings = obj.settings(clickhouse={"dsn": dsn} if dsn else None)
    parameters: dict[str, Any] | None = None
    if name:
        chosen = named(name)
        sql = chosen.sql
        end = _latest(settings.clickhouse) if until == "latest" else _end(until)
        parameters = chosen.bind(end=end, since_s=since_s, community=community, post=post, limit=limit)
    assert sql is not None
    _print(run_query(settings.clickhouse, sql, parameters), fmt)


def _latest(settings: ClickHouseSettings) -> dt.datetime:
    newest = newest_data_end(functools.partial(run_query, settings))
    return newest if newest is not None else dt.datetime.now(dt.UTC)


def _end(until: str | None) -> dt.datetime:
    if until is None:
        return dt.datetime.now(dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(until)
    except ValueError:
        raise click.BadParameter(f"{until!r} is not an ISO 8601 time", param_hint="--until") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _print(result: QueryResult, fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(
            orjson.dumps([dict(zip(result.columns, row, strict=True)) for row in result.rows]).decode() + "\n"
        )
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        table = Table(*result.columns)
        for row in result.rows:
            table.add_row(*("NULL" if v is None else str(v) for v in row))
        print_wide(table)
        err_console.print(f"{len(result.rows)} rows")


def _where(dsn: str) -> str:
    if dsn.startswith("chdb://"):
        return f"embedded store {dsn.removeprefix('chdb://')}"
    return redacted_dsn(dsn)
