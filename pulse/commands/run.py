"""`pulse run`: the whole pipeline on this machine with one command, fed by the simulator, a file or webhooks."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.live import Live

from agents import EventPublisher, Simulator, SimulatorSettings, replay
from pipeline.warehouse.query_service import run_query
from pulse.commands.audience import write_audience_file
from pulse.commands.support import Context, Duration, console, err_console, fail_cleanly, stop_on_signals
from pulse.errors import PulseError
from pulse.local.live_view import PipelineWatcher, Snapshot, print_line, render
from pulse.local.local_kafka import LocalKafka
from pulse.local.local_pipeline import LocalPipeline, RunOptions
from pulse.settings import Settings
from schemas import CanonicalEvent, ClockLimit

# The simulated publics: one post in ten suddenly takes off 1-3 h after publishing (an engagement spike),
# more than real publics see, so that a short run shows some.
BURST_SHARE = 0.1
AUDIENCE_FILE = "simulated-audience.ndjson"  # under the state directory: `make demo` imports it


@click.command("run")
@click.option(
    "--simulate", "source", flag_value="simulate", default=True, help="Feed simulated publics (default)."
)
@click.option("--replay", "replay_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Feed canonical NDJSON from this file.")  # fmt: skip
@click.option(
    "--webhooks", "source", flag_value="webhooks", help="Feed the platforms' webhooks (pulse webhooks)."
)
@click.option("--exit-when-done", is_flag=True,
              help="With --replay: wait until every event is processed, every alert due in event time is out and "
                   "everything is in ClickHouse, then print a summary and exit.")  # fmt: skip
@click.option("--kafka", help="Kafka bootstrap servers. Default: the local broker, started if needed.")
@click.option("--clickhouse", "dsn", help="ClickHouse DSN. Default: the embedded store under the state dir.")
@click.option("--comment-sla", "sla_s", type=Duration(), help="Response-time target, e.g. 30m. Default: 1h")
@click.option("--lateness", "lateness_s", type=Duration(), help="Allowed lateness of events. Default: 2m")
@click.option("--partitions", type=click.IntRange(1, 256), help="Partitions of new topics. Default: 4")
@click.option("--workers", type=click.IntRange(1, 16), default=1, show_default=True, help="Stream workers.")
@click.option(
    "--duration", "duration_s", type=Duration(), help="Simulate: stop after this long (default: Ctrl-C)."
)
@click.option(
    "--rate", type=click.FloatRange(1), default=2_000, show_default=True,
    help="Simulate: events/s, the mean over the run (the simulated daily cycle shapes it around that).",
)  # fmt: skip
@click.option("--accelerate", type=click.FloatRange(0.001, 1e6), default=60, show_default=True,
              help="Simulate: simulated seconds per wall second (SLA alerts come sooner).")  # fmt: skip
@click.option("--communities", type=click.IntRange(1, 100_000), default=5, show_default=True)
@click.option("--posts-per-hour", type=click.FloatRange(0.01, 3_600), default=2, show_default=True,
              help="Simulate: new posts per community per simulated hour.")  # fmt: skip
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--notify/--no-notify", default=True, show_default=True, help="Run the alert notifier.")
@click.option("--post-old-alerts", is_flag=True,
              help="With --exit-when-done: post the replay's alerts however old. By default a backfill's alerts are "
                   "held back (they are history: stored in ClickHouse, announced in one line per destination).")  # fmt: skip
@click.pass_obj
@fail_cleanly
def run(
    obj: Context, source: str, replay_file: Path | None, exit_when_done: bool, kafka: str | None, dsn: str | None,
    sla_s: float | None, lateness_s: float | None, partitions: int | None, workers: int, duration_s: float | None,
    rate: float, accelerate: float, communities: int, posts_per_hour: float, seed: int, notify: bool,
    post_old_alerts: bool,
) -> None:  # fmt: skip
    """Run the whole pipeline here: the local Kafka broker (unless --kafka), topics, the stream workers, the
    ClickHouse loader (embedded store unless --clickhouse), the alert notifier, and a source: the simulator
    (default), a file (--replay FILE) or the webhook receiver (--webhooks). Ctrl-C stops everything.

    With --replay FILE --exit-when-done it is the deterministic path for backfills and tests: the run uses
    topics and consumer groups of its own (deleted afterwards), judges SLAs by event time only, and exits 0
    once everything is in ClickHouse; the same file into the same store gives the same table contents. Its
    alerts are history: the notifier posts none of them (unless --post-old-alerts), only one line per
    destination saying how many it held back. Other runs hold back alerts older than
    PULSE_NOTIFY__MAX_ALERT_AGE_S (default 2h).
    """
    if replay_file is not None:
        source = "replay"
    if exit_when_done and source != "replay":
        raise click.UsageError("--exit-when-done needs --replay FILE")
    if post_old_alerts and not exit_when_done:
        raise click.UsageError(
            "--post-old-alerts is for --exit-when-done runs; elsewhere set PULSE_NOTIFY__MAX_ALERT_AGE_S"
        )
    processor: dict[str, Any] = {"sla_default_s": sla_s, "allowed_lateness_s": lateness_s}
    overrides: dict[str, Any] = {}
    if dsn:
        overrides["clickhouse"] = {"dsn": dsn}
    if partitions:
        overrides["topics"] = {"event_partitions": partitions}
    if exit_when_done:
        private = private_run_overrides(post_old_alerts=post_old_alerts)
        overrides["topics"] = {**overrides.get("topics", {}), **private.pop("topics")}
        processor |= private.pop("processor")
        overrides |= private
    settings = obj.settings(processor={k: v for k, v in processor.items() if v is not None}, **overrides)
    broker = None
    if kafka:
        address = kafka
    else:
        broker = LocalKafka(settings.local_kafka, settings.state_dir)
        info, started = broker.up()
        address = info.bootstrap
        which = "broker" if len(info.brokers) == 1 else f"cluster of {len(info.brokers)} brokers"
        err_console.print(f"Kafka: {'started' if started else 'reusing'} the local {which} at {address}")
        if not started:
            broker = None  # not ours to stop
    settings = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"bootstrap_servers": address})}
    )
    log_dir = settings.state_dir.resolve() / "run" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    options = RunOptions(
        workers=workers, notify=notify, webhooks=source == "webhooks", dashboard=not exit_when_done
    )
    pipeline = LocalPipeline(settings, options, log_dir)
    try:
        with stop_on_signals() as should_stop:
            pipeline.start(notifier_later=exit_when_done)  # the notifier once the file is in
            err_console.print(f"pipeline started; logs in {log_dir}")
            if options.dashboard:
                err_console.print(f"dashboard: http://{settings.dashboard.host}:{settings.dashboard.port}/")
            if exit_when_done:
                assert replay_file is not None
                _replay_until_done(settings, pipeline, replay_file, should_stop)
            else:
                simulated = SimulatorSettings(
                    communities=communities, events_per_sim_s=rate / accelerate, seed=seed,
                    posts_per_community_per_hour=posts_per_hour, burst_share=BURST_SHARE,
                )  # fmt: skip
                _run_live(
                    settings, pipeline, source, replay_file, should_stop, duration_s, accelerate, simulated
                )
    except BaseException:
        clean_up(settings, pipeline, broker, exit_when_done, quiet=True)
        raise
    codes = clean_up(settings, pipeline, broker, exit_when_done, quiet=False)
    failed = {name: code for name, code in codes.items() if code != 0}
    if failed:
        raise PulseError(f"pieces that did not stop cleanly: {failed}; logs in {log_dir}")


def private_run_overrides(*, post_old_alerts: bool = False, kind: str = "run") -> dict[str, dict[str, Any]]:
    """The settings that make a run private (`--exit-when-done`, `pulse chaos`): topics, consumer groups
    and a changelog of its own, named `<kind>-<time>-<random>-...` and deleted afterwards; SLAs judged by
    event time only; and its alerts held back by the notifier as history."""
    run_id = f"{kind}-{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}-"
    return {
        "topics": {"prefix": run_id},
        "processor": {"app_id": f"{run_id}processor", "live_lag_s": 0},  # event time only
        "sink": {"group": f"{run_id}sink"},
        # A backfill's alerts are history, however recent its events (max age 0: hold back every one).
        "notify": {"group": f"{run_id}notify", "max_alert_age_s": None if post_old_alerts else 0},
    }


def clean_up(
    settings: Settings, pipeline: LocalPipeline, broker: LocalKafka | None, private: bool, quiet: bool
) -> dict[str, int]:
    """Stops every piece, deletes a private run's topics and groups, stops a broker we started. With
    `quiet` (an error is on its way already) a failure here is reported, not raised over it."""
    codes: dict[str, int] = {}
    steps: list[Callable[[], object]] = [lambda: codes.update(pipeline.stop())]
    if private:
        steps.append(pipeline.delete_topics_and_groups)
    if broker is not None:
        steps.append(broker.down)
    for step in steps:
        try:
            step()
        except (PulseError, OSError) as exc:
            if not quiet:
                raise
            err_console.print(f"[red]while stopping:[/red] {exc}", highlight=False)
    return codes


def _replay_until_done(settings: Settings, pipeline: LocalPipeline, file: Path, should_stop: Any) -> None:
    started = time.monotonic()
    with (
        file.open("rb") as lines,
        EventPublisher(settings.kafka, settings.publisher, pipeline.topics) as publisher,
    ):
        report = replay(
            lines, publisher, source=str(file), should_stop=should_stop,
            max_clock_skew_s=settings.max_clock_skew_s,
        )  # fmt: skip
    if report.stopped_early:
        raise PulseError("stopped before the file was replayed")
    err_console.print(
        f"replayed {report.sent:,} events ({report.rejected:,} bad lines dead-lettered); processing ..."
    )
    pipeline.wait_processed(timeout_s=600)
    # The summary's counters and alerts are read while the workers take the end of the input and the loader
    # loads the rest: the worker is done by then, and its core free.
    watcher = PipelineWatcher(settings).start().follow()
    try:
        if report.newest_event_ms:
            pipeline.finish_input(report.newest_event_ms, timeout_s=120)
        pipeline.wait_loaded(timeout_s=600)
        snap = watcher.read_to_end()
    finally:
        watcher.stop()
    tables = ("events", "engagement_minute", "comment_sla", "alerts")
    counts = run_query(
        settings.clickhouse,
        f"SELECT {', '.join(f'(SELECT count() FROM {t} FINAL)' for t in tables)}",
        open_store=False,
    )
    alerts = ", ".join(f"{n:,} {kind}" for kind, n in sorted(snap.alerts.items())) or "none"
    console.print(
        f"done in {time.monotonic() - started:.1f} s: {report.lines:,} lines, {report.sent:,} events in, "
        f"{report.rejected:,} rejected, {report.duplicates:,} duplicates skipped; processors counted "
        f"{snap.events:,} events ({snap.late:,} late, {snap.duplicates:,} duplicates, {snap.rejected:,} rejected); "
        f"alerts: {alerts}",
        highlight=False,
    )
    console.print(
        "rows in " + settings.clickhouse.database + " (FINAL): "
        + ", ".join(f"{t} {n:,}" for t, n in zip(tables, counts.rows[0], strict=True)),
        highlight=False,
    )  # fmt: skip
    if pipeline.restarts:
        console.print(
            "restarted: " + ", ".join(f"{name} {n}" for name, n in sorted(pipeline.restarts.items())),
            highlight=False,
        )


def _run_live(
    settings: Settings, pipeline: LocalPipeline, source: str, replay_file: Path | None, should_stop: Any,
    duration_s: float | None, accelerate: float, simulated: SimulatorSettings,
) -> None:  # fmt: skip
    deadline = None if duration_s is None else time.monotonic() + duration_s
    if source == "replay" and replay_file is not None:
        with (
            replay_file.open("rb") as lines,
            EventPublisher(settings.kafka, settings.publisher, pipeline.topics) as p,
        ):
            report = replay(
                lines, p, source=str(replay_file), should_stop=should_stop,
                max_clock_skew_s=settings.max_clock_skew_s,
            )  # fmt: skip
        err_console.print(f"replayed {report.sent:,} events, {report.rejected:,} bad lines dead-lettered")
    sim, start = _simulation(simulated, accelerate, duration_s) if source == "simulate" else (None, None)
    events = _source_events(sim, start, accelerate)
    watcher = PipelineWatcher(settings).start()
    before: Snapshot | None = None
    last_view = 0.0
    live = Live(console=console, refresh_per_second=1, transient=False) if console.is_terminal else None
    try:
        if live is not None:
            live.start()
        with EventPublisher(settings.kafka, settings.publisher, pipeline.topics) as publisher:
            t0 = time.monotonic()
            for due_s, event in events:
                if should_stop() or (deadline is not None and time.monotonic() >= deadline):
                    break
                while (wait := t0 + due_s - time.monotonic()) > 0 and not should_stop():
                    publisher.poll()
                    time.sleep(min(wait, 0.02))
                if event is not None:
                    limit = ClockLimit.of(time.time_ns() // 1_000_000, settings.max_clock_skew_s)
                    publisher.publish_in_time(event, limit, stage="ingest-simulator", source="simulator")
                if time.monotonic() - last_view >= (1.0 if live else 10.0):
                    pipeline.check()
                    last_view = time.monotonic()
                    now = watcher.snapshot()
                    if live is not None:
                        live.update(render(now, before))
                    else:
                        print_line(err_console, now, before)
                    before = now
            publisher.flush()
        if sim is not None:
            path = settings.state_dir / AUDIENCE_FILE
            written = write_audience_file(sim, path)
            err_console.print(
                f"the simulated publics' follower and view counts ({written:,}): {path} (once the run has "
                f"stopped: pulse audience import {path})"
            )
    finally:
        if live is not None:
            live.stop()
        watcher.stop()


def _simulation(
    simulated: SimulatorSettings, accelerate: float, duration_s: float | None
) -> tuple[Simulator, datetime]:
    """The simulated publics of a live run, and where their time starts."""
    # Record timestamps are event times, and Kafka refuses those more than an hour ahead of its clock
    # (message.timestamp.after.max.ms): accelerated time starts in the past, to end about now.
    # Without a duration, the first simulated day ends about now.
    wall_s = duration_s if duration_s is not None else 86_400 / accelerate
    start = datetime.now(UTC) - timedelta(seconds=max(0.0, wall_s * accelerate - wall_s))
    return Simulator(simulated, start, span_s=wall_s * accelerate), start


def _source_events(
    sim: Simulator | None, start: datetime | None, accelerate: float
) -> Iterator[tuple[float, CanonicalEvent | None]]:
    """(seconds after the start when due, event); None events are heartbeats when the events arrive
    another way (a replay already sent, the webhook receiver)."""
    if sim is not None and start is not None:
        start_ms = start.timestamp() * 1000
        for event in sim.events(until_ms=int(start_ms + 10 * 365 * 86_400_000)):
            yield (event.ts_ms - start_ms) / 1000 / accelerate, event
        return
    n = 0
    while True:
        n += 1
        yield n * 1.0, None
