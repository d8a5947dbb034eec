"""`pulse process`: one stream-processor worker (start several with the same app id to share the load)."""

from __future__ import annotations

import click

from pulse.commands.support import Context, Duration, err_console, fail_cleanly
from pulse.settings import on_cluster
from pulse.topics import check_partitions, ensure_topics


@click.command("process")
@click.option(
    "--app-id",
    help="Consumer group and changelog prefix. Env: PULSE_PROCESSOR__APP_ID. Default: community-pulse",
)
@click.option(
    "--sla",
    "sla_s",
    type=Duration(),
    help="Default response-time target, e.g. 30m. Env: PULSE_PROCESSOR__SLA_DEFAULT_S. Default: 1h",
)
@click.option(
    "--lateness",
    "lateness_s",
    type=Duration(),
    help="Allowed lateness of events, e.g. 2m. Env: PULSE_PROCESSOR__ALLOWED_LATENESS_S. Default: 2m",
)
@click.pass_obj
@fail_cleanly
def process(obj: Context, app_id: str | None, sla_s: float | None, lateness_s: float | None) -> None:
    """Run a stream-processor worker: rolling engagement per post and minute, response-time clocks and
    unanswered-comment alerts, from the likes, comments and reposts topics.

    Outputs go to the engagement, comment-sla, alerts and pipeline-metrics topics; bad lines to the
    dead-letter topic. Stops cleanly on SIGTERM/Ctrl-C. Several workers with the same app id split the
    partitions; a worker that dies is replaced by another, with its state (from the changelog).
    """
    from pipeline.stream.app import build_app, run_worker  # faust is heavy: load it for this command only

    overrides = {"app_id": app_id, "sla_default_s": sla_s, "allowed_lateness_s": lateness_s}
    settings = on_cluster(obj.settings(processor={k: v for k, v in overrides.items() if v is not None}))
    topics = settings.topics.names
    wanted = settings.topics.partitions(topics)
    ensure_topics(
        settings.kafka, wanted, settings.topics.replicas, settings.topics.retention_bytes,
        settings.topics.retention_ms(topics),
    )  # fmt: skip
    partitions = settings.topics.event_partitions
    check_partitions(settings.kafka, [*topics.processor_inputs, topics.ticks], partitions)
    app = build_app(
        settings.processor, settings.kafka, topics,
        partitions=partitions, replication_factor=settings.topics.replicas,
        max_clock_skew_s=settings.max_clock_skew_s,
    )  # fmt: skip
    err_console.print(
        f"processor {settings.processor.app_id}: {partitions} partitions from {settings.kafka.bootstrap_servers}"
    )
    run_worker(app, settings.log_level, settings.processor.recovery_stall_s)
