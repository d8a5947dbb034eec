"""A click group whose subcommands are imported when used, not when the command line is loaded."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click


class LazyGroup(click.Group):
    """`lazy_commands` maps a subcommand's name to `module:attribute`, the click command to load the first
    time that name is asked for. A command's module brings its libraries along (faust for `process` and
    the benchmarks, aiohttp for `webhooks`, chDB's client for `sink`), and every `pulse` process, `pulse
    run`'s children included, loaded them all: 0.3-0.5 s of CPU at each start for libraries it did not
    use. `--help` still lists every command (it loads them all)."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy_commands:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = self.lazy_commands[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
        return command
