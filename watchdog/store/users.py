"""Dashboard accounts (`watchdog users add`, the sign-in of the web dashboard).

Only argon2 hashes are stored (hashing and checking happen in `watchdog.web.auth`). The
columns that make a sign-in safe live here as well:

- `session_epoch` is written into every session cookie; adding 1 (sign-out, a password change,
  a disabled account) ends every session signed before.
- `failed_logins` counts failed sign-ins since the last success; a failure more than `window`
  after the previous one starts the count again (the row's `updated_at` is the instant of the
  last failure while the count is not 0). Reaching the limit sets `locked_until`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from watchdog.store import Store, schema

_u = schema.users.c

ROLES = ("official", "unit_head", "supervisor", "admin")


@dataclass(frozen=True, slots=True)
class User:
    id: int
    login: str
    password_hash: str
    role: str
    official_id: str | None
    disabled: bool
    session_epoch: int
    failed_logins: int
    locked_until: datetime | None
    last_login_at: datetime | None
    updated_at: datetime


_COLUMNS = [getattr(_u, name) for name in User.__slots__]


def add_user(
    store: Store,
    login: str,
    password_hash: str,
    role: str,
    official_id: str | None,
    now: datetime,
) -> bool:
    """Create an account; False (and nothing written) when the login is taken."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    with store.begin() as conn:
        created = conn.execute(
            store.insert_ignoring(schema.users, ("login",)).returning(_u.id),
            {
                "login": login,
                "password_hash": password_hash,
                "role": role,
                "official_id": official_id,
                "disabled": False,
                "session_epoch": 1,
                "failed_logins": 0,
                "created_at": now,
                "updated_at": now,
            },
        ).scalar()
    return created is not None


def find_user(store: Store, login: str) -> User | None:
    with store.read() as conn:
        row = conn.execute(select(*_COLUMNS).where(_u.login == login)).first()
    return None if row is None else User(*row)


def count_users(store: Store) -> int:
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(schema.users)).scalar_one()


def record_failure(
    store: Store,
    login: str,
    now: datetime,
    *,
    limit: int,
    window: timedelta,
    lock_for: timedelta,
) -> User | None:
    """Count a failed sign-in of an existing account and lock it once `limit` failures came
    within `window` of each other; the account as it now stands (None: no such login)."""
    with store.begin() as conn:
        row = conn.execute(
            select(_u.failed_logins, _u.updated_at, _u.locked_until).where(_u.login == login)
        ).first()
        if row is None:
            return None
        failed = row.failed_logins if row.failed_logins and row.updated_at > now - window else 0
        failed += 1
        locked = row.locked_until
        if failed >= limit:
            locked = now + lock_for
        conn.execute(
            update(schema.users)
            .where(_u.login == login)
            .values(failed_logins=failed, locked_until=locked, updated_at=now)
        )
    return find_user(store, login)


def record_success(
    store: Store, user_id: int, now: datetime, *, password_hash: str | None = None
) -> None:
    """A sign-in succeeded: the failure count starts again; a new hash (the parameters of
    argon2 changed since it was made) replaces the old one."""
    values: dict[str, object] = {
        "failed_logins": 0,
        "locked_until": None,
        "last_login_at": now,
        "updated_at": now,
    }
    if password_hash is not None:
        values["password_hash"] = password_hash
    with store.begin() as conn:
        conn.execute(update(schema.users).where(_u.id == user_id).values(**values))


def end_sessions(store: Store, user_id: int, now: datetime) -> None:
    """Every session cookie signed for this account so far stops working (sign-out)."""
    with store.begin() as conn:
        conn.execute(
            update(schema.users)
            .where(_u.id == user_id)
            .values(session_epoch=_u.session_epoch + 1, updated_at=now)
        )


def list_users(store: Store) -> list[User]:
    with store.read() as conn:
        return [User(*row) for row in conn.execute(select(*_COLUMNS).order_by(_u.login))]


def set_password(store: Store, login: str, password_hash: str, now: datetime) -> bool:
    """A new password: every session signed before ends, a lock from failed sign-ins lifts.
    False when there is no such login."""
    with store.begin() as conn:
        changed = conn.execute(
            update(schema.users)
            .where(_u.login == login)
            .values(
                password_hash=password_hash,
                session_epoch=_u.session_epoch + 1,
                failed_logins=0,
                locked_until=None,
                updated_at=now,
            )
        ).rowcount
    return changed == 1


def set_disabled(store: Store, login: str, disabled: bool, now: datetime) -> bool:
    """Disable an account (its sessions end at their next request: the epoch moves on) or
    enable it again. False when there is no such login."""
    values: dict[str, object] = {"disabled": disabled, "updated_at": now}
    if disabled:
        values["session_epoch"] = _u.session_epoch + 1
    with store.begin() as conn:
        changed = conn.execute(
            update(schema.users).where(_u.login == login).values(**values)
        ).rowcount
    return changed == 1
