"""`pulse run` supervises every piece: the loader and the notifier, killed with SIGKILL while a replay
runs, are started again, the run exits 0 and says so, and the tables are exactly what the scenario
calls for (the same scenario and answers as test_run_end_to_end)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from schemas import KafkaSettings
from tests.integration.pulse.test_run_end_to_end import assert_tables_match, scenario_run


def _children(pid: int) -> dict[int, str]:
    """The child processes of `pid`: pid -> command line."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
    return found


def _kill_when_up(run: subprocess.Popen[str], command: str, killed: list[str], up_s: float = 1.0) -> None:
    """SIGKILLs the run's child whose command line ends with `command` once it has been up `up_s`."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:
        for pid, cmdline in _children(run.pid).items():
            if cmdline.strip().endswith(f"-m pulse {command}"):
                time.sleep(up_s)
                os.kill(pid, signal.SIGKILL)
                killed.append(command)
                return
        time.sleep(0.05)


def test_a_killed_loader_and_notifier_are_started_again_and_the_tables_stay_exact(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    replay = scenario_run(tmp_path, kafka.bootstrap_servers)
    scenario, store, env, args = replay.scenario, replay.store, replay.env, replay.args
    run = subprocess.Popen(
        [sys.executable, "-m", "pulse", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed: list[str] = []
    killers = [
        threading.Thread(target=_kill_when_up, args=(run, piece, killed), daemon=True)
        for piece in ("sink", "notify")
    ]
    for killer in killers:
        killer.start()
    out, err = run.communicate(timeout=600)
    for killer in killers:
        killer.join(5)
    assert sorted(killed) == ["notify", "sink"], "both pieces were killed while the run went on"
    assert run.returncode == 0, err[-3000:] + out[-2000:]
    assert "the loader exited with -9: starting it again" in err, err[-3000:]
    assert "the notifier exited with -9: starting it again" in err, err[-3000:]
    assert "restarted: " in out and "the loader 1" in out, out[-2000:]

    assert_tables_match(env, store, scenario)
