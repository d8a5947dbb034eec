"""Stream processors (faust agents over plain logic) and the ClickHouse side of the pipeline."""

from pipeline.errors import MigrationError, PipelineError, StoreLocked, WarehouseError
from pipeline.warehouse import ClickHouseSettings, apply_migrations, connect

__all__ = [
    "ClickHouseSettings",
    "MigrationError",
    "PipelineError",
    "StoreLocked",
    "WarehouseError",
    "apply_migrations",
    "connect",
]
