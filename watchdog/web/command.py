"""`watchdog users add LOGIN --role ROLE [--official ID] [--password-stdin]`: a dashboard account.

The password is asked twice on a terminal (getpass) or read as one line from stdin with
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
