"""The rooms of the code base and what may import what (docs/architecture.md), checked on the sources."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.imports import packages_loaded

ROOT = Path(__file__).resolve().parents[2]

# room -> the rooms of ours it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "schemas": set(),
    "agents": {"schemas"},
    "pipeline.stream": {"schemas", "pipeline.errors"},
    "pipeline.warehouse": {"schemas", "pipeline.errors", "pipeline.kafka_clients"},
    "pipeline.notify": {"schemas", "pipeline.errors", "pipeline.kafka_clients"},
    "pipeline.kafka_clients": set(),
    "pipeline.errors": set(),
}
OURS = ("schemas", "agents", "pipeline", "pulse")


def room_of(module: str) -> str:
    for room in sorted(ALLOWED, key=len, reverse=True):
        if module == room or module.startswith(room + "."):
            return room
    return module.split(".")[0] if module.split(".")[0] != "pipeline" else module


def modules() -> list[tuple[str, Path]]:
    found = []
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found.append((name, path))
    return found


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.split(".")[0] in OURS}


@pytest.mark.parametrize(("module", "path"), [m for m in modules() if room_of(m[0]) in ALLOWED], ids=str)
def test_a_room_imports_only_what_it_may(module: str, path: Path) -> None:
    room = room_of(module)
    foreign = {
        name for name in imports_of(path)
        if room_of(name) != room and room_of(name) not in ALLOWED[room] and name != "pipeline"
    }  # fmt: skip
    assert not foreign, f"{module} ({room}) imports {sorted(foreign)}; it may import {sorted(ALLOWED[room])}"


def test_pipeline_holds_its_rooms_and_at_most_three_modules_of_its_own() -> None:
    own = sorted(p.name for p in (ROOT / "pipeline").glob("*.py"))
    assert len(own) <= 3, own
    assert {"stream", "warehouse", "notify"} <= {p.name for p in (ROOT / "pipeline").iterdir() if p.is_dir()}


def test_the_stream_worker_loads_no_clickhouse_client() -> None:
    """Not the stream package, nor the command line a worker starts through (`python -m pulse process`)."""
    code = "import pipeline.stream.app, pulse.cli"
    assert packages_loaded(code, {"clickhouse_connect", "chdb"}) == []


def test_the_settings_load_no_webhook_server() -> None:
    """Every `pulse` command loads the settings; aiohttp and aiokafka cost 0.3-0.4 s of CPU to import and
    only `pulse webhooks` (and the benchmarks driving it) needs them."""
    assert packages_loaded("import pulse.settings", {"aiohttp", "aiokafka", "faust"}) == []
