"""`pulse bench ...`: commands that print measured figures, each against its baseline in the same run."""

from __future__ import annotations

import os
import resource
import time

import click
from rich.table import Table

from pulse.bench.baselines import BrokerPass, ClickHouseAlone, broker_pass, clickhouse_alone
from pulse.bench.end_to_end import EndToEndResult, python_speed_ms, run_end_to_end
from pulse.bench.ingest import ingest_runs
from pulse.bench.live import run_live_bench
from pulse.bench.logic import pack_messages, run_logic
from pulse.bench.process import run_process
from pulse.bench.shapes import FileShape, Shape, write_file
from pulse.bench.sink import sink_runs
from pulse.bench.webhook_load import percentile
from pulse.commands.support import Context, console, err_console, fail_cleanly, print_wide
from pulse.local.local_kafka import LocalKafka


@click.group(invoke_without_command=True)
@click.option("--events", type=click.IntRange(1_000), default=300_000, show_default=True,
              help="End to end: events replayed with batched messages.")  # fmt: skip
@click.option("--single-events", type=click.IntRange(100), default=20_000, show_default=True,
              help="End to end: events for the one-event-per-message baseline.")  # fmt: skip
@click.option("--live", "live_s", type=click.FloatRange(1, 600), default=8.0, show_default=True,
              help="End to end: seconds of live traffic for the latency figures.")  # fmt: skip
@click.option("--live-rate", type=click.FloatRange(10, 1e5), default=2_000, show_default=True,
              help="End to end: events/s of the live traffic.")  # fmt: skip
@click.option("--partitions", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--workers", type=click.IntRange(1, 16), default=1, show_default=True,
              help="End to end: stream workers sharing the partitions (with standby copies of each other's "
                   "state when PULSE_PROCESSOR__STANDBY_REPLICAS is set).")  # fmt: skip
@click.option("--batch-events", type=click.IntRange(2, 100_000), default=None,
              help="End to end: events per batched message [default: the publisher's, PULSE_PUBLISHER__BATCH_EVENTS].")  # fmt: skip
@click.option("--shape", type=click.Choice(["realistic", "dense"]), default="realistic", show_default=True,
              help="End to end: the data's shape. realistic: thousands of posts over hours, about 2 events per "
                   "post-minute, a fifth subscriber comments, 3% redeliveries; dense: few busy posts (hides "
                   "per-key costs).")  # fmt: skip
@click.option("--baselines/--no-baselines", default=True, show_default=True,
              help="End to end: the broker alone and ClickHouse alone on the same file, same run.")  # fmt: skip
@click.option("--kill-at", "kill_at", type=click.FloatRange(0.01, 0.99), multiple=True,
              help="End to end: SIGKILL the stream worker when this fraction of the input is committed (repeat "
                   "the option for several kills); it is started again, as pulse run does. Compare the time with "
                   "a run without.")  # fmt: skip
@click.option("--repeat", type=click.IntRange(1, 20), default=1, show_default=True,
              help="End to end: batched runs, a row each (these machines' speed drifts by a third within "
                   "minutes: compare medians).")  # fmt: skip
