"""`watchdog users ...` as an admin runs it: a subprocess on a real configuration and database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

from tests.conftest import ROOT
from watchdog.store import Store
from watchdog.store.users import find_user


@pytest.fixture
def config(tmp_path: Path, small_config: Path) -> Path:
    return small_config


def users_add(
    config: Path, *args: str, password: str | None = "mat-khau-dai-1"
) -> subprocess.CompletedProcess:
    return users(config, "add", *args, password=password)


def users(
    config: Path, *args: str, password: str | None = None, lang: str = "en"
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "WATCHDOG_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    env["WATCHDOG_LANG"] = lang
    return subprocess.run(
        [sys.executable, "-m", "watchdog", "--config", str(config), "users", *args],
        input=None if password is None else password + "\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=config.parent,
        timeout=60,
    )


def test_an_account_is_created_with_an_argon2_hash(config: Path, tmp_path: Path) -> None:
    r = users_add(
        config, "cv", "--role", "official", "--official", "chuyenvien", "--password-stdin"
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "account cv created (official)"
    assert r.stdout == ""
    store = Store.open(f"sqlite:///{tmp_path / 'var' / 'test.db'}")
    user = find_user(store, "cv")
    store.close()
    assert user is not None and (user.role, user.official_id) == ("official", "chuyenvien")
    assert user.password_hash.startswith("$argon2id$")
    assert "mat-khau-dai-1" not in user.password_hash
    assert PasswordHasher().verify(user.password_hash, "mat-khau-dai-1")


def test_an_existing_login_is_refused_in_one_line(config: Path) -> None:
    assert users_add(config, "admin", "--role", "admin", "--password-stdin").returncode == 0
    r = users_add(config, "admin", "--role", "supervisor", "--password-stdin")
    assert r.returncode == 1
    assert r.stderr.strip() == "watchdog: login admin already exists; nothing changed"


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["--role", "unit_head"], "mat-khau-dai-1", "--role unit_head needs --official ID"),
        (
            ["--role", "official", "--official", "ghost"],
            "mat-khau-dai-1",
            "--official ghost: no such official",
        ),
        (["--role", "admin"], "ngan", "at least 8 characters"),
    ],
)
def test_wrong_arguments_are_usage_errors(
    config: Path, args: list[str], password: str, message: str
) -> None:
    r = users_add(config, "x", *args, "--password-stdin", password=password)
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_without_a_terminal_the_password_must_come_from_stdin(config: Path) -> None:
    r = users_add(config, "x", "--role", "admin", password="mat-khau-dai-1")
    assert r.returncode == 2
    assert "--password-stdin" in r.stderr


def account(tmp_path: Path, login: str):
    store = Store.open(f"sqlite:///{tmp_path / 'var' / 'test.db'}")
    try:
        return find_user(store, login)
    finally:
        store.close()


def test_a_new_password_replaces_the_old_and_ends_every_session(
    config: Path, tmp_path: Path
) -> None:
    assert users_add(config, "admin", "--role", "admin", "--password-stdin").returncode == 0
    before = account(tmp_path, "admin")
    r = users(config, "password", "admin", "--password-stdin", password="mat-khau-moi-2")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "password of admin changed; its sessions have ended"
    after = account(tmp_path, "admin")
    assert after.session_epoch == before.session_epoch + 1
    assert PasswordHasher().verify(after.password_hash, "mat-khau-moi-2")
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(after.password_hash, "mat-khau-dai-1")
    short = users(config, "password", "admin", "--password-stdin", password="ngan")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    assert account(tmp_path, "admin").password_hash == after.password_hash


def test_a_disabled_account_is_listed_so_and_enabled_again(config: Path, tmp_path: Path) -> None:
    add = ("--role", "official", "--official", "chuyenvien", "--password-stdin")
    assert users_add(config, "cv", *add).returncode == 0
    assert users_add(config, "admin", "--role", "admin", "--password-stdin").returncode == 0
    epoch = account(tmp_path, "cv").session_epoch
    r = users(config, "disable", "cv")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "account cv disabled; its sessions have ended"
    user = account(tmp_path, "cv")
    assert user.disabled and user.session_epoch == epoch + 1
    listed = users(config, "list", lang="vi")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "tên đăng nhập\tvai trò\tcán bộ\ttrạng thái\tđăng nhập gần nhất",
        "admin\tadmin\t—\tđang hoạt động\t—",
        "cv\tofficial\tchuyenvien\tđã khóa\t—",
    ]
    assert users(config, "enable", "cv").returncode == 0
    assert not account(tmp_path, "cv").disabled


@pytest.mark.parametrize("command", ["disable", "enable", "password"])
def test_an_unknown_login_changes_nothing_in_one_line(config: Path, command: str) -> None:
    extra = ["--password-stdin"] if command == "password" else []
    r = users(config, command, "ghost", *extra, password="mat-khau-dai-1", lang="vi")
    assert r.returncode == 1
    assert r.stderr.strip() == "watchdog: không có tài khoản ghost; không thay đổi gì"
