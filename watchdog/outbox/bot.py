"""What the Telegram bot asks of the system (`channels.telegram_bot.BotPorts`), from the store.

`/start CODE` uses a link code; `/hoso` lists the linked official's open cases, most urgent
first; "Đã nhận" acknowledges the message the button came with, only from the chat it was
sent to. An unlinked chat learns nothing about any case.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from watchdog.config import Settings
from watchdog.outbox.render import say_remaining, telegram_escape
from watchdog.reports.board import board
from watchdog.store import Store
from watchdog.store.links import official_of_chat, use_link_code
from watchdog.store.outbox import acknowledge
from watchdog.timefmt import show


class StoreBotPorts:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Callable[[], datetime],
        check_ack: Callable[[str], int | None],
        on_linked: Callable[[str, str], None] | None = None,
    ):
        self.store = store
        self.settings = settings
        self.clock = clock
        self.check_ack = check_ack
        self.on_linked = on_linked  # (official id, chat id): the daemon updates its directory

    def link(self, code: str, chat_id: str) -> str | None:
        who = use_link_code(self.store, code, chat_id, self.clock())
        if who is None:
            return None
        if self.on_linked is not None:
            self.on_linked(who, chat_id)
        official = self.settings.officials.get(who)
        return official.name if official else who

    def open_cases(self, chat_id: str) -> list[str] | None:
        who = official_of_chat(self.store, chat_id)
        if who is None:
            return None
        tz = self.settings.default_calendar.tz
        lines = []
        for line in board(self.store, self.settings, self.clock(), official=who):
            case, status = line.case, line.status
            procedure = self.settings.procedures.get(case.procedure_code)
            name = procedure.name if procedure else case.procedure_code
            if status.due is None:
                when = "chưa có hạn"
            else:
                day = self.settings.calendar_for(case.unit_code).day_seconds
                when = f"hạn {show(status.due, tz)}, {say_remaining(status.remaining, day)}"
            lines.append(
                f"<b>{telegram_escape(case.case_code)}</b> · {telegram_escape(name)}\n"
                f"{telegram_escape(when)}"
            )
        return lines

    def is_linked(self, chat_id: str) -> bool:
        return official_of_chat(self.store, chat_id) is not None

    def acknowledge(self, data: str, chat_id: str) -> bool:
        message_id = self.check_ack(data)
        if message_id is None:
            return False
        return acknowledge(self.store, message_id, self.clock(), address=str(chat_id))
