"""Delivery end to end, on SQLite and PostgreSQL, through the real channels and peers on
loopback: an aiosmtpd server for e-mail, our fake Bot API for Telegram (python-telegram-bot
pointed at it). A case goes overdue; the engine's firing becomes a message; the sender renders
and sends it; the official presses "Đã nhận" and the repeat stops."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support.fake_telegram import FakeTelegram
from tests.support.smtp import SmtpServer
from watchdog.channels.email import EmailChannel
from watchdog.channels.telegram import Limits, TelegramChannel
from watchdog.channels.telegram_bot import TelegramBot
from watchdog.clock import FixedClock
from watchdog.config import load_settings, with_telegram_chats
from watchdog.engine.rules import load_rules
from watchdog.engine.runner import Engine
from watchdog.outbox.bot import StoreBotPorts
from watchdog.outbox.enqueue import alerts_hook
from watchdog.outbox.sender import Sender
from watchdog.outbox.wiring import renderer_for
from watchdog.sources.fields import RowProblems, normalize_case
from watchdog.sources.ingest import upsert_cases
from watchdog.store import Store, schema
from watchdog.store.links import add_link_code, telegram_links
from watchdog.store.outbox import attempts_of, history

VN = timezone(timedelta(hours=7))
RULES = """\
policies:
  - name: p
    stages:
      - {id: overdue, when: {overdue: "0 working_days"}, notify: [assignee],
         repeat: "1 working_day", until_ack: true}
