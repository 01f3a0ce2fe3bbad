"""The file channel (SPEC 7): one .eml or .json per message, atomic, a retry overwrites."""

from __future__ import annotations

import asyncio
import email
import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from watchdog.channels import Attachment, Outgoing, Recipient, Sent, Transient
from watchdog.channels.file import FileChannel
from watchdog.config.models import FileChannelConfig
from watchdog.outbox.render import Renderer, sample_view
from watchdog.shipped import shipped_path

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def message(**changes: object) -> Outgoing:
    rendered = Renderer([shipped_path("templates")]).render(sample_view("file"))
    base = Outgoing(
        id=42,
        channel="file",
        address="chuyenvien",
        recipient=Recipient(
            id="chuyenvien", name="Nguyễn Văn Chuyên", unit="STP.HC", email="cv@example.vn"
        ),
        stages=("mac_dinh/overdue", "mac_dinh/due_soon"),
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        created_at=datetime(2026, 12, 3, 8, 15, tzinfo=VN),
        message_id="<outbox-42.abc@watchdog>",
        cases=({"case_code": "000.00.21.H59-261118-0007", "applicant_name": "Trần T*** B*** N*"},),
    )
    return replace(base, **changes)


def send(channel: FileChannel, msg: Outgoing):
    return asyncio.run(channel.send(msg))


def channel(tmp_path: Path, fmt: str = "eml", folder: str = "var/outbox") -> FileChannel:
    return FileChannel(FileChannelConfig(dir=folder, format=fmt), tmp_path)


def test_an_eml_file_is_the_mail_that_would_be_sent(tmp_path: Path) -> None:
    result = send(channel(tmp_path), message())
    assert isinstance(result, Sent)
    path = Path(result.provider_id)
    # UTC creation time (08:15 in Hà Nội is 01:15 UTC), the message id, the recipient
    assert path == tmp_path / "var" / "outbox" / "20261203-011500-42-chuyenvien.eml"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    mail = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert mail["Subject"] == "[Cảnh báo] 3 hồ sơ cần xử lý"
    assert mail["From"] == "tthc-watchdog <watchdog@localhost>"
    assert mail["To"].addresses[0].addr_spec == "cv@example.vn"
    assert mail["To"].addresses[0].display_name == "Nguyễn Văn Chuyên"
    assert mail["Message-ID"] == "<outbox-42.abc@watchdog>"
    assert mail["X-Watchdog-Id"] == "42"
    assert mail["Date"].datetime == datetime(2026, 12, 3, 1, 15, tzinfo=UTC)
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "000.00.21.H59-261118-0007" in text and "quá hạn 2 ngày làm việc 3 giờ" in text
    assert "<!DOCTYPE html>" in html and "Cảnh báo hạn xử lý hồ sơ" in html


def test_attachments_travel_in_the_eml(tmp_path: Path) -> None:
    letter = Attachment("phieu-xin-loi.docx", "application/msword", b"PK\x03\x04docx")
    result = send(channel(tmp_path), message(attachments=(letter,)))
    mail = email.message_from_bytes(Path(result.provider_id).read_bytes(), policy=policy.default)
    [part] = list(mail.iter_attachments())
    assert part.get_filename() == "phieu-xin-loi.docx"
    assert part.get_content() == b"PK\x03\x04docx"
    assert mail.get_body(("html",)) is not None


def test_without_an_email_the_recipient_id_is_the_to(tmp_path: Path) -> None:
    msg = message(recipient=Recipient(id="lanhdao", name="Lê Văn Lãnh"))
    result = send(channel(tmp_path), msg)
    mail = email.message_from_bytes(Path(result.provider_id).read_bytes(), policy=policy.default)
    assert "lanhdao" in str(mail["To"])


def test_no_header_injection(tmp_path: Path) -> None:
    msg = message(
        subject="Hồ sơ X\r\nBcc: evil@example.com",
        recipient=Recipient(
            id="x\r\nBcc: a@b", name="Lê\nBcc: evil@example.com", email="cv@example.vn"
        ),
    )
    result = send(channel(tmp_path), msg)
    raw = Path(result.provider_id).read_bytes()
    mail = email.message_from_bytes(raw, policy=policy.default)
    assert mail["Bcc"] is None
    assert not any(line.lower().startswith(b"bcc:") for line in raw.splitlines())
    assert mail["Subject"] == "Hồ sơ X Bcc: evil@example.com"
    assert "\n" not in Path(result.provider_id).name


