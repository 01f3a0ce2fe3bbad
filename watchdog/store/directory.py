"""Synchronise units, officials and procedures from the configuration into the store.

The YAML files are the source of truth; the tables mirror them so that reports, SQL users and
other replicas see the same directory. Entries removed from the YAML are marked inactive, never
deleted: old cases and notifications still refer to them.
"""

from __future__ import annotations

from sqlalchemy import delete, update

from watchdog.config import Settings
from watchdog.store import Store, schema


def sync_directory(store: Store, settings: Settings) -> dict[str, int]:
    """Upsert the directory; returns how many units, officials and procedures are active."""
    c = settings.config
    unit_rows = [
        {
            "code": u.code,
            "name": u.name,
            "parent_code": u.parent,
            "kind": u.kind,
            "calendar": u.calendar,
            "heads": list(u.heads),
            "active": True,
        }
        for u in c.units
    ]
    official_rows = [
        {
            "id": o.id,
            "name": o.name,
            "unit_code": o.unit,
            "email": o.email,
            "telegram": o.telegram,
            "role": o.role,
            "deputy_id": o.deputy,
            "absent": [[r.start.isoformat(), r.end.isoformat()] for r in o.absent],
            "active": True,
        }
        for o in c.officials
    ]
    procedure_rows = [
        {
            "code": p.code,
            "name": p.name,
            "field": p.field,
            "time_limit": str(p.limit),
            "on_supplement": p.on_supplement,
            "active": True,
        }
        for p in c.procedures
    ]
    step_rows = [
        {
            "procedure_code": p.code,
            "code": s.code,
            "seq": i,
            "name": s.name,
            "allot": str(s.allot),
            "role": s.role,
        }
        for p in c.procedures
        for i, s in enumerate(p.steps, start=1)
    ]
    with store.begin() as conn:
        for table, rows, key in (
            (schema.units, unit_rows, "code"),
            (schema.officials, official_rows, "id"),
            (schema.procedures, procedure_rows, "code"),
        ):
            # Everything inactive, then the upsert re-activates what the YAML still lists.
            conn.execute(update(table).values(active=False))
            for i in range(0, len(rows), 1000):
                store.upsert(conn, table, rows[i : i + 1000], [key])
        conn.execute(delete(schema.procedure_steps))
        for i in range(0, len(step_rows), 1000):
            conn.execute(schema.procedure_steps.insert(), step_rows[i : i + 1000])
    return {
        "units": len(unit_rows),
        "officials": len(official_rows),
        "procedures": len(procedure_rows),
    }
