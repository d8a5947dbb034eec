"""The stream processors' settings: the judgement calls (lateness, SLA) and the faust worker's knobs."""

from __future__ import annotations

from pydantic import BaseModel, Field

from pipeline.stream.partition import ProcessingRules
from pipeline.stream.sla import SlaPolicy
from pipeline.stream.spikes import SpikeRules
from schemas import MAX_CLOCK_SKEW_S


class ProcessorSettings(BaseModel):
    app_id: str = Field(
        default="community-pulse",
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        description="Consumer group of the workers and prefix of their changelog topics.",
    )
    group_instance_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]{1,200}$",
        description="a static member id, unique per worker and kept across its restarts: a worker that "
        "restarts within the session timeout takes its partitions back at once, without a rebalance of the "
        "group (unset: a new member each start, whose partitions wait for the old one's session to expire)",
    )
    allowed_lateness_s: float = Field(default=120.0, ge=0, le=86_400)
    sla_default_s: float = Field(default=3_600.0, gt=0, le=30 * 86_400)
    sla_per_community_s: dict[str, float] = Field(default_factory=dict)
    at_risk_fraction: float | None = Field(default=0.8, gt=0, lt=1)
    sla_grace_s: float = Field(default=1.0, ge=0, le=3_600)
    live_lag_s: float = Field(default=300.0, ge=0, le=86_400)
    live_grace_s: float = Field(
        default=0.25,
        ge=0,
        le=3_600,
        description="on a live stream, an SLA is judged this long after its deadline by the wall clock: a "
        "reply still on its way then comes as `resolved`",
    )
    tick_interval_s: float = Field(
        default=0.25,
        gt=0,
        le=60,
        description="the workers' wall-clock beat: how late after its deadline a live alert may fire",
    )
    rolling_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=3_600,
        description="how often a worker publishes the rolling totals of the posts that changed since (on the "
        "beat that passes it): each costs a pass over the post's last day of minutes",
    )
    batch_messages: int = Field(
        default=64,
        ge=1,
        le=10_000,
        description="messages processed before their windows are emitted and their state persisted, once",
    )
    batch_wait_s: float = Field(
        default=0.05,
        gt=0,
        le=10,
        description="the longest a batch waits to fill: what a trickle of messages adds to latency",
    )
    commit_interval_s: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="how often offsets are committed, after the outputs and changelog are flushed: a backlog "
        "is done only once committed, so it waits for the next commit (1M events in `pulse bench`, "
        "alternating: 100.2-101.8k events/s with 0.25 s and 0.5 s, 94.6-101.8k with 1 s)",
    )
    standby_replicas: int = Field(
        default=0,
        ge=0,
        le=8,
        description="warm copies of each partition's state on other workers (faust feeds each changelog "
        "record through its whole consumer path: measured on 300,000 events, 2 workers with 1 copy used "
        "7 s of CPU where they used 2-2.3 s without)",
    )
    progress_log_interval_s: float = Field(
        default=30.0,
        gt=0,
        le=3_600,
        description="how often the worker logs, per input partition, the offsets processed and committed",
    )
    recovery_stall_s: float = Field(
        default=120.0,
        ge=10,
        le=3_600,
        description="how long a worker's state recovery may receive no changelog record, with records left "
        "to read, before the worker stops with an error to be started again",
    )
    delivery_stall_s: float = Field(
        default=60.0,
        ge=10,
        le=3_600,
        description="how long the worker's producer may take to deliver what it holds before an offset "
        "commit; then the worker stops with an error, to be started again",
    )
    spike_alerts: bool = Field(
        default=True, description="raise `engagement_spike` alerts (docs/alerts.md has the definition)"
    )
    spike_window_s: float = Field(
        default=600.0,
        ge=60,
        le=86_400,
        description="the span a post's engagement is summed over to judge a spike (whole minutes)",
    )
    spike_factor: float = Field(
        default=10.0,
        gt=1,
        le=10_000,
        description="a spike is engagement this many times what the post's age and its own past predict",
    )
    spike_min_events: int = Field(
        default=50,
        ge=1,
        description="the floor: fewer likes, comments and reposts in the window than this never alert",
    )
    spike_min_age_s: float = Field(
        default=1_800.0,
        ge=600,
        le=43_200,
        description="posts younger than this are not judged: they have no past to scale the expectation by",
    )
    session_timeout_s: float = Field(
        default=30.0,
        ge=6,
        le=300,
        description="how long the group waits for a silent worker before moving its partitions",
    )

    def rules(self, max_clock_skew_s: float = MAX_CLOCK_SKEW_S) -> ProcessingRules:
        """The judgement calls; `max_clock_skew_s` is the pipeline-wide setting (PULSE_MAX_CLOCK_SKEW_S)."""
        return ProcessingRules(
            allowed_lateness_ms=int(self.allowed_lateness_s * 1000),
            sla=SlaPolicy(
                default_s=self.sla_default_s,
                per_community_s=dict(self.sla_per_community_s),
                at_risk_fraction=self.at_risk_fraction,
            ),
            sla_grace_ms=int(self.sla_grace_s * 1000),
            live_lag_ms=int(self.live_lag_s * 1000),
            live_grace_ms=int(self.live_grace_s * 1000),
            rolling_every_ms=int(self.rolling_interval_s * 1000),
            max_clock_skew_ms=int(max_clock_skew_s * 1000),
            spikes=SpikeRules(
                window_ms=round(self.spike_window_s / 60) * 60_000,
                factor=self.spike_factor,
                min_events=self.spike_min_events,
                min_age_ms=int(self.spike_min_age_s * 1000),
            )
            if self.spike_alerts
            else None,
        )
