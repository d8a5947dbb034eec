"""Ingest agents: publish canonical events from simulators, files and platform webhooks to Kafka."""
