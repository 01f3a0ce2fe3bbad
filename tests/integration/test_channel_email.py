"""The e-mail channel against a real aiosmtpd server on loopback (tests/support/smtp.py).

Every answer the outbox relies on is produced by a real SMTP exchange: delivery, 4xx/5xx replies,
partial refusals, a dead port, a slow server, STARTTLS and implicit TLS with a self-signed
certificate, AUTH, and header injection through the subject or the recipient's name.
"""

from __future__ import annotations

import asyncio
import email
import email.header
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.smtp import SmtpServer, openssl_available, tls_contexts
from watchdog.channels import Attachment, Outgoing, Permanent, Recipient, Sent, Transient
from watchdog.channels.email import EmailChannel
from watchdog.config.models import EmailChannelConfig

SUBJECT = "Cảnh báo: 2 hồ sơ sắp quá hạn — Sở Tư pháp"
TEXT = "Kính gửi ông Lê Văn Lãnh,\nHồ sơ 000.00.12.H01-250101-0001 còn 4 giờ làm việc.\n"
HTML = "<p>Kính gửi ông <b>Lê Văn Lãnh</b>,</p><p>Hồ sơ còn 4 giờ làm việc.</p>"

needs_openssl = pytest.mark.skipif(not openssl_available(), reason="needs the openssl command")


def config(port: int, **extra: Any) -> EmailChannelConfig:
    values = {
        "host": "127.0.0.1",
        "port": port,
        "tls": "none",
        "from": "Hệ thống cảnh báo TTHC <canhbao@example.vn>",
        "timeout": timedelta(seconds=5),
    }
    values.update(extra)
    return EmailChannelConfig.model_validate(values)


def outgoing(address: str = "lanh@example.vn", **extra: Any) -> Outgoing:
    values: dict[str, Any] = {
        "id": 42,
        "channel": "email",
        "address": address,
        "recipient": Recipient(id="lanhdao", name="Lê Văn Lãnh", unit="STP", email=address),
        "stages": ("sap_den_han",),
        "subject": SUBJECT,
        "text": TEXT,
        "html": HTML,
        "created_at": datetime(2025, 1, 6, 7, 30, tzinfo=UTC),
        "message_id": "<outbox-42.k3j@watchdog.example.vn>",
    }
    values.update(extra)
    return Outgoing(**values)


def run(test: Callable[..., Awaitable[None]], *args: Any) -> None:
    """pytest-asyncio is not a dependency: each test runs its own loop."""
    asyncio.run(test(*args))


def channel(cfg: EmailChannelConfig, **extra: Any) -> EmailChannel:
    return EmailChannel(cfg, local_hostname="watchdog.test", **extra)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_delivered_message_reads_back_whole() -> None:
    async def scenario() -> None:
        async with SmtpServer() as server:
            pdf = Attachment("bao-cao-tuần.pdf", "application/pdf", b"%PDF-1.4 fake\x00\xff")
            result = await channel(config(server.port)).send(outgoing(attachments=(pdf,)))

            assert isinstance(result, Sent)
            assert result.provider_id == "2.0.0 Ok: queued as Q1"
            assert result.note is None
            [mail] = server.received
            assert mail.mail_from == "canhbao@example.vn"
            assert mail.rcpt_tos == ("lanh@example.vn",)
            assert not mail.tls
            msg = mail.message()
            assert msg["Subject"] == SUBJECT
            assert msg["From"].addresses[0].display_name == "Hệ thống cảnh báo TTHC"
            assert msg["To"].addresses[0].display_name == "Lê Văn Lãnh"
            assert msg["To"].addresses[0].addr_spec == "lanh@example.vn"
            assert msg["Message-ID"] == "<outbox-42.k3j@watchdog.example.vn>"
            assert msg["X-Watchdog-Id"] == "42"
            assert msg["Date"].datetime is not None
            assert msg.get_content_type() == "multipart/mixed"
            body = msg.get_body(("plain",))
            assert body is not None and body.get_content() == TEXT
            html = msg.get_body(("html",))
            assert html is not None and html.get_content().strip() == HTML
            [part] = list(msg.iter_attachments())
            assert part.get_filename() == "bao-cao-tuần.pdf"
            assert part.get_content_type() == "application/pdf"
            assert part.get_content() == b"%PDF-1.4 fake\x00\xff"
            # The raw headers are ASCII: the Vietnamese subject went out RFC 2047-encoded.
            head = mail.data.split(b"\r\n\r\n", 1)[0]
            assert head.isascii()

    run(scenario)


