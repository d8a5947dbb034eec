"""What every `pulse` command shares: the console, settings loading, clean errors, stop signals, durations."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console

from agents import AgentError
from pipeline import PipelineError
from pulse.errors import PulseError
from pulse.settings import Settings, load
from schemas import SchemaError

console = Console()
err_console = Console(stderr=True)


class Context:
    """Carried on click's context: the global options, turned into `Settings` once per command."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides

    def settings(self, **more: Any) -> Settings:
        merged = dict(self.overrides)
        for key, value in more.items():
            if value is None:
                continue
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        try:
            return load(**merged)
        except ValidationError as exc:
            raise click.UsageError(f"invalid settings:\n{settings_problems(exc)}") from None


def settings_problems(exc: ValidationError) -> str:
    """One line per problem, naming the setting and its environment variable, never the value given (it
    may be a secret: pydantic's own message repeats the input)."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False, include_context=False):
        loc = [str(part) for part in error["loc"]]
        variable = "PULSE_" + "__".join(loc[:2]).upper() if loc else "PULSE_*"
        inside = f", field {'.'.join(loc[2:])}" if len(loc) > 2 else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"  {'.'.join(loc) or 'settings'} ({variable}{inside}): {message}")
    return "\n".join(lines)


def fail_cleanly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Our own errors are messages for the user, not tracebacks."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (PulseError, PipelineError, SchemaError, AgentError) as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            sys.exit(1)

    return wrapper


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Callable[[], bool]]:
    """SIGTERM and SIGINT ask the running loop to stop (it then flushes and exits 0); a second one kills."""
    stop = False

    def ask(signum: int, frame: object) -> None:
        nonlocal stop
        if stop:
            raise KeyboardInterrupt
        stop = True
        err_console.print(f"{signal.Signals(signum).name}: stopping after a flush (again to abort)")

    previous = {sig: signal.signal(sig, ask) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield lambda: stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


class Duration(click.ParamType):
    """Seconds, or a number with a unit: 90s, 30m, 2h, 1d, 250ms."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        match = _DURATION.match(str(value).strip())
        if not match:
            self.fail(f"{value!r} is not a duration (e.g. 90s, 30m, 2h)", param, ctx)
        return float(match.group(1)) * _UNIT_S[match.group(2)]


def yield_cpu(niceness: int) -> None:
    """Lowers this process's CPU priority to `niceness`, never raises it. On Linux niceness belongs to each
    thread and a thread starts with its creator's: call this before any thread is started."""
    if niceness > os.getpriority(os.PRIO_PROCESS, 0):
        os.setpriority(os.PRIO_PROCESS, 0, niceness)


def print_wide(renderable: Any) -> None:
    """Tables whole when the output is a file or a pipe (rich would cut them at 80 columns)."""
    if not console.is_terminal:
        console.width = max(console.width, 200)
    console.print(renderable)


def human_duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
