"""The Telegram channel: rendered Telegram-HTML to a chat, paced to Telegram's flood limits.

python-telegram-bot's `ExtBot` does the HTTP; pacing is ours (`ChatRateLimiter`) because the
shipped `AIORateLimiter` has no per-chat limit for private chats and lets one `RetryAfter` stall
every chat (ptb #5338). Texts over 4096 characters are split on case boundaries, each part a
valid HTML fragment, and the "Đã nhận" button rides on the last part.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import unicodedata
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

# RetryAfter.retry_after warns (PTBDeprecationWarning) on every read, even inside ptb's own
# constructor, unless this opts in to timedelta values; a run with -W error would break on the
# first 429. An explicit setting by the operator is left alone.
os.environ.setdefault("PTB_TIMEDELTA", "true")

import httpx
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import BaseRateLimiter, ExtBot
from telegram.request import HTTPXRequest

from watchdog.channels import Attachment, Outgoing, Permanent, Result, Sent, Transient

if TYPE_CHECKING:
    from telegram import Message

    from watchdog.config.models import TelegramChannelConfig

MESSAGE_LIMIT = 4096  # characters of a text message (we count UTF-16 units of the raw HTML)
CAPTION_LIMIT = 1024
DOCUMENT_LIMIT = 50 * 1024 * 1024  # bytes a bot may upload (sendDocument)
CALLBACK_DATA_LIMIT = 64  # bytes
ACK_LABEL = "Đã nhận"
_MAX_ERROR = 300
_PART_RETRIES = 3  # RetryAfter waits a follow-on part sits out before giving up


@dataclass(frozen=True, slots=True)
class Limits:
    """Telegram's flood limits as we pace them; tests and the benchmark set their own."""

    chat_interval: float = 1.0  # seconds between two messages to one private chat
    group_interval: float = 3.0  # seconds between two messages to one group (20 a minute)
    bot_per_second: float = 30.0  # requests a second for the whole bot
    # A RetryAfter on a second or later part of a split message is waited out in place (up to
    # this long) rather than answered Transient, which would resend the parts already delivered.
    max_part_wait: float = 30.0

    def __post_init__(self) -> None:
        if self.bot_per_second <= 0 or min(self.chat_interval, self.group_interval) < 0:
            raise ValueError(f"Telegram limits must be positive: {self}")


def api_base(api_url: str) -> str:
    """The ptb `base_url` for a Bot API root: `{root}/bot` (the token is appended by ptb)."""
    root = api_url.rstrip("/")
    return root if root.endswith("/bot") else f"{root}/bot"


def api_file_base(api_url: str) -> str:
    root = api_base(api_url)[: -len("/bot")]
    return f"{root}/file/bot"


def retry_seconds(err: RetryAfter) -> float:
    value: Any = err.retry_after  # a timedelta with PTB_TIMEDELTA, an int (and a warning) without
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def chat_key(chat_id: object) -> str:
    return str(chat_id).strip()


def is_group(key: str) -> bool:
    """Groups and supergroups have negative ids; `@name` addresses a channel or public group."""
    return key.startswith(("-", "@"))


@dataclass(slots=True)
class _ChatPace:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_at: float = 0.0  # loop time when the chat may get its next message
    blocked_until: float = 0.0  # a RetryAfter for this chat
    users: int = 0


