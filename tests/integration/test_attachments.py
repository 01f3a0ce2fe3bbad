"""Files carried by messages, end to end on SQLite and PostgreSQL: the `apology_needed` alert
carries the apology letter (DOCX) through the real aiosmtpd server (multipart/mixed, the name
RFC 2231-encoded), our fake Bot API (sendDocument after the text) and the file channel; the
engine writes the firing, the sender renders, builds the letter and sends. Nothing of ours is
mocked."""

from __future__ import annotations

import asyncio
import io
import random
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from docx import Document

from tests.integration.test_letters import APPLICANT, CODE, CONFIG, at, load_case
from tests.support.fake_telegram import FakeTelegram
from tests.support.smtp import SmtpServer
from watchdog.channels.email import EmailChannel
from watchdog.channels.telegram import Limits, TelegramChannel
from watchdog.clock import FixedClock
from watchdog.config import load_settings
from watchdog.config.models import TelegramChannelConfig
from watchdog.engine.rules import load_rules
from watchdog.engine.runner import Engine
from watchdog.outbox.enqueue import alerts_hook
from watchdog.outbox.sender import Sender
from watchdog.outbox.wiring import open_channels, renderer_for
from watchdog.store import Store
from watchdog.store.outbox import attempts_of, history

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
RULES = """\
policies:
  - name: p
    stages:
      - {id: apology_needed, when: {remaining: "1 working_day", extended: false},
         notify: [assignee], attach: apology_letter}
"""
LETTER_NAME = f"Phiếu xin lỗi - {CODE}.docx"


def province(tmp_path: Path, url: str, channels: str, letters: str = "") -> Path:
    text = CONFIG.format(url=url).replace(
        "email: cv@example.vn}", "email: cv@example.vn, telegram: '555'}"
    )
    if letters:
        text = text.replace("letters: {place: Thủ Dầu Một, signer_title: Giám đốc}", letters)
    text += f"rules: [rules.yaml]\nchannels: {channels}\n"
    text += "delivery: {group_window: 1m, max_attempts: 4, backoff: 1m}\n"
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    return path


def fire(store: Store, settings) -> None:
    """Friday 13/11 10:00: one working day is left before Monday 09:00, the stage fires."""
    now = at("13/11/2026 10:00")
    engine = Engine(store, settings, load_rules(settings, env={}))
    hook = alerts_hook(store, settings, now)
    engine.ensure_planned(now, on_firings=hook)
    engine.tick(now, on_firings=hook)


def letter_text(data: bytes) -> str:
    doc = Document(io.BytesIO(data))
    text = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        text += [cell.text for row in table.rows for cell in row.cells]
    return "\n".join(text)


