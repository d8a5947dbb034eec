"""`pulse audience import`: follower and view counts from the platforms' exports into the warehouse."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Literal

import click
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from agents import Simulator
from pipeline.errors import StoreLocked
from pipeline.warehouse import apply_migrations, connect
from pipeline.warehouse.audience import DEFAULT_BATCH_ROWS, SnapshotWriter
from pulse.commands.support import Context, console, err_console, fail_cleanly
from schemas import InvalidSnapshot
from schemas.audience import MAX_SNAPSHOT_LINE_BYTES, encode_snapshot, read_snapshots

Form = Literal["ndjson", "csv"]
PROGRESS_EVERY_S = 10.0  # without a terminal: a line this often, for logs of long imports


@click.group()
def audience() -> None:
    """Audience figures the platforms do not push: follower and view counts."""


@audience.command("import")
@click.argument("file", type=click.Path(exists=True, allow_dash=True, dir_okay=False, path_type=Path))
@click.option("--format", "form", type=click.Choice(["ndjson", "csv"]),
              help="The file's form. Default: csv for a name ending in .csv, ndjson for .ndjson, .jsonl, .json "
                   "and stdin, else what its first line looks like (a JSON object: ndjson).")  # fmt: skip
@click.option(
    "--clickhouse",
    "dsn",
    metavar="DSN",
    help="ClickHouse DSN (a writer). Env: PULSE_CLICKHOUSE__DSN. Default: embedded store",
)
@click.option("--batch-rows", type=click.IntRange(1, 1_000_000), default=DEFAULT_BATCH_ROWS, show_default=True,
              help="Rows per insert at most.")  # fmt: skip
@click.option("--show-errors", type=click.IntRange(0), default=100, show_default=True,
              help="Print at most this many rejected lines (all are counted).")  # fmt: skip
@click.pass_obj
@fail_cleanly
def import_command(
    obj: Context, file: Path, form: Form | None, dsn: str | None, batch_rows: int, show_errors: int
) -> None:
    """Import follower counts per community and view counts per post from FILE (or - for stdin) into
    `community_followers` and `post_views`, where `er-by-followers` and `er-by-views` find them.

    \b
    NDJSON, one snapshot a line:
      {"kind": "followers", "platform": "vk", "community_id": "1", "as_of": "2026-01-01T00:00:00Z", "followers": 12000}
      {"kind": "views", "platform": "vk", "community_id": "1", "post_id": "77", "as_of": "2026-01-01T00:00:00Z", "views": 3400}
    or CSV with a header naming the same fields, in any order (an empty cell leaves a field out):
      platform,community_id,as_of,followers
      vk,1,2026-01-01T00:00:00Z,12000

    \b
    kind       followers or views; may be left out: the count given decides
    as_of      when the platform counted: RFC 3339 with an offset, or epoch milliseconds (stored to the second)
    post_id    views only; followers are per community

    Every line is checked on its own: a bad line is reported with its line number and reason, counted,
    and left out, and the lines around it are imported (exit code 1 if any line was rejected). A count
    stamped more than PULSE_MAX_CLOCK_SKEW_S ahead of this machine's clock is rejected, as events are.
    Importing the same file again changes nothing: a snapshot is keyed by platform, community, post and
    as_of, and the tables keep one row per key (read them with FINAL, as the named queries do); a key
    repeated in a file keeps its last line. With the embedded store, stop `pulse sink` (or `pulse run`)
    first: one process opens the store.
    """
    settings = obj.settings(clickhouse={"dsn": dsn} if dsn else None)
    stdin = str(file) == "-"
    stream: IO[bytes] = sys.stdin.buffer if stdin else file.open("rb")
    with stream:
        form = form or _form_of(file, stream)
        try:
            client = connect(settings.clickhouse)
        except StoreLocked as exc:
            raise StoreLocked(f"{exc}. Stop `pulse sink` (or `pulse run`), then import again") from exc
        apply_migrations(client)
        writer = SnapshotWriter(client, batch_rows)
        latest_ms = time.time_ns() // 1_000_000 + int(settings.max_clock_skew_s * 1000)
        total = None if stdin else file.stat().st_size
        accepted = rejected = 0
        with _progress(total) as advance:
            for found in read_snapshots(_lines(stream, advance), form, latest_ms):
                if isinstance(found, InvalidSnapshot):
                    rejected += 1
                    if rejected <= show_errors:
                        err_console.print(found.reason, highlight=False, markup=False, soft_wrap=True)
                    continue
                accepted += 1
                writer.add(found)
            writer.flush()
    counts = writer.counts
    rows = counts.rows
    summary = (
        f"imported {_counted(accepted, 'snapshot')} from {file} into {settings.clickhouse.database}: "
        f"community_followers {_counted(rows['community_followers'], 'row')}, "
        f"post_views {_counted(rows['post_views'], 'row')}"
    )
    if counts.replaced:
        summary += (
            f" ({_counted(counts.replaced, 'line')} gave a key an earlier line gave: the later line is kept)"
        )
    console.print(summary, highlight=False, markup=False, soft_wrap=True)
    if rejected:
        shown = f", the first {show_errors:,} shown above" if rejected > show_errors else ""
        err_console.print(f"{_counted(rejected, 'line')} rejected{shown}", highlight=False, soft_wrap=True)
        sys.exit(1)


def _counted(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _form_of(file: Path, stream: IO[bytes]) -> Form:
    """csv for a .csv name; otherwise ndjson when the first non-blank line opens a JSON object."""
    if file.suffix.lower() == ".csv":
        return "csv"
    if file.suffix.lower() in (".ndjson", ".jsonl", ".json") or not stream.seekable():
        return "ndjson"
    first = b""
    for line in stream:
        if line.strip():
            first = line.lstrip(b"\xef\xbb\xbf \t")
            break
    stream.seek(0)
    return "ndjson" if first.startswith(b"{") or not first else "csv"


def _lines(stream: IO[bytes], advance: Callable[[int], None]) -> Iterator[bytes]:
    """The stream's lines, none held longer than a snapshot may be: of a longer line (a file that is no
    snapshot file at all, a gigabyte without a newline) the start is kept, for the reader to refuse, and
    the rest is read past."""
    limit = MAX_SNAPSHOT_LINE_BYTES + 1
    while line := stream.readline(limit):
        advance(len(line))
        if len(line) == limit and not line.endswith(b"\n"):
            while (rest := stream.readline(limit)) and not rest.endswith(b"\n"):
                advance(len(rest))
            advance(len(rest))
        yield line


@contextlib.contextmanager
def _progress(total: int | None) -> Iterator[Callable[[int], None]]:
    """How far the file has been read: a bar at a terminal, a line every PROGRESS_EVERY_S otherwise."""
    done = 0
    if err_console.is_terminal and total:
        columns = (TextColumn("importing"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn())
        with Progress(*columns, console=err_console, transient=True) as bar:
            task = bar.add_task("import", total=total)
            last = 0.0

            def on_bar(size: int) -> None:
                nonlocal done, last
                done += size
                if time.monotonic() - last >= 0.1:
                    bar.update(task, completed=done)
                    last = time.monotonic()

            yield on_bar
        return
    next_at = time.monotonic() + PROGRESS_EVERY_S

    def on_line(size: int) -> None:
        nonlocal done, next_at
        done += size
        if time.monotonic() >= next_at:
            share = f" ({done / total:.0%})" if total else ""
            err_console.print(f"read {done:,} bytes{share}", highlight=False)
            next_at = time.monotonic() + PROGRESS_EVERY_S

    yield on_line


def write_audience_file(sim: Simulator, path: Path) -> int:
    """The simulator's follower and view counts as a snapshot file for `pulse audience import` (how many)."""
    snapshots = sim.audience()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(encode_snapshot(s) for s in snapshots))
    return len(snapshots)
