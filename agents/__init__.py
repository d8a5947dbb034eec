"""Ingest agents: publish canonical events from simulators, files and platform webhooks to Kafka."""

from agents.errors import AgentError, DeliveryFailed, KafkaUnavailable
from agents.publisher import EventPublisher, PublisherSettings, PublisherStats
from agents.recent import RecentIds
from agents.replay import ReplayReport, replay
from agents.simulator import Simulator, SimulatorSettings

__all__ = [
    "AgentError",
    "DeliveryFailed",
    "EventPublisher",
    "KafkaUnavailable",
    "PublisherSettings",
    "PublisherStats",
    "RecentIds",
    "ReplayReport",
    "Simulator",
    "SimulatorSettings",
    "replay",
]
