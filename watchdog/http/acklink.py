"""The "Đã nhận" link of an e-mail: a signed, expiring token naming one message.

`<message id>.<expiry, Unix seconds>.<signature>`, the signature being HMAC-SHA256 over the
purpose and both numbers, URL-safe base64 without padding. The purpose is part of what is
signed, so a signature made for another use of the same key (the Telegram button's
"ack:<id>:<sig>") is never accepted here, nor one of these there.

Opening the link (GET) only shows a page with a button; the button POSTs, and only that
acknowledges: mail scanners and link previews fetch links, they do not submit forms.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import quote

PURPOSE = b"tthc-watchdog/email-ack/v1"
DEFAULT_LIFETIME = timedelta(days=30)
_TOKEN = re.compile(r"^(\d{1,18})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$")


def _signature(key: bytes, message_id: int, expires: int) -> str:
    mac = hmac.new(key, PURPOSE + f":{message_id}:{expires}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def make_token(key: bytes, message_id: int, expires_at: datetime) -> str:
    """A token acknowledging `message_id` until `expires_at` (aware)."""
    if not key:
        raise ValueError("an acknowledgement key is needed")
    if message_id < 0:
        raise ValueError("a message id is never negative")
    expires = int(expires_at.timestamp())
    return f"{message_id}.{expires}.{_signature(key, message_id, expires)}"


@dataclass(frozen=True, slots=True)
class TokenCheck:
    outcome: Literal["valid", "expired", "invalid"]
    message_id: int | None = None  # set when the signature is ours (valid or expired)


def check_token(key: bytes, token: str, now: datetime) -> TokenCheck:
    """Whether `token` is ours and still valid at `now`. The signature is checked first, so a
    forged token is "invalid" whatever expiry it claims."""
    m = _TOKEN.match(token)
    if m is None or not key:
        return TokenCheck("invalid")
    message_id, expires = int(m[1]), int(m[2])
    if not hmac.compare_digest(_signature(key, message_id, expires), m[3]):
        return TokenCheck("invalid")
    if now.timestamp() >= expires:
        return TokenCheck("expired", message_id)
    return TokenCheck("valid", message_id)


def read_token(key: bytes, token: str, now: datetime) -> int | None:
    """The message id of a valid token; None when it is forged, malformed or expired."""
    found = check_token(key, token, now)
    return found.message_id if found.outcome == "valid" else None


def ack_url(public_url: str, key: bytes, message_id: int, expires_at: datetime) -> str:
    """The link an e-mail carries: `{public_url}/ack/{token}` (http.public_url)."""
    token = make_token(key, message_id, expires_at)
    return f"{public_url.rstrip('/')}/ack/{quote(token)}"
