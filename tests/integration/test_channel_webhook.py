"""The webhook channel against a real HTTP server on loopback (SPEC 7): the body, the signature,
the same id on every retry, and which answers are transient or permanent."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest

from watchdog.channels import Outgoing, Permanent, Recipient, Sent, Transient
from watchdog.channels.webhook import WebhookChannel, retry_after, sign, verify_signature
from watchdog.config.models import WebhookChannelConfig

SECRET = "s3cret-s3cret-s3cret"
VN = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A loopback HTTP server answering from a script of replies (then 200), recording what
    it was sent."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.seen: list[Seen] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.seen.append(Seen(self.path, dict(self.headers.items()), body))
                reply = receiver.replies.pop(0) if receiver.replies else Reply()
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def message(**changes: object) -> Outgoing:
    base = Outgoing(
        id=42,
        channel="webhook",
        address="chuyenvien",
        recipient=Recipient(
            id="chuyenvien",
            name="Nguyễn Văn Chuyên",
            unit="STP.HC",
            email="cv@example.vn",
            telegram="123456789",
        ),
        stages=("mac_dinh/due_soon",),
        subject="[Sắp đến hạn] Hồ sơ 000.00.21.H59-261124-0012",
        text="Hồ sơ 000.00.21.H59-261124-0012 còn 1 ngày làm việc",
        html="<p>Hồ sơ còn 1 ngày làm việc</p>",
        created_at=datetime(2026, 12, 3, 8, 15, tzinfo=VN),
        message_id="<outbox-42.abc@watchdog>",
        cases=(
            {
                "case_code": "000.00.21.H59-261124-0012",
                "procedure_code": "2.000488",
                "procedure_name": "Cấp Phiếu lý lịch tư pháp",
                "unit_code": "STP.HC",
                "received_at": "2026-11-24T14:05:00+07:00",
                "due_at": "2026-12-04T08:15:00+07:00",
                "state": "due_soon",
                "remaining_working_minutes": 480,
                "applicant_name": "Nguyễn V*** A*",
            },
        ),
    )
    return replace(base, **changes)


def send(url: str, msg: Outgoing, timeout: float = 5.0):
    async def go():
        channel = WebhookChannel(
            WebhookChannelConfig(url=url, secret=SECRET, timeout=timedelta(seconds=timeout))
        )
        try:
            return await channel.send(msg)
        finally:
            await channel.aclose()

    return asyncio.run(go())


def test_posts_the_signed_json_body(receiver: Receiver) -> None:
    result = send(receiver.url, message())
    assert isinstance(result, Sent)
    [seen] = receiver.seen
    assert seen.path == "/hook"
    assert seen.headers["Content-Type"].startswith("application/json")
    body = json.loads(seen.body)
    assert set(body) == {
        "id",
        "created_at",
        "recipient",
        "stages",
        "subject",
        "text",
        "html",
        "cases",
    }
    assert body["id"] == 42 and seen.headers["X-Watchdog-Id"] == "42"
    assert body["created_at"] == "2026-12-03T08:15:00+07:00"
    assert body["recipient"] == {
        "id": "chuyenvien",
        "name": "Nguyễn Văn Chuyên",
        "unit": "STP.HC",
        "email": "cv@example.vn",
        "telegram": "123456789",
    }
    assert body["stages"] == ["mac_dinh/due_soon"]
    assert body["subject"] == "[Sắp đến hạn] Hồ sơ 000.00.21.H59-261124-0012"
    assert body["cases"][0]["applicant_name"] == "Nguyễn V*** A*"
    assert body["cases"][0]["remaining_working_minutes"] == 480
    timestamp = seen.headers["X-Watchdog-Timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    signature = seen.headers["X-Watchdog-Signature"]
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify_signature(SECRET, timestamp, seen.body, signature, max_age=300)
    assert not verify_signature("another-secret-value", timestamp, seen.body, signature)
    assert not verify_signature(SECRET, timestamp, seen.body + b" ", signature)
    assert not verify_signature(SECRET, int(timestamp) + 1, seen.body, signature)


def test_a_retry_carries_the_same_id(receiver: Receiver) -> None:
    receiver.replies = [Reply(500, body=b"database is down")]
    first = send(receiver.url, message())
    second = send(receiver.url, message(attempt=2))
    assert isinstance(first, Transient) and "500" in first.error
    assert "database is down" in first.error
    assert isinstance(second, Sent)
    ids = [(json.loads(s.body)["id"], s.headers["X-Watchdog-Id"]) for s in receiver.seen]
    assert ids == [(42, "42"), (42, "42")]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_transient_answers(receiver: Receiver, status: int) -> None:
    receiver.replies = [Reply(status)]
    result = send(receiver.url, message())
    assert isinstance(result, Transient), result
    assert result.retry_after is None


def test_429_with_retry_after_seconds(receiver: Receiver) -> None:
    receiver.replies = [Reply(429, {"Retry-After": "7"})]
    result = send(receiver.url, message())
    assert result == Transient(result.error, retry_after=7.0)


def test_503_with_retry_after_as_an_http_date(receiver: Receiver) -> None:
    later = datetime.now(UTC) + timedelta(seconds=120)
    receiver.replies = [Reply(503, {"Retry-After": format_datetime(later, usegmt=True)})]
    result = send(receiver.url, message())
    assert isinstance(result, Transient)
    assert result.retry_after is not None and 100 <= result.retry_after <= 121


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_other_4xx_are_permanent(receiver: Receiver, status: int) -> None:
    receiver.replies = [Reply(status, body=b"no such hook")]
    result = send(receiver.url, message())
    assert isinstance(result, Permanent), result
    assert str(status) in result.error


def test_a_redirect_is_not_followed_and_is_permanent(receiver: Receiver) -> None:
    receiver.replies = [Reply(301, {"Location": "http://127.0.0.1:1/elsewhere"})]
    result = send(receiver.url, message())
    assert isinstance(result, Permanent) and "elsewhere" in result.error
    assert len(receiver.seen) == 1


def test_nothing_listening_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = send(f"http://127.0.0.1:{port}/hook", message())
    assert isinstance(result, Transient), result


def test_a_slow_receiver_times_out_as_transient(receiver: Receiver) -> None:
    receiver.replies = [Reply(200, delay=1.5)]
    started = time.monotonic()
    result = send(receiver.url, message(), timeout=0.3)
    assert isinstance(result, Transient) and "timed out" in result.error
    assert time.monotonic() - started < 1.4


def test_an_unusable_url_is_permanent() -> None:
    assert isinstance(send("ftp://127.0.0.1/hook", message()), Permanent)


def test_retry_after_forms() -> None:
    now = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
    assert retry_after("12", now) == 12.0
    assert retry_after("Thu, 03 Dec 2026 01:00:30 GMT", now) == 30.0
    assert retry_after("Thu, 03 Dec 2026 00:00:00 GMT", now) == 0.0  # already past
    assert retry_after("soon", now) is None
    assert retry_after(None, now) is None


def test_signature_is_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign(SECRET, 1700000000, b"{}") == "sha256=" + expected
    assert verify_signature(SECRET, "1700000000", "{}", "sha256=" + expected)
    assert not verify_signature(SECRET, "1700000000", "{}", None)
    # an old timestamp fails when the receiver asks for freshness
    assert not verify_signature(
        SECRET, 1700000000, "{}", "sha256=" + expected, max_age=300, now=1700000400
    )
