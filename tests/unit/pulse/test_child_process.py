"""How a `pulse` child process ends: at once after a clean stop, the usual way otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pulse.local.child_process import PARENT_PID_ENV

# A command that prints, logs and leaves an exit handler behind, then exits with the given status.
COMMAND = """
import atexit, logging, sys
from pulse.local.child_process import run_entry_point
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
atexit.register(lambda: print("teardown ran", flush=True))
def main():
    print("summary line")
    logging.getLogger("piece").info("log line")
    sys.exit(int(sys.argv[1]))
run_entry_point(main)
"""


def _run(code: int, as_child: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != PARENT_PID_ENV}
    if as_child:
        env[PARENT_PID_ENV] = str(os.getpid())
    root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", COMMAND, str(code)], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_child_that_stopped_cleanly_skips_the_teardown_but_not_its_output() -> None:
    done = _run(0, as_child=True)
    assert done.returncode == 0
    assert done.stdout == "summary line\n"  # flushed, though the exit handler never ran
    assert "log line" in done.stderr


@pytest.mark.parametrize(("code", "as_child"), [(3, True), (0, False)])
def test_a_failed_child_or_a_command_run_by_hand_exits_the_usual_way(code: int, as_child: bool) -> None:
    done = _run(code, as_child)
    assert done.returncode == code
    assert done.stdout == "summary line\nteardown ran\n"
