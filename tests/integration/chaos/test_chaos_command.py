"""`pulse chaos`, short: 20,000 realistic events fed over 30 s through a pipeline on a cluster of three
brokers of its own, while a stream worker, the loader and the notifier are killed (-9), a broker is killed
and started again, and the loader's store is frozen, one after another. The run must say what it struck,
that each piece was back at work, and that every table is exactly the reference's; and leave no broker
behind. About 90 s here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson

from pulse.chaos import Fault


def test_a_short_chaos_run_strikes_every_fault_and_the_tables_stay_exact(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")} | {"COLUMNS": "220"}
    done = subprocess.run(
        [sys.executable, "-m", "pulse", "--state-dir", str(tmp_path), "chaos", "--events", "20000",
         "--feed-for", "30s", "--seed", "2"],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    out = done.stdout
    print(out)
    assert done.returncode == 0, done.stderr[-5000:] + out
    assert "verdict: EXACT" in out
    for table in ("engagement_minute", "comment_sla", "alerts"):
        matched = re.search(rf"{table}: ([\d,]+) of ([\d,]+) expected rows match", out)
        assert matched is not None and matched.group(1) == matched.group(2), out
        assert int(matched.group(1).replace(",", "")) > 1_000
    for fault in Fault:
        row = re.search(rf"│ {fault.value}\s+│ ([\d.]+) s\s+│ [^│]+│ ([\d.]+) s", out)
        assert row is not None, f"no recovery for {fault}: {out}"
    assert re.search(r"started again: .*the loader 1x.*the notifier 1x.*the stream worker 1x", out), out
    # The run's own cluster is down: every broker it started has exited.
    (run,) = (tmp_path / "chaos").iterdir()
    for state in (run / "kafka").glob("node-*/broker.json"):
        pid = orjson.loads(state.read_bytes())["pid"]
        assert not Path(f"/proc/{pid}").exists(), f"broker {pid} still runs"
