"""`watchdog users add` as an admin runs it: a subprocess on a real configuration and database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from tests.conftest import ROOT
from watchdog.store import Store
from watchdog.store.users import find_user


@pytest.fixture
def config(tmp_path: Path, small_config: Path) -> Path:
    return small_config


def users_add(
    config: Path, *args: str, password: str | None = "mat-khau-dai-1"
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "WATCHDOG_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "watchdog", "--config", str(config), "users", "add", *args],
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
