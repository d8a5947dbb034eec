"""The lock files pin, with hashes, every package pyproject.toml asks for (runtime, tests, build), at
versions it allows; what the image installs is what the tests ran with; the advisories' floors hold."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
HERE = {"python_version": "3.11", "python_full_version": "3.11.7", "sys_platform": "linux",
        "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
        "platform_python_implementation": "CPython", "os_name": "posix"}  # fmt: skip
_PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\?$")


def pins(name: str) -> dict[str, tuple[Version, int]]:
    """Package -> (version, number of hashes) of a lock file, for this machine's Python 3.11 on Linux."""
    found: dict[str, tuple[Version, int]] = {}
    current: str | None = None
    for line in (ROOT / "requirements" / name).read_text().splitlines():
        match = _PIN.match(line)
        if match:
            package, version, marker = match.groups()
            current = None
            if marker is None or Marker(marker).evaluate(HERE):
                current = canonicalize_name(package)
                assert current not in found, f"{name}: {package} pinned twice for this platform"
                found[current] = (Version(version), 0)
        elif line.strip().startswith("--hash=sha256:") and current is not None:
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
    return found


def wanted(*groups: list[str]) -> list[Requirement]:
    return [
        r for group in groups for r in map(Requirement, group) if r.marker is None or r.marker.evaluate(HERE)
    ]


def test_the_development_lock_pins_everything_pyproject_asks_for_with_hashes() -> None:
    locked = pins("dev.lock")
    asked = wanted(
        PYPROJECT["project"]["dependencies"],
        PYPROJECT["project"]["optional-dependencies"]["test"],
        PYPROJECT["build-system"]["requires"],
    )
    for requirement in asked:
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is not in requirements/dev.lock: run `make lock`"
        assert requirement.specifier.contains(locked[name][0], prereleases=True), (requirement, locked[name])
    assert all(hashes > 0 for _, hashes in locked.values()), "every pin carries its hashes"


def test_the_image_installs_the_versions_the_tests_ran_with_and_no_test_tools() -> None:
    locked, runtime, build = pins("dev.lock"), pins("runtime.lock"), pins("build.lock")
    for lock in (runtime, build):
        assert {name: v for name, (v, _) in lock.items()} == {name: locked[name][0] for name in lock}
    for requirement in wanted(PYPROJECT["project"]["dependencies"]):
        assert canonicalize_name(requirement.name) in runtime, requirement
    assert not {"pytest", "ruff", "mypy", "hypothesis"} & set(runtime)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements/build.lock" in dockerfile
    assert "--require-hashes -r /wheels/runtime.lock" in dockerfile and "--no-deps /wheels/" in dockerfile


def test_the_floors_are_past_the_published_advisories() -> None:
    floors = {"aiohttp": Version("3.13.3"), "orjson": Version("3.11.6")}
    assert floors.keys() <= {r.name for r in wanted(PYPROJECT["project"]["dependencies"])}
    for requirement in wanted(PYPROJECT["project"]["dependencies"]):
        if requirement.name in floors:
            assert not requirement.specifier.contains(_just_below(floors[requirement.name])), requirement
            assert requirement.specifier.contains(floors[requirement.name]), requirement


def _just_below(version: Version) -> Version:
    major, minor, micro = version.release[:3]
    return Version(f"{major}.{minor}.{micro - 1}") if micro else Version(f"{major}.{minor - 1}.999")


def test_make_installs_from_the_lock_then_the_project_without_dependencies() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "LOCK   := requirements/dev.lock" in makefile
    install = makefile[makefile.index("$(BIN)/.installed:") :].split("\n\n")[0]
    steps = [line.strip() for line in install.splitlines()[1:]]
    assert steps == [
        "$(PYTHON) -m venv $(VENV)",
        "$(BIN)/pip install -q --require-hashes -r $(LOCK)",
        "$(BIN)/pip install -q --no-deps --no-build-isolation -e .",
        "touch $@",
    ]