"""


def at(text: str) -> datetime:
    return datetime.strptime(text, "%d/%m/%Y %H:%M").replace(tzinfo=VN)


def province(tmp_path: Path, small_config: Path, channels: str) -> Path:
    text = small_config.read_text(encoding="utf-8")
    text += f"rules: [rules.yaml]\nchannels: {channels}\n"
    text += "delivery: {group_window: 1m, max_attempts: 4, backoff: 1m}\n"
    small_config.write_text(text, encoding="utf-8")
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    return small_config


def overdue_case(store: Store, settings) -> None:
    raw = {
        "case_code": "000.00.01.H01-261102-0001",
        "procedure_code": "2.000488",  # 10 working days: due Mon 16/11 09:00
        "unit_code": "STP.HC",
        "received_at": "02/11/2026 09:00",
        "status": 4,
        "assignee": "chuyenvien",
        "applicant_name": "Trần Thị <b>Hoa</b> & Co",
        "applicant_phone": "0912345689",
    }
    problems = RowProblems()
    record = normalize_case(raw, settings, problems)
    assert not problems, problems.problems
    upsert_cases(store, [record], at("02/11/2026 09:00"))


def tick(store: Store, settings, now: datetime) -> None:
    engine = Engine(store, settings, load_rules(settings, env={}))
    hook = alerts_hook(store, settings, now)
    engine.ensure_planned(now, on_firings=hook)
    engine.tick(now, on_firings=hook)


def test_email_pipeline_retries_a_451_and_keeps_one_message_id(
    store: Store, tmp_path: Path, small_config: Path
) -> None:
    async def scenario() -> None:
        async with SmtpServer() as smtp:
            cfg = province(
                tmp_path,
                small_config,
                f"{{email: {{host: 127.0.0.1, port: {smtp.port}, tls: none, "
                f'from: "Hệ thống <canhbao@stp.example.vn>"}}}}',
            )
            settings = load_settings(cfg, env={})
            overdue_case(store, settings)
            tick(store, settings, at("16/11/2026 09:30"))
            clock = FixedClock(at("16/11/2026 09:32"))
            channels = {"email": EmailChannel(settings.channels.email)}
            sender = Sender(
                store,
                settings,
                renderer_for(settings),
                channels,
                clock.now,
                rng=random.Random(3),
            )
            smtp.data_replies.append("451 4.3.0 mailbox busy, try later")
            first = await sender.deliver_due()
            assert (first.sent, first.retrying) == (0, 1)
            clock.advance(timedelta(minutes=2))
            second = await sender.deliver_due()
            assert second.sent == 1
            (mail,) = smtp.received
            msg = mail.message()
            assert list(mail.rcpt_tos) == ["cv@example.vn"]
            assert msg["Subject"].startswith("[Quá hạn]")
            assert "000.00.01.H01-261102-0001" in msg["Subject"]
            html = msg.get_body(("html",)).get_content()
            assert "Trần Thị &lt;b&gt;Hoa&lt;/b&gt; &amp; Co" in html  # escaped, not markup
            text = msg.get_body(("plain",)).get_content()
            assert "16/11/2026 09:00" in text and "quá hạn" in text
            (row,) = history(store)
            assert (row.status, row.attempts, row.message_id) == ("sent", 2, msg["Message-ID"])
            assert [o for _, _, o, _ in attempts_of(store, row.id)] == ["transient", "sent"]

    asyncio.run(scenario())


def test_telegram_link_alert_and_acknowledgement(
    store: Store, tmp_path: Path, small_config: Path
) -> None:
    with FakeTelegram(chat_interval=0.01, bot_per_second=1000) as fake:
        cfg = province(
            tmp_path,
            small_config,
            f"{{telegram: {{token: '{fake.token}', api_url: '{fake.api_url}'}}}}",
        )
        base = load_settings(cfg, env={})
        overdue_case(store, base)
        clock = FixedClock(at("16/11/2026 09:00"))
        add_link_code(
            store, "chuyenvien", "AB12CD34", clock.now(), clock.now() + timedelta(hours=1)
        )
        channel = TelegramChannel(base.channels.telegram, limits=Limits(chat_interval=0.01))
        renderer = renderer_for(base)

        async def scenario() -> None:
            sender = Sender(store, base, renderer, {"telegram": channel}, clock.now)
            ports = StoreBotPorts(store, base, clock.now, sender.check_ack)
            bot = TelegramBot(
                base.channels.telegram, ports, limiter=channel.limiter, poll_timeout=1
            )
            await bot.start()
            try:
                fake.push_message("555", "/start AB12CD34")
                await until(lambda: fake.sent("555"))
                assert telegram_links(store) == {"chuyenvien": "555"}
                fake.push_message("777", "/hoso")  # a stranger learns nothing
                await until(lambda: fake.sent("777"))
                assert "000.00.01" not in (fake.sent("777")[0].text or "")
                fake.push_message("777", "xin chào")  # ... but how to link
                fake.push_message("555", "xin chào")  # the linked chat: what to ask
                await until(lambda: len(fake.sent("777")) >= 2 and len(fake.sent("555")) >= 2)
                assert "watchdog officials link-code" in (fake.sent("777")[1].text or "")
                assert fake.sent("555")[1].text == "Gửi /hoso để xem các hồ sơ đang mở."

                # the case goes overdue: the linked chat gets the alert with its button
                settings = with_telegram_chats(base, telegram_links(store))
                clock.set(at("16/11/2026 09:30"))
                tick(store, settings, clock.now())
                clock.advance(timedelta(minutes=2))
                sender.settings = settings
                assert (await sender.deliver_due()).sent == 1
                alert = fake.sent("555")[-1]
                assert "000.00.01.H01-261102-0001" in (alert.text or "")
                assert "Trần T***" in (alert.text or "") and "Hoa" not in (alert.text or "")
                assert "0912345689" not in (alert.text or "")  # masked on Telegram
                [(label, data)] = alert.buttons
                assert label == "Đã nhận" and data

                fake.push_message("555", "/hoso")
                await until(lambda: len(fake.sent("555")) >= 4)
                assert "000.00.01.H01-261102-0001" in (fake.sent("555")[-1].text or "")

                fake.push_callback("777", data)  # another chat cannot acknowledge it
                fake.push_callback("555", data)
                await until(lambda: len(fake.calls_of("answerCallbackQuery")) >= 2)
                answers = [c.params.get("text") for c in fake.calls_of("answerCallbackQuery")]
                assert answers == ["Không tìm thấy thông báo", "Đã ghi nhận"]
            finally:
                await bot.stop()
                await channel.aclose()
            (row,) = history(store)
            assert row.acknowledged_at is not None
            f = schema.firings.c
            with store.read() as conn:
                acked = conn.execute(select(f.acknowledged_at)).scalars().all()
            assert acked and all(a is not None for a in acked)
            # a working day later the repeat does not come: acknowledged
            tick(store, settings, at("17/11/2026 09:35"))
            assert len(history(store)) == 1

        asyncio.run(scenario())


async def until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.fixture(autouse=True)
def _quiet_ptb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


def telegram_province(tmp_path: Path, small_config: Path, fake: FakeTelegram):
    cfg = province(
        tmp_path,
        small_config,
        f"{{telegram: {{token: '{fake.token}', api_url: '{fake.api_url}'}}, file: {{dir: out}}}}",
    )
    return load_settings(cfg, env={})


def test_a_blocked_bot_unlinks_the_chat_and_tells_the_official_by_email(
    store: Store, tmp_path: Path, small_config: Path
) -> None:
    """Forbidden is permanent: the message is dead, the chat unlinked, and by e-mail the admin
    (here the supervisors) hears of the dead letter and the official of the lost link."""
    from watchdog.store.links import use_link_code

    with FakeTelegram(chat_interval=0.01, bot_per_second=1000) as fake:

        async def scenario() -> None:
            async with SmtpServer() as smtp:
                cfg = province(
                    tmp_path,
                    small_config,
                    f"{{telegram: {{token: '{fake.token}', api_url: '{fake.api_url}'}}, "
                    f"email: {{host: 127.0.0.1, port: {smtp.port}, tls: none, "
                    "from: canhbao@stp.example.vn}}",
                )
                base = load_settings(cfg, env={})
                clock = FixedClock(at("16/11/2026 09:00"))
                add_link_code(
                    store, "chuyenvien", "CODE1", clock.now(), clock.now() + timedelta(hours=1)
                )
                assert use_link_code(store, "CODE1", "555", clock.now()) == "chuyenvien"
                settings = with_telegram_chats(base, telegram_links(store))
                overdue_case(store, settings)
                tick(store, settings, at("16/11/2026 09:30"))
                clock.set(at("16/11/2026 09:32"))
                fake.fail("555", "forbidden")
                telegram = TelegramChannel(
                    settings.channels.telegram, limits=Limits(chat_interval=0.01)
                )
                channels = {"telegram": telegram, "email": EmailChannel(settings.channels.email)}
                sender = Sender(store, settings, renderer_for(settings), channels, clock.now)
                report = await sender.deliver_due()
                await telegram.aclose()
                assert report.dead == 1
                assert sorted(r for m in smtp.received for r in m.rcpt_tos) == [
                    "cv@example.vn",
                    "thanhtra@example.vn",
                ]
                to_official = next(m for m in smtp.received if "cv@example.vn" in m.rcpt_tos)
                assert "Telegram" in to_official.message()["Subject"]

        asyncio.run(scenario())
    assert telegram_links(store) == {}
    (dead,) = history(store, status="dead")
    assert dead.channel == "telegram" and dead.attempts == 1 and dead.last_error


def test_a_migrated_group_is_followed_and_the_link_moves(
    store: Store, tmp_path: Path, small_config: Path
) -> None:
    with FakeTelegram(chat_interval=0.01, bot_per_second=1000, group_interval=0.01) as fake:
        base = telegram_province(tmp_path, small_config, fake)
        clock = FixedClock(at("16/11/2026 09:00"))
        add_link_code(store, "chuyenvien", "CODE2", clock.now(), clock.now() + timedelta(hours=1))
        from watchdog.store.links import use_link_code

        use_link_code(store, "CODE2", "-100", clock.now())
        settings = with_telegram_chats(base, telegram_links(store))
        overdue_case(store, settings)
        tick(store, settings, at("16/11/2026 09:30"))
        clock.set(at("16/11/2026 09:32"))
        fake.fail("-100", "migrate", migrate_to=-1001234)
        channel = TelegramChannel(
            settings.channels.telegram, limits=Limits(chat_interval=0.01, group_interval=0.01)
        )

        async def scenario() -> None:
            sender = Sender(
                store, settings, renderer_for(settings), {"telegram": channel}, clock.now
            )
            assert (await sender.deliver_due()).sent == 1
            await channel.aclose()

        asyncio.run(scenario())
        assert telegram_links(store) == {"chuyenvien": "-1001234"}
        (row,) = history(store)
        assert (row.status, row.address) == ("sent", "-1001234")
        assert [c.chat_id for c in fake.sent()] == ["-1001234"]


def test_webhook_pipeline_posts_signed_cases_with_the_applicant_masked(
    store: Store, tmp_path: Path, small_config: Path
) -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from watchdog.channels.webhook import WebhookChannel, verify_signature

    received: list[tuple[dict, bytes]] = []
    answers = [500, 200]

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(answers.pop(0))
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = "s3cret-s3cret-s3cret"
    try:
        cfg = province(
            tmp_path,
            small_config,
            f"{{webhook: {{url: 'http://127.0.0.1:{server.server_port}/hook', "
            f"secret: '{secret}'}}}}",
        )
        settings = load_settings(cfg, env={})
        overdue_case(store, settings)
        tick(store, settings, at("16/11/2026 09:30"))
        clock = FixedClock(at("16/11/2026 09:32"))

        async def scenario() -> None:
            channel = WebhookChannel(settings.channels.webhook)
            sender = Sender(
                store, settings, renderer_for(settings), {"webhook": channel}, clock.now
            )
            assert (await sender.deliver_due()).retrying == 1  # 500: transient
            clock.advance(timedelta(minutes=2))
            assert (await sender.deliver_due()).sent == 1
            await channel.aclose()

        asyncio.run(scenario())
    finally:
        server.shutdown()
    (h1, b1), (h2, b2) = received
    assert b1 == b2 and h1["X-Watchdog-Id"] == h2["X-Watchdog-Id"]  # same message, same id
    assert verify_signature(secret, h2["X-Watchdog-Timestamp"], b2, h2["X-Watchdog-Signature"])
    body = json.loads(b2)
    assert body["recipient"]["id"] == "chuyenvien"
    (case,) = body["cases"]
    assert case["case_code"] == "000.00.01.H01-261102-0001"
    assert case["state"] == "overdue" and case["remaining_working_minutes"] < 0
    assert case["applicant_name"].startswith("Trần T***") and "Hoa" not in case["applicant_name"]
    assert case["due_at"] == "2026-11-16T09:00:00+07:00"


def test_a_configured_chat_that_blocked_the_bot_is_not_used_again(
    store: Store, tmp_path: Path, small_config: Path
) -> None:
    """A chat written in the configuration cannot be unlinked there: it is marked
    unreachable, so the next alerts go by e-mail until the official links a chat again."""
    from watchdog.engine.recipients import deliveries_for

    text = small_config.read_text(encoding="utf-8").replace(
        "email: cv@example.vn}", "email: cv@example.vn, telegram: '888'}"
    )
    small_config.write_text(text, encoding="utf-8")
    with FakeTelegram(chat_interval=0.01, bot_per_second=1000) as fake:
        cfg = province(
            tmp_path,
            small_config,
            f"{{telegram: {{token: '{fake.token}', api_url: '{fake.api_url}'}}, "
            "file: {dir: out}}",
        )
        settings = load_settings(cfg, env={})
        assert settings.officials["chuyenvien"].telegram == "888"
        overdue_case(store, settings)
        tick(store, settings, at("16/11/2026 09:30"))
        fake.fail("888", "forbidden")
        channel = TelegramChannel(settings.channels.telegram, limits=Limits(chat_interval=0.01))
        clock = FixedClock(at("16/11/2026 09:32"))

        async def scenario() -> None:
            from watchdog.channels.file import FileChannel

            channels = {"telegram": channel, "file": FileChannel(settings.channels.file, tmp_path)}
            sender = Sender(store, settings, renderer_for(settings), channels, clock.now)
            report = await sender.deliver_due()
            assert (report.dead, report.sent) == (1, 1)  # the alert; the admin's notice
            await channel.aclose()

        asyncio.run(scenario())
    assert telegram_links(store) == {"chuyenvien": ""}
    after = with_telegram_chats(settings, telegram_links(store))
    assert after.officials["chuyenvien"].telegram is None
    stage = load_rules(after, env={}).policies[0].stages[0]
    assert [d.channel for d in deliveries_for("chuyenvien", stage, after)] == ["file"]