def test_text_only_without_html_or_attachments() -> None:
    async def scenario() -> None:
        async with SmtpServer() as server:
            result = await channel(config(server.port)).send(outgoing(html=None))
            assert isinstance(result, Sent)
            msg = server.received[0].message()
            assert msg.get_content_type() == "text/plain"
            assert msg.get_content() == TEXT

    run(scenario)


def test_451_is_transient_and_the_next_send_goes_through() -> None:
    async def scenario() -> None:
        async with SmtpServer() as server:
            server.data_replies.append("451 4.3.0 try later")
            email = channel(config(server.port))
            first = await email.send(outgoing())
            assert first == Transient("SMTP 451 4.3.0 try later")
            assert server.received == []
            second = await email.send(outgoing(attempt=2))
            assert isinstance(second, Sent)
            assert len(server.received) == 1
            assert server.connections == 2  # a new connection per send

    run(scenario)


def test_550_on_data_is_permanent() -> None:
    async def scenario() -> None:
        async with SmtpServer() as server:
            server.data_replies.append("550 5.7.1 message rejected as spam")
            result = await channel(config(server.port)).send(outgoing())
            assert result == Permanent("SMTP 550 5.7.1 message rejected as spam")

    run(scenario)


def test_partial_refusal_is_sent_with_a_note() -> None:
    async def scenario() -> None:
        async with SmtpServer() as server:
            server.refuse["gone@example.vn"] = "550 5.1.1 no such user"
            result = await channel(config(server.port)).send(
                outgoing("lanh@example.vn, gone@example.vn")
            )
            assert isinstance(result, Sent)
            assert result.note == "refused: gone@example.vn (550 5.1.1 no such user)"
            [mail] = server.received
            assert mail.rcpt_tos == ("lanh@example.vn",)
            to = mail.message()["To"].addresses
            assert [a.addr_spec for a in to] == ["lanh@example.vn", "gone@example.vn"]

    run(scenario)


@pytest.mark.parametrize(
    ("replies", "kind"),
    [
        (("450 4.2.1 mailbox busy", "451 4.3.0 try later"), Transient),
        (("450 4.2.1 mailbox busy", "550 5.1.1 no such user"), Permanent),
    ],
)
def test_all_recipients_refused(replies: tuple[str, str], kind: type) -> None:
    async def scenario() -> None:
        async with SmtpServer() as server:
            server.refuse["a@example.vn"], server.refuse["b@example.vn"] = replies
            result = await channel(config(server.port)).send(outgoing("a@example.vn, b@example.vn"))
            assert isinstance(result, kind)
            assert result.error == (
                f"all recipients refused: a@example.vn ({replies[0]}), b@example.vn ({replies[1]})"
            )
            assert server.received == []

    run(scenario)


@pytest.mark.parametrize(
    ("reply", "kind"),
    [("421 4.7.0 too many connections", Transient), ("553 5.7.1 sender not allowed", Permanent)],
)
def test_sender_refused_by_code(reply: str, kind: type) -> None:
    async def scenario() -> None:
        async with SmtpServer() as server:
            server.mail_replies.append(reply)
            result = await channel(config(server.port)).send(outgoing())
            assert result == kind(f"SMTP {reply}")
            assert server.received == []

    run(scenario)


def test_nothing_listening_is_transient() -> None:
    async def scenario() -> None:
        result = await channel(config(free_port())).send(outgoing())
        assert isinstance(result, Transient)
        assert result.error.startswith("connection failed:")

    run(scenario)


