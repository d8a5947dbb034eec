"""The pipeline's three deployables, each in a room of its own, and what they share.

- `pipeline.stream`: the stream worker (faust): engagement windows, comment SLA clocks, alerts.
- `pipeline.warehouse`: the loader into ClickHouse, its query service and the named queries.
- `pipeline.notify`: the notifier that carries alerts to the ops channels.

They share only `pipeline.errors` (the one exception tree) and `pipeline.kafka_clients` (helpers for the
kafka-python consumers of the loader and the notifier). Importing `pipeline` loads neither faust nor
ClickHouse's clients: each room imports what it needs.
"""

from pipeline.errors import MigrationError, PipelineError, QueryRefused, StoreLocked, WarehouseError

__all__ = ["MigrationError", "PipelineError", "QueryRefused", "StoreLocked", "WarehouseError"]
