"""Writing incoming case records into the store: upsert by case code, only what changed.

Every source (file import, HTTP push, SQL poll) ends here, so change detection and re-planning
happen in one place: a new or changed case gets `next_check_at = now`, which makes the engine
look at it on its next tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watchdog.store import Store, schema

# Record fields compared to decide whether a case changed (updated_at arrives as source_updated_at).
_COMPARED = (
    "procedure_code",
    "unit_code",
    "received_at",
    "due_at",
    "status",
    "finished_at",
    "returned_at",
    "assignee",
    "applicant_name",
    "applicant_phone",
    "channel",
    "current_step",
    "step_started_at",
    "step_handler",
    "source_updated_at",
)
_UPDATED_ON_CHANGE = (*_COMPARED, "source", "updated_at", "next_check_at")


@dataclass
class IngestResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, other: IngestResult) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged


def _stored_form(record: dict[str, Any]) -> dict[str, Any]:
    row = {k: record.get(k) for k in _COMPARED if k != "source_updated_at"}
    row["case_code"] = record["case_code"]
    row["source_updated_at"] = record.get("updated_at")
    return row


def upsert_cases(
    store: Store,
    records: Sequence[dict[str, Any]],
    now: datetime,
    *,
    source: str = "import",
    dry_run: bool = False,
) -> IngestResult:
    """Upsert one batch of normalised records (see sources.fields.normalize_case)."""
    result = IngestResult()
    latest: dict[str, dict[str, Any]] = {}
    for record in records:  # the last record of a code in a batch wins, as in the file
        latest[record["case_code"]] = _stored_form(record)
    if not latest:
        return result
    with store.begin() as conn:
        existing = store.existing(conn, schema.cases.c.case_code, list(latest))
        rows = []
        for code, row in latest.items():
            old = existing.get(code)
            if old is None:
                result.inserted += 1
            elif all(old._mapping[k] == row[k] for k in _COMPARED):
                result.unchanged += 1
                continue
            else:
                result.updated += 1
            row.update(source=source, created_at=now, updated_at=now, next_check_at=now)
            rows.append(row)
        if not dry_run:
            store.upsert(conn, schema.cases, rows, ["case_code"], _UPDATED_ON_CHANGE)
    return result
