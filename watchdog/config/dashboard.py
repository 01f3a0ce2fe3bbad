"""`dashboard:`: the web pages of the built-in HTTP server (issue 8). Imported by models.py."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from watchdog.config.base import Model, Span


class DashboardConfig(Model):
    enabled: bool = Field(
        True,
        description="Serve the dashboard at `/` of the HTTP server (accounts: `watchdog users "
        "add`)",
    )
    session: Span = Field(
        timedelta(hours=8), description="How long a sign-in lasts without activity"
    )
    login_attempts: int = Field(
        5,
        ge=1,
        description="Failed sign-ins allowed per account (and per address) in 15 minutes before "
        "further attempts wait",
    )
    secure_cookie: bool | None = Field(
        None,
        description="Mark the session cookie `Secure` (HTTPS only); unset = when `http."
        "public_url` starts with https://",
    )