def test_a_slow_server_past_the_timeout_is_transient() -> None:
    async def scenario() -> None:
        async with SmtpServer() as server:
            server.data_delay = 3.0
            email = channel(config(server.port, timeout=timedelta(seconds=0.5)))
            loop = asyncio.get_running_loop()
            started = loop.time()
            result = await email.send(outgoing())
            elapsed = loop.time() - started
            assert isinstance(result, Transient)
            assert result.error.startswith("timed out")
            assert elapsed < 2.0  # the 0.5 s timeout cut it short, not the server's 3 s

    run(scenario)


def test_concurrent_sends_on_one_channel() -> None:
    async def scenario() -> None:
        async with SmtpServer() as server:
            email = channel(config(server.port))
            results = await asyncio.gather(
                *(email.send(outgoing(f"cv{i}@example.vn", id=i)) for i in range(8))
            )
            assert all(isinstance(r, Sent) for r in results)
            ids = sorted(int(m.message()["X-Watchdog-Id"]) for m in server.received)
            assert ids == list(range(8))
            assert len({r.provider_id for r in results}) == 8

    run(scenario)


@needs_openssl
def test_starttls_with_a_self_signed_certificate(tmp_path: Path) -> None:
    async def scenario() -> None:
        server_ctx, client_ctx = tls_contexts(tmp_path)
        async with SmtpServer(starttls=server_ctx) as server:
            email = channel(config(server.port, tls="starttls"), ssl_context=client_ctx)
            result = await email.send(outgoing())
            assert isinstance(result, Sent), result
            [mail] = server.received
            assert mail.tls

    run(scenario)


@needs_openssl
def test_starttls_refuses_an_untrusted_certificate(tmp_path: Path) -> None:
    async def scenario() -> None:
        server_ctx, _ = tls_contexts(tmp_path)
        async with SmtpServer(starttls=server_ctx) as server:
            # No ssl_context: the system trust store does not know our self-signed certificate.
            result = await channel(config(server.port, tls="starttls")).send(outgoing())
            assert isinstance(result, Transient)
            assert "certificate" in result.error.lower()
            assert server.received == [] and server.mail_froms == []

    run(scenario)


def test_starttls_required_but_not_offered_sends_nothing_in_clear() -> None:
    async def scenario() -> None:
        async with SmtpServer() as server:  # no STARTTLS offered
            result = await channel(config(server.port, tls="starttls")).send(outgoing())
            assert result == Permanent(
                "server offers no STARTTLS (tls: starttls); nothing sent in clear"
            )
            assert server.received == [] and server.mail_froms == []

    run(scenario)


@needs_openssl
def test_implicit_tls(tmp_path: Path) -> None:
    async def scenario() -> None:
        server_ctx, client_ctx = tls_contexts(tmp_path)
        async with SmtpServer(implicit_tls=server_ctx) as server:
            email = channel(config(server.port, tls="implicit"), ssl_context=client_ctx)
            result = await email.send(outgoing())
            assert isinstance(result, Sent), result
            assert server.received[0].tls

            # The same TLS port spoken to in clear gets no SMTP greeting: transient, not sent.
            plain = channel(config(server.port, tls="none", timeout=timedelta(seconds=0.5)))
            assert isinstance(await plain.send(outgoing()), Transient)
            assert len(server.received) == 1

    run(scenario)


def test_auth_success_and_wrong_password() -> None:
    async def scenario() -> None:
        async with SmtpServer(users={"canhbao": "mật-khẩu-đúng"}) as server:
            good = channel(config(server.port, user="canhbao", password="mật-khẩu-đúng"))
            assert isinstance(await good.send(outgoing()), Sent)
            assert server.received[0].login == "canhbao"

            bad = channel(config(server.port, user="canhbao", password="sai"))
            result = await bad.send(outgoing())
            assert isinstance(result, Permanent)
            assert result.error.startswith("authentication failed: SMTP 535")
            assert len(server.received) == 1

    run(scenario)


