"""The `pulse` command line loads a subcommand's module only when that subcommand runs."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from pulse.cli import COMMAND_MODULES, main
from pulse.commands.lazy_group import LazyGroup
from tests.imports import packages_loaded


@pytest.mark.parametrize("name", sorted(COMMAND_MODULES))
def test_each_listed_command_loads_under_its_own_name(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    assert isinstance(command, click.Command)
    assert command.name == name


def test_help_lists_the_lazy_commands_with_the_others() -> None:
    listed = main.list_commands(click.Context(main))
    assert listed == sorted(listed)
    assert {*COMMAND_MODULES, "kafka", "topics", "migrate", "settings", "validate"} <= set(listed)
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "run " in result.output and "bench " in result.output


def test_an_entry_that_is_not_a_command_is_refused() -> None:
    group = LazyGroup(name="g", lazy_commands={"wrong": "pulse.cli:COMMAND_MODULES"})
    with pytest.raises(TypeError, match="not a click command"):
        group.get_command(click.Context(group), "wrong")


@pytest.mark.parametrize("command", ["run", "sink"])
def test_run_and_the_loader_load_neither_faust_nor_aiohttp(command: str) -> None:
    """What `pulse run` and the loader do not use: importing every command's module cost each `pulse`
    process 0.3-0.5 s of CPU."""
    code = f"import click; from pulse.cli import main; main.get_command(click.Context(main), {command!r})"
    assert packages_loaded(code, {"faust", "aiohttp", "aiokafka", "mode"}) == []
