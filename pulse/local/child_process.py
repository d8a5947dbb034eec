"""A `pulse` subcommand as a child process with its output in a log file: the pieces `pulse run`,
the benchmarks and the integration tests start, stop and, for crash tests, kill."""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn

from pulse.errors import PulseError

_PR_SET_PDEATHSIG = 1


PARENT_PID_ENV = "COMMUNITY_PULSE_PARENT_PID"  # outside PULSE_*: not a setting, a fact about this process


def die_with_parent() -> None:
    """Called first thing by the `pulse` entry point: in a child started by `PulseChild`, asks Linux for
    SIGTERM when the parent dies, even by SIGKILL, so a killed `pulse run` (or a test that timed out)
    leaves no worker, loader or notifier behind. Done in the child after exec, not in a preexec hook,
    which is unsafe in a parent with threads; a parent already gone by then means exit at once."""
    expected = os.environ.get(PARENT_PID_ENV)
    if not expected or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(expected):
        sys.exit(f"{PARENT_PID_ENV}: the parent {expected} is gone")


def run_entry_point(main: Callable[[], object]) -> NoReturn:
    """Runs the `pulse` entry point. In a child started by `PulseChild` whose command ended with exit status
    0 (it stopped cleanly: flushed, inserted, committed), the process then ends at once, its output and
    logs flushed, without the interpreter's teardown: freeing every object and the libraries' exit
    handlers took 0.5-0.75 s of the stream worker's exit and 0.4-1.9 s of the loader's (chDB's shutdown),
    and `pulse run` waits for its pieces to exit. Nothing they skip is needed once the work is committed:
    a piece must survive a kill -9 at any moment anyway.

    Elsewhere, and on any other exit, the usual exit, but with every object frozen out of the cycle
    collector's reach first: its collections during the interpreter's teardown were 0.2-0.5 s of each
    `pulse` command's exit (0.02 s without), `pulse run`'s included."""
    code: str | int | None = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    if code in (0, None) and os.environ.get(PARENT_PID_ENV):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    gc.freeze()
    sys.exit(code)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, all its threads (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PulseChild:
    """`python -m pulse <args>` (or another `module` of ours) with `env`; stdout and stderr appended to
    `log`."""

    def __init__(
        self, name: str, args: list[str], env: Mapping[str, str], log: Path, *, module: str = "pulse"
    ) -> None:
        self.name = name
        self.args = args
        self.module = module
        self.env = {**env, PARENT_PID_ENV: str(os.getpid())}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self._terminated: subprocess.Popen[bytes] | None = None  # the process SIGTERM was sent to

    def start(self) -> PulseChild:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no flush, no commit, like a crash."""
        process = self._running()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def terminate(self) -> None:
        """SIGTERM, once: the pieces take a second one as "abort now"."""
        process = self._running()
        if process.poll() is None and self._terminated is not process:
            process.send_signal(signal.SIGTERM)
            self._terminated = process

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM (unless `terminate()` sent it) and wait (SIGKILL after `timeout_s`); the exit code."""
        process = self._running()
        if process.poll() is None:
            self.terminate()
            try:
                return process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired as exc:
                process.kill()
                process.wait(timeout=30)
                raise PulseError(
                    f"{self.name} did not stop within {timeout_s:.0f} s: killed. {self.log_tail()}"
                ) from exc
        return process.returncode

    def exited(self) -> int | None:
        """The exit code if the process has ended, else None."""
        return None if self.process is None else self.process.poll()

    def check_alive(self) -> None:
        code = self.exited()
        if code is not None:
            raise PulseError(f"{self.name} exited with {code}: {self.log_tail()}")

    def peak_mb(self) -> float:
        """The process's peak resident memory (Linux)."""
        for line in Path(f"/proc/{self._running().pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_s(self) -> float:
        return cpu_seconds(self._running().pid)

    def log_tail(self, chars: int = 3000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"see {self.log}:\n{text[-chars:]}"

    def _running(self) -> subprocess.Popen[bytes]:
        if self.process is None:
            raise PulseError(f"{self.name} was never started")
        return self.process
