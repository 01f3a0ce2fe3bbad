"""Shared fixtures: the repository root, a small province config, and databases.

`db_url` is parametrised over SQLite and PostgreSQL, so every storage test runs on both. The
PostgreSQL variant needs WATCHDOG_TEST_DATABASE_URL (set by .ci/run) and gets a schema of its
own, dropped afterwards, reached through an ordinary URL as a user would give it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

# Tests assert the English text of messages (the msgids); tests/unit/test_i18n.py and
# tests/acceptance/test_lang.py choose their language themselves. Subprocesses inherit it.
os.environ["WATCHDOG_LANG"] = "en"
# No parse cache of large configuration files in ~/.cache (tests/unit/test_config_cache.py
# turns it on in a folder of its own).
os.environ["WATCHDOG_CACHE_DIR"] = ""

ROOT = Path(__file__).resolve().parent.parent
PG_ENV = "WATCHDOG_TEST_DATABASE_URL"

SMALL_CONFIG = """\
database: {url: "sqlite:///var/test.db"}
calendars:
  default: {}
units:
  - {code: T, name: UBND tỉnh, heads: [lanhdao]}
  - {code: STP, name: Sở Tư pháp, parent: T, heads: [lanhdao]}
  - {code: STP.HC, name: Phòng Hành chính tư pháp, parent: STP, heads: [truongphong]}
  - {code: SXD, name: Sở Xây dựng, parent: T}
officials:
  - {id: lanhdao, name: Lê Văn Lãnh, unit: STP, email: lanh@example.vn}
  - {id: truongphong, name: Phạm Thị Trưởng, unit: STP.HC, deputy: chuyenvien,
     email: truong@example.vn}
  - {id: chuyenvien, name: Nguyễn Văn Chuyên, unit: STP.HC, email: cv@example.vn}
supervisors: [thanhtra@example.vn]
procedures:
  - {code: "2.000488", name: Cấp Phiếu lý lịch tư pháp, limit: 10 working_days}
  - {code: "1.000001", name: Thủ tục bốn giờ, limit: 4 working_hours}
  - {code: "1.000002", name: Thủ tục ba mươi ngày, limit: 30 calendar_days}
"""


def pg_base_url() -> str | None:
    return os.environ.get(PG_ENV) or None


@pytest.fixture
def small_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(SMALL_CONFIG, encoding="utf-8")
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'watchdog.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    base = pg_base_url()
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (set by .ci/run when a server answers)")
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite_url", "postgres_url"], ids=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database URL, once for SQLite and once for PostgreSQL."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def store(db_url: str):
    from watchdog.store import Store

    s = Store.open(db_url, migrate=False)
    s.upgrade()
    yield s
    s.close()
