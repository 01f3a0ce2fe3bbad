"""The Telegram bot's listening side: linking chats, /hoso, and the "Đã nhận" button.

It knows nothing of our store: everything it needs goes through `BotPorts`, three plain
functions the composition root backs with the store. They touch the database, so the bot calls
them in a worker thread and the event loop keeps polling. The bot runs inside our own loop
(`start` / `stop`, never ptb's blocking `run_polling`) and builds no scheduler of its own.

An unlinked chat learns how to link and nothing else: no case code, no name, no count.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from typing import TYPE_CHECKING, Any, Protocol

from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from watchdog.channels.telegram import (
    ChatRateLimiter,
    Limits,
    api_base,
    api_file_base,
    split_html,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from watchdog.config.models import TelegramChannelConfig

log = logging.getLogger(__name__)

DEEP_LINK_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what Telegram lets a /start payload hold

# What officials read (Vietnamese, Telegram-HTML).
HOW_TO_LINK = (
    "Hãy xin mã liên kết từ quản trị viên (lệnh <code>watchdog officials link-code</code>) "
    "rồi gửi /start MÃ"
)
LINKED = (
    "Đã liên kết với tài khoản của {name}. Từ nay thông báo về hạn xử lý hồ sơ sẽ được gửi "
    "vào cuộc trò chuyện này; gửi /hoso để xem các hồ sơ đang mở."
)
BAD_CODE = "Mã liên kết không đúng hoặc đã hết hạn. " + HOW_TO_LINK
OPEN_CASES = "<b>Hồ sơ đang mở ({count})</b>, gấp nhất trước:"
NO_OPEN_CASES = "Không có hồ sơ nào đang mở."
HELP_LINKED = "Gửi /hoso để xem các hồ sơ đang mở."
ACKNOWLEDGED = "Đã ghi nhận"
NOT_FOUND = "Không tìm thấy thông báo"
BUSY = "Hệ thống đang bận, xin thử lại sau ít phút."
COMMANDS = (("hoso", "Các hồ sơ đang mở của tôi"), ("start", "Liên kết tài khoản bằng mã"))


class BotPorts(Protocol):
    """What the bot asks of the rest of the system (sync: they run in a worker thread)."""

    def link(self, code: str, chat_id: str) -> str | None:
        """Link the chat when the code is valid, unused and unexpired: the official's name."""
        ...

    def open_cases(self, chat_id: str) -> list[str] | None:
        """Telegram-HTML lines of the linked official's open cases, most urgent first; None
        when the chat is not linked."""
        ...

    def is_linked(self, chat_id: str) -> bool:
        """Whether the chat is linked to an official (nothing about their cases is read)."""
        ...

    def acknowledge(self, data: str, chat_id: str) -> bool:
        """Record a press of "Đã nhận" (its callback data); False when no notice matches."""
        ...


class _PortFailed(Exception):
    """A port raised (the database is away): the user gets BUSY, the log gets the cause."""


