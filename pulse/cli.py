"""The `pulse` command line: the one entry point that reads settings and wires the packages together."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO, Any

import click
import orjson
from rich.table import Table

from pipeline.warehouse import apply_migrations, connect
from pulse import logs
from pulse.commands.lazy_group import LazyGroup
from pulse.commands.support import Context, console, fail_cleanly, human_duration
from pulse.local.local_kafka import MAX_BROKERS, ClusterInfo, LocalKafka
from pulse.settings import Settings, on_cluster, shown
from pulse.topics import describe_topics, ensure_topics
from schemas import ClockLimit, InvalidEvent, parse_line

# The commands of their own modules, each loaded when it runs (see LazyGroup).
COMMAND_MODULES = {
    "simulate": "pulse.commands.ingest:simulate",
    "replay": "pulse.commands.ingest:replay_command",
    "webhooks": "pulse.commands.ingest:webhooks",
    "process": "pulse.commands.process:process",
    "notify": "pulse.commands.notify:notify",
    "run": "pulse.commands.run:run",
    "sink": "pulse.commands.warehouse:sink",
    "query": "pulse.commands.warehouse:query",
    "dashboard": "pulse.commands.dashboard:dashboard",
    "erase": "pulse.commands.erase:erase",
    "audience": "pulse.commands.audience:audience",
    "bench": "pulse.commands.bench:bench",
    "chaos": "pulse.commands.chaos:chaos",
}


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMAND_MODULES,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    help="Where local state lives (broker data, the embedded ClickHouse store). Env: PULSE_STATE_DIR. Default: .pulse",
)
@click.option(
    "--kafka",
    "bootstrap",
    metavar="HOST:PORT[,...]",
    help="Kafka bootstrap servers. Env: PULSE_KAFKA__BOOTSTRAP_SERVERS. Default: 127.0.0.1:9092 (the local broker)",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
    help="Env: PULSE_LOG_LEVEL. Default: INFO",
)
@click.pass_context
def main(ctx: click.Context, state_dir: Path | None, bootstrap: str | None, log_level: str | None) -> None:
    """community-pulse: likes, comments and reposts from social-network communities through Kafka,
    rolling engagement, unanswered-comment alerts and ClickHouse analytics.

    Every option can also be set in the environment (PULSE_*); see docs/settings.md.
    """
    overrides: dict[str, Any] = {"state_dir": state_dir, "log_level": log_level}
    if bootstrap:
        overrides["kafka"] = {"bootstrap_servers": bootstrap}
    ctx.obj = Context(overrides)
    logs.configure(ctx.obj.settings().log_level)


@main.group()
def kafka() -> None:
    """Run a real Kafka locally: one broker, or a cluster of several (KRaft, from Maven jars; no Docker
    needed)."""


def _local_kafka(settings: Settings) -> LocalKafka:
    return LocalKafka(settings.local_kafka, settings.state_dir)


def _local_overrides(
    port: int | None, controller_port: int | None, partitions: int | None, brokers: int | None = None
) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    local: dict[str, Any] = {}
    if port is not None:
        local["port"] = port
        overrides["kafka"] = {"bootstrap_servers": f"127.0.0.1:{port}"}
    if controller_port is not None:
        local["controller_port"] = controller_port
    if brokers is not None:
        local["brokers"] = brokers
    if local:
        overrides["local_kafka"] = local
    if partitions is not None:
        overrides["topics"] = {"event_partitions": partitions}
    return overrides


def _on_local_kafka(settings: Settings, info: ClusterInfo) -> Settings:
    """`settings` pointed at the running local Kafka (all its brokers), replication resolved against it."""
    kafka = settings.kafka.model_copy(update={"bootstrap_servers": info.bootstrap})
    return on_cluster(settings.model_copy(update={"kafka": kafka}))


_port_option = click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Client port (of the first broker; broker i uses PORT+2i). Env: PULSE_LOCAL_KAFKA__PORT. Default: 9092",
)
_controller_option = click.option(
    "--controller-port",
    type=click.IntRange(1, 65535),
    help="KRaft controller port (of the first broker; broker i uses CONTROLLER_PORT+2i). "
    "Env: PULSE_LOCAL_KAFKA__CONTROLLER_PORT. Default: 9093",
)


@kafka.command("up")
@_port_option
@_controller_option
@click.option(
    "--brokers",
    type=click.IntRange(1, MAX_BROKERS),
    help="Brokers (each also a KRaft controller); 3 for a cluster that survives the loss of one. "
    "Env: PULSE_LOCAL_KAFKA__BROKERS. Default: 1",
)
@click.option(
    "--partitions",
    type=click.IntRange(1, 1024),
    help="Partitions of each event topic. Env: PULSE_TOPICS__EVENT_PARTITIONS. Default: 4",
)
@click.pass_obj
@fail_cleanly
def kafka_up(
    obj: Context, port: int | None, controller_port: int | None, brokers: int | None, partitions: int | None
) -> None:
    """Start the local Kafka (or find it running) and create the pipeline's topics.

    With --brokers 3: three nodes, each a broker and a KRaft controller (a static quorum), internal topics
    with 3 replicas and 2 in sync; the pipeline's topics get min(3, brokers) replicas unless
    PULSE_TOPICS__REPLICATION_FACTOR says otherwise. A broker of the cluster that stopped is started again."""
    settings = obj.settings(**_local_overrides(port, controller_port, partitions, brokers))
    broker = _local_kafka(settings)
    with console.status("starting Kafka (first run collects the jars with Maven)..."):
        info, started = broker.up()
    if len(info.brokers) == 1:
        console.print(
            f"Kafka {'started' if started else 'already running'} at {info.bootstrap} (pid {info.pids[0]})"
        )
    else:
        console.print(
            f"Kafka cluster of {len(info.brokers)} brokers {'started' if started else 'already running'} at "
            f"{info.bootstrap} (pids {', '.join(map(str, info.pids))})"
        )
    settings = _on_local_kafka(settings, info)
    created = ensure_topics(
        settings.kafka,
        settings.topics.partitions(settings.topics.names),
        settings.topics.replicas,
        settings.topics.retention_bytes,
        settings.topics.retention_ms(settings.topics.names),
    )
    if created:
        console.print(f"created topics ({settings.topics.replicas} replicas): {', '.join(created)}")
    _print_topics(settings)


@kafka.command("down")
@_port_option
@click.pass_obj
@fail_cleanly
def kafka_down(obj: Context, port: int | None) -> None:
    """Stop the local Kafka, every broker of it; no java process is left behind."""
    broker = _local_kafka(obj.settings(**_local_overrides(port, None, None)))
    info = broker.info()
    if not broker.down():
        console.print("Kafka was not running")
    elif info is not None and len(info.brokers) > 1:
        console.print(f"Kafka stopped ({len(info.brokers)} brokers)")
    else:
        console.print("Kafka stopped")


@kafka.command("status")
@_port_option
@click.pass_obj
@fail_cleanly
def kafka_status(obj: Context, port: int | None) -> None:
    """Show the local Kafka's brokers (address, pid, uptime) and topics. Exit code 1 if none runs."""
    settings = obj.settings(**_local_overrides(port, None, None))
    info = _local_kafka(settings).info()
    if info is None:
        console.print(f"Kafka is not running (state directory {settings.state_dir.resolve()})")
        sys.exit(1)
    if len(info.brokers) == 1:
        (broker,) = info.brokers
        console.print(
            f"bootstrap: {broker.bootstrap}\npid:       {broker.pid}\nuptime:    {human_duration(broker.uptime_s)}"
        )
    else:
        console.print(f"bootstrap: {info.bootstrap}")
        brokers = Table("broker", "address", "controller", "pid", "uptime")
        for b in info.brokers:
            brokers.add_row(
                str(b.node_id), b.bootstrap, b.controller or "-", str(b.pid), human_duration(b.uptime_s)
            )
        console.print(brokers)
    kafka_settings = settings.kafka.model_copy(update={"bootstrap_servers": info.bootstrap})
    _print_topics(settings.model_copy(update={"kafka": kafka_settings}))


