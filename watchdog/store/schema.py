"""The database schema: one place for every table. Migrations in `migrations/` follow it.

Instants are stored as naive UTC (`UTCDateTime`) so SQLite and PostgreSQL hold the same values
and compare the same way; they come back timezone-aware in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite wants INTEGER PRIMARY KEY for its rowid alias; PostgreSQL gets a 64-bit identity.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, naive UTC stored, aware UTC out."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("refusing to store a naive datetime; instants must be aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


units = Table(
    "units",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("parent_code", String(64), nullable=True, index=True),
    Column("kind", String(32)),
    Column("calendar", String(64)),
    Column("heads", JSON, nullable=False, default=list),
    Column("active", Boolean, nullable=False, default=True),
)

officials = Table(
    "officials",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("unit_code", String(64), nullable=False, index=True),
    Column("email", Text),
    Column("telegram", String(64)),
    Column("role", String(64)),
    Column("deputy_id", String(64)),
    Column("absent", JSON, nullable=False, default=list),
    Column("active", Boolean, nullable=False, default=True),
)

procedures = Table(
    "procedures",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("field", Text),
    Column("time_limit", String(32), nullable=False),
    Column("on_supplement", String(16), nullable=False, default="pause"),
    Column("active", Boolean, nullable=False, default=True),
)

procedure_steps = Table(
    "procedure_steps",
    metadata,
    Column("procedure_code", String(64), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("seq", SmallInteger, nullable=False),
    Column("name", Text, nullable=False),
    Column("allot", String(32), nullable=False),
    Column("role", String(64)),
)

cases = Table(
    "cases",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_code", String(128), nullable=False, unique=True),
    Column("procedure_code", String(64), nullable=False, index=True),
    Column("unit_code", String(64), nullable=False, index=True),
    Column("received_at", UTCDateTime, nullable=False, index=True),
    Column("due_at", UTCDateTime),  # appointment given by the source (ngày hẹn trả)
    Column("status", SmallInteger, nullable=False, default=2),
    Column("finished_at", UTCDateTime),
    Column("returned_at", UTCDateTime),
    Column("assignee", String(64), index=True),
    Column("applicant_name", Text),
    Column("applicant_phone", String(32)),
    Column("submission_channel", String(16)),  # 1 direct, 2 online, 3 postal (KenhThucHien)
    Column("current_step", String(64)),
    Column("step_started_at", UTCDateTime),
    Column("step_handler", String(64)),
    Column("source", String(64), nullable=False, default="import"),
    Column("source_updated_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Engine bookkeeping: when this case's state can next change (NULL = closed or not planned).
    Column("next_check_at", UTCDateTime),
    # +1 on every change by any source: the engine writes only what it read at this version.
    Column("version", Integer, nullable=False, default=1, server_default="1"),
    # What the reads need (board, report, dashboard), written with each plan of the case: the
    # version it was computed from (another version = changed since, not planned yet), where it
    # stands (`plan_rank`, see watchdog/store/reads.py), the due that counts, the instant one
    # working day before it (due soon from then), the wait for the applicant, and the number of
    # supplement requests.
    Column("plan_version", Integer),
    Column("plan_rank", SmallInteger),
    Column("plan_due_at", UTCDateTime),
    Column("plan_due_soon_at", UTCDateTime),
    Column("plan_waiting_since", UTCDateTime),
    Column("plan_supplements", SmallInteger),
    Index("ix_cases_open_next_check", "next_check_at"),
    Index("ix_cases_board", "plan_rank", "plan_due_at", "plan_due_soon_at"),
    Index("ix_cases_unit_board", "unit_code", "plan_rank", "plan_due_at", "plan_due_soon_at"),
    Index("ix_cases_step_handler", "step_handler"),
    # the few cases changed since their plan, which the reads compute on the fly
    Index(
        "ix_cases_unplanned",
        "id",
        sqlite_where=text("plan_version IS NULL OR plan_version <> version"),
        postgresql_where=text("plan_version IS NULL OR plan_version <> version"),
    ),
)

case_events = Table(
    "case_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", String(128), nullable=False),  # source's id: a retried push is harmless
    Column("kind", String(32), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("data", JSON, nullable=False, default=dict),
    Column("recorded_at", UTCDateTime, nullable=False),
    UniqueConstraint("case_id", "event_id"),
    Index("ix_case_events_case_at", "case_id", "at"),
)

findings = Table(
    "findings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("cases.id", ondelete="CASCADE")),
    Column("kind", String(48), nullable=False),
    Column(
        "subject", String(160), nullable=False
    ),  # what the finding is about: a case code, a unit
    Column("detail", Text, nullable=False),
    Column("found_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    UniqueConstraint("kind", "subject"),
    Index("ix_findings_case_id", "case_id"),
)

# Every firing of a stage, once: the unique key makes restarts, reloads and replicas harmless.
firings = Table(
    "firings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("stage", String(130), nullable=False),  # policy/stage
    Column("step", String(64), nullable=False),  # step code for step stages, "" for the case
    Column("version", String(64), nullable=False),  # due version (plus episode for idle/wait)
    Column("repeat_no", Integer, nullable=False),
    Column("fire_at", UTCDateTime, nullable=False),  # when the condition (or repeat) came due
    Column("created_at", UTCDateTime, nullable=False),
    Column("recipients", JSON, nullable=False),  # [[recipient, channel, address], ...]
    Column("urgent", Boolean, nullable=False, default=False),
    Column("template", String(64), nullable=False),
    Column("attach", String(32)),
    Column("due_at", UTCDateTime),
    Column("rules_hash", String(32), nullable=False),
    Column("acknowledged_at", UTCDateTime),
    UniqueConstraint("case_id", "stage", "step", "version", "repeat_no"),
)

# Small facts the engine keeps about itself, such as the hash of the rules it planned with.
engine_state = Table(
    "engine_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# The outbox: one row per message to one recipient on one channel. Alerts are grouped: the
# firings a message carries are its `message_items`, each (firing, recipient, channel) at most
# once, so the same firings never make two messages. A message is rendered at its first claim
# and every retry resends that text. Nothing here is ever deleted by the daemon (history).
messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # alert | digest | test | notice
    Column("recipient", String(320), nullable=False),  # official id or e-mail address
    Column("channel", String(16), nullable=False),
    Column("address", Text, nullable=False),
    # Digests: (digest, recipient, channel, scheduled instant); notices: the dead message.
    Column("dedup_key", String(400), unique=True),
    Column("stages", JSON, nullable=False, default=list),
    Column("case_codes", JSON, nullable=False, default=list),
    Column("urgent", Boolean, nullable=False, default=False),
    Column("group_opened_at", UTCDateTime),  # alerts join while opened_at <= release <= until
    Column("group_until", UTCDateTime),
    Column("status", String(12), nullable=False),  # pending held sending sent failed dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_until", UTCDateTime),
    Column("subject", Text),
    Column("text", Text),
    Column("html", Text),
    Column("content", JSON),  # what the renderer needs that is not text: digest view, webhook cases
    Column("message_id", String(255)),  # our Message-ID
    Column("provider_id", Text),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("acknowledged_at", UTCDateTime),
    Index("ix_messages_status_next_attempt_at", "status", "next_attempt_at"),
    Index("ix_messages_recipient", "recipient"),
)

message_items = Table(
    "message_items",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("firing_id", Id, ForeignKey("firings.id", ondelete="CASCADE"), nullable=False),
    Column("case_id", Id, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("channel", String(16), nullable=False),
    UniqueConstraint("firing_id", "recipient", "channel"),
    Index("ix_message_items_message_id", "message_id"),
    Index("ix_message_items_case_id", "case_id"),
)

# Every attempt to send a message: who claimed it, when, and what came of it ("expired" when a
# sender died holding it, so the re-send is visible as the next attempt).
message_attempts = Table(
    "message_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("owner", String(64), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("outcome", String(16)),  # sent | transient | permanent | expired
    Column("detail", Text),
    UniqueConstraint("message_id", "attempt"),
)

# Telegram chats linked with `/start CODE`; codes from `watchdog officials link-code` are kept
# hashed, single use, expiring.
telegram_links = Table(
    "telegram_links",
    metadata,
    Column("official_id", String(64), primary_key=True),
    Column("chat_id", String(64), nullable=False, index=True),
    Column("linked_at", UTCDateTime, nullable=False),
)

link_codes = Table(
    "link_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("official_id", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
)

# Dashboard accounts (`watchdog users add`): argon2 hashes only; `session_epoch` +1 on a password
# change or a disabled account ends every session signed before; failed sign-ins are counted
# for the rate limit.
users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("login", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),  # official | unit_head | supervisor | admin
    Column("official_id", String(64)),  # the official this account is (its cases, its unit)
    Column("disabled", Boolean, nullable=False, default=False),
    Column("session_epoch", Integer, nullable=False, default=1),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", UTCDateTime),
    Column("last_login_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
