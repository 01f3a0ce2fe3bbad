"""`watchdog users ...`: the dashboard accounts.

- `add LOGIN --role ROLE [--official ID] [--password-stdin]`: a new account
- `list`: every account, its role, official and state
- `password LOGIN [--password-stdin]`: a new password; every session of the account ends and a
  lock from failed sign-ins lifts
- `disable LOGIN` / `enable LOGIN`: a disabled account cannot sign in and its sessions end at
  their next request

A password is asked twice on a terminal (getpass) or read as one line from stdin with
`--password-stdin` (scripts, containers); it is stored only as an argon2 hash.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from watchdog.cli import EXIT_FAILED, EXIT_OK, UsageError, _clock, _err, _settings, _store
from watchdog.i18n import _

MIN_PASSWORD = 8
NEEDS_OFFICIAL = ("official", "unit_head")


def cmd_users_add(args: argparse.Namespace) -> int:
    from watchdog.store.users import add_user
    from watchdog.web.auth import hash_password, valid_login

    settings = _settings(args)
    login = args.login.strip()
    if not valid_login(login):
        raise UsageError(
            _("{login}: a login is 1-64 letters, digits, dots, dashes, underscores or @").format(
                login=repr(args.login)
            )
        )
    official = args.official
    if args.role in NEEDS_OFFICIAL and not official:
        raise UsageError(
            _("--role {role} needs --official ID (whose cases, which unit)").format(role=args.role)
        )
    if official and official not in settings.officials:
        raise UsageError(
            _("--official {id}: no such official in the configuration").format(id=official)
        )
    password = _password(args.password_stdin)
    store = _store(settings)
    now = _clock(args, settings).now()
    if not add_user(store, login, hash_password(password), args.role, official, now):
        _err(_("watchdog: login {login} already exists; nothing changed").format(login=login))
        return EXIT_FAILED
    _err(_("account {login} created ({role})").format(login=login, role=args.role))
    return EXIT_OK


def cmd_users_list(args: argparse.Namespace) -> int:
    from watchdog.store.users import list_users
    from watchdog.timefmt import show

    settings = _settings(args)
    tz = settings.default_calendar.tz
    now = _clock(args, settings).now()
    header = (_("login"), _("role"), _("official"), _("state"), _("last sign-in"))
    print("\t".join(header))
    for user in list_users(_store(settings)):
        if user.disabled:
            state = _("disabled")
        elif user.locked_until is not None and user.locked_until > now:
            state = _("locked until {at}").format(at=show(user.locked_until, tz))
        else:
            state = _("active")
        last = show(user.last_login_at, tz) if user.last_login_at else "—"
        official = user.official_id or "—"
        print(f"{user.login}\t{user.role}\t{official}\t{state}\t{last}")
    return EXIT_OK


def cmd_users_password(args: argparse.Namespace) -> int:
    from watchdog.store.users import set_password
    from watchdog.web.auth import hash_password

    settings = _settings(args)
    password = _password(args.password_stdin)
    now = _clock(args, settings).now()
    if not set_password(_store(settings), args.login, hash_password(password), now):
        return _no_such_login(args.login)
    _err(_("password of {login} changed; its sessions have ended").format(login=args.login))
    return EXIT_OK


def cmd_users_disable(args: argparse.Namespace) -> int:
    return _set_disabled(args, True, _("account {login} disabled; its sessions have ended"))


def cmd_users_enable(args: argparse.Namespace) -> int:
    return _set_disabled(args, False, _("account {login} enabled"))


def _set_disabled(args: argparse.Namespace, disabled: bool, done: str) -> int:
    from watchdog.store.users import set_disabled

    settings = _settings(args)
    now = _clock(args, settings).now()
    if not set_disabled(_store(settings), args.login, disabled, now):
        return _no_such_login(args.login)
    _err(done.format(login=args.login))
    return EXIT_OK


def _no_such_login(login: str) -> int:
    _err(_("watchdog: no account {login}; nothing changed").format(login=login))
    return EXIT_FAILED


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise UsageError(_("no terminal to ask the password on: give --password-stdin"))
        password = getpass.getpass(_("Password: "))
        if getpass.getpass(_("Password again: ")) != password:
            raise UsageError(_("the two passwords differ; nothing changed"))
    if len(password) < MIN_PASSWORD:
        raise UsageError(_("the password must have at least {n} characters").format(n=MIN_PASSWORD))
    return password
