"""`pulse erase`: one person's data out of the warehouse and out of the stream workers' state."""

from __future__ import annotations

import click

from pipeline.errors import StoreLocked
from pipeline.warehouse import apply_migrations, connect
from pipeline.warehouse.erasure import erase_person
from pulse.commands.support import Context, Duration, console, err_console, fail_cleanly
from pulse.topics import send_to_every_partition, wait_committed_past
from schemas.event import MAX_ID_CHARS, PLATFORM
from schemas.wire import erasure_tick


@click.command("erase")
@click.option("--platform", required=True, help="The person's platform, as in the events: vk, telegram, ...")
@click.option("--user-id", "user_id", required=True, help="Their id on that platform, as in the events.")
@click.option(
    "--clickhouse",
    "dsn",
    help="ClickHouse DSN (a writer). Env: PULSE_CLICKHOUSE__DSN. Default: embedded store",
)
@click.option("--wait", "wait_s", type=Duration(), default="60s", show_default=True,
              help="How long to wait for the stream workers to apply the erasure (0: do not wait).")  # fmt: skip
@click.pass_obj
@fail_cleanly
def erase(obj: Context, platform: str, user_id: str, dsn: str | None, wait_s: float) -> None:
    """Erase one person's data and report what was removed.

    \b
    - The stream workers' state: an erasure tick on every partition of the ticks topic makes each worker
      take the person out of its windows' engagers and drop the response clocks of their comments, and
      save that state again (its changelog then holds no trace of them once compacted).
    - ClickHouse: their events; the alerts about their comments (author and snippet); their comments'
      response clocks; the audience segments they were counted in, rebuilt without them.

    Kafka's input, alerts, comment-sla and dead-letter topics drop their records after
    PULSE_TOPICS__RETENTION_H (7 days by default; docs/operations.md, "What is kept where"). Rows still on
    their way to ClickHouse (the loader's lag), or replayed from retained input, land after the erasure:
    run it again then. With the embedded store, stop `pulse sink` first: one process opens the store, and
    the loader's query port only reads.
    """
    if not PLATFORM.fullmatch(platform):
        raise click.BadParameter("a platform name as the events carry it, like 'vk'", param_hint="--platform")
    if not 0 < len(user_id) <= MAX_ID_CHARS or not user_id.isprintable() or user_id != user_id.strip():
        raise click.BadParameter(
            f"an id as the events carry it: 1 to {MAX_ID_CHARS} printable characters, no blanks around",
            param_hint="--user-id",
        )
    settings = obj.settings(clickhouse={"dsn": dsn} if dsn else None)
    topics = settings.topics.names
    # The workers first: once they have forgotten the person, nothing they emit names them again.
    offsets = send_to_every_partition(settings.kafka, topics.ticks, erasure_tick(platform, user_id))
    applied = set()
    if wait_s > 0:
        applied = wait_committed_past(
            settings.kafka, settings.processor.app_id, topics.ticks, offsets, wait_s
        )
    try:
        client = connect(settings.clickhouse)
    except StoreLocked as exc:
        raise StoreLocked(f"{exc}. Stop `pulse sink`, then run `pulse erase` again") from exc
    apply_migrations(client)
    erased = erase_person(client, platform, user_id)
    console.print(f"erased {platform}:{user_id}", highlight=False)
    for table, rows in erased.rows.items():
        what = "rows rebuilt without them" if table == "engagement_segment_hour" else "rows removed"
        console.print(f"  clickhouse {table}: {rows:,} {what}", highlight=False)
    pending = sorted(set(offsets) - applied)
    state = f"  stream state ({settings.processor.app_id}): erasure sent to {len(offsets)} partitions of {topics.ticks}"
    if pending:
        state += (
            f"; not yet applied on partitions {pending} (no worker committed past it within {wait_s:g} s: it "
        )
        state += "is applied when the workers read it)"
    else:
        state += "; applied by the workers on every partition"
    console.print(state, highlight=False)
    if pending:
        err_console.print("the stream workers have not applied it yet: see above")
