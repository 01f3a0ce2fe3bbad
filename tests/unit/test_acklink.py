"""The e-mail "Đã nhận" link's token: signed, expiring, URL-safe, and good for nothing else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchdog.http.acklink import ack_url, check_token, make_token, read_token

KEY = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=7)


def test_a_token_names_its_message_until_it_expires() -> None:
    token = make_token(KEY, 42, LATER)
    assert read_token(KEY, token, NOW) == 42
    assert read_token(KEY, token, LATER - timedelta(seconds=1)) == 42
    assert read_token(KEY, token, LATER) is None
    assert check_token(KEY, token, LATER).outcome == "expired"
    assert check_token(KEY, token, LATER).message_id == 42  # ours, but too old


def test_a_token_is_url_safe_and_the_link_points_at_the_public_url() -> None:
    token = make_token(KEY, 123456789, LATER)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", token)
    assert quote(token) == token
    assert ack_url("https://canhbao.example.vn/", KEY, 7, LATER) == (
        f"https://canhbao.example.vn/ack/{make_token(KEY, 7, LATER)}"
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.replace(t.split(".")[0], "43", 1),  # another message
        lambda t: ".".join([t.split(".")[0], str(int(t.split(".")[1]) + 86400), t.split(".")[2]]),
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature
        lambda t: t + "x",
        lambda t: t.replace(".", ":"),
        lambda t: "",
        lambda t: "42." + t,
    ],
)
def test_a_changed_token_is_refused(change) -> None:
    token = change(make_token(KEY, 42, LATER))
    assert read_token(KEY, token, NOW) is None
    assert check_token(KEY, token, NOW).outcome == "invalid"


def test_another_key_or_no_key_refuses_it() -> None:
    token = make_token(KEY, 42, LATER)
    assert read_token(b"another key, another daemon....", token, NOW) is None
    assert read_token(b"", token, NOW) is None
    with pytest.raises(ValueError):
        make_token(b"", 42, LATER)


def test_a_signature_made_for_the_telegram_button_is_not_accepted() -> None:
    """The button's callback data is "ack:<id>:<hex sig[:20]>" over "ack:<id>" with the same
    key (outbox.sender.Sender.ack_data); no form of it passes here."""
    telegram_sig = hmac.new(KEY, b"ack:42", hashlib.sha256)
    assert read_token(KEY, f"ack:42:{telegram_sig.hexdigest()[:20]}", NOW) is None
    as_ours = base64.urlsafe_b64encode(telegram_sig.digest()).rstrip(b"=").decode()
    expires = int(LATER.timestamp())
    assert read_token(KEY, f"42.{expires}.{as_ours}", NOW) is None
    # and ours has no "ack:" form a button handler would read
    assert make_token(KEY, 42, LATER).split(":")[0] != "ack"


@given(
    message_id=st.integers(min_value=0, max_value=10**15),
    days=st.integers(min_value=1, max_value=3650),
)
def test_any_message_id_round_trips(message_id: int, days: int) -> None:
    token = make_token(KEY, message_id, NOW + timedelta(days=days))
    assert read_token(KEY, token, NOW) == message_id