@click.pass_context
@fail_cleanly
def bench(
    ctx: click.Context,
    events: int,
    single_events: int,
    live_s: float,
    live_rate: float,
    partitions: int,
    workers: int,
    batch_events: int | None,
    shape: Shape,
    baselines: bool,
    kill_at: tuple[float, ...],
    repeat: int,
) -> None:
    """Benchmarks on the real broker; they print tables, they assert nothing.

    Without a subcommand: the whole pipeline end to end (broker, stream worker, loader into a fresh
    embedded store) on the replay path, on a file of the chosen shape: events/s until every event is a row
    in ClickHouse, latency from record timestamp to row, alert latency from the SLA deadline to the
    alert's record on the alerts topic and to its row, peak memory and CPU per process, the Kafka records
    each topic got per input event; the same file through the broker alone and through ClickHouse alone, and our ratio to each; batched
    messages (the publisher's batch size) against one event per message. The subcommands measure the
    parts."""
    if ctx.invoked_subcommand is not None:
        return
    settings = ctx.obj.settings()
    table = Table(
        "events/message", "events", "seconds", "events/s", "latency p50 ms", "latency p99 ms",
        "alert on topic p50 ms", "alert on topic p99 ms", "alert row p50 ms", "alert row p99 ms", "worker peak MB",
        "loader peak MB", title="end to end: replay into ClickHouse",
    )  # fmt: skip
    broker = LocalKafka(settings.local_kafka, settings.state_dir).info()
    broker_pid = (  # the CPU of one local broker; a cluster's is not measured
        broker.pids[0]
        if broker is not None
        and broker.bootstrap == settings.kafka.bootstrap_servers
        and len(broker.pids) == 1
        else None
    )
    cpu_table = Table(
        "events/message", "events", "read s", "processed s", "loaded s",
        title="where the time went: when each stage was done, and CPU seconds per process meanwhile",
    )  # fmt: skip
    cpu_rows = []
    speed_before = python_speed_ms()
    batched = batch_events or settings.publisher.batch_events
    cores = len(os.sched_getaffinity(0))
    bench_dir = settings.state_dir / "bench"
    files = {
        count: bench_dir / f"e2e-{shape}-{count}-{time.time_ns()}.ndjson" for count in (events, single_events)
    }
    shapes = {}
    try:
        for count, path in files.items():
            err_console.print(f"writing {count:,} events of {shape} shape ...")
            shapes[count] = write_file(path, shape, count)
        _print_shape(shapes[events])
        results = []
        for batch, count in [*[(batched, events)] * repeat, (1, single_events)]:
            err_console.print(f"batch={batch}: {count:,} events through broker, worker and loader ...")
            r = run_end_to_end(
                settings, batch, files[count], shapes[count].events, live_s, live_rate, partitions, workers, broker_pid,
                kill_at if batch == batched else (),
            )  # fmt: skip
            results.append(r)
            cpu_us = sum(r.cpu_s.values()) / r.events * 1e6
            cpu_rows.append(
                (str(batch), f"{r.events:,}", *(f"{at:.2f}" for at in r.phases_s.values()),
                 *(f"{spent:.2f}" for spent in r.cpu_s.values()), f"{cpu_us:.1f}", f"{cores * 1e6 / cpu_us:,.0f}")
            )  # fmt: skip
            cpu_names = list(r.cpu_s)
            err_console.print(f"batch={batch}: {r.events_per_s:,.0f} events/s")
            table.add_row(
                str(batch), f"{r.events:,}", f"{r.seconds:.2f}", f"{r.events_per_s:,.0f}", f"{r.latency_p50_ms:.0f}",
                f"{r.latency_p99_ms:.0f}", *(
                    "-" if ms is None else f"{ms:.0f}"
                    for ms in (r.alert_topic_p50_ms, r.alert_topic_p99_ms, r.alert_p50_ms, r.alert_p99_ms)
                ),
                f"{r.peak_mb.get('the stream worker', float('nan')):.0f}", f"{r.peak_mb.get('the loader', float('nan')):.0f}",
            )  # fmt: skip
        broker_alone = clickhouse = None
        if baselines:
            err_console.print("baselines: the same file through the broker alone, then ClickHouse alone ...")
            broker_alone = broker_pass(settings, files[events])
            clickhouse = clickhouse_alone(files[events])
    finally:
        for path in files.values():
            path.unlink(missing_ok=True)
    print_wide(table)
    if kill_at:
        console.print(
            "the batched runs killed the stream worker (SIGKILL) with "
            + ", ".join(f"{f:.0%}" for f in sorted(kill_at))
            + " of the input committed, and started it again"
        )
    for name in cpu_names:
        cpu_table.add_column(f"{name.removeprefix('the ')} CPU s")
    cpu_table.add_column("CPU us/event")
    cpu_table.add_column("ceiling events/s")
    for row in cpu_rows:
        cpu_table.add_row(*row)
    print_wide(cpu_table)
    batched_runs = [r for r in results if r.batch_events == batched]
    _print_records(batched_runs[-1], shapes[events])
    if broker_alone is not None and clickhouse is not None:
        _print_baselines(batched_runs, broker_alone, clickhouse)
    console.print(
        f"{workers} stream worker(s), {partitions} partitions. Speed reference (sum(range(1000)) 1,000 times, "
        f"best of 5; lower is faster): {speed_before:.1f} ms before the runs, {python_speed_ms():.1f} ms after. "
        f"Ceiling: the events/s of that CPU per event (the processes above) with all {cores} core(s) of "
        "this machine busy all the time."
    )


def _print_shape(shape: FileShape) -> None:
    table = Table("shape", "lines", "unique events", "redeliveries", "malformed", "posts", "hours",
                  "events per window row", "subscriber comments per event", title="the data")  # fmt: skip
    table.add_row(
        shape.shape, f"{shape.lines:,}", f"{shape.events:,}", f"{shape.duplicates:,}", f"{shape.malformed:,}",
        f"{shape.posts:,}", f"{shape.span_h:.1f}", f"{shape.events_per_window_row:.2f}",
        f"{shape.subscriber_comments / shape.events:.3f}",
    )  # fmt: skip
    print_wide(table)


