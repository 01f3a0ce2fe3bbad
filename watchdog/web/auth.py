"""Who is asking, and what they may see: passwords, the session cookie, the sign-in rate limit
and the scope of each role.

- Passwords: argon2id (argon2-cffi's PasswordHasher defaults); a hash made with older
  parameters is replaced at the next sign-in. An unknown login is checked against a dummy hash,
  so it costs the same time as a wrong password.
- Session cookie: `payload.signature`, the payload being base64url JSON with the login, the
  account's `session_epoch`, a random session id (the CSRF tokens are bound to it) and the
  expiry; the signature is HMAC-SHA256 with a key kept in the database (every replica shares
  it). The expiry slides with activity (`dashboard.session` of idleness ends it); a sign-out
  adds 1 to the epoch, which ends every session of the account.
- Rate limit: `dashboard.login_attempts` failures within 15 minutes lock an account (in the
  database) for 15 minutes; the same count per client address (in memory, per process) and
  per unknown login (so that a locked answer does not tell which logins exist).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from watchdog.config import Settings
from watchdog.domain import CaseRecord

COOKIE = "wd_session"
LOGIN_COOKIE = "wd_login"  # binds the sign-in form's CSRF token before there is a session
WINDOW = timedelta(minutes=15)  # failures counted within
LOCK_FOR = timedelta(minutes=15)  # how long further attempts wait once the limit is reached
_LOGIN = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


def valid_login(login: str) -> bool:
    return bool(_LOGIN.match(login))


# ----- passwords --------------------------------------------------------------------------------


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@cache
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def check_password(stored: str | None, password: str) -> tuple[bool, str | None]:
    """(matches, a new hash to store when the stored one uses outdated parameters). With no
    stored hash (unknown login) a dummy one is checked, so the answer takes as long."""
    try:
        _hasher().verify(stored or _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    if stored is None:
        return False, None
    if _hasher().check_needs_rehash(stored):
        return True, hash_password(password)
    return True, None


# ----- the session cookie -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    login: str
    epoch: int
    sid: str  # random per sign-in; the CSRF tokens of its forms are bound to it
    expires: int  # Unix seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mac(key: bytes, purpose: str, value: str) -> str:
    """HMAC-SHA256 of `value` for one purpose (a session signature is no CSRF token)."""
    return _b64(hmac.new(key, f"{purpose}\0{value}".encode(), hashlib.sha256).digest())


def new_session(login: str, epoch: int, now: datetime, idle: timedelta) -> Session:
    return Session(login, epoch, secrets.token_urlsafe(16), int((now + idle).timestamp()))


def sign_session(key: bytes, session: Session) -> str:
    payload = _b64(
        json.dumps(
            {"l": session.login, "e": session.epoch, "s": session.sid, "x": session.expires},
            separators=(",", ":"),
        ).encode()
    )
    return f"{payload}.{mac(key, 'session', payload)}"


def read_session(key: bytes, value: str | None, now: datetime) -> Session | None:
    """The session a cookie carries; None when it is missing, forged, altered or expired."""
    if not value or "." not in value:
        return None
    payload, _, signature = value.rpartition(".")
    if not hmac.compare_digest(signature, mac(key, "session", payload)):
        return None
    try:
        data = json.loads(_unb64(payload))
        session = Session(str(data["l"]), int(data["e"]), str(data["s"]), int(data["x"]))
    except (ValueError, KeyError, TypeError):
        return None
    if session.expires <= now.timestamp():
        return None
    return session


def extended(session: Session, now: datetime, idle: timedelta) -> Session | None:
    """The session with its expiry moved to now + idle, when that is worth a new cookie (more
    than a minute later); None otherwise."""
    expires = int((now + idle).timestamp())
    if expires - session.expires < 60:
        return None
    return Session(session.login, session.epoch, session.sid, expires)


# ----- rate limit -------------------------------------------------------------------------------


class FailureWindow:
    """Failed sign-ins per key (client address, unknown login) in the last WINDOW, in memory.
    At most `keep` keys are remembered (the oldest forgotten first), so a flood of addresses
    cannot grow it without bound."""

    def __init__(self, keep: int = 10_000):
        self.keep = keep
        self.failures: OrderedDict[str, list[datetime]] = OrderedDict()

    def _recent(self, key: str, now: datetime) -> list[datetime]:
        times = [t for t in self.failures.get(key, ()) if t > now - WINDOW]
        if times:
            self.failures[key] = times
        else:
            self.failures.pop(key, None)
        return times

    def blocked_until(self, key: str, now: datetime, limit: int) -> datetime | None:
        times = self._recent(key, now)
        if len(times) < limit:
            return None
        return times[-limit] + LOCK_FOR

    def fail(self, key: str, now: datetime) -> None:
        times = self._recent(key, now)
        times.append(now)
        self.failures[key] = times
        self.failures.move_to_end(key)
        while len(self.failures) > self.keep:
            self.failures.popitem(last=False)


# ----- what an account may see ------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What one account may see. `units` None: every unit; `official` set: only cases that
    official is assignee or step handler of (the `official` role)."""

    role: str
    official: str | None  # the official the account is, if any
    units: frozenset[str] | None
    own_cases_only: bool
    root: str | None = None  # a unit head's unit: the top of its subtree

    @property
    def sees_everything(self) -> bool:
        return self.units is None and not self.own_cases_only

    @property
    def unit_pages(self) -> bool:
        """Unit pages show every official's backlog: unit heads and above."""
        return not self.own_cases_only

    def sees_unit(self, code: str) -> bool:
        return self.unit_pages and (self.units is None or code in self.units)

    def sees_case(self, case: CaseRecord) -> bool:
        if self.own_cases_only:
            return self.official is not None and self.official in (
                case.assignee,
                case.step_handler,
            )
        return self.units is None or case.unit_code in self.units

    def visible_units(self, settings: Settings) -> list[tuple[int, str, str]]:
        """(depth, code, name) of the units the account may pick, in tree order."""
        return [
            (depth, u.code, u.name)
            for depth, u in settings.unit_tree()
            if self.units is None or u.code in self.units
        ]


def scope_of(role: str, official_id: str | None, settings: Settings) -> Scope:
    if role in ("supervisor", "admin"):
        return Scope(role, official_id, None, False)
    official = settings.officials.get(official_id or "")
    if role == "unit_head":
        if official is None:  # no longer configured: sees nothing until fixed
            return Scope(role, official_id, frozenset(), False)
        return Scope(
            role, official_id, frozenset(settings.subtree(official.unit)), False, official.unit
        )
    # an official: own cases, whatever their unit
    return Scope(role, official_id, None, True)
