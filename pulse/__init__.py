"""The `pulse` command line and local orchestration: reads settings once, starts the local broker,
creates topics, and wires `agents`, `pipeline` and `schemas` together."""