def test_no_header_injection_through_subject_or_name() -> None:
    async def scenario() -> None:
        async with SmtpServer() as server:
            evil = "\r\nBcc: evil@example.com"
            message = outgoing(
                subject="Cảnh báo hồ sơ" + evil + "\nX-Evil: 1\x0b\x85\u2028end",
                recipient=Recipient(id="lanhdao", name="Lê Văn Lãnh" + evil),
            )
            result = await channel(config(server.port)).send(message)
            assert isinstance(result, Sent)
            [mail] = server.received
            assert mail.rcpt_tos == ("lanh@example.vn",)
            msg = mail.message()
            assert msg["Bcc"] is None and msg["X-Evil"] is None
            assert "evil@example.com" not in [a.addr_spec for a in msg["To"].addresses]
            assert [a.addr_spec for a in msg["To"].addresses] == ["lanh@example.vn"]
            assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
            assert msg["Subject"].startswith("Cảnh báo hồ sơ")
            assert "Bcc: evil@example.com" in msg["Subject"]  # kept as text, on one line
            head = mail.data.split(b"\r\n\r\n", 1)[0]
            assert not any(line.lower().startswith(b"bcc") for line in head.split(b"\r\n"))

    run(scenario)


def test_an_address_with_a_line_break_is_refused_before_connecting() -> None:
    async def scenario() -> None:
        async with SmtpServer() as server:
            result = await channel(config(server.port)).send(
                outgoing("lanh@example.vn\r\nRCPT TO:<evil@example.com>")
            )
            assert isinstance(result, Permanent)
            assert server.connections == 0

    run(scenario)


# ----- the message as written: our own composer (no EmailMessage on the send path) -------------


