"""The dashboard's files: installed with the package, served by the server, the vendored chart library
whole and licensed, and the page's script building its DOM from text only."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

from pipeline.warehouse.dashboard.server import STATIC

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "pipeline" / "warehouse" / "dashboard"
STATIC_DIR = PACKAGE / "static"


def test_package_data_installs_every_query_and_static_file() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "pipeline.warehouse.dashboard"
    ]
    files = [p.relative_to(PACKAGE) for p in (PACKAGE / "queries").iterdir()]
    files += [p.relative_to(PACKAGE) for p in STATIC_DIR.rglob("*") if p.is_file()]
    uncovered = [str(f) for f in files if not any(f.match(pattern) for pattern in patterns)]
    assert not uncovered


def test_the_page_loads_only_files_the_server_serves() -> None:
    page = (STATIC_DIR / "index.html").read_text()
    loaded = set(re.findall(r'(?:src|href)="/static/([^"]+)"', page))
    assert loaded and loaded <= set(STATIC)
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page), "nothing from the internet"
    for path, _ in STATIC.values():
        assert (STATIC_DIR / path).is_file(), path


def test_the_vendored_chart_library_is_the_one_its_readme_names_with_its_license() -> None:
    vendor = STATIC_DIR / "vendor"
    readme = (vendor / "README.md").read_text()
    sums = dict((name, digest) for digest, name in re.findall(r"^\s+([0-9a-f]{64})\s+(\S+)$", readme, re.M))
    assert set(sums) == {"uPlot.iife.min.js", "uPlot.min.css"}
    for name, digest in sums.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
    assert "The MIT License" in (vendor / "uPlot.LICENSE").read_text()


def test_the_page_script_never_parses_data_as_html() -> None:
    script = (STATIC_DIR / "dashboard.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