class TelegramBot:
    """Long-polls the Bot API in our loop and answers officials through `BotPorts`."""

    def __init__(
        self,
        config: TelegramChannelConfig,
        ports: BotPorts,
        *,
        limiter: ChatRateLimiter | None = None,
        poll_timeout: float = 10.0,
    ) -> None:
        """`limiter`: pass the channel's (`TelegramChannel.limiter`) so that the bot's answers
        and the channel's notices share one per-chat pace and one 30/s budget."""
        self._config = config
        self._ports = ports
        self._limiter = limiter or ChatRateLimiter(Limits())
        self._poll_timeout = poll_timeout
        self._app: Application[Any, Any, Any, Any, Any, Any] | None = None

    @property
    def running(self) -> bool:
        return self._app is not None and self._app.running

    async def start(self) -> None:
        """Connect (getMe), register the commands and start polling; returns once polling."""
        if self._app is not None:
            return
        app = (
            Application.builder()
            .token(self._config.token)
            .base_url(api_base(self._config.api_url))
            .base_file_url(api_file_base(self._config.api_url))
            .job_queue(None)  # the daemon owns the scheduling; ptb would build its own
            .rate_limiter(self._limiter)
            .build()
        )
        app.add_handler(CommandHandler("start", self._on_start))
        app.add_handler(CommandHandler("hoso", self._on_open_cases))
        app.add_handler(CallbackQueryHandler(self._on_button))
        app.add_handler(MessageHandler(filters.ChatType.PRIVATE, self._on_other))
        app.add_error_handler(self._on_error)
        self._app = app
        try:
            await app.initialize()
            await self._set_commands()
            await app.start()
            assert app.updater is not None
            await app.updater.start_polling(
                timeout=self._poll_timeout,
                allowed_updates=["message", "callback_query"],
            )
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop polling, then handlers, then close connections (ptb's documented order)."""
        app, self._app = self._app, None
        if app is None:
            return
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    async def _set_commands(self) -> None:
        assert self._app is not None
        try:
            await self._app.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS])
        except TelegramError as err:  # a menu is a nicety: polling matters more
            log.warning("Telegram: cannot set the command menu: %s", err)

    # --- handlers -----------------------------------------------------------------------------

    async def _on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = _chat_id(update)
        if chat is None:
            return
        args = context.args or []
        if not args:
            await self._reply(context, chat, HOW_TO_LINK)
            return
        code = args[0]
        if not DEEP_LINK_CODE.fullmatch(code):
            await self._reply(context, chat, BAD_CODE)
            return
        try:
            name = await self._ask(self._ports.link, code, chat)
        except _PortFailed:
            await self._reply(context, chat, BUSY)
            return
        if name is None:
            await self._reply(context, chat, BAD_CODE)
        else:
            await self._reply(context, chat, LINKED.format(name=html.escape(name, quote=False)))

    async def _on_open_cases(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = _chat_id(update)
        if chat is None:
            return
        try:
            lines = await self._ask(self._ports.open_cases, chat)
        except _PortFailed:
            await self._reply(context, chat, BUSY)
            return
        if lines is None:
            await self._reply(context, chat, HOW_TO_LINK)
        elif not lines:
            await self._reply(context, chat, NO_OPEN_CASES)
        else:
            text = OPEN_CASES.format(count=len(lines)) + "\n\n" + "\n".join(lines)
            for part in split_html(text):
                await self._reply(context, chat, part)

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        chat = _chat_id(update) or str(query.from_user.id)
        try:
            found = bool(query.data) and await self._ask(
                self._ports.acknowledge, str(query.data), chat
            )
        except _PortFailed:
            await query.answer(BUSY)
            return
        await query.answer(ACKNOWLEDGED if found else NOT_FOUND)

    async def _on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Anything else in a private chat: how to link, or (when linked) what to ask."""
        chat = _chat_id(update)
        if chat is None:
            return
        try:
            linked = await self._ask(self._ports.is_linked, chat)
        except _PortFailed:
            await self._reply(context, chat, BUSY)
            return
        await self._reply(context, chat, HELP_LINKED if linked else HOW_TO_LINK)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.warning("Telegram bot: %s", context.error, exc_info=context.error)

    # --- helpers ------------------------------------------------------------------------------

    async def _ask(self, port: Callable[..., Any], *args: str) -> Any:
        try:
            return await asyncio.to_thread(port, *args)
        except Exception as err:
            log.exception("Telegram bot: %s failed", getattr(port, "__name__", port))
            raise _PortFailed from err

    @staticmethod
    async def _reply(context: ContextTypes.DEFAULT_TYPE, chat: str, text: str) -> None:
        await context.bot.send_message(int(chat), text, parse_mode=ParseMode.HTML)


def _chat_id(update: Update) -> str | None:
    chat = update.effective_chat
    return None if chat is None else str(chat.id)
