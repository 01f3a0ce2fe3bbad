"""The e-mail channel: one SMTP transaction per message, answered as Sent/Transient/Permanent.

Each `send` opens its own connection (the aiosmtplib maintainer's advice, cole/aiosmtplib#243)
and keeps nothing between calls, so the outbox may run several sends at once and a server that
drops idle connections never bites. TLS is mapped explicitly: `starttls` demands the upgrade and
refuses to go on in clear (aiosmtplib's default only upgrades when offered, which an attacker can
strip).
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import re
import secrets
import ssl
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from aiosmtplib import (
    SMTP,
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPException,
    SMTPHeloError,
    SMTPNotSupported,
    SMTPRecipientsRefused,
    SMTPResponse,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from watchdog.channels import Attachment, Outgoing, Permanent, Result, Sent, Transient

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
    """The addresses of a message, each checked (ValueError before anything is connected)."""
    return [check_address(part.strip()) for part in address.split(",") if part.strip()]


# ----- composing the message -----------------------------------------------------------------
#
# The RFC 5322 bytes are written here directly: `EmailMessage` with `policy.SMTP` spent ~5 ms a
# message (header parsing and refolding, charset choice), most of the pipeline's CPU time.
# Every header value is one line (control characters become spaces), non-ASCII text goes out
# as RFC 2047 encoded words, addresses are checked against RFC 5322 before anything is written,
# and bodies are 7bit, 8bit (when the server takes 8BITMIME) or base64.

_CRLF = b"\r\n"
_ASCII_ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~\\-"  # RFC 5322 atext
_ATEXT = _ASCII_ATEXT + "\u0080-\U0010ffff"  # and RFC 6532 UTF-8 (SMTPUTF8 addresses)
_DOT_ATOM = rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*"
_QUOTED = r'"(?:[^"\\\x00-\x1f\x7f]|\\[^\x00-\x1f\x7f])*"'
_DOMAIN_LITERAL = r"\[[!-Z^-~]*\]"
_ADDR_SPEC = re.compile(rf"(?:{_DOT_ATOM}|{_QUOTED})@(?:{_DOT_ATOM}|{_DOMAIN_LITERAL})")
_PHRASE = re.compile(rf"[{_ASCII_ATEXT}]+(?: [{_ASCII_ATEXT}]+)*")  # atoms and single spaces
_TOKEN = re.compile(r"[A-Za-z0-9!#$&^_.+\-]+")  # a MIME type or subtype
_LINE = 76  # longest header line we write (RFC 2047 wants <= 76 with encoded words)
_MAX_BODY_LINE = 998  # RFC 5321/5322: octets a line may hold, CRLF excluded


def check_address(addr: str) -> str:
    """The address when it is a plain RFC 5322 addr-spec with nothing around it; ValueError
    otherwise (a line break, a second address, a display name, a control character)."""
    if not _ADDR_SPEC.fullmatch(addr) or not addr.isprintable():
        raise ValueError(f"invalid e-mail address: {addr!r}")
    return addr


def _words(text: str, room: int) -> list[str]:
    """`text` as RFC 2047 B encoded words (UTF-8), the first fitting in `room` characters and
    the others in a folded line of their own; never splits a character."""
    out: list[str] = []
    chunk: list[str] = []
    size = 0
    limit = max(1, (room - 12) // 4) * 3  # "=?utf-8?b?" + base64 + "?="
    for ch in text:
        n = len(ch.encode("utf-8"))
        if size + n > limit and chunk:
            out.append(_word("".join(chunk)))
            chunk, size = [], 0
            limit = (_LINE - 1 - 12) // 4 * 3
        chunk.append(ch)
        size += n
    if chunk or not out:
        out.append(_word("".join(chunk)))
    return out


def _word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


def _fold(name: str, pieces: list[str], sep: str = " ") -> bytes:
    """`Name: piece piece ...` folded before a piece that would pass the line length."""
    line = name + ":"
    lines = []
    for i, piece in enumerate(pieces):
        glue = sep if i else " "
        if i and len(line) + len(glue) + len(piece) > _LINE:
            lines.append(line + glue.rstrip())
            line = " " + piece
        else:
            line += glue + piece
    lines.append(line)
    return "\r\n".join(lines).encode("utf-8") + _CRLF


def unstructured(name: str, value: str) -> bytes:
    """A header of free text (Subject, Message-ID, X- headers), on one logical line."""
    value = _one_line(value)
    words = value.split(" ")
    if value.isascii() and "=?" not in value and max(map(len, words)) <= _MAX_BODY_LINE // 2:
        return _fold(name, [w for w in words if w] or [""])  # a long word stays whole
    return _fold(name, _words(value, _LINE - len(name) - 2))


def _phrase(name: str, room: int) -> list[str]:
    """A display name as header pieces: atoms as they are, other ASCII quoted, the rest
    encoded."""
    if not name:
        return []
    if name.isascii() and "=?" not in name and len(name) < _LINE // 2:
        if _PHRASE.fullmatch(name):
            return name.split(" ")
        return ['"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"']
    return _words(name, room)


def address_header(name: str, mailboxes: Sequence[tuple[str, str]]) -> bytes:
    """`To:` / `From:` with (display name, addr-spec) pairs; the addresses must have passed
    `check_address`, the names are made one line here."""
    pieces: list[str] = []
    for i, (display, addr) in enumerate(mailboxes):
        comma = "," if i < len(mailboxes) - 1 else ""
        display = _one_line(display)
        if display:
            pieces += _phrase(display, _LINE - len(name) - 2)
            pieces.append(f"<{addr}>{comma}")
        else:
            pieces.append(f"{addr}{comma}")
    return _fold(name, pieces)


def _mime_type(content_type: str) -> str:
    maintype, _, subtype = content_type.partition("/")
    maintype, subtype = maintype.strip().lower(), subtype.split(";")[0].strip().lower()
    if maintype == "multipart" or not _TOKEN.fullmatch(maintype) or not _TOKEN.fullmatch(subtype):
        return "application/octet-stream"
    return f"{maintype}/{subtype}"


def _base64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", _CRLF)


def text_part(subtype: str, text: str, eight_bit: bool) -> bytes:
    """A text/* entity (headers and body) in UTF-8: 7bit when it is ASCII, 8bit when the
    receiver takes it, base64 otherwise; lines end in CRLF (the canonical form)."""
    data = text.encode("utf-8")
    lines = data.splitlines()
    longest = max(map(len, lines), default=0)
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: '
    if longest <= _MAX_BODY_LINE and data.isascii() and b"\0" not in data:
        return (head + "7bit\r\n\r\n").encode() + _CRLF.join(lines) + _CRLF
    if longest <= _MAX_BODY_LINE and eight_bit and b"\0" not in data:
        return (head + "8bit\r\n\r\n").encode() + _CRLF.join(lines) + _CRLF
    return (head + "base64\r\n\r\n").encode() + _base64(_CRLF.join(lines) + _CRLF)


def attachment_part(attachment: Attachment) -> bytes:
    filename = _one_line(attachment.filename) or "attachment"
    if filename.isascii() and len(filename) < 60 and _TOKEN.fullmatch(filename.replace(" ", "")):
        disposition = f'attachment; filename="{filename}"'
    else:  # RFC 2231: UTF-8, percent-encoded, continued over lines
        encoded = quote(filename, safe="!#$&+-.^_`|~")
        parts, i = [], 0
        while i < len(encoded):
            end = min(i + 60, len(encoded))
            while "%" in encoded[end - 2 : end] and end < len(encoded):  # keep %XX whole
                end -= 1
            parts.append(encoded[i:end])
            i = end
        if len(parts) == 1:
            disposition = f"attachment; filename*=utf-8''{parts[0]}"
        else:
            disposition = "attachment;" + ";".join(
                f"\r\n filename*{n}*={'utf-8' + chr(39) * 2 if n == 0 else ''}{p}"
                for n, p in enumerate(parts)
            )
    head = (
        f"Content-Type: {_mime_type(attachment.content_type)}\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        f"Content-Disposition: {disposition}\r\n\r\n"
    )
    return head.encode("ascii") + _base64(attachment.data)


def multipart(subtype: str, parts: Sequence[bytes]) -> bytes:
    """A multipart/* entity around whole entities, with a boundary none of them contains."""
    while True:
        boundary = f"==============={secrets.token_hex(10)}=="
        marker = b"--" + boundary.encode("ascii")
        if not any(marker in p for p in parts):
            break
    out = [f'Content-Type: multipart/{subtype};\r\n boundary="{boundary}"\r\n\r\n'.encode()]
    for p in parts:
        out += [marker, _CRLF, p, _CRLF]
    out += [marker, b"--", _CRLF]
    return b"".join(out)


def mime_body(
    text: str, html: str | None, attachments: Sequence[Attachment], eight_bit: bool
) -> bytes:
    """What follows our headers: MIME-Version, then the text (with its HTML alternative) and
    the attachments (multipart/mixed)."""
    body = text_part("plain", text, eight_bit)
    if html is not None:
        body = multipart("alternative", [body, text_part("html", html, eight_bit)])
    if attachments:
        body = multipart("mixed", [body, *(attachment_part(a) for a in attachments)])
    return b"MIME-Version: 1.0\r\n" + body


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
        name, addr = email.utils.parseaddr(_one_line(config.from_))
        self._sender = addr or config.from_
        try:
            self._from: bytes | ValueError = address_header("From", [(name, check_address(addr))])
        except ValueError as e:  # said on every send: the message cannot be written
            self._from = ValueError(f"from: {e}")

    def build(self, message: Outgoing, *, eight_bit: bool = True) -> bytes:
        """The message as it goes on the wire, CRLF line ends (public: an .eml writer can reuse
        it). `eight_bit`: the server takes 8BITMIME, so UTF-8 text may go unencoded.

        Raises ValueError for an address that cannot be written.
        """
        head = self._headers(message, _recipients(message.address))
        return head + mime_body(message.text, message.html, message.attachments, eight_bit)

    def _headers(self, message: Outgoing, recipients: list[str]) -> bytes:
        if not recipients:
            raise ValueError("no e-mail address")
        if isinstance(self._from, ValueError):
            raise self._from
        if len(recipients) == 1:
            to = address_header("To", [(message.recipient.name or "", recipients[0])])
        else:
            to = address_header("To", [("", r) for r in recipients])
        date = email.utils.format_datetime(datetime.now().astimezone())
        return b"".join(
            (
                self._from,
                to,
                unstructured("Subject", message.subject),
                f"Date: {date}\r\n".encode("ascii"),
                unstructured("Message-ID", message.message_id),
                f"X-Watchdog-Id: {int(message.id)}\r\n".encode("ascii"),
            )
        )

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
        try:  # everything checked and written before connecting
            recipients = _recipients(message.address)
            head = self._headers(message, recipients)
            body = mime_body(message.text, message.html, message.attachments, True)
        except (ValueError, TypeError) as exc:
            return Permanent(_short(f"cannot write the message: {exc}"))
        options = []
        if not (self._sender + "".join(recipients)).isascii():
            options.append("SMTPUTF8")  # aiosmtplib refuses it if the server cannot
        smtp = self._client()
        try:
            await smtp.connect()
            if not body.isascii():  # 8bit text: only to a server that says it takes it
                await _hello(smtp)
                if smtp.supports_extension("8bitmime"):
                    options.append("BODY=8BITMIME")
                else:
                    body = mime_body(message.text, message.html, message.attachments, False)
            refused, reply = await smtp.sendmail(
                self._sender, recipients, head + body, mail_options=options
            )
        except (SMTPException, OSError, ValueError) as exc:  # OSError covers timeouts and TLS
            return _failure(exc, self._config.tls)
        finally:
            await _quit(smtp)
        return _delivered(refused, reply)

    async def aclose(self) -> None:
        """Nothing to release: no connection outlives a send."""


async def _hello(smtp: SMTP) -> None:
    """EHLO (HELO for an old server) now, as sendmail would, to read the extensions first."""
    if smtp.is_ehlo_or_helo_needed:
        try:
            await smtp.ehlo()
        except SMTPHeloError:
            if not smtp.is_connected:
                raise
            await smtp.helo()


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
