"""Who may open the embedded store: a process that starts the loader must never take it first."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import StoreLocked
from pipeline.warehouse import ClickHouseSettings
from pipeline.warehouse.query_service import address_file, run_query


def test_without_the_loaders_address_the_store_is_not_opened(tmp_path: Path) -> None:
    settings = ClickHouseSettings(dsn=f"chdb://{tmp_path / 'store'}")
    assert address_file(settings) == tmp_path / "store.query-address"
    with pytest.raises(StoreLocked, match="does not serve queries yet"):
        run_query(settings, "SELECT 1", open_store=False)
    assert not (tmp_path / "store").exists(), "chDB was not started in this process"


def test_a_dead_loaders_address_is_not_a_reason_to_open_the_store(tmp_path: Path) -> None:
    settings = ClickHouseSettings(dsn=f"chdb://{tmp_path / 'store'}")
    (tmp_path / "store.query-address").write_text("127.0.0.1:9")  # nothing listens there
    with pytest.raises(StoreLocked, match="does not answer queries"):
        run_query(settings, "SELECT 1", open_store=False)
    assert not (tmp_path / "store").exists()
