"""How both sides of the contract reach Kafka: bootstrap servers and security, as one typed setting.

SASL over plaintext is never chosen implicitly: a SASL mechanism needs `security_protocol` set to
`SASL_SSL` (or explicitly `SASL_PLAINTEXT`), so credentials do not cross the network in the clear by accident.
"""

from __future__ import annotations

import ssl
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, SecretStr, model_validator

MIN_SECRET_CHARS = 16


def _long_enough(value: SecretStr) -> SecretStr:
    length = len(value.get_secret_value().strip())
    if length < MIN_SECRET_CHARS:
        what = "is empty" if length == 0 else f"has {length} characters"
        raise ValueError(
            f"this secret {what}: at least {MIN_SECRET_CHARS} are needed (an empty or short one protects "
            "nothing; e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`)"
        )
    return value


# Every secret setting of every package: never shown, and never empty or short. An empty bearer token once
# served `Authorization: Bearer ` (with nothing after it); settings with one refuse to load, naming it.
Secret = Annotated[SecretStr, AfterValidator(_long_enough)]


class KafkaSettings(BaseModel):
    bootstrap_servers: str = Field(default="127.0.0.1:9092", min_length=3)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    ssl_cafile: str | None = None
    request_timeout_ms: int = Field(default=30_000, ge=1_000, le=600_000)
    # How long a process's start-up is tried again while the cluster answers with retriable errors (a broker
    # restarting, a leader moving): see pipeline.kafka_clients.
    start_retry_s: float = Field(default=30.0, ge=0.0, le=600.0)

    @model_validator(mode="after")
    def _sasl_needs_protocol(self) -> KafkaSettings:
        if self.sasl_mechanism and not self.security_protocol.startswith("SASL_"):
            raise ValueError("sasl_mechanism is set but security_protocol is not SASL_SSL or SASL_PLAINTEXT")
        return self

    def client_config(self) -> dict[str, Any]:
        """Keyword arguments shared by kafka-python's producer, consumer and admin client."""
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
        }
        if self.sasl_mechanism:
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            config["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        if self.ssl_cafile:
            config["ssl_cafile"] = self.ssl_cafile
        return config

    def aiokafka_config(self) -> dict[str, Any]:
        """The connection settings in aiokafka's spelling (an SSL context instead of a CA file; the request
        timeout left to each client)."""
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol.endswith("SSL"):
            config["ssl_context"] = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.sasl_mechanism:
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            config["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        return config


def min_insync_replicas(replicas: int) -> int:
    """In-sync replicas a write with acks=all needs on a topic of `replicas` replicas: two where there are
    three or more (an acknowledged write is then on two brokers, and one broker may be lost without writes
    being refused), else one."""
    return 2 if replicas >= 3 else 1


def durability_configs(replicas: int) -> dict[str, str]:
    """The topic configs every topic the project creates with `replicas` replicas carries for it: the
    topic's own `min.insync.replicas` (2) from three replicas on, whatever the cluster's default (1 unless
    its operator changed it); nothing below three, where the broker's default is the only sane value."""
    needed = min_insync_replicas(replicas)
    return {"min.insync.replicas": str(needed)} if needed > 1 else {}
