"""The exception tree of `pipeline`.

PipelineError
 +-- WarehouseError      ClickHouse refused or could not be reached; `code` is the server's error code,
 |   |                   `retryable` says whether the same request may succeed later
 |   +-- StoreLocked     the embedded store is open in another process
 +-- MigrationError      a DDL file could not be applied; `version` names it
"""

from __future__ import annotations


class PipelineError(Exception):
    """Root of every error raised by the `pipeline` package."""


class WarehouseError(PipelineError):
    def __init__(self, message: str, *, code: int | None = None, retryable: bool = False) -> None:
        self.code = code
        self.retryable = retryable
        super().__init__(message)


class StoreLocked(WarehouseError):
    """chDB lets one process at a time open an on-disk store."""


class MigrationError(PipelineError):
    def __init__(self, version: int, message: str) -> None:
        self.version = version
        super().__init__(f"migration {version:04d}: {message}")
