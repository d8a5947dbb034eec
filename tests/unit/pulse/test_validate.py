"""`pulse validate` judges a file as the pipeline would, the wall clock included."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from click.testing import CliRunner

from pulse.cli import main
from tests.events import wire


def test_a_line_stamped_a_day_ahead_is_rejected_naming_ts(tmp_path: Path) -> None:
    now = time.time_ns() // 1_000_000
    lines = [
        wire("like", event_id="now", ts=now),
        wire("like", event_id="tomorrow", ts=now + 86_400_000),
        wire("like", event_id="soon", ts=now + 60_000),  # a clock a minute ahead: within the skew
    ]
    file = tmp_path / "events.ndjson"
    file.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    result = CliRunner().invoke(main, ["validate", str(file)])
    assert result.exit_code == 1
    assert result.stdout.startswith("line 2: field 'ts': ") and "ahead of the wall clock" in result.stdout
    assert "2 valid, 1 rejected" in result.stderr
    lax = CliRunner(env={"PULSE_MAX_CLOCK_SKEW_S": str(2 * 86_400)}).invoke(main, ["validate", str(file)])
    assert lax.exit_code == 0, lax.output
