"""A fake Telegram Bot API of our own on loopback, which python-telegram-bot reaches via api_url.

Standard library only: a `ThreadingHTTPServer` in a thread of its own, so sync tests, async
tests and a benchmark in another process can all use it. It answers what our channel and bot
call (`getMe`, `deleteWebhook`, `getUpdates`, `sendMessage`, `sendDocument`,
`answerCallbackQuery`, `setMyCommands`), checks what Telegram checks (HTML that parses, 4096 /
1024 characters, 64-byte callback data), records every call, fails on cue per chat, and
enforces flood limits itself (per chat and per bot), counting the 429s it had to give.

    with FakeTelegram(chat_interval=1.0, bot_per_second=30) as fake:
        channel = TelegramChannel(TelegramChannelConfig(token=fake.token, api_url=fake.api_url))
        fake.fail("42", "flood", retry_after=2)       # the next send to chat 42 gets a 429
        fake.push_message("42", "/start ABC")         # a getUpdates poll will see it
        ...
        fake.sent("42"), fake.calls_of("answerCallbackQuery"), fake.rate_limited
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TOKEN = "123456:TEST-token_for-the-fake"
BOT_USER = {
    "id": 123456,
    "is_bot": True,
    "first_name": "Watchdog",
    "username": "watchdog_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
SEND_METHODS = frozenset({"sendMessage", "sendDocument"})
DOCUMENT_LIMIT = 50 * 1024 * 1024  # bytes a bot may upload as a document
_HTML_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a"}
    | {"tg-emoji", "code", "pre", "blockquote"}
)
_ENTITIES = frozenset({"lt", "gt", "amp", "quot"})

# Scripted answers, by kind: (HTTP status, description, parameters)
_FAILURES: dict[str, tuple[int, str]] = {
    "flood": (429, "Too Many Requests: retry after {retry_after}"),
    "bad_gateway": (502, "Bad Gateway"),
    "forbidden": (403, "Forbidden: bot was blocked by the user"),
    "chat_not_found": (400, "Bad Request: chat not found"),
    "bad_request": (400, "Bad Request: can't parse entities: unsupported start tag"),
    "migrate": (400, "Bad Request: group chat was upgraded to a supergroup chat"),
}


def telegram_html_problem(text: str) -> str | None:
    """Why Telegram would refuse `text` with parse_mode HTML, or None when it parses."""
    checker = _HtmlCheck()
    try:
        checker.feed(text)
        checker.close()
    except _HtmlRefused as err:
        return str(err)
    if checker.stack:
        return f"can't parse entities: unclosed start tag <{checker.stack[-1]}>"
    return None


def telegram_html_length(text: str) -> int:
    """The length Telegram counts: text after entity parsing, in UTF-16 units."""
    checker = _HtmlCheck()
    checker.feed(text)
    checker.close()
    return checker.units


class _HtmlRefused(Exception):
    pass


class _HtmlCheck(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.units = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_TAGS:
            raise _HtmlRefused(f"can't parse entities: unsupported start tag <{tag}>")
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise _HtmlRefused(f"can't parse entities: unsupported tag <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            raise _HtmlRefused(f"can't parse entities: unexpected end tag </{tag}>")
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if any(ch in data for ch in "<>&"):
            raise _HtmlRefused("can't parse entities: unescaped '<', '>' or '&'")
        self.units += len(data) + sum(1 for ch in data if ord(ch) > 0xFFFF)

    def handle_entityref(self, name: str) -> None:
        if name not in _ENTITIES:
            raise _HtmlRefused(f"can't parse entities: unsupported entity &{name};")
        self.units += 1

    def handle_charref(self, name: str) -> None:
        self.units += 1

    def unknown_decl(self, data: str) -> None:
        raise _HtmlRefused("can't parse entities: unsupported declaration")


@dataclass(frozen=True)
class Call:
    """One request as the fake saw it and what it answered."""

    method: str
    params: dict[str, Any]  # form fields as strings; reply_markup decoded from its JSON
    files: dict[str, tuple[str, bytes]]  # multipart uploads: field -> (filename, content)
    at: float  # time.monotonic() on arrival
    status: int
    path: str

    @property
    def chat_id(self) -> str | None:
        value = self.params.get("chat_id")
        return None if value is None else str(value)

    @property
    def text(self) -> str | None:
        return self.params.get("text", self.params.get("caption"))

    @property
    def buttons(self) -> list[tuple[str, str | None]]:
        """(label, callback_data) of every inline button, row by row."""
        markup = self.params.get("reply_markup") or {}
        return [
            (button.get("text"), button.get("callback_data"))
            for row in markup.get("inline_keyboard", [])
            for button in row
        ]


class FakeTelegram:
    """A Bot API server on 127.0.0.1 (a free port) for one bot token."""

    def __init__(
        self,
        token: str = TOKEN,
        *,
        root: str = "",
        chat_interval: float = 1.0,
        group_interval: float = 3.0,
        bot_per_second: float = 30.0,
        bot_burst: int = 30,
        slack: float = 0.05,
        enforce: bool = True,
        poll_wait: float = 1.0,
    ) -> None:
        self.token = token
        self.root = root.rstrip("/")
        self.poll_wait = poll_wait  # longest getUpdates wait, whatever `timeout` asks
        self.set_limits(
            chat_interval=chat_interval,
            group_interval=group_interval,
            bot_per_second=bot_per_second,
            bot_burst=bot_burst,
            slack=slack,
            enforce=enforce,
        )
        self.calls: list[Call] = []
        self.rate_limited = 0  # 429s given by the fake's own limits (not the scripted ones)
        self.polls_waiting = 0  # getUpdates calls held open right now (long polls)
        self._lock = threading.Condition()
        self._scripts: dict[str, deque[dict[str, Any]]] = {}
        self._chat_tat: dict[str, float] = {}
        self._bot_tat = 0.0
        self._message_ids = itertools.count(1)
        self._update_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._updates: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- life ---------------------------------------------------------------------------------

    def start(self) -> FakeTelegram:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # stop() waits for one poll
            name="fake-telegram",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            self._lock.notify_all()

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return self._server.server_address[1]

    @property
    def api_url(self) -> str:
        """What goes into `api_url` (the Bot API root, without /bot)."""
        return f"http://127.0.0.1:{self.port}{self.root}"

    # --- what the test sets -------------------------------------------------------------------

    def set_limits(
        self,
        *,
        chat_interval: float | None = None,
        group_interval: float | None = None,
        bot_per_second: float | None = None,
        bot_burst: int | None = None,
        slack: float | None = None,
        enforce: bool | None = None,
    ) -> None:
        """Flood limits the fake enforces: a chat gets one message per interval (`slack`
        seconds early still passes: network jitter), the bot `bot_per_second` with bursts of
        `bot_burst`."""
        if chat_interval is not None:
            self.chat_interval = chat_interval
        if group_interval is not None:
            self.group_interval = group_interval
        if bot_per_second is not None:
            self.bot_per_second = bot_per_second
        if bot_burst is not None:
            self.bot_burst = bot_burst
        if slack is not None:
            self.slack = slack
        if enforce is not None:
            self.enforce = enforce

    def fail(
        self,
        chat_id: object,
        kind: str,
        *,
        times: int = 1,
        after: int = 0,
        retry_after: float = 1,
        migrate_to: int | None = None,
        delay: float = 1.0,
    ) -> None:
        """After `after` sends to `chat_id` pass, the next `times` fail: `flood` (429 with
        retry_after), `bad_gateway` (502), `forbidden` (403), `chat_not_found` (400),
        `bad_request` (400), `migrate` (400 with migrate_to_chat_id), or `slow` (delivered,
        but answered only after `delay` seconds: what a client's read timeout meets)."""
        with self._lock:
            queue = self._scripts.setdefault(str(chat_id), deque())
            queue.extend({"pass": True} for _ in range(after))
            if kind == "slow":
                queue.extend({"delay": delay} for _ in range(times))
                return
        status, description = _FAILURES[kind]
        parameters: dict[str, Any] = {}
        if kind == "flood":
            parameters["retry_after"] = retry_after
            description = description.format(retry_after=retry_after)
        if kind == "migrate":
            assert migrate_to is not None, "migrate needs migrate_to"
            parameters["migrate_to_chat_id"] = migrate_to
        answer = {"ok": False, "error_code": status, "description": description}
        if parameters:
            answer["parameters"] = parameters
        with self._lock:
            queue.extend(dict(answer) for _ in range(times))

    def push_message(
        self, chat_id: object, text: str, *, user_id: int | None = None, first_name: str = "Cán bộ"
    ) -> int:
        """Queue a text message from a user for the next getUpdates; returns its update_id."""
        chat = _chat(chat_id)
        user = {"id": user_id or abs(int(chat["id"])), "is_bot": False, "first_name": first_name}
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self._push({"message": message})

    def push_callback(
        self, chat_id: object, data: str, *, message_id: int = 1, user_id: int | None = None
    ) -> str:
        """Queue a press of an inline button; returns the callback query id."""
        chat = _chat(chat_id)
        query_id = f"cbq-{next(self._callback_ids)}"
        user = {"id": user_id or abs(int(chat["id"])), "is_bot": False, "first_name": "Cán bộ"}
        self._push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user,
                    "chat_instance": f"ci-{chat['id']}",
                    "data": data,
                    "message": {
                        "message_id": message_id,
                        "date": int(time.time()),
                        "chat": chat,
                        "from": BOT_USER,
                        "text": "…",
                    },
                }
            }
        )
        return query_id

    def _push(self, update: dict[str, Any]) -> int:
        with self._lock:
            update_id = next(self._update_ids)
            self._updates.append({"update_id": update_id, **update})
            self._lock.notify_all()
        return update_id

    # --- what the test reads ------------------------------------------------------------------

    def calls_of(self, method: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def sent(self, chat_id: object | None = None) -> list[Call]:
        """Accepted sendMessage / sendDocument calls, in order (to one chat if given)."""
        with self._lock:
            return [
                call
                for call in self.calls
                if call.method in SEND_METHODS
                and call.status == 200
                and (chat_id is None or call.chat_id == str(chat_id))
            ]

    def documents(self, chat_id: object | None = None) -> list[tuple[str, bytes, str | None]]:
        """(file name, bytes, caption) of every accepted upload by sendDocument, in order."""
        return [
            (*call.files["document"], call.params.get("caption"))
            for call in self.sent(chat_id)
            if call.method == "sendDocument" and "document" in call.files
        ]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait (without blocking the loop) until `count` calls of `method` got answered 200."""
        deadline = time.monotonic() + timeout
        while True:
            calls = [call for call in self.calls_of(method) if call.status == 200]
            if len(calls) >= count:
                return calls
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} {method} expected, got {len(calls)}: {self.calls}")
            await asyncio.sleep(0.01)

    # --- the server side ----------------------------------------------------------------------

    def answer(
        self, path: str, method: str, params: dict[str, Any], files: dict[str, tuple[str, bytes]]
    ) -> tuple[int, dict[str, Any]]:
        now = time.monotonic()
        if method == "getUpdates":
            status, body = 200, {"ok": True, "result": self._get_updates(params)}
        else:
            with self._lock:
                script = self._scripts.get(str(params.get("chat_id")))
                if method in SEND_METHODS and script and "delay" in script[0]:
                    delay = script.popleft()["delay"]
                else:
                    delay = 0.0
                status, body = self._respond(method, params, files, now)
            time.sleep(delay)  # answered late, but delivered all the same
        with self._lock:
            self.calls.append(Call(method, params, files, now, status, path))
        return status, body

    def _respond(
        self,
        method: str,
        params: dict[str, Any],
        files: dict[str, tuple[str, bytes]],
        now: float,
    ) -> tuple[int, dict[str, Any]]:
        chat = params.get("chat_id")
        if method in SEND_METHODS:
            if chat is None:
                return _error(400, "Bad Request: chat_id is empty")
            script = self._scripts.get(str(chat))
            if script and "pass" in script[0]:
                script.popleft()
            elif script and "error_code" in script[0]:
                answer = script.popleft()
                return answer["error_code"], answer
            if self.enforce and (wait := self._admit(str(chat), now)) > 0:
                self.rate_limited += 1
                retry_after = max(1, math.ceil(wait))
                return _error(
                    429,
                    f"Too Many Requests: retry after {retry_after}",
                    {"retry_after": retry_after},
                )
            upload = files.get("document")
            if method == "sendDocument" and upload and len(upload[1]) > DOCUMENT_LIMIT:
                return _error(413, "Request Entity Too Large")
            problem = _check_send(method, params, files)
            if problem:
                return _error(400, f"Bad Request: {problem}")
            return 200, {"ok": True, "result": self._message(method, params, files)}
        if method == "getMe":
            return 200, {"ok": True, "result": BOT_USER}
        if method in ("deleteWebhook", "setMyCommands", "answerCallbackQuery", "close"):
            return 200, {"ok": True, "result": True}
        if method == "getWebhookInfo":
            return 200, {
                "ok": True,
                "result": {"url": "", "has_custom_certificate": False, "pending_update_count": 0},
            }
        return _error(404, "Not Found: method not found")

    def _admit(self, chat: str, now: float) -> float:
        """GCRA on both limits: 0 and both counted when the send may pass, else how long to
        wait. Only messages count, as on Telegram."""
        interval = self.group_interval if chat.startswith(("-", "@")) else self.chat_interval
        chat_tat = self._chat_tat.get(chat, now)
        chat_wait = chat_tat - self.slack - now
        bot_interval = 1.0 / self.bot_per_second
        bot_tat = max(self._bot_tat, now)
        bot_wait = bot_tat - (self.bot_burst - 1) * bot_interval - self.slack - now
        wait = max(chat_wait, bot_wait)
        if wait > 0:
            return wait
        self._chat_tat[chat] = max(chat_tat, now) + interval
        self._bot_tat = bot_tat + bot_interval
        return 0.0

    def _message(
        self, method: str, params: dict[str, Any], files: dict[str, tuple[str, bytes]]
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": _chat(params["chat_id"]),
            "from": BOT_USER,
        }
        if method == "sendMessage":
            message["text"] = params.get("text", "")
        else:
            filename, content = files.get("document", (str(params.get("document")), b""))
            message["document"] = {
                "file_id": f"doc-{message['message_id']}",
                "file_unique_id": f"u-{message['message_id']}",
                "file_name": filename,
                "file_size": len(content),
            }
            if params.get("caption"):
                message["caption"] = params["caption"]
        return message

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + min(timeout, self.poll_wait)
        with self._lock:
            while True:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                if self._updates or self._server is None:
                    return self._updates[:limit]
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self.polls_waiting += 1
                try:
                    self._lock.wait(left)
                finally:
                    self.polls_waiting -= 1


def _chat(chat_id: object) -> dict[str, Any]:
    text = str(chat_id)
    number = int(text) if text.lstrip("-").isdigit() else -1009999999999
    if number > 0:
        return {"id": number, "type": "private", "first_name": "Cán bộ"}
    return {"id": number, "type": "supergroup", "title": "Nhóm"}


def _error(
    status: int, description: str, parameters: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return status, body


def _check_send(
    method: str, params: dict[str, Any], files: dict[str, tuple[str, bytes]]
) -> str | None:
    """What Telegram would refuse in a send (only what our client could get wrong)."""
    html_mode = str(params.get("parse_mode", "")).upper() == "HTML"
    if method == "sendMessage":
        text, limit, what = params.get("text") or "", 4096, "message"
        if not text.strip():
            return "message text is empty"
    else:
        if "document" not in files and not params.get("document"):
            return "there is no document in the request"
        text, limit, what = params.get("caption") or "", 1024, "message caption"
    if html_mode and (problem := telegram_html_problem(text)):
        return problem
    size = telegram_html_length(text) if html_mode else len(text.encode("utf-16-le")) // 2
    if size > limit:
        return f"{what} is too long"
    for row in (params.get("reply_markup") or {}).get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= 64:
                return "BUTTON_DATA_INVALID"
    return None


class _Handler(BaseHTTPRequestHandler):
    fake: FakeTelegram
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects of the real API
    disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed ACK

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(self.rfile.read(length) if length else b"")

    def _serve(self, body: bytes) -> None:
        fake = self.fake
        url = urlsplit(self.path)
        prefix = f"{fake.root}/bot{fake.token}/"
        if not url.path.startswith(prefix) or "/" in url.path[len(prefix) :]:
            status, answer = _error(404, "Not Found")
            if url.path.startswith(f"{fake.root}/bot"):
                status, answer = _error(401, "Unauthorized")
        else:
            method = url.path[len(prefix) :]
            params, files = _parse(self.headers.get("Content-Type", ""), body, url.query)
            status, answer = fake.answer(url.path, method, params, files)
        payload = json.dumps(answer, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a cancelled long poll)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the calls are recorded, not logged."""


def _parse(
    content_type: str, body: bytes, query: str
) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    """Form-urlencoded, multipart (sendDocument) or JSON, as ptb or a test may send."""
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    files: dict[str, tuple[str, bytes]] = {}
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        params.update(parse_qsl(body.decode(), keep_blank_values=True))
    elif kind == "application/json" and body:
        params.update(json.loads(body))
    elif kind == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            content = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            if filename is not None:
                files[str(name)] = (filename, content)
            else:
                charset = part.get_content_charset() or "utf-8"
                params[str(name)] = content.decode(charset)
    if isinstance(params.get("reply_markup"), str):
        params["reply_markup"] = json.loads(params["reply_markup"])
    return params, files
