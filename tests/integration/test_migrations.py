"""First use and `db upgrade` from several processes at once (issue 10, item 4).

Each child imports everything first, says it is ready, and waits for a common start signal, so
the processes reach "check the revision, upgrade" at the same moment. Before the migration lock
two processes opening a new SQLite file both saw no schema, both ran the migrations, and one died
("database is locked" on CREATE TABLE alembic_version); on PostgreSQL one failed on a relation
the other had just created.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from watchdog.store import Store
from watchdog.store.db import (
    _alembic_config,
    _migration_lock,
    create_db_engine,
    current_revision,
    head_revision,
)

CHILD = """\
import sys, time
from pathlib import Path
from watchdog.store import Store

ready, go, url, action = sys.argv[1:5]
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.001)
store = Store.open(url, migrate=action == "open")
if action == "upgrade":
    store.upgrade()
store.close()
"""


def race(url: str, action: str, processes: int, folder: Path) -> None:
    """Start `processes` children that open (or upgrade) `url` at the same moment; all succeed."""
    folder.mkdir(parents=True, exist_ok=True)
    go = folder / "go"
    ready = [folder / f"ready{i}" for i in range(processes)]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(r), str(go), url, action],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in ready
    ]
    deadline = time.monotonic() + 60
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        time.sleep(0.005)
    go.touch()
    failures = []
    for child in children:
        _, err = child.communicate(timeout=120)
        if child.returncode:
            errors = [line for line in err.splitlines() if "Error" in line]
            failures.append(errors[-1] if errors else err or child.returncode)
    assert failures == []


def test_processes_opening_a_new_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    for attempt in range(10):
        db = tmp_path / f"new{attempt}" / "watchdog.db"
        url = f"sqlite:///{db}"
        race(url, "open", 3, tmp_path / f"signals{attempt}")
        store = Store.open(url, migrate=False)
        assert current_revision(store.engine) == head_revision() is not None
        with store.read() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        store.close()


def test_concurrent_db_upgrade_on_a_new_postgresql_schema(
    postgres_url: str, tmp_path: Path
) -> None:
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        schema_name = conn.execute(text("SELECT current_schema()")).scalar()
    assert schema_name and schema_name.startswith("t_")
    try:
        for attempt in range(5):
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema_name}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{schema_name}"'))
            race(postgres_url, "upgrade", 3, tmp_path / f"signals{attempt}")
            assert current_revision(engine) == head_revision() is not None
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        engine.dispose()


def test_a_process_waits_for_a_migration_in_progress_then_finds_it_done(
    db_url: str, tmp_path: Path
) -> None:
    """The lock covers "check the revision, upgrade": while one process holds it and migrates,
    another waits; it then reads the revision again and finds nothing left to do."""
    action = "open" if db_url.startswith("sqlite") else "upgrade"
    engine = create_db_engine(db_url, create_folder=True)
    ready, go = tmp_path / "ready", tmp_path / "go"
    with _migration_lock(engine) as conn:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(ready), str(go), db_url, action],
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        go.touch()
        time.sleep(1.0)
        assert child.poll() is None  # waiting for the lock
        command.upgrade(_alembic_config(engine, conn), "head")
    _, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_cli_commands_on_a_new_database_all_succeed(tmp_path: Path, small_config: Path) -> None:
    """As a user meets it: commands started together against a database not created yet. Two
    commands met the race only now and then (the test passed 4 times in 5 without the lock),
    so three start together, twice, each time on a new database; the race itself is
    reproduced every time by test_processes_opening_a_new_sqlite_file_at_once_all_succeed."""
    for attempt in range(2):
        cwd = tmp_path / f"new{attempt}"
        cwd.mkdir()
        config = cwd / "config.yaml"  # its database is var/test.db beside it
        config.write_text(small_config.read_text(encoding="utf-8"), encoding="utf-8")
        children = [
            subprocess.Popen(
                [sys.executable, "-m", "watchdog", "--config", str(config), command],
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for command in ("findings", "cases", "findings")
        ]
        for child in children:
            _, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
        engine = create_engine(f"sqlite:///{cwd / 'var' / 'test.db'}")
        try:
            assert current_revision(engine) == head_revision() is not None
        finally:
            engine.dispose()


def test_the_head_read_from_the_file_names_is_alembics() -> None:
    """Every command checks the schema without loading Alembic: the head revision comes from
    the migration files' names (NNNN_*.py); it must be the one Alembic reads from them."""
    from watchdog.store.db import _script

    assert head_revision() == _script().get_current_head()
    # one chain, numbered in order: each file's revision is its number
    revisions = {r.revision: r.down_revision for r in _script().walk_revisions()}
    assert all(r.isdigit() and len(r) == 4 for r in revisions)
    assert sorted(revisions) == [f"{i:04d}" for i in range(1, len(revisions) + 1)]
