"""The file channel (SPEC 7): one `.eml` or `.json` per message in a folder.

The embedded default: nothing to set up, and an admin sees exactly what would have been sent
(open the `.eml` in a mail client). Files are named by creation time (UTC, so they sort the same
whatever zone the instant came in) and message id, written to a temporary name and renamed, so a
reader never sees half a file and a retry of the same message replaces its file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import tempfile
import unicodedata
from datetime import UTC, datetime
from email.utils import format_datetime, parseaddr
from pathlib import Path

from watchdog.channels import Outgoing, Result, Sent, Transient
from watchdog.channels.webhook import webhook_body
from watchdog.config.models import FileChannelConfig

DEFAULT_SENDER = "tthc-watchdog <watchdog@localhost>"


def header_safe(value: str | None) -> str:
    """A header value on one line: CR, LF and other control characters become spaces, so no
    case field can start a header of its own."""
    text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in value or "")
    return " ".join(text.split())


def build_eml(message: Outgoing, sender: str = DEFAULT_SENDER) -> bytes:
    """The RFC 5322 message the e-mail channel would send (its composer, 8bit bodies, CRLF):
    text and HTML alternatives, the attachments, our Message-ID, and the outbox id in
    X-Watchdog-Id."""
    # imported here: a file-only installation does not load the SMTP client at start
    from watchdog.channels.email import address_header, check_address, mime_body, unstructured

    def mailbox(name: str, name_value: str | None, addr: str | None) -> bytes | None:
        try:
            return address_header(name, [(header_safe(name_value), check_address(addr or ""))])
        except ValueError:
            return None

    sender_name, sender_addr = parseaddr(header_safe(sender))
    r = message.recipient
    to = mailbox("To", r.name, header_safe(r.email)) if r.email else None
    head = [
        mailbox("From", sender_name, sender_addr) or mailbox("From", *parseaddr(DEFAULT_SENDER)),
        # a bare recipient id (no e-mail known), or an address that is none, is written as text
        to or unstructured("To", header_safe(r.email or r.id)),
        unstructured("Subject", header_safe(message.subject)),
        f"Date: {format_datetime(_aware(message.created_at))}\r\n".encode("ascii"),
    ]
    if message.message_id:
        head.append(unstructured("Message-ID", header_safe(message.message_id)))
    head.append(f"X-Watchdog-Id: {int(message.id)}\r\n".encode("ascii"))
    if message.stages:
        head.append(unstructured("X-Watchdog-Stages", header_safe(", ".join(message.stages))))
    return b"".join(h for h in head if h) + mime_body(
        message.text, message.html or None, message.attachments, True
    )


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def file_name(message: Outgoing, ext: str) -> str:
    """`20261203-011500-42-chuyenvien.eml`: UTC creation time, message id, recipient id."""
    stamp = _aware(message.created_at).astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    who = re.sub(r"[^A-Za-z0-9._@-]+", "_", message.recipient.id).strip("._")[:64] or "x"
    return f"{stamp}-{message.id}-{who}.{ext}"


class FileChannel:
    """Writes each message into `config.dir` (relative to `base_dir`, the configuration's
    folder)."""

    name = "file"

    def __init__(
        self, config: FileChannelConfig, base_dir: Path, *, sender: str = DEFAULT_SENDER
    ) -> None:
        folder = Path(config.dir).expanduser()
        self.dir = folder if folder.is_absolute() else Path(base_dir) / folder
        self.format = config.format
        self.sender = sender

    async def send(self, message: Outgoing) -> Result:
        path = self.dir / file_name(message, self.format)
        try:
            data = self._content(message)
            await asyncio.to_thread(_write_atomically, path, data)
        except OSError as e:
            return Transient(f"cannot write {path}: {e.strerror or e}")
        return Sent(provider_id=str(path))

    def _content(self, message: Outgoing) -> bytes:
        if self.format == "json":
            body = json.dumps(webhook_body(message), ensure_ascii=False, indent=2, default=str)
            return (body + "\n").encode("utf-8")
        return build_eml(message, self.sender)

    async def aclose(self) -> None:
        return None


def _write_atomically(path: Path, data: bytes) -> None:
    """Temp file in the same folder (a dot name readers skip), fsync, then rename over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
