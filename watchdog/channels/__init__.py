"""Delivery channels: one module per channel (email, telegram, webhook, file), one interface.

A channel takes an `Outgoing` (a message already rendered, with its recipient and address) and
answers `Sent`, `Transient` or `Permanent`. It never raises for a delivery problem, and it knows
nothing of the store, the outbox, grouping or retries: the outbox decides what to do with the
answer (record it, back off and retry, or give up and tell the admin).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who a message is for: an official of the directory, or a bare e-mail address."""

    id: str  # official id, or the e-mail address itself
    name: str
    unit: str | None = None
    email: str | None = None
    telegram: str | None = None  # chat id


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to send, the same on every attempt (retries resend what was rendered)."""

    id: int  # the outbox message id: stays the same on every retry (webhook receivers dedupe)
    channel: str  # "email" | "telegram" | "webhook" | "file"
    address: str  # e-mail address(es, ", "-separated), Telegram chat id; webhook/file: recipient id
    recipient: Recipient
    stages: tuple[str, ...]
    subject: str
    text: str  # plain text; for Telegram: Telegram-HTML, case blocks separated by blank lines
    html: str | None  # e-mail's HTML part
    created_at: datetime
    message_id: str  # our RFC 5322 Message-ID ("<outbox-12.abc@host>"), kept in history
    cases: tuple[dict[str, Any], ...] = ()  # webhook case objects (SPEC 7), applicant masked
    attachments: tuple[Attachment, ...] = ()
    ack_data: str | None = None  # Telegram "Đã nhận" button callback data (<= 64 bytes)
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class Sent:
    provider_id: str | None = None  # SMTP queue id / Telegram message ids / HTTP id
    note: str | None = None  # something history should show (a partial refusal, a chat move)
    moved_to: str | None = None  # the address changed on the way (Telegram ChatMigrated)


@dataclass(frozen=True, slots=True)
class Transient:
    """Not delivered this time; try again (after `retry_after` seconds if the peer said so)."""

    error: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Permanent:
    """Never deliverable as it is; `unlink` says the address itself is gone (a blocked bot)."""

    error: str
    unlink: bool = False


Result = Sent | Transient | Permanent


class Channel(Protocol):
    name: str

    async def send(self, message: Outgoing) -> Result: ...

    async def aclose(self) -> None: ...