def _print_records(r: EndToEndResult, shape: FileShape) -> None:
    """Kafka records each topic got per input event during the timed replay, and the tables' rows."""
    table = Table("topic", "records", "per input event", title="Kafka records written during the replay")
    for topic, n in sorted(r.records.items(), key=lambda kv: -kv[1]):
        table.add_row(topic, f"{n:,}", f"{n / r.events:.3f}")
    table.add_row("all", f"{sum(r.records.values()):,}", f"{sum(r.records.values()) / r.events:.3f}")
    print_wide(table)
    console.print(
        f"rows (FINAL): engagement_minute {r.window_rows:,} ({shape.counted / max(r.window_rows, 1):.2f} events "
        f"per row), comment_sla {r.sla_rows:,}, alerts {r.alert_rows:,} ({r.alert_rows / r.events:.3f} per event)"
    )


def _print_baselines(runs: list[EndToEndResult], broker: BrokerPass, clickhouse: ClickHouseAlone) -> None:
    ours = sorted(r.events_per_s for r in runs)[len(runs) // 2]
    table = Table("path", "events", "seconds", "events/s", "ours (median) / it",
                  title="baselines: the same file, same run")  # fmt: skip
    passes = (
        ("broker alone: replay into Kafka (our publisher)", broker.events, broker.produce_s),
        ("broker alone: read every record back (no processing)", broker.events, broker.consume_s),
        ("broker alone: both passes", broker.events, broker.produce_s + broker.consume_s),
        ("ClickHouse alone: file -> dedup -> per post-minute", clickhouse.events, clickhouse.seconds),
    )
    for name, n, seconds in passes:
        rate = n / seconds
        table.add_row(name, f"{n:,}", f"{seconds:.2f}", f"{rate:,.0f}", f"{ours / rate:.2f}")
    table.add_row("community-pulse end to end (median of the batched runs)", f"{runs[0].events:,}",
                  f"{sorted(r.seconds for r in runs)[len(runs) // 2]:.2f}", f"{ours:,.0f}", "1.00")  # fmt: skip
    print_wide(table)


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
        "CPU us/event",
        title="ingest into Kafka",
    )
    for result in ingest_runs(settings.kafka, settings.state_dir, events, single_events, partitions):
        err_console.print(f"{result.path} batch={result.batch_events}: {result.events_per_s:,.0f} events/s")
        table.add_row(
            result.path, f"{result.events / result.messages:.0f}", f"{result.events:,}", f"{result.messages:,}",
            f"{result.seconds:.2f}", f"{result.events_per_s:,.0f}", f"{result.mb_per_s:.1f}",
            f"{result.cpu_us_per_event:.2f}",
        )  # fmt: skip
    print_wide(table)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(f"peak memory of this process: {peak_mb:.0f} MB (the broker runs with a 512 MB heap)")


@bench.command("process")
@click.option("--events", type=click.IntRange(1_000), default=300_000, show_default=True,
              help="Events through the worker with batched messages.")  # fmt: skip
@click.option("--single-events", type=click.IntRange(100), default=20_000, show_default=True,
              help="Events for the one-event-per-message baseline.")  # fmt: skip
@click.option("--live", "live_s", type=click.FloatRange(1, 600), default=8.0, show_default=True,
              help="Seconds of live traffic for the latency figures.")  # fmt: skip
@click.option("--live-rate", type=click.FloatRange(10, 1e6), default=20_000, show_default=True,
              help="Events/s of the live traffic (batched run; the baseline uses a tenth).")  # fmt: skip
@click.option("--partitions", type=click.IntRange(1, 64), default=4, show_default=True)
@click.pass_obj
@fail_cleanly
def bench_process(
    obj: Context, events: int, single_events: int, live_s: float, live_rate: float, partitions: int
) -> None:
    """One real `pulse process` worker on the real broker: events/s draining a loaded backlog, end-to-end
    latency (input record timestamp to emitted window value) on live traffic, and alert latency after the
    SLA deadline; batched messages (500 events) against one event per message, same run."""
    settings = obj.settings()
    table = Table(
        "events/message", "events", "seconds", "events/s", "live events/s", "latency p50 ms",
        "latency p99 ms", "alert p50 ms", "alert p99 ms", "worker peak MB", title="through one worker",
    )  # fmt: skip
    runs = [(500, events, live_rate, True), (1, single_events, live_rate / 10, False)]
    for batch, count, rate, alerts in runs:
        err_console.print(f"batch={batch}: loading {count:,} events, then one worker drains them ...")
        r = run_process(settings.kafka, settings.state_dir, batch, count, live_s, rate, partitions, alerts)
        err_console.print(f"batch={batch}: {r.events_per_s:,.0f} events/s")
        table.add_row(
            str(batch), f"{r.events:,}", f"{r.seconds:.2f}", f"{r.events_per_s:,.0f}",
            f"{r.live_events_per_s:,.0f}", f"{r.latency_p50_ms:.0f}", f"{r.latency_p99_ms:.0f}",
            "-" if r.alert_p50_ms is None else f"{r.alert_p50_ms:.0f} ({r.alerts})",
            "-" if r.alert_p99_ms is None else f"{r.alert_p99_ms:.0f}", f"{r.worker_peak_mb:.0f}",
        )  # fmt: skip
    print_wide(table)