def without_8bitmime(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test server stops offering 8BITMIME (an old relay)."""
    from tests.support import smtp

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        return [r for r in responses if "8BITMIME" not in r]

    monkeypatch.setattr(smtp._Handler, "handle_EHLO", handle_EHLO, raising=False)


def test_utf8_text_goes_8bit_to_a_server_that_takes_it() -> None:
    async def scenario() -> None:
        async with SmtpServer() as server:
            assert isinstance(await channel(config(server.port)).send(outgoing()), Sent)
            [mail] = server.received
            head, body = mail.data.split(b"\r\n\r\n", 1)
            assert head.isascii()
            assert "Kính gửi ông Lê Văn Lãnh".encode() in body  # readable, not encoded
            assert b"Content-Transfer-Encoding: 8bit" in body
            assert mail.message().get_body(("plain",)).get_content() == TEXT

    run(scenario)


def test_a_server_without_8bitmime_gets_base64_and_the_text_reads_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    without_8bitmime(monkeypatch)

    async def scenario() -> None:
        async with SmtpServer() as server:
            result = await channel(config(server.port)).send(outgoing())
            assert isinstance(result, Sent)
            [mail] = server.received
            assert mail.data.isascii()  # nothing 8-bit on a 7-bit path
            msg = mail.message()
            for part, expected in ((("plain",), TEXT), (("html",), HTML)):
                body = msg.get_body(part)
                assert body is not None and body["Content-Transfer-Encoding"] == "base64"
                # base64 carries the canonical CRLF line ends
                assert body.get_content().replace("\r\n", "\n").strip() == expected.strip()

    run(scenario)


def test_long_lines_long_headers_and_odd_characters_read_back_whole() -> None:
    subject = "Cảnh báo: " + " ".join(f"hồ sơ số {i} (quá hạn)" for i in range(30)) + ' "=?x?="'
    name = 'Nguyễn "Văn" \\ Lãnh, Trưởng phòng Hành chính tư pháp Sở Tư pháp tỉnh ' * 2
    short = 'Lê "Văn" \\ Lãnh, STP'
    text = "Dòng rất dài: " + "hồ sơ " * 400 + "\n.\n..dòng bắt đầu bằng dấu chấm\n\n"
    html = "<p>" + "x" * 3000 + "</p>"  # ASCII, but longer than a line may be

    async def scenario() -> None:
        async with SmtpServer() as server:
            message = outgoing(
                subject=subject, text=text, html=html, recipient=Recipient(id="l", name=name)
            )
            assert isinstance(await channel(config(server.port)).send(message), Sent)
            [mail] = server.received
            head = mail.data.split(b"\r\n\r\n", 1)[0]
            assert head.isascii()
            assert max(len(line) for line in head.split(b"\r\n")) <= 78
            assert max(len(line) for line in mail.data.split(b"\r\n")) <= 998
            msg = mail.message()
            assert msg["Subject"] == subject
            # RFC 2047 joins adjacent encoded words (Python's address parser puts spaces between
            # them, as it did with the words EmailMessage wrote, so the long name is read here)
            raw_to = email.message_from_bytes(mail.data)["To"]  # compat32: the header as written
            to = email.header.make_header(email.header.decode_header(raw_to))
            assert str(to) == f"{name.strip()} <lanh@example.vn>"
            assert msg["To"].addresses[0].addr_spec == "lanh@example.vn"
            body = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
            assert body == text
            assert msg.get_body(("html",)).get_content().replace("\r\n", "\n").strip() == html
            second = outgoing(recipient=Recipient(id="l", name=short))
            assert isinstance(await channel(config(server.port)).send(second), Sent)
            assert server.received[1].message()["To"].addresses[0].display_name == short

    run(scenario)


def test_several_recipients_and_ascii_names_are_written_as_addresses() -> None:
    async def scenario() -> None:
        async with SmtpServer() as server:
            many = ", ".join(f"chuyenvien.so{i}@example.vn" for i in range(12))
            message = outgoing(many, recipient=Recipient(id="x", name="ignored for several"))
            assert isinstance(await channel(config(server.port)).send(message), Sent)
            msg = server.received[0].message()
            assert [a.addr_spec for a in msg["To"].addresses] == many.split(", ")
            plain = channel(config(server.port, **{"from": "tthc-watchdog <wd@example.vn>"}))
            quoted = outgoing(recipient=Recipient(id="x", name='Le "Lanh", STP'))
            assert isinstance(await plain.send(quoted), Sent)
            msg = server.received[1].message()
            assert str(msg["From"]) == "tthc-watchdog <wd@example.vn>"
            assert msg["To"].addresses[0].display_name == 'Le "Lanh", STP'
            assert len(msg["To"].addresses) == 1

    run(scenario)


def test_no_injection_through_an_attachment_name_or_type() -> None:
    async def scenario() -> None:
        async with SmtpServer() as server:
            evil = Attachment(
                "thư\r\nBcc: evil@example.com\r\n\r\nbody.pdf",
                "application/pdf\r\nBcc: evil@example.com",
                b"%PDF",
            )
            result = await channel(config(server.port)).send(outgoing(attachments=(evil,)))
            assert isinstance(result, Sent)
            [mail] = server.received
            assert not any(line.lower().startswith(b"bcc") for line in mail.data.split(b"\r\n"))
            [part] = list(mail.message().iter_attachments())
            assert part.get_content_type() == "application/octet-stream"
            assert part.get_filename() == "thư  Bcc: evil@example.com    body.pdf"
            assert part.get_content() == b"%PDF"

    run(scenario)


@pytest.mark.parametrize(
    "address",
    [
        "lanh@example.vn, Lê <lanh2@example.vn>",
        "lanh@example.vn\nBcc: evil@example.com",
        "lanh@example.vn\u2028evil@example.com",
        "<lanh@example.vn>",
        "lanh@exa mple.vn",
        "lanh",
        " , ",
    ],
)
def test_addresses_that_are_not_plain_addr_specs_are_refused_before_connecting(
    address: str,
) -> None:
    async def scenario() -> None:
        async with SmtpServer() as server:
            result = await channel(config(server.port)).send(outgoing(address))
            assert isinstance(result, Permanent)
            assert result.error.startswith("cannot write the message:")
            assert server.connections == 0

    run(scenario)


def test_a_non_ascii_address_needs_smtputf8() -> None:
    async def scenario() -> None:
        async with SmtpServer() as server:  # aiosmtpd offers no SMTPUTF8 by default
            result = await channel(config(server.port)).send(outgoing("lãnh@example.vn"))
            assert isinstance(result, Permanent)
            assert server.received == []

    run(scenario)
