"""The Telegram channel against our fake Bot API on loopback: what reaches the server, and the
answer the outbox gets for each kind of failure. Nothing of ours is mocked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.support.fake_telegram import (
    FakeTelegram,
    telegram_html_length,
    telegram_html_problem,
)
from watchdog.channels import Attachment, Outgoing, Permanent, Recipient, Result, Sent, Transient
from watchdog.channels.telegram import Limits, TelegramChannel
from watchdog.config.models import TelegramChannelConfig

FAST = Limits(chat_interval=0.02, group_interval=0.02, bot_per_second=1000)


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    """A fake whose limits match FAST, for tests where the figures are not the point."""
    with FakeTelegram(chat_interval=0.02, group_interval=0.02, bot_per_second=1000) as server:
        yield server


def outgoing(
    address: str = "42", text: str = "<b>H01</b> sắp hết hạn", **fields: object
) -> Outgoing:
    return Outgoing(
        id=7,
        channel="telegram",
        address=address,
        recipient=Recipient(id="cv", name="Nguyễn Văn Chuyên", telegram=address),
        stages=("warn",),
        subject="Hồ sơ sắp hết hạn",
        text=text,
        html=None,
        created_at=datetime(2026, 5, 4, 8, 0, tzinfo=UTC),
        message_id="<outbox-7.x@host>",
        **fields,  # type: ignore[arg-type]
    )


def channel_for(fake: FakeTelegram, limits: Limits = FAST, api_url: str | None = None):
    config = TelegramChannelConfig(token=fake.token, api_url=api_url or fake.api_url)
    return TelegramChannel(config, limits=limits)


def send(fake: FakeTelegram, *messages: Outgoing, limits: Limits = FAST) -> list[Result]:
    """Send one after another through one channel, as the outbox would."""

    async def go() -> list[Result]:
        channel = channel_for(fake, limits)
        try:
            return [await channel.send(message) for message in messages]
        finally:
            await channel.aclose()

    return asyncio.run(go())


def test_a_notice_goes_out_as_html_with_the_acknowledge_button(fake: FakeTelegram) -> None:
    [result] = send(fake, outgoing(ack_data="ack:7:x1"))
    [call] = fake.sent("42")
    assert call.method == "sendMessage"
    assert call.params["parse_mode"] == "HTML"
    assert call.text == "<b>H01</b> sắp hết hạn"
    assert call.buttons == [("Đã nhận", "ack:7:x1")]
    assert result == Sent(provider_id="1")


def test_no_button_without_ack_data(fake: FakeTelegram) -> None:
    send(fake, outgoing())
    [call] = fake.sent("42")
    assert call.buttons == []


@pytest.mark.parametrize("suffix", ["", "/", "/bot", "/bot/"])
def test_api_url_is_the_root_with_or_without_bot(suffix: str) -> None:
    with FakeTelegram(root="/local-api", chat_interval=0.02, bot_per_second=1000) as fake:

        async def go() -> Result:
            channel = channel_for(fake, api_url=fake.api_url + suffix)
            try:
                return await channel.send(outgoing())
            finally:
                await channel.aclose()

        assert isinstance(asyncio.run(go()), Sent)
        [call] = fake.sent("42")
        assert call.path == f"/local-api/bot{fake.token}/sendMessage"


def test_callback_data_over_64_bytes_is_refused_before_anything_is_sent(
    fake: FakeTelegram,
) -> None:
    [result] = send(fake, outgoing(ack_data="đ" * 33))  # 66 bytes in UTF-8
    assert isinstance(result, Permanent)
    assert "64 bytes" in result.error
    assert fake.calls == []


def test_flood_answer_holds_that_chat_only(fake: FakeTelegram) -> None:
    fake.fail("42", "flood", retry_after=1)

    async def go() -> tuple[Result, float, float]:
        channel = channel_for(fake)
        try:
            first = await channel.send(outgoing("42"))
            start = time.monotonic()
            other = asyncio.create_task(channel.send(outgoing("43")))
            same = asyncio.create_task(channel.send(outgoing("42")))
            assert isinstance(await other, Sent)
            other_took = time.monotonic() - start
            assert isinstance(await same, Sent)
            return first, other_took, time.monotonic() - start
        finally:
            await channel.aclose()

    first, other_took, same_took = asyncio.run(go())
    assert first == Transient(first.error, retry_after=1.0)
    assert "retry after 1" in first.error
    assert other_took < 0.5  # chat 43 did not wait for chat 42's flood control
    [refused] = [c for c in fake.calls_of("sendMessage") if c.status == 429]
    [accepted] = fake.sent("42")
    assert accepted.at - refused.at >= 0.95  # chat 42 waited out its retry_after
    assert same_took >= 0.8


def test_bad_gateway_is_transient(fake: FakeTelegram) -> None:
    fake.fail("42", "bad_gateway")
    first, second = send(fake, outgoing(), outgoing())
    assert isinstance(first, Transient)
    assert "Bad Gateway" in first.error
    assert first.retry_after is None
    assert isinstance(second, Sent)


def test_a_read_timeout_says_the_message_may_have_been_delivered(fake: FakeTelegram) -> None:
    fake.fail("42", "slow", delay=0.6)  # delivered, answered too late

    async def go() -> Result:
        channel = TelegramChannel(
            TelegramChannelConfig(token=fake.token, api_url=fake.api_url), limits=FAST, timeout=0.2
        )
        try:
            return await channel.send(outgoing())
        finally:
            await channel.aclose()

    result = asyncio.run(go())
    assert isinstance(result, Transient)
    assert "may have been delivered" in result.error
    deadline = time.monotonic() + 3
    while not fake.sent("42"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert len(fake.sent("42")) == 1  # it was: a retry will show it twice, as attempt 2


def test_a_blocked_bot_unlinks_the_chat(fake: FakeTelegram) -> None:
    fake.fail("42", "forbidden")
    [result] = send(fake, outgoing())
    assert isinstance(result, Permanent)
    assert result.unlink
    assert "blocked" in result.error


def test_chat_not_found_unlinks_the_chat(fake: FakeTelegram) -> None:
    fake.fail("42", "chat_not_found")
    [result] = send(fake, outgoing())
    assert isinstance(result, Permanent)
    assert result.unlink
    assert "chat not found" in result.error.lower()


def test_other_bad_requests_are_permanent_but_keep_the_link(fake: FakeTelegram) -> None:
    fake.fail("42", "bad_request")
    [result] = send(fake, outgoing())
    assert isinstance(result, Permanent)
    assert not result.unlink
    assert fake.token not in result.error


def test_a_migrated_group_is_followed_once(fake: FakeTelegram) -> None:
    fake.fail("-100", "migrate", migrate_to=-1002003)
    [result] = send(fake, outgoing("-100", ack_data="ack:7"))
    assert isinstance(result, Sent)
    assert result.moved_to == "-1002003"
    assert result.note and "-1002003" in result.note
    assert [c.status for c in fake.calls_of("sendMessage")] == [400, 200]
    [call] = fake.sent("-1002003")
    assert call.buttons == [("Đã nhận", "ack:7")]
    assert result.provider_id == "1"


def case_block(number: int) -> str:
    return (
        f"<b>{number:03d}.2026.STP</b> — Cấp Phiếu lý lịch tư pháp\n"
        f"Người nộp: <i>Nguyễn V*** A*</i> &amp; Trần T*** B*\n"
        f"Hạn: 12/05/2026 16:30 · còn <u>{number % 7} giờ làm việc</u> — {'x' * 120}"
    )


def test_a_long_text_is_split_on_case_boundaries(fake: FakeTelegram) -> None:
    blocks = [case_block(n) for n in range(40)]
    text = "\n\n".join(blocks)
    assert len(text) > 10_000
    [result] = send(fake, outgoing(text=text, ack_data="ack:7"))

    parts = [call.text or "" for call in fake.sent("42")]
    assert len(parts) >= 3
    assert isinstance(result, Sent)
    assert result.provider_id == ",".join(str(n) for n in range(1, len(parts) + 1))
    for part in parts:
        assert telegram_html_problem(part) is None
        assert len(part) <= 4096
    assert "\n\n".join(parts) == text  # every cut fell between two case blocks
    assert [call.buttons for call in fake.sent("42")] == [[]] * (len(parts) - 1) + [
        [("Đã nhận", "ack:7")]
    ]


def test_one_block_too_long_is_cut_between_lines_and_its_tags_reopened(
    fake: FakeTelegram,
) -> None:
    lines = [f"{n:03d}.2026.STP &lt;quá hạn&gt; {'y' * 80}" for n in range(120)]
    huge = "<blockquote><b>Phòng Hành chính</b>\n" + "\n".join(lines) + "</blockquote>"
    text = case_block(1) + "\n\n" + huge + "\n\n" + case_block(2)
    [result] = send(fake, outgoing(text=text))

    parts = [call.text or "" for call in fake.sent("42")]
    assert isinstance(result, Sent)
    assert len(parts) >= 3
    for part in parts:
        assert telegram_html_problem(part) is None
        assert telegram_html_length(part) <= 4096
    for line in lines:  # no line was cut
        assert sum(line in part for part in parts) == 1
    assert all(p.startswith("<blockquote>") for p in parts[1:-1])


def test_a_flood_answer_on_a_later_part_is_waited_out_not_resent(fake: FakeTelegram) -> None:
    text = "\n\n".join(case_block(n) for n in range(30))
    fake.fail("42", "flood", after=1, retry_after=1)  # the second part is refused once
    [result] = send(fake, outgoing(text=text))
    statuses = [c.status for c in fake.calls_of("sendMessage")]
    parts = [c.text or "" for c in fake.sent("42")]
    assert statuses[:3] == [200, 429, 200]
    assert statuses.count(429) == 1
    assert "\n\n".join(parts) == text  # each part once, in order
    assert isinstance(result, Sent)
    assert result.provider_id is not None and len(result.provider_id.split(",")) == len(parts)


def test_attachments_go_as_documents(fake: FakeTelegram) -> None:
    pdf = Attachment("bao-cao.pdf", "application/pdf", b"%PDF-1.7 tiny")
    [result] = send(fake, outgoing(attachments=(pdf,), ack_data="ack:7"))
    message, document = fake.sent("42")
    assert message.method == "sendMessage" and message.buttons == []
    assert document.method == "sendDocument"
    assert document.files["document"] == ("bao-cao.pdf", b"%PDF-1.7 tiny")
    assert document.params["caption"] == "Hồ sơ sắp hết hạn"
    assert document.buttons == [("Đã nhận", "ack:7")]  # the button rides on the last part
    assert result == Sent(provider_id="1,2")


def test_one_chat_gets_a_message_a_second() -> None:
    with FakeTelegram() as fake:  # Telegram's figures on both sides
        send(fake, outgoing("42"), outgoing("42"), limits=Limits())
        first, second = fake.sent("42")
        assert second.at - first.at >= 0.95
        assert fake.rate_limited == 0


def test_different_chats_are_not_paced_a_second_apart() -> None:
    with FakeTelegram() as fake:

        async def go() -> list[Result]:
            channel = channel_for(fake, Limits())
            try:
                return await asyncio.gather(*(channel.send(outgoing(str(c))) for c in range(1, 11)))
            finally:
                await channel.aclose()

        start = time.monotonic()
        results = asyncio.run(go())
        assert time.monotonic() - start < 0.9
        assert all(isinstance(r, Sent) for r in results)
        assert fake.rate_limited == 0


def test_the_bot_wide_pace_keeps_a_strict_server_happy() -> None:
    with FakeTelegram(bot_per_second=50, bot_burst=1) as fake:

        async def go() -> list[Result]:
            channel = channel_for(fake, Limits(bot_per_second=50))
            try:
                return await asyncio.gather(*(channel.send(outgoing(str(c))) for c in range(1, 26)))
            finally:
                await channel.aclose()

        results = asyncio.run(go())
        assert all(isinstance(r, Sent) for r in results)
        times = [call.at for call in fake.sent()]
        assert max(times) - min(times) >= 24 / 50 - 0.05
        assert fake.rate_limited == 0


def test_the_fake_refuses_a_client_that_ignores_the_limits() -> None:
    """What the benchmark relies on: without our pacing the fake answers 429 and counts it."""
    with FakeTelegram() as fake:
        results = send(fake, outgoing("42"), outgoing("42"), limits=Limits(chat_interval=0))
        assert isinstance(results[0], Sent)
        assert isinstance(results[1], Transient)
        assert results[1].retry_after == 1.0
        assert fake.rate_limited == 1