def test_the_apology_letter_rides_on_the_email_and_on_its_retry(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with SmtpServer() as smtp:
            cfg = province(
                tmp_path,
                db_url,
                f"{{email: {{host: 127.0.0.1, port: {smtp.port}, tls: none, "
                f'from: "Hệ thống <canhbao@stp.example.vn>"}}}}',
            )
            settings = load_settings(cfg, env={})
            load_case(store, settings)
            fire(store, settings)
            clock = FixedClock(at("13/11/2026 10:02"))
            channels = {"email": EmailChannel(settings.channels.email)}
            sender = Sender(
                store, settings, renderer_for(settings), channels, clock.now, rng=random.Random(1)
            )
            smtp.data_replies.append("451 4.3.0 mailbox busy, try later")
            first = await sender.deliver_due()
            assert (first.sent, first.retrying) == (0, 1)
            clock.set(at("16/11/2026 08:00"))  # the retry goes on Monday
            assert (await sender.deliver_due()).sent == 1
            (mail,) = smtp.received
            msg = mail.message()
            assert msg.get_content_type() == "multipart/mixed"
            body, letter = msg.iter_parts()
            assert body.get_content_type() == "multipart/alternative"
            assert letter.get_content_type() == DOCX
            assert letter.get_filename() == LETTER_NAME  # decoded from RFC 2231
            assert b"filename*0*=utf-8''Phi%E1%BA%BFu%20xin%20l%E1%BB%97i" in mail.data
            assert b"Phi\xe1\xba\xbfu" not in mail.data.split(b"\r\n\r\n", 1)[0]  # headers ASCII
            text = letter_text(letter.get_content())
            assert f"Kính gửi: Ông/Bà {APPLICANT}" in text  # e-mail: the name in full
            assert CODE in text
            # written when the message was first rendered, whatever day the retry goes
            assert "ngày 13 tháng 11 năm 2026" in text
            assert "trả kết quả: 09:00 ngày 16/11/2026." in text
            assert "xin hẹn lại thời gian trả kết quả vào 15:00 ngày 18/11/2026." in text
            plain = msg.get_body(("plain",)).get_content()
            assert CODE in plain and "Phiếu xin lỗi" in plain
            (row,) = history(store)
            assert (row.status, row.attempts) == ("sent", 2)
            assert [o for _, _, o, _ in attempts_of(store, row.id)] == ["transient", "sent"]

    asyncio.run(scenario())


def test_telegram_gets_the_letter_as_a_document_after_the_text(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    with FakeTelegram(chat_interval=0.01, bot_per_second=1000) as fake:
        cfg = province(
            tmp_path, db_url, f"{{telegram: {{token: '{fake.token}', api_url: '{fake.api_url}'}}}}"
        )
        settings = load_settings(cfg, env={})
        load_case(store, settings)
        fire(store, settings)
        channel = TelegramChannel(settings.channels.telegram, limits=Limits(chat_interval=0.01))
        clock = FixedClock(at("13/11/2026 10:02"))

        async def scenario() -> None:
            sender = Sender(
                store, settings, renderer_for(settings), {"telegram": channel}, clock.now
            )
            try:
                assert (await sender.deliver_due()).sent == 1
            finally:
                await channel.aclose()

        asyncio.run(scenario())
        text, document = fake.sent("555")
        assert text.method == "sendMessage" and CODE in (text.text or "")
        assert text.buttons == []  # the "Đã nhận" button rides on the last part
        assert document.method == "sendDocument"
        assert [label for label, _ in document.buttons] == ["Đã nhận"]
        assert document.params["caption"] == f"[Cần Phiếu xin lỗi] Hồ sơ {CODE}"
        [(filename, data, caption)] = fake.documents("555")
        assert filename == LETTER_NAME and caption == document.params["caption"]
        letter = letter_text(data)
        # chats show applicants masked (channels.telegram.mask_applicant), the letter too
        assert "Kính gửi: Ông/Bà Trần T*** <*** &*** C*" in letter
        assert "Hoa" not in letter
        assert "xin hẹn lại thời gian trả kết quả vào 15:00 ngày 18/11/2026." in letter
        (row,) = history(store)
        assert row.status == "sent" and row.provider_id == "1,2"


def test_the_file_channel_keeps_the_letter_in_the_eml(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    cfg = province(tmp_path, db_url, "{file: {dir: out}}")
    settings = load_settings(cfg, env={})
    load_case(store, settings)
    fire(store, settings)
    clock = FixedClock(at("13/11/2026 10:02"))

    async def scenario() -> None:
        channels = open_channels(settings)
        sender = Sender(store, settings, renderer_for(settings), channels, clock.now)
        assert (await sender.deliver_due()).sent == 1

    asyncio.run(scenario())
    (eml,) = (tmp_path / "out").glob("*.eml")
    msg = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    (letter,) = msg.iter_attachments()
    assert letter.get_filename() == LETTER_NAME
    assert f"Ông/Bà {APPLICANT}" in letter_text(letter.get_content())


def test_a_letter_that_cannot_be_written_leaves_the_warning_to_go_alone(
    store: Store, db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = province(
        tmp_path, db_url, "{file: {dir: out}}", letters="letters: {apology_template: missing.docx}"
    )
    settings = load_settings(cfg, env={})
    load_case(store, settings)
    fire(store, settings)
    clock = FixedClock(at("13/11/2026 10:02"))

    async def scenario() -> None:
        sender = Sender(store, settings, renderer_for(settings), open_channels(settings), clock.now)
        assert (await sender.deliver_due()).sent == 1

    asyncio.run(scenario())
    (eml,) = (tmp_path / "out").glob("*.eml")
    msg = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert list(msg.iter_attachments()) == []
    assert CODE in msg["Subject"]
    assert any("missing.docx" in r.getMessage() for r in caplog.records)
    (row,) = history(store)
    assert row.status == "sent"


def test_a_later_attempt_after_the_case_moved_on_carries_the_letter_of_its_first_render(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    """The retry builds the letter again from the case as stored then (the message keeps what
    to attach and as of when, not the bytes): same date, and the appointment the case has."""

    async def scenario() -> None:
        async with SmtpServer() as smtp:
            cfg = province(
                tmp_path,
                db_url,
                f"{{email: {{host: 127.0.0.1, port: {smtp.port}, tls: none, "
                f"from: canhbao@stp.example.vn}}}}",
            )
            settings = load_settings(cfg, env={})
            load_case(store, settings)
            fire(store, settings)
            clock = FixedClock(at("13/11/2026 10:02"))
            channels = {"email": EmailChannel(settings.channels.email)}
            sender = Sender(
                store, settings, renderer_for(settings), channels, clock.now, rng=random.Random(2)
            )
            smtp.data_replies.append("421 4.4.2 connection dropped")
            assert (await sender.deliver_due()).retrying == 1
            # meanwhile the head's step was handed to the desk (B4: half a day left)
            load_case(store, settings, [("B4", "13/11/2026 10:30", "truongphong")])
            clock.advance(timedelta(minutes=5))
            assert (await sender.deliver_due()).sent == 1
            (mail,) = smtp.received
            (letter,) = mail.message().iter_attachments()
            text = letter_text(letter.get_content())
            assert "ngày 13 tháng 11 năm 2026" in text
            # B4's half day is less than the one working day a new appointment gives at least
            assert "xin hẹn lại thời gian trả kết quả vào 09:00 ngày 17/11/2026." in text

    asyncio.run(scenario())


def _outgoing(attachment):
    from datetime import UTC, datetime

    from watchdog.channels import Outgoing, Recipient

    return Outgoing(
        id=9,
        channel="telegram",
        address="42",
        recipient=Recipient(id="cv", name="Nguyễn Văn Chuyên", telegram="42"),
        stages=("p/apology_needed",),
        subject="[Cần Phiếu xin lỗi] Hồ sơ X",
        text="<b>X</b> cần Phiếu xin lỗi",
        html=None,
        created_at=datetime(2026, 11, 13, 3, 0, tzinfo=UTC),
        message_id="<m9@x>",
        attachments=(attachment,),
    )


def _send_one(fake: FakeTelegram, message):
    async def go():
        channel = TelegramChannel(
            TelegramChannelConfig(token=fake.token, api_url=fake.api_url),
            limits=Limits(chat_interval=0.01, bot_per_second=1000),
        )
        try:
            return await channel.send(message)
        finally:
            await channel.aclose()

    return asyncio.run(go())


def test_a_document_telegram_refuses_as_too_large_is_not_retried(monkeypatch) -> None:
    from tests.support import fake_telegram
    from watchdog.channels import Attachment, Permanent

    with FakeTelegram(chat_interval=0.01, bot_per_second=1000) as fake:
        monkeypatch.setattr(fake_telegram, "DOCUMENT_LIMIT", 10)  # the fake's limit, not ours
        result = _send_one(fake, _outgoing(Attachment("a.docx", DOCX, b"PK" + b"0" * 20)))
        assert isinstance(result, Permanent) and result.error.startswith("413 ")
        assert [c.status for c in fake.calls] == [200, 413]


def test_a_document_over_50_mb_is_refused_before_anything_is_sent() -> None:
    from watchdog.channels import Attachment, Permanent
    from watchdog.channels.telegram import DOCUMENT_LIMIT

    with FakeTelegram(chat_interval=0.01, bot_per_second=1000) as fake:
        huge = Attachment("bao-cao.xlsx", "application/octet-stream", bytes(DOCUMENT_LIMIT + 1))
        result = _send_one(fake, _outgoing(huge))
        assert isinstance(result, Permanent) and "bao-cao.xlsx" in result.error
        assert fake.calls == []
