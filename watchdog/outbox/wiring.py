"""Putting delivery together from the settings: the renderer, the channels, one full pass.

The CLI (`run --once`, `send-test`) and the daemon use these, so they build the same things.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from watchdog.channels import Channel
from watchdog.clock import Clock
from watchdog.config import Settings
from watchdog.engine.rules import RuleSet
from watchdog.outbox.digests import DigestReport, send_due_digests
from watchdog.outbox.render import Renderer
from watchdog.outbox.sender import DeliveryReport, Sender
from watchdog.reports.schedule import enqueue_due_reports
from watchdog.shipped import shipped_path
from watchdog.store import Store
from watchdog.store.outbox import close_groups


def renderer_for(settings: Settings) -> Renderer:
    """Templates: the admin's `templates/` beside the config file first, then the shipped ones."""
    dirs = []
    own = settings.resolve("templates")
    if own.is_dir():
        dirs.append(own)
    dirs.append(shipped_path("templates"))
    telegram = settings.channels.telegram
    mask_on = ["webhook"]
    if telegram is None or telegram.mask_applicant:
        mask_on.append("telegram")
    return Renderer(dirs, mask_on=mask_on)


def open_channels(settings: Settings) -> dict[str, Channel]:
    """The configured channels, built once (each imports its library only when configured)."""
    cfg = settings.channels
    out: dict[str, Channel] = {}
    if cfg.email is not None:
        from watchdog.channels.email import EmailChannel

        out["email"] = EmailChannel(cfg.email)
    if cfg.telegram is not None:
        from watchdog.channels.telegram import TelegramChannel

        out["telegram"] = TelegramChannel(cfg.telegram)
    if cfg.webhook is not None:
        from watchdog.channels.webhook import WebhookChannel

        out["webhook"] = WebhookChannel(cfg.webhook)
    if cfg.file is not None:
        from watchdog.channels.file import FileChannel

        out["file"] = FileChannel(cfg.file, settings.base_dir)
    return out


async def close_channels(channels: dict[str, Channel]) -> None:
    for channel in channels.values():
        await channel.aclose()


@dataclass
class PassReport:
    digests: DigestReport = field(default_factory=DigestReport)
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    reports: int = 0  # scheduled reports written


def deliver_once(
    store: Store,
    settings: Settings,
    rules: RuleSet,
    clock: Clock,
    *,
    channels: dict[str, Channel] | None = None,
    flush: bool = True,
    only: list[int] | None = None,
) -> PassReport:
    """Digests and scheduled reports due now, then every message due now: the delivery half of
    `run --once`. With
    `flush`, alerts whose group window is still open go too (a single pass has no later moment
    to group into); messages held for office hours stay held. With `only`, those messages
    alone are sent, and no digest is written (`send-test`)."""
    renderer = renderer_for(settings)

    async def run() -> PassReport:
        own = channels if channels is not None else open_channels(settings)
        try:
            report = PassReport()
            now: datetime = clock.now()
            if only is None:
                report.digests = send_due_digests(store, settings, rules, renderer, now)
                report.reports = enqueue_due_reports(store, settings, now)
                if flush:
                    close_groups(store, now)
            sender = Sender(store, settings, renderer, own, clock.now)
            report.delivery = await sender.deliver_due(only=only)
            return report
        finally:
            if channels is None:
                await close_channels(own)

    return asyncio.run(run())