class ChatRateLimiter(BaseRateLimiter[None]):
    """Paces each chat on its own and the bot as a whole; a 429 holds only the chat it names.

    Requests to one chat go one at a time, in order, the next no sooner than `chat_interval`
    (groups: `group_interval`) after the previous answer came back, so the gap seen by the
    server is never shorter than the interval whatever the network's jitter. All requests also
    take slots `1 / bot_per_second` apart. A `RetryAfter` is not retried here: it is re-raised
    (the channel answers Transient) and that chat alone waits `retry_after` before its next
    request. One limiter may serve several bots of one token (the channel and the bot side).
    """

    _SWEEP_EVERY = 512

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._chats: dict[str, _ChatPace] = {}
        self._bot_next = 0.0
        self._bot_blocked_until = 0.0
        self._calls = 0

    async def initialize(self) -> None:
        """Nothing to open: state is created per chat on first use."""

    async def shutdown(self) -> None:
        """Nothing to close; kept so that one limiter can serve two bots."""

    def blocked_until(self, chat_id: object) -> float:
        """Loop time until which a 429 holds this chat (0 when it does not)."""
        pace = self._chats.get(chat_key(chat_id))
        return pace.blocked_until if pace else 0.0

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        chat = data.get("chat_id")
        if chat is None:
            await self._bot_slot()
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as err:
                self._bot_blocked_until = loop.time() + retry_seconds(err)
                raise
        key = chat_key(chat)
        pace = self._chats.get(key)
        if pace is None:
            pace = self._chats[key] = _ChatPace()
        pace.users += 1
        try:
            async with pace.lock:
                await _sleep_until(max(pace.next_at, pace.blocked_until))
                await self._bot_slot()
                try:
                    return await callback(*args, **kwargs)
                except RetryAfter as err:
                    pace.blocked_until = loop.time() + retry_seconds(err)
                    raise
                finally:
                    limits = self.limits
                    interval = limits.group_interval if is_group(key) else limits.chat_interval
                    pace.next_at = loop.time() + interval
        finally:
            pace.users -= 1
            self._calls += 1
            if self._calls % self._SWEEP_EVERY == 0:
                self._sweep(loop.time())

    async def _bot_slot(self) -> None:
        """Reserve the next bot-wide slot (FIFO by arrival) and wait for it."""
        now = asyncio.get_running_loop().time()
        slot = max(now, self._bot_next, self._bot_blocked_until)
        self._bot_next = slot + 1.0 / self.limits.bot_per_second
        await _sleep_until(slot)

    def _sweep(self, now: float) -> None:
        """Forget chats nobody waits on whose intervals are over (a daemon meets many chats)."""
        for key in [
            k
            for k, p in self._chats.items()
            if p.users == 0 and p.next_at <= now and p.blocked_until <= now
        ]:
            del self._chats[key]


async def _sleep_until(when: float) -> None:
    delay = when - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


# --- splitting Telegram-HTML -------------------------------------------------------------------

_TOKEN = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)(?:\s[^<>]*)?>"  # a tag (Telegram has no self-closing ones)
    r"|&(?:#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);"  # an entity
    r"|[^<&]|[<&]",  # one character
    re.S,
)
_TEXT, _OPEN, _CLOSE, _ENTITY = range(4)


class _Token(NamedTuple):
    text: str
    kind: int
    name: str
    units: int


def utf16_units(text: str) -> int:
    """Telegram counts UTF-16 code units: characters beyond the BMP (emoji) count twice."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    for m in _TOKEN.finditer(text):
        s = m.group(0)
        if m.group(2):
            kind = _CLOSE if m.group(1) else _OPEN
            tokens.append(_Token(s, kind, m.group(2).lower(), utf16_units(s)))
        else:
            kind = _ENTITY if len(s) > 1 else _TEXT
            tokens.append(_Token(s, kind, "", utf16_units(s)))
    return tokens


def _closer_units(name: str) -> int:
    return len(name) + 3  # </name>


def _apply(stack: list[tuple[str, str]], tok: _Token) -> None:
    if tok.kind == _OPEN:
        stack.append((tok.name, tok.text))
    elif tok.kind == _CLOSE:
        for k in range(len(stack) - 1, -1, -1):
            if stack[k][0] == tok.name:
                del stack[k]
                break


def _cut_rank(tokens: list[_Token], start: int, j: int) -> int | None:
    """How good a cut before token j is: 0 between cases, 1 between lines, 2 between words."""
    prev = tokens[j - 1].text
    if prev == "\n":
        return 0 if j - 2 >= start and tokens[j - 2].text == "\n" else 1
    if prev == " ":
        return 2
    nxt = tokens[j]
    if nxt.kind == _TEXT and unicodedata.combining(nxt.text):
        return None  # never part a letter from its tone mark
    return 3


def split_html(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Telegram-HTML cut into parts of at most `limit` units, preferring case boundaries.

    A cut falls between case blocks ("\\n\\n") when one fits, else between lines, else between
    words, else between characters; never inside a tag or an entity. Tags open at a cut are
    closed at the end of the part and opened again (as written) at the start of the next, so
    every part is a valid fragment on its own.
    """
    if utf16_units(text) <= limit:
        return [text] if text.strip() else []
    tokens = _tokenize(text)
    parts: list[str] = []
    stack: list[tuple[str, str]] = []
    i, n = 0, len(tokens)
    while i < n:
        while i < n and tokens[i].text == "\n":
            i += 1
        if i == n:
            break
        prefix = "".join(opening for _, opening in stack)
        size = utf16_units(prefix)
        open_now = list(stack)
        closers = sum(_closer_units(name) for name, _ in open_now)
        best: dict[int, tuple[int, list[tuple[str, str]]]] = {}
        j = i
        while j < n:
            tok = tokens[j]
            after, after_closers = open_now, closers
            if tok.kind in (_OPEN, _CLOSE):
                after = list(open_now)
                _apply(after, tok)
                after_closers = sum(_closer_units(name) for name, _ in after)
            if size + tok.units + after_closers > limit:
                break
            size += tok.units
            open_now, closers = after, after_closers
            j += 1
            if j < n and (rank := _cut_rank(tokens, i, j)) is not None:
                best[rank] = (j, open_now)
        if j == n:
            cut, cut_stack = n, open_now
        elif best:
            cut, cut_stack = best[min(best)]
        else:
            raise ValueError(f"cannot split the text into parts of {limit} characters")
        body = "".join(tok.text for tok in tokens[i:cut]).rstrip(" \n")
        if body.strip():
            closing = "".join(f"</{name}>" for name, _ in reversed(cut_stack))
            parts.append(prefix + body + closing)
        i, stack = cut, list(cut_stack)
    return parts


