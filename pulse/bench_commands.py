"""`pulse bench ...`: commands that print measured figures, each against its baseline in the same run."""

from __future__ import annotations

import resource

import click
from rich.table import Table

from pulse.bench import ingest_runs
from pulse.cli_support import Context, console, err_console, fail_cleanly


@click.group()
def bench() -> None:
    """Benchmarks on the real broker; they print tables, they assert nothing."""


@bench.command("ingest")
@click.option(
    "--events", type=click.IntRange(1_000), default=300_000, show_default=True, help="Events per batched run."
)
@click.option(
    "--single-events",
    type=click.IntRange(100),
    default=30_000,
    show_default=True,
    help="Events for the one-event-per-message baseline (it is slow).",
)
@click.option("--partitions", type=click.IntRange(1, 64), default=4, show_default=True)
@click.pass_obj
@fail_cleanly
def bench_ingest(obj: Context, events: int, single_events: int, partitions: int) -> None:
    """Replay and simulator into Kafka: NDJSON batches of 500 events per message against one event per
    message, same data, same run. The input file is generated once under <state-dir>/bench."""
    settings = obj.settings()
    table = Table(
        "path",
        "events/message",
        "events",
        "messages",
        "seconds",
        "events/s",
        "MB/s",
        title="ingest into Kafka",
    )
    for result in ingest_runs(settings.kafka, settings.state_dir, events, single_events, partitions):
        err_console.print(f"{result.path} batch={result.batch_events}: {result.events_per_s:,.0f} events/s")
        table.add_row(
            result.path, f"{result.events / result.messages:.0f}", f"{result.events:,}", f"{result.messages:,}",
            f"{result.seconds:.2f}", f"{result.events_per_s:,.0f}", f"{result.mb_per_s:.1f}",
        )  # fmt: skip
    console.print(table)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(f"peak memory of this process: {peak_mb:.0f} MB (the broker runs with a 512 MB heap)")
