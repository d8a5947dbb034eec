"""`pulse chaos`: the pipeline under faults, proved exact afterwards by answers worked out apart from it."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import click
from rich.table import Table

from agents import EventPublisher, replay
from pulse.bench.shapes import write_file
from pulse.chaos import (
    ChaosMonkey,
    ChaosSettings,
    Fault,
    PacedLines,
    ReferenceRules,
    Strike,
    expected_from_file,
    judge_store,
    plan,
    store_query,
)
from pulse.commands.run import clean_up, private_run_overrides
from pulse.commands.support import Context, Duration, console, err_console, fail_cleanly, stop_on_signals
from pulse.errors import PulseError
from pulse.local.local_kafka import LocalKafka, LocalKafkaSettings, free_port_block
from pulse.local.local_pipeline import RESTARTS, LocalPipeline, RunOptions
from pulse.settings import Settings

SLOW_FROM = 0.85  # of the input's lines: the rest goes at a trickle until every fault has been recovered from


@click.command("chaos")
@click.option("--events", type=click.IntRange(1_000), default=100_000, show_default=True,
              help="Events in the generated file (the realistic shape of `pulse bench`).")  # fmt: skip
@click.option("--feed-for", "feed_s", type=Duration(), default=60.0, show_default=True,
              help="How long the file takes to feed, at a steady pace: the faults strike within it.")  # fmt: skip
@click.option("--fault", "faults", type=click.Choice([f.value for f in Fault]), multiple=True,
              help="A fault to strike (repeat it for several, or the same one again). Default: each of worker, "
                   "loader, notifier, store, and broker when the run has a cluster of its own, once.")  # fmt: skip
@click.option("--brokers", type=click.IntRange(1, 5), default=3, show_default=True,
              help="Brokers of the run's own local cluster (ignored with --kafka).")  # fmt: skip
@click.option("--kafka", help="Your Kafka's bootstrap servers: the run's topics and groups are its own, deleted "
                              "afterwards; no broker of yours is struck.")  # fmt: skip
@click.option("--clickhouse", "dsn",
              help="Your ClickHouse (http(s)://...): the run writes to a database of its own, chaos_<id>. "
                   "Default: a new embedded store under the state directory.")  # fmt: skip
@click.option("--workers", type=click.IntRange(1, 8), default=1, show_default=True, help="Stream workers.")
@click.option("--comment-sla", "sla_s", type=Duration(), default=300.0, show_default=True,
              help="Response-time target; short, so that a short file still has deadlines to judge.")  # fmt: skip
@click.option("--broker-down", "broker_down_s", type=Duration(), default=10.0, show_default=True,
              help="How long a killed broker stays down before it is started again.")  # fmt: skip
@click.option("--stall", "stall_s", type=Duration(), default=5.0, show_default=True,
              help="How long the store's writer stays frozen.")  # fmt: skip
@click.option("--seed", type=int, default=1, show_default=True, help="Picks the moments and the victims.")
@click.pass_obj
@fail_cleanly
def chaos(
    obj: Context, events: int, feed_s: float, faults: tuple[str, ...], brokers: int, kafka: str | None,
    dsn: str | None, workers: int, sla_s: float, broker_down_s: float, stall_s: float, seed: int,
) -> None:  # fmt: skip
    """Replay a generated file of realistic traffic through the whole pipeline while faults strike it at
    random moments, one after another: kill -9 of a stream worker, of the loader, of the notifier, of a
    broker (started again after --broker-down), and a frozen store writer (--stall). Then compare the
    tables with answers worked out from the file alone, by a reference written apart from the pipeline,
    and print what struck when, how long each recovery took, and the verdict. Exits 1 unless every table
    is exact and every fault was recovered from.

    By default everything is the run's own: a local cluster of --brokers brokers on free ports, a new
    embedded store, topics and groups deleted afterwards; the file, the store and the logs stay under
    <state dir>/chaos/<run>/.
    """
    run_name = f"chaos-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:4]}"
    home = obj.settings().state_dir.resolve() / "chaos" / run_name
    chosen = [Fault(f) for f in faults] or [
        f for f in Fault if f is not Fault.BROKER or (kafka is None and brokers > 1)
    ]
    if Fault.BROKER in chosen and (kafka is not None or brokers < 2):
        raise click.UsageError(
            "a broker fault needs the run's own cluster of 2 or more --brokers (no --kafka)"
        )
    private = private_run_overrides(kind="chaos")
    clickhouse = (
        {"dsn": dsn, "database": f"chaos_{uuid.uuid4().hex[:8]}"}
        if dsn
        else {"dsn": f"chdb://{home / 'store'}"}
    )
    settings = obj.settings(
        processor={"sla_default_s": sla_s, **private.pop("processor")},
        clickhouse=clickhouse,
        **private,
    )
    rng = random.Random(seed)

    file = home / "events.ndjson"
    err_console.print(f"writing {events:,} events of realistic traffic to {file} ...")
    shape = write_file(file, "realistic", events)
    console.print(
        f"input: {shape.lines:,} lines, {shape.events:,} events ({shape.duplicates:,} repeated, {shape.malformed} "
        f"malformed), {shape.posts:,} posts over {shape.span_h:.1f} h, {shape.events_per_window_row:.1f} events "
        f"per (post, minute), {shape.subscriber_comments:,} subscriber comments",
        highlight=False,
    )
    expected = expected_from_file(
        file, ReferenceRules.of_settings(settings), wall_clock_ms=time.time_ns() // 1_000_000
    )
    kinds = ", ".join(
        f"{sum(1 for a in expected.alerts.values() if a.kind == k):,} {k}" for k in expected.alert_kinds
    )
    console.print(
        f"reference: {len(expected.engagement):,} engagement_minute rows, {len(expected.sla):,} comment_sla rows, "
        f"alerts: {kinds}",
        highlight=False,
    )

    cluster = None
    if kafka is None:
        port = free_port_block(4 * brokers)
        cluster = LocalKafka(
            LocalKafkaSettings(port=port, controller_port=port + 2 * brokers, brokers=brokers), home
        )
        started = time.monotonic()
        info, _ = cluster.up()
        kafka = info.bootstrap
        err_console.print(
            f"Kafka: {brokers} broker(s) of the run's own at {kafka} ({time.monotonic() - started:.0f} s)"
        )
    settings = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"bootstrap_servers": kafka})}
    )
    strikes = plan(chosen, feed_s, rng)
    pipeline = LocalPipeline(
        settings, RunOptions(workers=workers, notify=True), home / "logs", restarts=RESTARTS + len(chosen)
    )
    try:
        with stop_on_signals() as should_stop:
            pipeline.start()
            pipeline.wait_settled(timeout_s=120)
            err_console.print(f"pipeline started; logs in {home / 'logs'}")
            newest_ms = _feed_under_faults(
                settings, pipeline, file, shape.lines, feed_s, strikes, cluster, stall_s, broker_down_s, rng,
                should_stop,
            )  # fmt: skip
            pipeline.wait_processed(timeout_s=600)
            pipeline.finish_input(newest_ms, timeout_s=120)
            pipeline.wait_loaded(timeout_s=600)
            verdict = judge_store(expected, store_query(settings.clickhouse, open_store=False))
    except BaseException:
        clean_up(settings, pipeline, cluster, True, quiet=True)
        raise
    restarts = pipeline.restarts
    clean_up(settings, pipeline, cluster, True, quiet=False)
    _print_strikes(strikes, restarts)
    console.print(str(verdict), highlight=False)
    console.print(f"verdict: {'EXACT' if verdict.exact else 'NOT EXACT'}", highlight=False)
    if dsn:
        console.print(
            f"the run's tables stay in database {settings.clickhouse.database} of your ClickHouse "
            "(DROP DATABASE it when done)",
            highlight=False,
        )
    failed = [s for s in strikes if not s.done or s.problem]
    if not verdict.exact or failed:
        raise PulseError(
            "chaos run failed: "
            + ("; ".join(f"{s.fault}: {s.problem or 'not recovered'}" for s in failed) or "tables not exact")
            + f"; file, store and logs in {home}"
        )


def _feed_under_faults(
    settings: Settings, pipeline: LocalPipeline, file: Path, lines: int, feed_s: float, strikes: list[Strike],
    cluster: LocalKafka | None, stall_s: float, broker_down_s: float, rng: random.Random, should_stop: Callable[[], bool],
) -> int:  # fmt: skip
    """Feeds the file at a pace of `lines / feed_s` while the faults strike; the newest event time sent."""
    started = time.monotonic()
    monkey = ChaosMonkey(
        pipeline, strikes, ChaosSettings(broker_down_s=broker_down_s, stall_s=stall_s),
        cluster=cluster, started=started, rng=rng, say=lambda text: err_console.print(text, highlight=False),
    )  # fmt: skip
    monkey.start()
    try:
        with (
            file.open("rb") as source,
            EventPublisher(settings.kafka, settings.publisher, pipeline.topics) as out,
        ):
            report = replay(
                PacedLines(source, rate=lines / feed_s, slow_from=int(lines * SLOW_FROM),
                           released=monkey.finished.is_set, tick=pipeline.check),
                out, source=str(file), max_clock_skew_s=settings.max_clock_skew_s,
                should_stop=should_stop,
            )  # fmt: skip
        if report.stopped_early:
            raise PulseError("stopped before the file was fed")
        err_console.print(
            f"{time.monotonic() - started:6.1f} s  fed {report.sent:,} events ({report.rejected:,} bad lines "
            "dead-lettered); waiting for the pipeline to finish ..."
        )
        return report.newest_event_ms
    finally:
        monkey.stop()
        monkey.join(timeout=60)


def _print_strikes(strikes: list[Strike], restarts: dict[str, int]) -> None:
    table = Table(title="faults", title_justify="left")
    for column in ("fault", "at", "struck", "back at work after", "replicas in sync after", "problem"):
        table.add_column(column)
    for s in strikes:
        table.add_row(
            s.fault.value,
            "-" if s.at_s is None else f"{s.at_s:.1f} s",
            s.target or "-",
            "-" if s.recovered_s is None else f"{s.recovered_s:.1f} s",
            "-" if s.in_sync_s is None else f"{s.in_sync_s:.1f} s",
            s.problem or "",
        )
    console.print(table)
    if restarts:
        console.print(
            "started again: " + ", ".join(f"{name} {n}x" for name, n in sorted(restarts.items())),
            highlight=False,
        )
