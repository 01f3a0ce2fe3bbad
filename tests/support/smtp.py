"""A real SMTP server on loopback (aiosmtpd) that records what it receives and fails on cue.

aiosmtpd's `Controller` cannot take port 0 (aiosmtpd#388) and runs its own thread; this one
runs in the test's event loop on a free port, so channel, outbox and benchmark tests can start
as many as they like. Use it as `async with SmtpServer(...) as server:`; failures are scripted
with plain SMTP replies (`server.mail_replies`, `server.refuse[...]`, `server.data_replies`,
`server.data_delay`).

    async with SmtpServer() as server:
        server.data_replies.append("451 4.3.0 try later")  # the next DATA fails, then 250
        ...
        [mail] = server.received
        mail.message()["Subject"]
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections import deque
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP as SMTPProtocol
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True)
class Received:
    """One accepted DATA: the envelope as the server saw it and the raw bytes."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls: bool  # the message travelled encrypted (STARTTLS or implicit TLS)
    login: str | None  # the AUTH user, when the client logged in

    def message(self) -> EmailMessage:
        """The parsed message with \\n line ends, as a mailbox would store it."""
        parsed = BytesParser(policy=policy.default).parsebytes(self.data.replace(b"\r\n", b"\n"))
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SmtpServer:
    """Loopback SMTP server; `port` is known once started.

    starttls: offer STARTTLS with this server context. implicit_tls: speak TLS from the first
    byte (port 465 style). users: offer AUTH (also on plaintext) and accept these logins.
    """

    starttls: ssl.SSLContext | None = None
    implicit_tls: ssl.SSLContext | None = None
    users: dict[str, str] | None = None
    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    mail_froms: list[str] = field(default_factory=list)  # every MAIL FROM, even if DATA failed
    mail_replies: deque[str] = field(default_factory=deque)  # next MAIL FROM replies, one each
    refuse: dict[str, str] = field(default_factory=dict)  # RCPT address -> reply ("550 ...")
    data_replies: deque[str] = field(default_factory=deque)  # next DATA replies, one each
    data_delay: float = 0.0  # seconds DATA waits before answering (timeouts)
    connections: int = 0
    _server: asyncio.Server | None = None
    _live: set[SMTPProtocol] = field(default_factory=set)
    _arrived: asyncio.Event | None = None
    _queued: int = 0

    async def __aenter__(self) -> SmtpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._arrived = asyncio.Event()

        def protocol() -> SMTPProtocol:
            self.connections += 1
            proto = SMTPProtocol(
                _Handler(self),
                hostname="localhost",
                loop=loop,
                tls_context=self.starttls,
                # With users, AUTH is offered on plaintext too; without, only after STARTTLS
                # (and every login fails), as aiosmtpd does by default.
                auth_require_tls=self.users is None,
                authenticator=self._authenticate if self.users is not None else None,
            )
            self._live.add(proto)
            return proto

        self._server = await loop.create_server(
            protocol, self.host, self.port, ssl=self.implicit_tls
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop open connections (a sleeping handler is cancelled)."""
        if self._server is None:
            return
        self._server.close()
        for proto in self._live:
            if proto.transport is not None:
                proto.transport.close()
        self._live.clear()
        await self._server.wait_closed()
        await asyncio.sleep(0)  # let the closed connections' handler tasks finish
        self._server = None

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Wait until at least `count` messages arrived (for senders running in the background)."""
        assert self._arrived is not None, "start the server first"
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.received

    def _authenticate(
        self, server: SMTPProtocol, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword) or self.users is None:
            return AuthResult(success=False, handled=False)
        login = data.login.decode("utf-8", "replace")
        ok = self.users.get(login) == data.password.decode("utf-8", "replace")
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)

    def _deliver(self, server: SMTPProtocol, session: Session, envelope: Envelope) -> str:
        transport = server.transport
        raw = envelope.original_content or envelope.content or b""
        self.received.append(
            Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=raw if isinstance(raw, bytes) else raw.encode(),
                tls=transport is not None and transport.get_extra_info("ssl_object") is not None,
                login=session.auth_data if session.authenticated else None,
            )
        )
        assert self._arrived is not None
        self._arrived.set()
        self._queued += 1
        return f"250 2.0.0 Ok: queued as Q{self._queued}"


class _Handler:
    """aiosmtpd hooks: a hook returning a reply string is what the client receives."""

    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_MAIL(
        self, server: SMTPProtocol, session: Session, envelope: Envelope, address: str, options
    ) -> str:
        self.owner.mail_froms.append(address)
        if self.owner.mail_replies:
            return self.owner.mail_replies.popleft()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: SMTPProtocol, session: Session, envelope: Envelope, address: str, options
    ) -> str:
        if address in self.owner.refuse:
            return self.owner.refuse[address]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTPProtocol, session: Session, envelope: Envelope) -> str:
        if self.owner.data_delay:
            await asyncio.sleep(self.owner.data_delay)
        if self.owner.data_replies:
            return self.owner.data_replies.popleft()
        return self.owner._deliver(server, session, envelope)


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for localhost and 127.0.0.1 (openssl; the tests add no package)."""
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec"),
            *("-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def tls_contexts(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context that trusts only that server's self-signed certificate)."""
    cert, key = self_signed_certificate(folder)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client
