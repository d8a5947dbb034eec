"""The connection settings in both clients' spellings: kafka-python's (`client_config`) and aiokafka's
(`aiokafka_config`, for the workers' changelog restore and the webhook receiver's producer)."""

from __future__ import annotations

import ssl

from pydantic import SecretStr

from schemas import KafkaSettings


def test_aiokafka_config_carries_the_same_servers_and_security() -> None:
    plain = KafkaSettings(bootstrap_servers="k1:9092,k2:9092")
    assert plain.aiokafka_config() == {
        "bootstrap_servers": ["k1:9092", "k2:9092"],
        "security_protocol": "PLAINTEXT",
    }
    secured = KafkaSettings(
        bootstrap_servers="k1:9093", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
        sasl_username="pulse", sasl_password=SecretStr("a-long-enough-secret"),
    )  # fmt: skip
    config = secured.aiokafka_config()
    assert isinstance(config["ssl_context"], ssl.SSLContext)
    assert (config["sasl_mechanism"], config["sasl_plain_username"], config["sasl_plain_password"]) == (
        "SCRAM-SHA-512", "pulse", "a-long-enough-secret",
    )  # fmt: skip
    assert config["security_protocol"] == secured.client_config()["security_protocol"] == "SASL_SSL"
