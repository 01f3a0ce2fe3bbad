"""Telegram chats linked to officials, and the one-time codes that link them.

A code from `watchdog officials link-code ID` is shown once and stored only as its SHA-256;
`/start CODE` in a chat uses it (single use, before it expires) and links that chat. A chat the
bot can no longer reach (blocked, deleted) is unlinked.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete, insert, select, update

from watchdog.store import Store, schema

_l = schema.telegram_links.c
_k = schema.link_codes.c


def code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def add_link_code(
    store: Store, official_id: str, code: str, now: datetime, expires_at: datetime
) -> None:
    with store.begin() as conn:
        conn.execute(
            insert(schema.link_codes),
            {
                "code_hash": code_hash(code),
                "official_id": official_id,
                "created_at": now,
                "expires_at": expires_at,
            },
        )


def use_link_code(store: Store, code: str, chat_id: str, now: datetime) -> str | None:
    """Link the chat to the code's official; the official id, or None for a code that is
    unknown, used or expired."""
    with store.begin() as conn:
        used = conn.execute(
            update(schema.link_codes)
            .where(_k.code_hash == code_hash(code), _k.used_at.is_(None), _k.expires_at > now)
            .values(used_at=now)
            .returning(_k.official_id)
        ).scalar()
        if used is None:
            return None
        conn.execute(delete(schema.telegram_links).where(_l.official_id == used))
        conn.execute(
            insert(schema.telegram_links),
            {"official_id": used, "chat_id": str(chat_id), "linked_at": now},
        )
        return used


def telegram_links(store: Store) -> dict[str, str]:
    """official id -> linked chat id ("" for a chat the bot could not reach: none)."""
    with store.read() as conn:
        return {o: c for o, c in conn.execute(select(_l.official_id, _l.chat_id))}


def official_of_chat(store: Store, chat_id: str) -> str | None:
    with store.read() as conn:
        return conn.execute(
            select(_l.official_id).where(_l.chat_id == str(chat_id)).limit(1)
        ).scalar()


def unlink_chat(store: Store, chat_id: str) -> list[str]:
    """Forget a chat the bot cannot reach; returns the officials it was linked to."""
    with store.begin() as conn:
        return list(
            conn.execute(
                delete(schema.telegram_links)
                .where(_l.chat_id == str(chat_id))
                .returning(_l.official_id)
            ).scalars()
        )


def block_chats(store: Store, officials: list[str], now: datetime) -> None:
    """Officials whose chat (from the configuration) the bot cannot reach: an empty link
    marks "no chat" until they link one with /start, so alerts go by another channel."""
    if not officials:
        return
    with store.begin() as conn:
        conn.execute(delete(schema.telegram_links).where(_l.official_id.in_(officials)))
        conn.execute(
            insert(schema.telegram_links),
            [{"official_id": o, "chat_id": "", "linked_at": now} for o in officials],
        )


def move_chat(store: Store, old_chat_id: str, new_chat_id: str) -> None:
    """A group became a supergroup (Telegram's ChatMigrated): follow it."""
    with store.begin() as conn:
        conn.execute(
            update(schema.telegram_links)
            .where(_l.chat_id == str(old_chat_id))
            .values(chat_id=str(new_chat_id))
        )


def shared_secret(store: Store, name: str, make: str, now: datetime) -> str:
    """A secret every process of this database shares (the key that signs acknowledgement
    buttons and links): the first process writes `make`, everyone reads the stored one."""
    key = f"secret:{name}"
    s = schema.engine_state.c
    with store.begin() as conn:
        conn.execute(
            store.insert_ignoring(schema.engine_state, ("key",)),
            {"key": key, "value": make, "updated_at": now},
        )
        return conn.execute(select(s.value).where(s.key == key)).scalar_one()
