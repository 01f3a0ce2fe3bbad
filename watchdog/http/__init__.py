"""The daemon's HTTP side: the push API (SPEC 6), /healthz, /metrics and the e-mail
acknowledgement pages, as an app the daemon builds with `create_app(AppContext(...))` and
serves with `embedded_server(app, settings.config.http.listen)`.

Only the store's named functions reach the database from here (STYLE.md).
"""

from watchdog.http.app import AppContext, EmbeddedServer, bind, create_app, embedded_server
from watchdog.http.metrics import HealthState, Metrics

__all__ = [
    "AppContext",
    "EmbeddedServer",
    "HealthState",
    "Metrics",
    "bind",
    "create_app",
    "embedded_server",
]
