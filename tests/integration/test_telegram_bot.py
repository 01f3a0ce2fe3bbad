"""The bot's listening side against our fake Bot API: updates go in through getUpdates, the
answers come out as recorded sendMessage / answerCallbackQuery calls. The ports are a small
in-test directory (a port, not our code); nothing of ours is mocked."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager

import pytest

from tests.support.fake_telegram import Call, FakeTelegram, telegram_html_problem
from watchdog.channels.telegram import ChatRateLimiter, Limits
from watchdog.channels.telegram_bot import TelegramBot
from watchdog.config.models import TelegramChannelConfig

CASES = ["<b>003.2026.STP</b> quá hạn 2 ngày", "<b>001.2026.STP</b> còn 3 giờ làm việc"]


class Directory:
    """BotPorts over dicts: link codes, linked chats, open cases, notices that can be acked."""

    def __init__(self) -> None:
        self.codes = {"MA_hop-le1": "Nguyễn Văn An"}
        self.linked: dict[str, str] = {}
        self.cases: dict[str, list[str]] = {"Nguyễn Văn An": list(CASES)}
        self.notices = {"ack:7:x1"}
        self.link_calls: list[tuple[str, str]] = []
        self.acks: list[tuple[str, str]] = []
        self.threads: set[str] = set()
        self.listed: list[str] = []  # chats whose open cases were read

    def link(self, code: str, chat_id: str) -> str | None:
        self.threads.add(threading.current_thread().name)
        self.link_calls.append((code, chat_id))
        name = self.codes.pop(code, None)  # a code works once
        if name is not None:
            self.linked[chat_id] = name
        return name

    def open_cases(self, chat_id: str) -> list[str] | None:
        self.listed.append(chat_id)
        name = self.linked.get(chat_id)
        return None if name is None else self.cases.get(name, [])

    def is_linked(self, chat_id: str) -> bool:
        return chat_id in self.linked

    def acknowledge(self, data: str, chat_id: str) -> bool:
        self.acks.append((data, chat_id))
        return data in self.notices


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(chat_interval=0.02, bot_per_second=1000) as server:
        yield server


@asynccontextmanager
async def running(fake: FakeTelegram, ports: Directory) -> AsyncIterator[TelegramBot]:
    config = TelegramChannelConfig(token=fake.token, api_url=fake.api_url)
    limiter = ChatRateLimiter(Limits(chat_interval=0.02, bot_per_second=1000))
    bot = TelegramBot(config, ports, limiter=limiter, poll_timeout=5)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


def with_bot(fake: FakeTelegram, ports: Directory, scenario: Callable[[], Awaitable[None]]) -> None:
    async def go() -> None:
        async with running(fake, ports):
            await scenario()

    asyncio.run(go())


async def replies(fake: FakeTelegram, chat: str, count: int) -> list[Call]:
    """The first `count` answers to `chat`, waiting for them to arrive."""
    deadline = time.monotonic() + 5
    while len(sent := fake.sent(chat)) < count:
        assert time.monotonic() < deadline, f"{count} replies to {chat} expected: {sent}"
        await asyncio.sleep(0.01)
    return sent[:count]


def test_start_with_a_valid_code_links_the_chat(fake: FakeTelegram) -> None:
    ports = Directory()

    async def scenario() -> None:
        fake.push_message("42", "/start MA_hop-le1")
        [reply] = await replies(fake, "42", 1)
        assert reply.text is not None
        assert reply.text.startswith("Đã liên kết với tài khoản của Nguyễn Văn An")
        assert reply.params["parse_mode"] == "HTML"

    with_bot(fake, ports, scenario)
    assert ports.linked == {"42": "Nguyễn Văn An"}
    assert "MainThread" not in ports.threads  # the port ran in a worker thread
    assert [c.method for c in fake.calls[:3]] == ["getMe", "setMyCommands", "deleteWebhook"]


def test_start_with_a_wrong_or_used_code_links_nothing(fake: FakeTelegram) -> None:
    ports = Directory()

    async def scenario() -> None:
        fake.push_message("42", "/start SAI_MA")
        fake.push_message("42", "/start MA_hop-le1")
        fake.push_message("43", "/start MA_hop-le1")  # already used by chat 42
        fake.push_message("44", "/start <b>x</b>")  # not a deep-link payload at all
        [wrong, _] = await replies(fake, "42", 2)
        [used] = await replies(fake, "43", 1)
        [odd] = await replies(fake, "44", 1)
        for reply in (wrong, used, odd):
            assert reply.text is not None
            assert "Mã liên kết không đúng hoặc đã hết hạn" in reply.text
            assert "watchdog officials link-code" in reply.text

    with_bot(fake, ports, scenario)
    assert ports.linked == {"42": "Nguyễn Văn An"}
    assert ports.link_calls == [("SAI_MA", "42"), ("MA_hop-le1", "42"), ("MA_hop-le1", "43")]


def test_start_without_a_code_says_how_to_link(fake: FakeTelegram) -> None:
    async def scenario() -> None:
        fake.push_message("42", "/start")
        [reply] = await replies(fake, "42", 1)
        assert reply.text is not None
        assert reply.text.startswith("Hãy xin mã liên kết từ quản trị viên")
        assert "watchdog officials link-code" in reply.text
        assert "/start MÃ" in reply.text

    with_bot(fake, Directory(), scenario)


def test_open_cases_in_a_linked_chat_most_urgent_first(fake: FakeTelegram) -> None:
    ports = Directory()
    ports.linked = {"42": "Nguyễn Văn An", "43": "Lê Thị Rảnh"}

    async def scenario() -> None:
        fake.push_message("42", "/hoso")
        fake.push_message("43", "/hoso")
        [listing] = await replies(fake, "42", 1)
        [empty] = await replies(fake, "43", 1)
        assert listing.text is not None
        assert listing.text.index("003.2026.STP") < listing.text.index("001.2026.STP")
        assert telegram_html_problem(listing.text) is None
        assert empty.text is not None
        assert "Không có hồ sơ nào đang mở" in empty.text

    with_bot(fake, ports, scenario)


def test_a_long_case_list_is_split_into_valid_messages(fake: FakeTelegram) -> None:
    ports = Directory()
    ports.linked = {"42": "Nguyễn Văn An"}
    lines = [f"<b>{n:03d}.2026.STP</b> Cấp Phiếu lý lịch tư pháp — {'z' * 60}" for n in range(150)]
    ports.cases["Nguyễn Văn An"] = lines

    async def scenario() -> None:
        fake.push_message("42", "/hoso")
        await replies(fake, "42", 1)
        deadline = time.monotonic() + 5
        while not all(any(line in c.text for c in fake.sent("42") if c.text) for line in lines):
            assert time.monotonic() < deadline, "not every case came"
            await asyncio.sleep(0.02)
        parts = [call.text or "" for call in fake.sent("42")]
        assert len(parts) >= 3
        assert all(len(part) <= 4096 and telegram_html_problem(part) is None for part in parts)
        for line in lines:
            assert sum(line in part for part in parts) == 1

    with_bot(fake, ports, scenario)


def test_an_unlinked_chat_learns_how_to_link_and_nothing_about_cases(
    fake: FakeTelegram,
) -> None:
    async def scenario() -> None:
        fake.push_message("42", "/hoso")
        fake.push_message("42", "001.2026.STP đến đâu rồi?")
        answers = await replies(fake, "42", 2)
        for reply in answers:
            assert reply.text is not None
            assert "watchdog officials link-code" in reply.text
            assert ".2026.STP" not in reply.text
            assert "Nguyễn Văn An" not in reply.text

    with_bot(fake, Directory(), scenario)


def test_a_linked_chat_saying_anything_else_is_told_what_to_ask(fake: FakeTelegram) -> None:
    ports = Directory()
    ports.linked = {"42": "Nguyễn Văn An"}
    ports.cases["Nguyễn Văn An"] = ["<b>001.2026.STP</b>"]

    async def scenario() -> None:
        fake.push_message("42", "chào bạn")
        [reply] = await replies(fake, "42", 1)
        assert reply.text == "Gửi /hoso để xem các hồ sơ đang mở."
        assert ports.listed == []  # answered without reading the official's cases

    with_bot(fake, ports, scenario)


def test_the_acknowledge_button_is_recorded_and_answered(fake: FakeTelegram) -> None:
    ports = Directory()

    async def scenario() -> None:
        known = fake.push_callback("42", "ack:7:x1")
        unknown = fake.push_callback("42", "ack:8:zz")
        answers = await fake.wait_for("answerCallbackQuery", 2)
        assert [(a.params["callback_query_id"], a.params["text"]) for a in answers] == [
            (known, "Đã ghi nhận"),
            (unknown, "Không tìm thấy thông báo"),
        ]

    with_bot(fake, ports, scenario)
    assert ports.acks == [("ack:7:x1", "42"), ("ack:8:zz", "42")]


def test_stop_does_not_wait_for_the_long_poll(fake: FakeTelegram) -> None:
    fake.poll_wait = 30  # the fake holds getUpdates for the bot's whole poll timeout (5 s)

    async def go() -> float:
        async with running(fake, Directory()) as bot:
            deadline = time.monotonic() + 5
            while fake.polls_waiting == 0:
                assert time.monotonic() < deadline, "the bot never long-polled"
                await asyncio.sleep(0.01)
            assert bot.running
            start = time.monotonic()
        assert not bot.running
        return time.monotonic() - start

    assert asyncio.run(go()) < 1