def test_json_is_the_webhook_body(tmp_path: Path) -> None:
    result = send(channel(tmp_path, "json"), message())
    path = Path(result.provider_id)
    assert path.name == "20261203-011500-42-chuyenvien.json"
    body = json.loads(path.read_text(encoding="utf-8"))
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
    assert body["id"] == 42
    assert body["recipient"]["email"] == "cv@example.vn"
    assert body["stages"] == ["mac_dinh/overdue", "mac_dinh/due_soon"]
    assert body["cases"][0]["applicant_name"] == "Trần T*** B*** N*"
    assert "Cảnh báo" in path.read_text(encoding="utf-8")  # Vietnamese kept readable


@pytest.mark.parametrize("fmt", ["eml", "json"])
def test_a_retry_overwrites_the_same_file(tmp_path: Path, fmt: str) -> None:
    ch = channel(tmp_path, fmt)
    first = send(ch, message(text="lần một"))
    # the same message comes back from the store with its instant in UTC: same name
    again = message(text="lần hai", attempt=2, created_at=datetime(2026, 12, 3, 1, 15, tzinfo=UTC))
    second = send(ch, again)
    assert first.provider_id == second.provider_id
    files = list(Path(first.provider_id).parent.iterdir())
    assert len(files) == 1
    if fmt == "eml":
        mail = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
        assert mail.get_body(("plain",)).get_content().strip() == "lần hai"
    else:
        assert json.loads(files[0].read_text(encoding="utf-8"))["text"] == "lần hai"


def test_files_sort_by_time(tmp_path: Path) -> None:
    ch = channel(tmp_path)
    for i, hour in enumerate((9, 8, 10)):
        send(ch, message(id=100 + i, created_at=datetime(2026, 12, 3, hour, 0, tzinfo=VN)))
    names = sorted(p.name for p in (tmp_path / "var" / "outbox").iterdir())
    assert [n.split("-")[2] for n in names] == ["101", "100", "102"]


def test_an_absolute_folder_is_taken_as_it_is(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    ch = channel(tmp_path / "config", folder=str(target))
    assert Path(send(ch, message()).provider_id).parent == target


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_folder_is_transient(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = send(channel(tmp_path, folder="locked/outbox"), message())
    finally:
        locked.chmod(0o700)
    assert isinstance(result, Transient) and "locked" in result.error


def test_a_file_where_the_folder_should_be_is_transient(tmp_path: Path) -> None:
    (tmp_path / "var").write_text("not a folder")
    result = send(channel(tmp_path), message())
    assert isinstance(result, Transient)
    assert "var/outbox" in result.error


def test_the_eml_is_written_as_the_mail_channel_writes_it(tmp_path: Path) -> None:
    long_line = "Hồ sơ " + "quá hạn " * 200  # longer than a mail line may be: base64
    ch = FileChannel(
        FileChannelConfig(dir="out"), tmp_path, sender="Sở Tư pháp tỉnh <stp@example.vn>"
    )
    msg = message(text="Kính gửi anh,\n" + long_line + "\n", html=None)
    raw = Path(send(ch, msg).provider_id).read_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF throughout
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    mail = email.message_from_bytes(raw, policy=policy.default)
    assert mail["From"].addresses[0].display_name == "Sở Tư pháp tỉnh"
    assert mail["From"].addresses[0].addr_spec == "stp@example.vn"
    assert mail["X-Watchdog-Stages"] == "mac_dinh/overdue, mac_dinh/due_soon"
    assert mail.get_content_type() == "text/plain"
    assert mail["Content-Transfer-Encoding"] == "base64"
    assert mail.get_content().replace("\r\n", "\n") == "Kính gửi anh,\n" + long_line + "\n"


def test_a_sender_or_address_that_is_not_one_is_still_written_safely(tmp_path: Path) -> None:
    ch = FileChannel(FileChannelConfig(dir="out"), tmp_path, sender="không phải địa chỉ")
    odd = Recipient(id="cv", name="Nguyễn Văn Chuyên", email="cv at example.vn\r\nBcc: x@y")
    raw = Path(send(ch, message(recipient=odd)).provider_id).read_bytes()
    assert not any(line.lower().startswith(b"bcc") for line in raw.split(b"\r\n"))
    mail = email.message_from_bytes(raw, policy=policy.default)
    assert str(mail["From"]) == "tthc-watchdog <watchdog@localhost>"  # the default sender
    assert "cv at example.vn" in str(mail["To"])
    assert mail.get_body(("plain",)) is not None