@bench.command("logic")
@click.option("--events", type=click.IntRange(1_000), default=400_000, show_default=True)
@click.option("--shape", type=click.Choice(["realistic", "dense"]), default="realistic", show_default=True)
@click.option("--partitions", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--repeat", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Runs on the same messages, a row each.")  # fmt: skip
@click.pass_obj
@fail_cleanly
def bench_logic(obj: Context, events: int, shape: Shape, partitions: int, repeat: int) -> None:
    """The stream worker's logic alone, no broker, no faust: the file's events through one partition
    processor per partition as the worker feeds them (batches, settles, beats, outputs encoded), in CPU
    seconds, against decoding the same messages alone. What the worker's CPU per event is made of, steadier
    than the end-to-end figures on a shared machine; state records per event are the changelog's."""
    settings = obj.settings()
    file = settings.state_dir / "bench" / f"logic-{shape}-{events}.ndjson"
    err_console.print(f"writing {events:,} events of {shape} shape ...")
    _print_shape(write_file(file, shape, events))
    messages, valid = pack_messages(file, partitions)
    wall_ms = time.time_ns() // 1_000_000 + 60_000  # the file ends now: everything is history
    table = Table(
        "run", "events", "messages", "decode us/event", "logic us/event", "logic / decode", "of it GC us/event",
        "events/s on one core", "state records/event", "window values/event", "SLA records/event",
        "alerts/event", title=f"the worker's logic alone ({partitions} partitions)",
    )  # fmt: skip
    for n in range(1, repeat + 1):
        r = run_logic(messages, valid, partitions, settings.processor, wall_ms)
        table.add_row(
            str(n), f"{r.events:,}", f"{r.messages:,}", f"{r.per_event_us(r.decode_cpu_s):.1f}",
            f"{r.per_event_us(r.logic_cpu_s):.1f}", f"{r.logic_cpu_s / r.decode_cpu_s:.1f}x",
            f"{r.per_event_us(r.gc_s):.1f}", f"{r.events / r.logic_cpu_s:,.0f}",
            f"{r.state_records / r.events:.3f}", f"{r.window_values / r.events:.3f}",
            f"{r.sla_records / r.events:.3f}", f"{r.alerts / r.events:.3f}",
        )  # fmt: skip
    print_wide(table)


@bench.command("sink")
@click.option("--rows", type=click.IntRange(1_000), default=200_000, show_default=True, help="Rows per run.")
@click.option("--batch-rows", "batch_sizes", default="100,1000,10000,50000", show_default=True,
              help="Comma-separated batch sizes; the first is the baseline.")  # fmt: skip
@click.pass_obj
@fail_cleanly
def bench_sink(obj: Context, rows: int, batch_sizes: str) -> None:
    """Rows/s into the embedded engine through the sink's insert path (decode, rows, one insert per batch
    with its deduplication token), for each batch size, into `engagement_minute` and `events`."""
    settings = obj.settings()
    try:
        sizes = [int(size) for size in batch_sizes.split(",")]
    except ValueError:
        raise click.BadParameter("give sizes like 100,1000,10000", param_hint="--batch-rows") from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter("batch sizes are positive", param_hint="--batch-rows")
    err_console.print(f"inserting {rows:,} rows per table and batch size into a fresh embedded store ...")
    table = Table(
        "table", "rows/insert", "rows", "seconds", "rows/s", "vs baseline", title="into ClickHouse (chDB)"
    )
    baseline: dict[str, float] = {}
    for r in sink_runs(settings.state_dir, rows, sizes):
        baseline.setdefault(r.table, r.rows_per_s)
        table.add_row(
            r.table, f"{r.batch_rows:,}", f"{r.rows:,}", f"{r.seconds:.2f}", f"{r.rows_per_s:,.0f}",
            f"{r.rows_per_s / baseline[r.table]:.1f}x",
        )  # fmt: skip
    print_wide(table)


