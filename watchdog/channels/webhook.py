"""The webhook channel (SPEC 7): a signed JSON POST, for Zalo OA bridges and chat gateways.

The body carries the message's id, which stays the same on every retry, so a receiver that saw
a delivery whose answer got lost can drop the repeat. The signature covers the timestamp and the
exact bytes sent, so a receiver checks both with `verify_signature` before trusting anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from watchdog.channels import Outgoing, Permanent, Result, Sent, Transient
from watchdog.config.models import WebhookChannelConfig

SIGNATURE_PREFIX = "sha256="
TRANSIENT_STATUS = frozenset({408, 429})


def webhook_body(message: Outgoing) -> dict[str, Any]:
    """The JSON object of SPEC 7 (also what the file channel writes as `.json`)."""
    r = message.recipient
    return {
        "id": message.id,
        "created_at": message.created_at.isoformat(),
        "recipient": {
            "id": r.id,
            "name": r.name,
            "unit": r.unit,
            "email": r.email,
            "telegram": r.telegram,
        },
        "stages": list(message.stages),
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "cases": [dict(c) for c in message.cases],
    }


def encode_body(message: Outgoing) -> bytes:
    """The bytes we sign and send: UTF-8 JSON, Vietnamese kept readable."""
    return json.dumps(
        webhook_body(message), ensure_ascii=False, separators=(",", ":"), default=str
    ).encode("utf-8")


def sign(secret: str, timestamp: str | int, body: bytes | str) -> str:
    """The X-Watchdog-Signature value: "sha256=" + hex HMAC-SHA256 of `timestamp.body`."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + raw, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: bytes | str,
    header: str | None,
    *,
    max_age: float | None = None,
    now: float | None = None,
) -> bool:
    """Whether `header` is our signature of this timestamp and body (compared in constant
    time). With `max_age` (seconds), an older or far-future timestamp fails too: a receiver
    should refuse replays of a captured request."""
    if not header:
        return False
    if max_age is not None:
        try:
            age = (time.time() if now is None else now) - int(timestamp)
        except (TypeError, ValueError):
            return False
        if abs(age) > max_age:
            return False
    return hmac.compare_digest(sign(secret, timestamp, body), header.strip())


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After in seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class WebhookChannel:
    """POSTs each message to the configured URL; one HTTP client for the channel's life."""

    name = "webhook"

    def __init__(
        self, config: WebhookChannelConfig, *, client: httpx.AsyncClient | None = None
    ) -> None:
        self.config = config
        self._timeout = config.timeout.total_seconds()
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)

    async def send(self, message: Outgoing) -> Result:
        body = encode_body(message)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "tthc-watchdog",
            "X-Watchdog-Id": str(message.id),
            "X-Watchdog-Timestamp": timestamp,
            "X-Watchdog-Signature": sign(self.config.secret, timestamp, body),
        }
        try:
            response = await self._client.post(
                self.config.url, content=body, headers=headers, timeout=self._timeout
            )
        except httpx.TimeoutException as e:
            return Transient(f"webhook timed out after {self._timeout:g} s: {type(e).__name__}")
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
            return Permanent(f"webhook URL {self.config.url!r} is unusable: {e}")
        except httpx.TransportError as e:
            return Transient(f"webhook unreachable: {type(e).__name__}: {e}")
        return self._judge(response)

    @staticmethod
    def _judge(response: httpx.Response) -> Result:
        status = response.status_code
        if 200 <= status < 300:
            return Sent(provider_id=response.headers.get("X-Request-Id"))
        detail = f"webhook answered HTTP {status}"
        snippet = " ".join(response.text[:200].split())
        if snippet:
            detail += f": {snippet}"
        if status in TRANSIENT_STATUS or status >= 500:
            return Transient(detail, retry_after=retry_after(response.headers.get("Retry-After")))
        if 300 <= status < 400:
            where = response.headers.get("Location")
            return Permanent(detail + (f" (moved to {where}: fix the url)" if where else ""))
        return Permanent(detail)

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()
