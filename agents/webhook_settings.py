"""The webhook receiver's settings, apart from the receiver: every `pulse` command loads them with the rest
of the settings, and the receiver's module loads aiohttp and aiokafka (0.3-0.4 s of CPU), which only
`pulse webhooks` needs."""

from __future__ import annotations

from pydantic import BaseModel, Field

from schemas import Secret


class VkSettings(BaseModel):
    secret: Secret
    confirmations: dict[str, str] = Field(default_factory=dict, description="group id -> confirmation string")
    admin_ids: list[str] = Field(
        default_factory=list, description="admins' personal accounts answering for the community"
    )


class TelegramSettings(BaseModel):
    secret_token: Secret
    channels_by_group: dict[str, str] = Field(
        default_factory=dict, description="discussion group id -> channel id"
    )


class MetaSettings(BaseModel):
    app_secret: Secret
    verify_token: Secret


class WebhookSettings(BaseModel):
    """A platform left unset has its endpoint answer 404: nothing is accepted that nobody configured."""

    host: str = "127.0.0.1"
    port: int = Field(default=8088, ge=1, le=65535)
    max_body_bytes: int = Field(default=1 << 20, ge=1024, le=64 << 20)
    dedup_ttl_s: float = Field(default=86_400.0, gt=0, le=30 * 86_400)
    dedup_max_ids: int = Field(default=1_000_000, ge=1, le=100_000_000)
    ack_timeout_s: float = Field(default=10.0, gt=0, le=120)
    read_timeout_s: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="a request's headers must arrive within this after the connection opened (or the last "
        "answer on it: idle connections close then), its body within this after its headers (408)",
    )
    vk: VkSettings | None = None
    telegram: TelegramSettings | None = None
    meta: MetaSettings | None = None
    bearer_token: Secret | None = Field(default=None, description="for the generic NDJSON endpoint")