@bench.command("live")
@click.option("--requests", "load_requests", type=click.IntRange(100), default=20_000, show_default=True,
              help="VK callbacks for the receiver's throughput (and as many for the bare handler).")  # fmt: skip
@click.option("--concurrency", type=click.IntRange(1, 1024), default=64, show_default=True,
              help="Requests in flight at once.")  # fmt: skip
@click.option("--probes", type=click.IntRange(4, 10_000), default=40, show_default=True,
              help="Probe comments for the alert latencies (half never answered, a quarter late).")  # fmt: skip
@click.option("--probe-every", "probe_every_s", type=click.FloatRange(0.01, 60), default=0.25, show_default=True,
              help="Seconds between probe comments.")  # fmt: skip
@click.option("--sla", "sla_s", type=click.FloatRange(2, 600), default=5.0, show_default=True,
              help="The probes' response-time target, in seconds.")  # fmt: skip
@click.option("--background-rate", type=click.FloatRange(0, 1e5), default=3_000, show_default=True,
              help="Events/s of simulated traffic into Kafka meanwhile.")  # fmt: skip
@click.pass_obj
@fail_cleanly
def bench_live(
    obj: Context, load_requests: int, concurrency: int, probes: int, probe_every_s: float, sla_s: float,
    background_rate: float,
) -> None:  # fmt: skip
    """The live path end to end, as `pulse run --webhooks` runs it, under a background of simulated
    traffic: the receiver's callbacks/s and answer latency against a bare aiohttp handler (same client,
    same run), then probe comments through the receiver, timed to the ops channel: unanswered alerts from
    their deadline, resolved from the late reply's POST."""
    settings = obj.settings()
    r = run_live_bench(
        settings, load_requests=load_requests, concurrency=concurrency, probes=probes,
        probe_every_s=probe_every_s, sla_s=sla_s, background_rate=background_rate, say=err_console.print,
    )  # fmt: skip
    table = Table("server", "callbacks", "seconds", "callbacks/s", "answer p50 ms", "answer p99 ms", "not 200",
                  title=f"webhooks: {concurrency} requests in flight")  # fmt: skip
    rows = [
        ("pulse webhooks alone (answers after Kafka's ack)", r.receiver_alone),
        ("bare aiohttp handler", r.bare),
        ("pulse webhooks in the running pipeline, same cores", r.receiver),
    ]
    for name, load in [(n, x) for n, x in rows if x is not None]:
        bad = load.errors + sum(n for status, n in load.statuses.items() if status != 200)
        table.add_row(
            name, f"{load.requests:,}", f"{load.seconds:.2f}", f"{load.per_s:,.0f}",
            f"{load.percentile_ms(0.5):.1f}", f"{load.percentile_ms(0.99):.1f}", str(bad),
        )  # fmt: skip
    print_wide(table)
    alone = r.receiver_alone or r.receiver
    console.print(
        f"the receiver alone at {alone.per_s / r.bare.per_s:.0%} of the bare handler's rate; in the running "
        f"pipeline at {r.receiver.per_s / r.bare.per_s:.0%}"
    )
    console.print(
        "CPU seconds during the receiver's load: "
        + ", ".join(
            f"{name} {spent:.2f}" for name, spent in sorted(r.load_cpu_s.items(), key=lambda kv: -kv[1])
        )
        + f" (wall {r.receiver.seconds:.2f} s x {len(os.sched_getaffinity(0))} cores)"
    )
    latency = Table("from the platform's POST to the ops channel", "count", "p50 ms", "p99 ms", "max ms",
                    "missing", title=f"live alerts (SLA {sla_s:g} s)")  # fmt: skip
    for name, values, kind in (
        ("webhook answer (probes)", r.probe_answers.latencies_ms, None),
        ("unanswered_comment, after its deadline", r.unanswered_ms, "unanswered_comment"),
        ("resolved, after the late reply's POST", r.resolved_ms, "resolved"),
    ):
        latency.add_row(
            name, str(len(values)), _ms(values, 0.5), _ms(values, 0.99), _ms(values, 1.0),
            "-" if kind is None else str(r.missing.get(kind, 0)),
        )  # fmt: skip
    print_wide(latency)
    console.print(
        f"alerts for comments answered in time: {r.false_alerts}; background: {r.background_events:,} events "
        f"in {r.background_s:.1f} s ({r.background_events / max(r.background_s, 1e-9):,.0f}/s)"
    )


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q):.0f}" if values else "-"
