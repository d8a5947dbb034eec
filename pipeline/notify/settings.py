"""What `pulse notify` needs to know: where alerts go (destinations), and how fast and how often.

Destinations come from a TOML file (`--config FILE` / `PULSE_NOTIFY__CONFIG_FILE`, format in
docs/alerts.md) and/or from the one-destination environment settings (`PULSE_NOTIFY__SLACK_WEBHOOK_URL`,
...); with neither, alerts are printed on stdout. A destination's `name` is part of its delivery-ledger key:
renaming one makes the notifier forget what it delivered there (a restart may then repeat a few alerts).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError

from pipeline.errors import NotifyConfigError
from schemas import Secret
from schemas.outputs import AlertKind
from schemas.wire import DEFAULT_LEDGER_TOPIC

_NAME = r"^[A-Za-z0-9._-]{1,64}$"
_HTTP_URL = r"^https?://\S+$"


def _http_url(url: SecretStr) -> SecretStr:
    if not re.match(_HTTP_URL, url.get_secret_value()):
        raise ValueError("must be an http(s) URL")
    return url


# Webhook URLs are credentials (Slack's embeds its token; other tools put keys in the query string).
SecretUrl = Annotated[Secret, AfterValidator(_http_url)]


class NotifySettings(BaseModel):
    config_file: Path | None = Field(default=None, description="TOML file listing the destinations")
    group: str = Field(default="community-pulse-notify", pattern=_NAME, description="Kafka consumer group")
    start_from: Literal["latest", "earliest"] = Field(
        default="latest", description="where a new group starts in the alerts topic"
    )
    slack_webhook_url: SecretUrl | None = None
    mattermost_webhook_url: SecretUrl | None = None
    telegram_bot_token: Secret | None = None
    telegram_chat_id: str | None = Field(default=None, max_length=64)
    telegram_api_url: str = Field(default="https://api.telegram.org", pattern=_HTTP_URL)
    webhook_url: SecretUrl | None = None
    webhook_secret: Secret | None = None
    digest_threshold: int = Field(default=5, ge=1, le=10_000)
    digest_window_s: float = Field(default=60.0, gt=0, le=3_600)
    rate_per_minute: float = Field(default=20.0, gt=0, le=6_000)
    rate_burst: int = Field(default=5, ge=1, le=1_000)
    retry_initial_s: float = Field(default=1.0, gt=0, le=60)
    retry_max_s: float = Field(default=300.0, gt=0, le=3_600)
    request_timeout_s: float = Field(default=10.0, gt=0, le=120)
    max_pending_alerts: int = Field(default=10_000, ge=1, le=1_000_000)
    commit_interval_s: float = Field(default=1.0, gt=0, le=60)
    shutdown_timeout_s: float = Field(default=10.0, ge=0, le=300)
    session_timeout_s: float = Field(default=10.0, ge=6, le=300)
    # Static group membership, unique per notifier: one started again with the same id takes its partition
    # back at once instead of after the dead one's session timeout.
    instance_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,200}$")
    ledger_topic: str = Field(default=DEFAULT_LEDGER_TOPIC, pattern=_NAME)
    ledger_retention_h: float = Field(default=168.0, ge=1, le=24 * 365)
    # An alert that fired (event time) this long before now (wall clock) is held back, not posted: a
    # backfill's, or one that waited hours for a destination that was down. 0: every alert; None: none.
    max_alert_age_s: float | None = Field(default=7_200.0, ge=0, le=366 * 86_400)
    held_back_quiet_s: float = Field(
        default=60.0, gt=0, le=3_600, description="a run of held-back alerts ends after this long without one"
    )


@dataclass(frozen=True, slots=True)
class Pacing:
    """One destination's limits: the settings' defaults, overridden per destination in the file."""

    rate_per_minute: float
    rate_burst: int
    digest_threshold: int
    digest_window_s: float


class _Destination(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME)
    communities: list[str] = Field(
        default_factory=list, description='"<platform>:<community id>" or "<community id>"; empty: all'
    )
    kinds: list[AlertKind] = Field(default_factory=list, description="empty: all")
    platforms: list[str] = Field(default_factory=list, description="empty: all")
    rate_per_minute: float | None = Field(default=None, gt=0, le=6_000)
    rate_burst: int | None = Field(default=None, ge=1, le=1_000)
    digest_threshold: int | None = Field(default=None, ge=1, le=10_000)
    digest_window_s: float | None = Field(default=None, gt=0, le=3_600)

    def pacing(self, settings: NotifySettings) -> Pacing:
        return Pacing(
            rate_per_minute=self.rate_per_minute or settings.rate_per_minute,
            rate_burst=self.rate_burst or settings.rate_burst,
            digest_threshold=self.digest_threshold or settings.digest_threshold,
            digest_window_s=self.digest_window_s or settings.digest_window_s,
        )


class SlackDestination(_Destination):
    """A Slack or Mattermost incoming webhook (same API; `mattermost` renders Markdown instead of mrkdwn)."""

    kind: Literal["slack", "mattermost"]
    url: SecretUrl


class TelegramDestination(_Destination):
    kind: Literal["telegram"]
    bot_token: Secret
    chat_id: str = Field(min_length=1, max_length=64, description="numeric id or @channelusername")
    message_thread_id: int | None = Field(default=None, description="a forum topic of the chat")
    api_url: str = Field(default="https://api.telegram.org", pattern=_HTTP_URL)


class WebhookDestination(_Destination):
    """Any HTTP endpoint taking JSON; `secret` adds `X-Pulse-Signature: sha256=<HMAC of the body>`."""

    kind: Literal["webhook"]
    url: SecretUrl
    secret: Secret | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict, description="e.g. Authorization")


class StdoutDestination(_Destination):
    kind: Literal["stdout"]


DestinationConfig = Annotated[
    SlackDestination | TelegramDestination | WebhookDestination | StdoutDestination,
    Field(discriminator="kind"),
]


class _DestinationsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destination: list[DestinationConfig] = Field(default_factory=list)


def load_destinations(settings: NotifySettings) -> list[DestinationConfig]:
    """The file's destinations, then the environment's; stdout alone when neither names any."""
    found: list[DestinationConfig] = []
    if settings.config_file is not None:
        found += read_destinations_file(settings.config_file)
    found += _from_settings(settings)
    if not found:
        found = [StdoutDestination(name="stdout", kind="stdout")]
    names = [d.name for d in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        where = str(settings.config_file or "PULSE_NOTIFY__*")
        raise NotifyConfigError(where, f"destination names must be unique: {', '.join(duplicates)}")
    return found


def read_destinations_file(path: Path) -> list[DestinationConfig]:
    try:
        with path.open("rb") as file:
            raw = tomllib.load(file)
    except OSError as exc:
        raise NotifyConfigError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise NotifyConfigError(str(path), f"not valid TOML: {exc}") from exc
    try:
        return _DestinationsFile.model_validate(raw).destination
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise NotifyConfigError(str(path), problems) from exc


def _from_settings(settings: NotifySettings) -> list[DestinationConfig]:
    found: list[DestinationConfig] = []
    if settings.slack_webhook_url is not None:
        found.append(SlackDestination(name="slack", kind="slack", url=settings.slack_webhook_url))
    if settings.mattermost_webhook_url is not None:
        found.append(
            SlackDestination(name="mattermost", kind="mattermost", url=settings.mattermost_webhook_url)
        )
    if (settings.telegram_bot_token is None) != (settings.telegram_chat_id is None):
        raise NotifyConfigError(
            "PULSE_NOTIFY__TELEGRAM_*", "a Telegram destination needs both BOT_TOKEN and CHAT_ID"
        )
    if settings.telegram_bot_token is not None and settings.telegram_chat_id is not None:
        found.append(
            TelegramDestination(
                name="telegram", kind="telegram", bot_token=settings.telegram_bot_token,
                chat_id=settings.telegram_chat_id, api_url=settings.telegram_api_url,
            )
        )  # fmt: skip
    if settings.webhook_url is not None:
        found.append(
            WebhookDestination(
                name="webhook", kind="webhook", url=settings.webhook_url, secret=settings.webhook_secret
            )
        )
    elif settings.webhook_secret is not None:
        raise NotifyConfigError("PULSE_NOTIFY__WEBHOOK_SECRET", "is set but PULSE_NOTIFY__WEBHOOK_URL is not")
    return found
