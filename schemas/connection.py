"""How both sides of the contract reach Kafka: bootstrap servers and security, as one typed setting.

SASL over plaintext is never chosen implicitly: a SASL mechanism needs `security_protocol` set to
`SASL_SSL` (or explicitly `SASL_PLAINTEXT`), so credentials do not cross the network in the clear by accident.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator


class KafkaSettings(BaseModel):
    bootstrap_servers: str = Field(default="127.0.0.1:9092", min_length=3)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    request_timeout_ms: int = Field(default=30_000, ge=1_000, le=600_000)

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
