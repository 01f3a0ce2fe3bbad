"""The e-mail channel: one SMTP transaction per message, answered as Sent/Transient/Permanent.

Each `send` opens its own connection (the aiosmtplib maintainer's advice, cole/aiosmtplib#243)
and keeps nothing between calls, so the outbox may run several sends at once and a server that
drops idle connections never bites. TLS is mapped explicitly: `starttls` demands the upgrade and
refuses to go on in clear (aiosmtplib's default only upgrades when offered, which an attacker can
strip).
"""

from __future__ import annotations

import contextlib
import email.errors
import email.policy
import email.utils
import ssl
import unicodedata
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from typing import TYPE_CHECKING

from aiosmtplib import (
    SMTP,
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPException,
    SMTPNotSupported,
    SMTPRecipientsRefused,
    SMTPResponse,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from watchdog.channels import Outgoing, Permanent, Result, Sent, Transient

if TYPE_CHECKING:
    from watchdog.config.models import EmailChannelConfig

_MAX_ERROR = 300  # history keeps the error; a server's multi-line essay is not needed there


def _one_line(value: str) -> str:
    """Replace every character a header parser may take as a line break by a space.

    CR and LF would let a subject or a name add headers (`\\r\\nBcc: ...`); Python's
    `splitlines` also breaks on \\v, \\f, \\x1c-\\x1e, \\x85, U+2028 and U+2029, so every
    control character and line/paragraph separator goes.
    """
    return "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in value
    ).strip()


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


def _reply(code: int, text: str) -> str:
    return _short(f"{code} {text}")


def _by_code(code: int, error: str) -> Result:
    """4xx (and anything odd below 500) may pass later; 5xx will not."""
    return Permanent(error) if 500 <= code < 600 else Transient(error)


def _recipients(address: str) -> list[str]:
    return [part.strip() for part in address.split(",") if part.strip()]


class EmailChannel:
    """Delivers rendered messages over SMTP with aiosmtplib; never raises for a delivery problem."""

    name = "email"

    def __init__(
        self,
        config: EmailChannelConfig,
        *,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        self._config = config
        self._ssl_context = ssl_context  # None: the system's trust store, hostname checked
        self._local_hostname = local_hostname  # None: aiosmtplib asks socket.getfqdn()
        self._sender = email.utils.parseaddr(_one_line(config.from_))[1] or config.from_

    def build(self, message: Outgoing) -> EmailMessage:
        """The MIME message as it goes on the wire (public: an .eml writer can reuse it).

        Raises ValueError (or an `email.errors` error) for an address that cannot be written.
        """
        recipients = _recipients(message.address)
        if not recipients:
            raise ValueError("no e-mail address")
        msg = EmailMessage(policy=email.policy.SMTP)
        msg["From"] = _one_line(self._config.from_)
        name = _one_line(message.recipient.name or "")
        if len(recipients) == 1:
            msg["To"] = Address(display_name=name, addr_spec=recipients[0])
        else:
            msg["To"] = [Address(addr_spec=r) for r in recipients]
        msg["Subject"] = _one_line(message.subject)
        msg["Date"] = email.utils.format_datetime(datetime.now().astimezone())
        msg["Message-ID"] = _one_line(message.message_id)
        msg["X-Watchdog-Id"] = str(message.id)
        msg.set_content(message.text)
        if message.html is not None:
            msg.add_alternative(message.html, subtype="html")
        for attachment in message.attachments:
            maintype, _, subtype = attachment.content_type.partition("/")
            if not maintype or not subtype or maintype == "multipart":
                maintype, subtype = "application", "octet-stream"
            msg.add_attachment(
                attachment.data,
                maintype=maintype.strip(),
                subtype=subtype.split(";")[0].strip(),
                filename=_one_line(attachment.filename) or "attachment",
            )
        return msg

    def _client(self) -> SMTP:
        """A fresh client per send; the timeout lives here because connect() forgets its own."""
        tls = self._config.tls
        return SMTP(
            hostname=self._config.host,
            port=self._config.port,
            username=self._config.user,
            password=self._config.password if self._config.user is not None else None,
            local_hostname=self._local_hostname,
            timeout=self._config.timeout.total_seconds(),
            use_tls=tls == "implicit",
            start_tls=tls == "starttls",  # never None: that would be opportunistic
            tls_context=self._ssl_context,
        )

    async def send(self, message: Outgoing) -> Result:
        try:
            msg = self.build(message)
        except (ValueError, TypeError, email.errors.MessageError) as exc:
            return Permanent(_short(f"cannot write the message: {exc}"))
        recipients = _recipients(message.address)
        smtp = self._client()
        try:
            await smtp.connect()
            refused, reply = await smtp.send_message(
                msg, sender=self._sender, recipients=recipients
            )
        except (SMTPException, OSError, ValueError) as exc:  # OSError covers timeouts and TLS
            return _failure(exc, self._config.tls)
        finally:
            await _quit(smtp)
        return _delivered(refused, reply)

    async def aclose(self) -> None:
        """Nothing to release: no connection outlives a send."""


def _delivered(refused: dict[str, SMTPResponse], reply: str) -> Sent:
    """At least one recipient took it; the refused ones go to history as a note."""
    note = None
    if refused:
        note = _short(
            "refused: "
            + ", ".join(f"{addr} ({_reply(r.code, r.message)})" for addr, r in refused.items())
        )
    return Sent(provider_id=_short(reply) or None, note=note)


def _failure(exc: Exception, tls: str) -> Result:
    """Sort an aiosmtplib or socket error into Transient or Permanent with a short reason."""
    if isinstance(exc, SMTPRecipientsRefused):
        detail = ", ".join(f"{r.recipient} ({_reply(r.code, r.message)})" for r in exc.recipients)
        error = _short(f"all recipients refused: {detail}")
        if exc.recipients and all(400 <= r.code < 500 for r in exc.recipients):
            return Transient(error)
        return Permanent(error)
    if isinstance(exc, SMTPAuthenticationError):
        return _by_code(exc.code, _short(f"authentication failed: SMTP {exc.code} {exc.message}"))
    if isinstance(exc, SMTPResponseException):
        return _by_code(exc.code, _short(f"SMTP {exc.code} {exc.message}"))
    if isinstance(exc, SMTPTimeoutError | TimeoutError):
        return Transient(_short(f"timed out: {exc}" if str(exc) else "timed out"))
    if isinstance(exc, SMTPConnectError | SMTPServerDisconnected):
        return Transient(_short(f"connection failed: {exc}"))
    if isinstance(exc, SMTPNotSupported):
        return Permanent(_short(f"server cannot take it: {exc}"))
    if isinstance(exc, SMTPException):
        # STARTTLS not offered, no usable AUTH mechanism: the setup, not the moment, is wrong.
        if "STARTTLS" in str(exc) and tls == "starttls":
            return Permanent("server offers no STARTTLS (tls: starttls); nothing sent in clear")
        return Permanent(_short(f"SMTP: {exc}"))
    if isinstance(exc, ssl.SSLError):
        return Transient(_short(f"TLS failed: {exc}"))
    if isinstance(exc, OSError):
        return Transient(_short(f"connection failed: {exc}"))
    # A ValueError: an address aiosmtplib will not put on a command line.
    return Permanent(_short(f"invalid address: {exc}"))


async def _quit(smtp: SMTP) -> None:
    """Say goodbye politely when we still can; the result of the send is already decided."""
    if smtp.is_connected:
        with contextlib.suppress(SMTPException, OSError):
            await smtp.quit()
    smtp.close()
