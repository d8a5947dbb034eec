"""`PULSE_DASHBOARD__*`: the dashboard's settings (apart from its server, so reading every command's
settings does not load the web framework)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from pipeline.warehouse.dashboard.panels import PanelWindows


class DashboardSettings(BaseModel):
    """`PULSE_DASHBOARD__*`: where the dashboard listens and what its panels span."""

    host: str = "127.0.0.1"
    port: int = Field(default=8800, ge=0, le=65535, description="0: any free port")
    refresh_s: float = Field(default=2.0, ge=0.5, le=300, description="how often the page reads again")
    chart_window_s: float = Field(default=3 * 3600, ge=600, le=7 * 86_400)
    top_posts_window_s: float = Field(default=1800, ge=60, le=86_400)
    waiting_shown: int = Field(default=50, ge=1, le=1000)

    @property
    def windows(self) -> PanelWindows:
        return PanelWindows(self.chart_window_s, self.top_posts_window_s, self.waiting_shown)