def _caption(subject: str) -> str:
    """The subject as a document's caption, escaped and cut to Telegram's 1024."""
    plain = " ".join(subject.split())
    cut = min(len(plain), CAPTION_LIMIT)
    while True:
        caption = html.escape(plain[:cut], quote=False) + ("…" if cut < len(plain) else "")
        excess = utf16_units(caption) - CAPTION_LIMIT
        if excess <= 0:
            return caption
        cut -= -(-excess // 5)  # one character escapes to at most 5 ("&amp;")


def _chat_param(address: str) -> int | str:
    return int(address) if re.fullmatch(r"-?\d+", address) else address


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


class TelegramChannel:
    """Sends rendered messages through the Bot API; never raises for a delivery problem."""

    name = "telegram"

    def __init__(
        self, config: TelegramChannelConfig, *, limits: Limits | None = None, timeout: float = 15.0
    ) -> None:
        """`timeout`: seconds to wait for Telegram's answer (past it, the message may or may
        not have been delivered)."""
        self._token = config.token
        self.limiter = ChatRateLimiter(limits)
        # Our own request objects: the bot is never `initialize`d (that would cost a getMe per
        # start and fail sends while Telegram is away), and an uninitialised bot's `shutdown`
        # closes nothing, so `aclose` closes these itself.
        self._requests = (
            HTTPXRequest(
                connection_pool_size=32,
                read_timeout=timeout,
                write_timeout=max(timeout, 20.0),
                pool_timeout=10.0,
            ),
            HTTPXRequest(connection_pool_size=1),
        )
        self.bot: ExtBot[None] = ExtBot(
            config.token,
            base_url=api_base(config.api_url),
            base_file_url=api_file_base(config.api_url),
            request=self._requests[0],
            get_updates_request=self._requests[1],
            rate_limiter=self.limiter,
        )

    @property
    def limits(self) -> Limits:
        return self.limiter.limits

    async def send(self, message: Outgoing) -> Result:
        address = message.address.strip()
        if not address:
            return Permanent("no Telegram chat id for this recipient")
        ack = message.ack_data
        if ack is not None and not 1 <= len(ack.encode()) <= CALLBACK_DATA_LIMIT:
            return Permanent(f"ack data must be 1 to {CALLBACK_DATA_LIMIT} bytes: {ack!r}")
        too_big = [a.filename for a in message.attachments if len(a.data) > DOCUMENT_LIMIT]
        if too_big:  # refused before the text goes, or every retry would send the text again
            return Permanent(_short(f"documents over 50 MB, which Telegram refuses: {too_big}"))
        try:
            texts = split_html(message.text)
        except ValueError as err:
            return Permanent(str(err))
        steps: list[Callable[[int | str, InlineKeyboardMarkup | None], Awaitable[Message]]] = [
            self._text_step(part) for part in texts
        ]
        steps += [self._document_step(a, _caption(message.subject)) for a in message.attachments]
        if not steps:
            return Permanent("nothing to send: empty text and no attachment")
        markup = (
            InlineKeyboardMarkup([[InlineKeyboardButton(ACK_LABEL, callback_data=ack)]])
            if ack
            else None
        )
        target: int | str = _chat_param(address)
        moved_to: str | None = None
        ids: list[str] = []
        for k, step in enumerate(steps):
            last = k == len(steps) - 1
            waits = 0
            while True:
                try:
                    sent = await step(target, markup if last else None)
                except ChatMigrated as err:
                    if moved_to is not None:
                        return Permanent(f"chat moved twice (now {err.new_chat_id})")
                    moved_to, target = str(err.new_chat_id), err.new_chat_id
                    continue
                except RetryAfter as err:
                    wait = retry_seconds(err)
                    if ids and waits < _PART_RETRIES and wait <= self.limits.max_part_wait:
                        waits += 1  # the limiter holds this chat for `wait`, then we go on
                        continue
                    return Transient(
                        _short(f"flood control: retry after {wait:g} s{self._partial(ids)}"),
                        retry_after=wait,
                    )
                except TelegramError as err:
                    return self._failure(err, ids)
                ids.append(str(sent.message_id))
                break
        note = f"chat moved to a supergroup: {moved_to}" if moved_to else None
        return Sent(provider_id=",".join(ids), note=note, moved_to=moved_to)

    def _text_step(
        self, text: str
    ) -> Callable[[int | str, InlineKeyboardMarkup | None], Awaitable[Message]]:
        def step(chat: int | str, markup: InlineKeyboardMarkup | None) -> Awaitable[Message]:
            return self.bot.send_message(
                chat,
                text,
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
                reply_markup=markup,
            )

        return step

    def _document_step(
        self, attachment: Attachment, caption: str
    ) -> Callable[[int | str, InlineKeyboardMarkup | None], Awaitable[Message]]:
        def step(chat: int | str, markup: InlineKeyboardMarkup | None) -> Awaitable[Message]:
            return self.bot.send_document(
                chat,
                attachment.data,
                filename=attachment.filename,
                caption=caption or None,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
            )

        return step

    def _scrub(self, text: str) -> str:
        """Error texts go to history: never let the token (it sits in every URL) go with them."""
        return text.replace(self._token, "<token>") if self._token else text

    @staticmethod
    def _partial(ids: list[str]) -> str:
        return f"; parts already delivered: {','.join(ids)}" if ids else ""

    def _failure(self, err: TelegramError, ids: list[str]) -> Transient | Permanent:
        text = self._scrub(str(err) or type(err).__name__)
        partial = self._partial(ids)
        if isinstance(err, Forbidden):  # the bot was blocked, kicked, or the user is gone
            return Permanent(_short(f"403 {text}{partial}"), unlink=True)
        if isinstance(err, BadRequest):  # before NetworkError: BadRequest is a subclass of it
            unlink = "chat not found" in text.lower()
            return Permanent(_short(f"400 {text}{partial}"), unlink=unlink)
        if isinstance(err, InvalidToken):  # its text carries the token: say it in our words
            return Permanent(f"Telegram refused the bot token (401/404){partial}")
        if isinstance(err, TimedOut):
            cause = err.__cause__
            if isinstance(cause, httpx.PoolTimeout | httpx.ConnectTimeout):
                return Transient(_short(f"timed out before sending: {text}{partial}"))
            return Transient(
                _short(
                    f"timed out waiting for Telegram; the message may have been delivered{partial}"
                )
            )
        if "request entity too large" in text.lower():  # 413: never smaller on a retry
            return Permanent(_short(f"413 {text}{partial}"))
        if isinstance(err, NetworkError):  # 5xx and connection failures
            return Transient(_short(f"network: {text}{partial}"))
        return Transient(_short(f"Telegram: {text}{partial}"))

    async def aclose(self) -> None:
        await asyncio.gather(*(request.shutdown() for request in self._requests))