def _print_topics(settings: Settings) -> None:
    table = Table("topic", "partitions", "replicas", "messages")
    for topic in describe_topics(settings.kafka):
        table.add_row(topic.name, str(topic.partitions), str(topic.replicas), f"{topic.messages:,}")
    console.print(table)


@main.command("topics")
@click.option("--partitions", type=click.IntRange(1, 1024), help="Partitions of each event topic. Default: 4")
@click.pass_obj
@fail_cleanly
def topics_command(obj: Context, partitions: int | None) -> None:
    """Create the pipeline's topics on the configured Kafka cluster (missing ones only)."""
    settings = on_cluster(obj.settings(**_local_overrides(None, None, partitions)))
    created = ensure_topics(
        settings.kafka,
        settings.topics.partitions(settings.topics.names),
        settings.topics.replicas,
        settings.topics.retention_bytes,
        settings.topics.retention_ms(settings.topics.names),
    )
    console.print(f"created: {', '.join(created)}" if created else "all topics already exist")
    _print_topics(settings)


@main.command()
@click.argument("file", type=click.File("rb"))
@click.pass_obj
def validate(obj: Context, file: IO[bytes]) -> None:
    """Check a canonical NDJSON file (or - for stdin) against the event contract.

    Prints one line per rejected event naming the line, the field and the problem; exit code 1 if any
    line was rejected. An event stamped more than PULSE_MAX_CLOCK_SKEW_S (300 s) ahead of this machine's
    clock is rejected too, as the pipeline would.
    """
    limit = ClockLimit.of(time.time_ns() // 1_000_000, obj.settings().max_clock_skew_s)
    good = bad = 0
    for line_no, raw in enumerate(file, start=1):
        if not raw.strip():
            continue
        try:
            event = parse_line(raw.rstrip(b"\r\n"), line_no=line_no)
            refused = limit.refusal(event)
            if refused is not None:
                raise refused.at_line(line_no)
            good += 1
        except InvalidEvent as exc:
            bad += 1
            click.echo(exc.reason)
    click.echo(f"{good} valid, {bad} rejected", err=True)
    sys.exit(1 if bad else 0)


@main.command()
@click.option(
    "--clickhouse",
    "dsn",
    metavar="DSN",
    help="chdb:///path (embedded) or http(s)://user:pass@host:8123. Env: PULSE_CLICKHOUSE__DSN. Default: chdb://<state-dir>/clickhouse",
)
@click.pass_obj
@fail_cleanly
def migrate(obj: Context, dsn: str | None) -> None:
    """Apply the ClickHouse DDL in schemas/clickhouse/ (only files not applied yet)."""
    settings = obj.settings(**({"clickhouse": {"dsn": dsn}} if dsn else {}))
    client = connect(settings.clickhouse)
    applied = apply_migrations(client)
    console.print(f"applied: {', '.join(f'{v:04d}' for v in applied)}" if applied else "schema is up to date")


@main.command("settings")
@click.option("--json", "as_json", is_flag=True, help="As one JSON object (for scripts).")
@click.pass_obj
@fail_cleanly
def show_settings(obj: Context, as_json: bool) -> None:
    """Show the settings every command would run with here: the environment (PULSE_*), the global options
    and the defaults, resolved. A secret shows only as set, with a short fingerprint of its value."""
    data = shown(obj.settings())
    if as_json:
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table("setting", "value", "environment variable")
    for group, values in data.items():
        for name, value in values.items() if isinstance(values, dict) else [(None, values)]:
            key = group if name is None else f"{group}.{name}"
            env = f"PULSE_{group.upper()}" + ("" if name is None else f"__{name.upper()}")
            text = value if isinstance(value, str) else orjson.dumps(value).decode()
            table.add_row(key, text, env)
    console.print(table)
