"""Which libraries a piece of the code base loads, asked of a fresh interpreter (the test run's own has
loaded them all): every `pulse` process pays at its start for what it imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def packages_loaded(code: str, packages: set[str]) -> list[str]:
    """Those of the top-level `packages` loaded once `code` ran in a new interpreter, sorted."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(packages)!r}))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    found: list[str] = json.loads(loaded.stdout)
    return found
