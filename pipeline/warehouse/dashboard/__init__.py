"""`pulse dashboard`: a web page for the community manager on duty, read from the warehouse.

- `panels`: what the page shows, read at one "now" (the SQL in `queries/`).
- `settings`: `PULSE_DASHBOARD__*`.
- `server`: the aiohttp server: the page, its static files (uPlot vendored under `static/vendor/`), the
  JSON API. Imported on its own (`pipeline.warehouse.dashboard.server`): the settings are read by every
  command, the web framework is needed by this one.
"""

from pipeline.warehouse.dashboard.panels import PanelWindows, read_panels
from pipeline.warehouse.dashboard.settings import DashboardSettings

__all__ = ["DashboardSettings", "PanelWindows", "read_panels"]
