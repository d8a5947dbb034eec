"""`pulse simulate`, `pulse replay`: the ingest paths as commands."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click
import uvloop
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from agents import EventPublisher, ReplayReport, Simulator, SimulatorSettings, replay
from agents.async_sender import AsyncEventSender
from agents.simulator import DEFAULT_START
from agents.webhook_server import Receiver, serve
from pulse.commands.audience import write_audience_file
from pulse.commands.support import Context, Duration, console, err_console, fail_cleanly, stop_on_signals
from pulse.settings import Settings
from schemas import ClockLimit, encode_event

_batch_option = click.option(
    "--batch-events",
    type=click.IntRange(1, 100_000),
    help="Most events per Kafka message; 1 = one event per message. Env: PULSE_PUBLISHER__BATCH_EVENTS. Default: 500",
)
_linger_option = click.option(
    "--linger-ms",
    type=click.IntRange(0, 60_000),
    help="Longest a partial batch waits. Env: PULSE_PUBLISHER__LINGER_MS. Default: 50",
)


def _publisher_overrides(batch_events: int | None, linger_ms: int | None) -> dict[str, Any]:
    publisher = {
        k: v for k, v in {"batch_events": batch_events, "linger_ms": linger_ms}.items() if v is not None
    }
    return {"publisher": publisher} if publisher else {}


@click.command()
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False, path_type=Path))
@_batch_option
@_linger_option
@click.pass_obj
@fail_cleanly
def replay_command(obj: Context, file: Path, batch_events: int | None, linger_ms: int | None) -> None:
    """Replay canonical NDJSON from FILE (or - for stdin) into Kafka.

    Good lines go to the topic for their type, keyed and partitioned by post, with the event time as
    record timestamp. Each bad line goes to the dead-letter topic with its line number and reason.
    Duplicate event_ids within the replay are skipped. Prints counts at the end; exit code 0 when every
    line was either sent or dead-lettered.
    """
    settings = obj.settings(**_publisher_overrides(batch_events, linger_ms))
    stream: IO[bytes] = sys.stdin.buffer if str(file) == "-" else file.open("rb")
    total = None if str(file) == "-" else file.stat().st_size
    with (
        stream,
        stop_on_signals() as should_stop,
        EventPublisher(settings.kafka, settings.publisher, settings.topics.names) as publisher,
    ):
        report = _run_replay(stream, publisher, str(file), total, should_stop, settings.max_clock_skew_s)
    _print_replay_summary(report, publisher)


def _run_replay(
    stream: IO[bytes],
    publisher: EventPublisher,
    source: str,
    total: int | None,
    should_stop: Any,
    max_clock_skew_s: float,
) -> ReplayReport:
    if not err_console.is_terminal or total is None:
        return replay(
            stream, publisher, source=source, should_stop=should_stop, max_clock_skew_s=max_clock_skew_s
        )
    columns = (
        TextColumn("replaying"),
        BarColumn(),
        TaskProgressColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("replay", total=total)
        return replay(
            stream, publisher, source=source, should_stop=should_stop, max_clock_skew_s=max_clock_skew_s,
            on_progress=lambda r: progress.update(task, completed=r.bytes_read),
        )  # fmt: skip


def _print_replay_summary(report: ReplayReport, publisher: EventPublisher) -> None:
    console.print(
        f"{'stopped early: ' if report.stopped_early else ''}{report.sent:,} sent, {report.rejected:,} rejected "
        f"(dead-lettered), {report.duplicates:,} duplicates skipped, {report.lines:,} lines in "
        f"{report.elapsed_s:.1f} s ({report.events_per_s:,.0f} events/s, {publisher.stats.messages:,} messages)",
        highlight=False,
    )


@click.command()
@click.option(
    "--communities",
    type=click.IntRange(1, 100_000),
    default=5,
    show_default=True,
    help="How many publics to simulate.",
)
@click.option("--events", type=click.IntRange(1), help="Stop after this many events.")
@click.option("--duration", type=Duration(), help="Stop after this long in wall time (e.g. 90s, 5m).")
@click.option(
    "--rate",
    type=click.FloatRange(0),
    default=200.0,
    show_default=True,
    help="Events per wall-clock second on average over the run (the simulated daily cycle shapes it "
    "around that mean); 0 = as fast as possible.",
)
@click.option(
    "--accelerate",
    type=click.FloatRange(0.001, 1e6),
    default=1.0,
    show_default=True,
    help="Simulated seconds per wall second (1440 replays a day in a minute).",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed and options, same events.")
@click.option(
    "--start",
    help="Simulated start time, RFC 3339 or 'now'. Default: now when sending to Kafka, 2026-01-01T00:00:00Z with --out (so files are reproducible).",
)
@click.option(
    "--answer-share",
    type=click.FloatRange(0, 1),
    default=0.7,
    show_default=True,
    help="Share of subscriber comments the community answers.",
)
@click.option(
    "--answer-median",
    type=Duration(),
    default="5m",
    show_default=True,
    help="Median time the community takes to answer.",
)
@click.option(
    "--out",
    type=click.Path(allow_dash=True, dir_okay=False, path_type=Path),
    help="Write NDJSON here (- for stdout) instead of sending to Kafka; no pacing.",
)
@click.option(
    "--audience-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="At the end, also write the publics' follower and view counts here, as the platforms' exports "
    "would give them (for `pulse audience import`).",
)
@_batch_option
@_linger_option
@click.pass_obj
@fail_cleanly
def simulate(
    obj: Context, communities: int, events: int | None, duration: float | None, rate: float, accelerate: float,
    seed: int, start: str | None, answer_share: float, answer_median: float, out: Path | None,
    audience_out: Path | None, batch_events: int | None, linger_ms: int | None,
) -> None:  # fmt: skip
    """Generate realistic traffic from simulated publics: heavy-tailed post popularity, a daily cycle,
    comment threads, community answers after realistic delays (some never), audience segments, people
    following and unfollowing; with --audience-out, the follower and view counts that go with them."""
    if events is None and duration is None:
        raise click.UsageError("give --events N or --duration D")
    if out is not None and events is None and rate == 0:
        raise click.UsageError("writing a file needs --events, or --duration with a --rate")
    start_at = _start_time(start, to_file=out is not None)
    per_sim_s = (rate or 10_000.0) / accelerate
    span_s = duration * accelerate if duration is not None else (events or 0) / per_sim_s
    sim = Simulator(
        SimulatorSettings(
            communities=communities, events_per_sim_s=per_sim_s, answer_share=answer_share,
            answer_median_s=answer_median, seed=seed,
        ),
        start_at,
        span_s=max(span_s, 1.0),
    )  # fmt: skip
    until_ms = None
    if duration is not None:
        until_ms = int(start_at.timestamp() * 1000 + duration * accelerate * 1000)
    stream = sim.events(count=events, until_ms=until_ms)
    if out is not None:
        written = _write_ndjson(stream, out)
        err_console.print(f"wrote {written:,} events to {out}")
        _write_audience(sim, audience_out)
        return
    settings = obj.settings(**_publisher_overrides(batch_events, linger_ms))
    if until_ms is not None and duration is not None and rate:
        ends_ahead_ms = until_ms - (time.time() + duration) * 1000
        if ends_ahead_ms > settings.max_clock_skew_s * 1000:
            err_console.print(
                f"warning: simulated time runs {ends_ahead_ms / 60_000:.0f} min ahead of the wall clock by the "
                "end; events further ahead than PULSE_MAX_CLOCK_SKEW_S go to the dead-letter topic "
                "(start earlier: --start)"
            )
    _send_paced(stream, settings, start_at, rate, accelerate)
    _write_audience(sim, audience_out)


def _write_audience(sim: Simulator, path: Path | None) -> None:
    if path is not None:
        written = write_audience_file(sim, path)
        err_console.print(
            f"wrote {written:,} follower and view counts to {path} (pulse audience import {path})"
        )


def _start_time(start: str | None, *, to_file: bool) -> datetime:
    if start is None:
        return DEFAULT_START if to_file else datetime.now(UTC)
    if start == "now":
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(start)
    except ValueError:
        raise click.BadParameter(f"{start!r} is not an RFC 3339 time", param_hint="--start") from None
    if parsed.tzinfo is None:
        raise click.BadParameter("give a UTC offset, e.g. 2026-01-01T00:00:00Z", param_hint="--start")
    return parsed


def _write_ndjson(stream: Any, out: Path) -> int:
    written = 0
    target: IO[bytes] = sys.stdout.buffer if str(out) == "-" else out.open("wb")
    with target:
        for event in stream:
            target.write(encode_event(event) + b"\n")
            written += 1
    return written


def _send_paced(stream: Any, settings: Settings, start_at: datetime, rate: float, accelerate: float) -> None:
    """Sends events when the wall clock reaches their (accelerated) event time; `rate` 0 means no pacing."""
    start_ms = start_at.timestamp() * 1000
    t0 = time.monotonic()
    sent = ahead = 0
    with (
        stop_on_signals() as should_stop,
        EventPublisher(settings.kafka, settings.publisher, settings.topics.names) as publisher,
    ):
        for event in stream:
            if rate:
                due = t0 + (event.ts_ms - start_ms) / 1000 / accelerate
                while (wait := due - time.monotonic()) > 0 and not should_stop():
                    publisher.poll()
                    time.sleep(min(wait, 0.02))
            if should_stop():
                break
            limit = ClockLimit.of(time.time_ns() // 1_000_000, settings.max_clock_skew_s)
            if publisher.publish_in_time(event, limit, stage="ingest-simulator", source="simulator"):
                sent += 1
            else:
                ahead += 1
            if sent & 1023 == 0:
                publisher.poll()
        publisher.flush()
    elapsed = time.monotonic() - t0
    console.print(
        f"{sent:,} events sent in {elapsed:.1f} s ({sent / elapsed if elapsed else 0:,.0f} events/s, "
        f"{publisher.stats.messages:,} messages)"
        + (f"; {ahead:,} stamped ahead of the wall clock dead-lettered (start earlier)" if ahead else ""),
        highlight=False,
    )


@click.command()
@click.option("--host", help="Listen address. Env: PULSE_WEBHOOKS__HOST. Default: 127.0.0.1")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Listen port. Env: PULSE_WEBHOOKS__PORT. Default: 8088"
)
@click.pass_obj
@fail_cleanly
def webhooks(obj: Context, host: str | None, port: int | None) -> None:
    """Receive platform webhooks and publish them as canonical events.

    \b
    POST /webhooks/vk          VK Callback API (secret in the body, confirmation answered)
    POST /webhooks/telegram    Telegram Bot API (X-Telegram-Bot-Api-Secret-Token)
    GET|POST /webhooks/facebook, /webhooks/instagram   Meta (verify handshake, X-Hub-Signature-256)
    POST /events               canonical NDJSON (Authorization: Bearer <token>)
    GET /healthz, /readyz, /stats

    A platform is served once its settings are given (PULSE_WEBHOOKS__VK, __TELEGRAM, __META,
    __BEARER_TOKEN; see docs/settings.md). Answers come only after Kafka acknowledged the events; 503
    while Kafka is unreachable, so the platform retries.
    """
    listen = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = obj.settings(**({"webhooks": listen} if listen else {}))
    receiver = Receiver(
        settings.webhooks,
        lambda: AsyncEventSender(settings.kafka, settings.publisher, settings.topics.names),
        max_clock_skew_s=settings.max_clock_skew_s,
    )
    configured = [
        name
        for name in ("vk", "telegram", "meta", "bearer_token")
        if getattr(settings.webhooks, name) is not None
    ]
    if not configured:
        err_console.print(
            "warning: no platform is configured; every endpoint will answer 404 (see docs/settings.md)"
        )
    err_console.print(
        f"listening on http://{settings.webhooks.host}:{settings.webhooks.port} ({', '.join(configured) or 'no platforms'})"
    )
    with stop_on_signals() as should_stop:
        uvloop.run(serve(receiver, should_stop))
    console.print(f"stopped; counters: {dict(receiver.stats)}", highlight=False)


replay_command.name = "replay"
