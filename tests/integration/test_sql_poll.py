"""The SQL poll source (SPEC 6) against a real one-stop database made here: a `HoSo` table with
the national portal's column names, on PostgreSQL (a schema of its own) and on MariaDB (a
database and a SELECT-only login of its own) when one answers on 127.0.0.1:3306. Our own store
runs on SQLite and PostgreSQL (the `store` fixture), so every test runs four ways.

What was written is read back through watchdog.store.cases, events included. The source's
DATETIME values are naive: they are local time in the calendar's zone (Asia/Ho_Chi_Minh).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import pg_base_url
from watchdog.config import Settings, load_settings
from watchdog.config.models import SqlSourceConfig
from watchdog.domain import CaseEvent, CaseRecord, Status
from watchdog.sources import sqlpoll
from watchdog.sources.sqlpoll import PollReport, SqlPoller, watermark_key
from watchdog.store import Store
from watchdog.store.cases import cases_received_between
from watchdog.store.plans import get_state

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=VN)
PASSWORD = "s3cret-Pw"
MYSQL_ENV = "WATCHDOG_TEST_MYSQL_URL"
MYSQL_DEFAULT = "mysql+pymysql://root@127.0.0.1:3306/test"

QUERY = """
SELECT MaHoSo, MaTTHC, TenTTHC, DonViXuLy, NgayTiepNhan, NgayHenTra, TrangThaiHoSo,
       NgayKetThucXuLy, CanBoXuLy, NgayCapNhat
FROM HoSo
WHERE NgayCapNhat > COALESCE(:watermark, TIMESTAMP '1900-01-01 00:00:00')
ORDER BY NgayCapNhat
"""

COLUMNS = (
    "MaHoSo",
    "MaTTHC",
    "TenTTHC",
    "DonViXuLy",
    "NgayTiepNhan",
    "NgayHenTra",
    "TrangThaiHoSo",
    "NgayKetThucXuLy",
    "CanBoXuLy",
    "NgayCapNhat",
)


def naive(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A DATETIME as the one-stop database keeps it: local time, no zone."""
    return datetime(y, mo, d, h, mi)


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=VN)


def hoso(code: str, updated: datetime, **kw: Any) -> dict[str, Any]:
    """A row of HoSo: an in-progress case of procedure 2.000488 (10 working days)."""
    row = {
        "MaHoSo": code,
        "MaTTHC": "2.000488",
        "TenTTHC": "Cấp Phiếu lý lịch tư pháp",
        "DonViXuLy": "STP.HC",
        "NgayTiepNhan": naive(2026, 3, 2, 8, 0),
        "NgayHenTra": naive(2026, 3, 16, 8, 0),
        "TrangThaiHoSo": 4,
        "NgayKetThucXuLy": None,
        "CanBoXuLy": "chuyenvien",
        "NgayCapNhat": updated,
    }
    row.update(kw)
    return row


# ----- a TCP relay, so the source's server can go away and come back ---------------------------


class Relay:
    """Forwards a local port to the database server; `stop` makes the server unreachable (the
    port refuses connections) and `start` brings it back on the same port."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(8)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _addr = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


# ----- the one-stop database -------------------------------------------------------------------


@dataclass
class OneStop:
    """A one-stop database of our own: `admin` writes its rows, `url(port)` is what a source
    configuration would hold (with a password, so masking shows)."""

    kind: str
    admin: Engine
    url: Callable[[int | None], str]
    host: str
    port: int

    def insert(self, *rows: dict[str, Any]) -> None:
        cols = ", ".join(COLUMNS)
        values = ", ".join(f":{c}" for c in COLUMNS)
        with self.admin.begin() as conn:
            conn.execute(text(f"INSERT INTO HoSo ({cols}) VALUES ({values})"), list(rows))

    def update(self, code: str, **values: Any) -> None:
        sets = ", ".join(f"{c} = :{c}" for c in values)
        with self.admin.begin() as conn:
            conn.execute(
                text(f"UPDATE HoSo SET {sets} WHERE MaHoSo = :code"), {**values, "code": code}
            )

    def count(self, where: str = "1 = 1") -> int:
        with self.admin.connect() as conn:
            return conn.execute(text(f"SELECT COUNT(*) FROM HoSo WHERE {where}")).scalar_one()


def _ddl(dt: str) -> str:
    return f"""
    CREATE TABLE HoSo (
        MaHoSo VARCHAR(40) PRIMARY KEY,
        MaTTHC VARCHAR(20) NOT NULL,
        TenTTHC VARCHAR(200),
        DonViXuLy VARCHAR(20),
        NgayTiepNhan {dt},
        NgayHenTra {dt},
        TrangThaiHoSo INTEGER,
        NgayKetThucXuLy {dt},
        CanBoXuLy VARCHAR(50),
        NgayCapNhat {dt} NOT NULL
    )"""


@contextlib.contextmanager
def postgres_onestop() -> Iterator[OneStop]:
    base = pg_base_url()
    if not base:
        pytest.skip("the PostgreSQL one-stop database needs WATCHDOG_TEST_DATABASE_URL")
    schema = f"onestop_{uuid.uuid4().hex[:10]}"
    root = create_engine(base)
    with root.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    parsed = make_url(base)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    in_schema = parsed.update_query_dict({"options": f"-csearch_path={schema}"})
    admin = create_engine(in_schema)
    with admin.begin() as conn:
        conn.execute(text(_ddl("TIMESTAMP(0)")))

    def url(port: int | None = None) -> str:
        # trust authentication takes any password: the one here is there to be masked
        u = in_schema.set(password=PASSWORD, port=port or parsed.port or 5432)
        return u.render_as_string(hide_password=False)

    try:
        yield OneStop("postgresql", admin, url, parsed.host or "127.0.0.1", parsed.port or 5432)
    finally:
        admin.dispose()
        with root.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        root.dispose()


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def mariadb_onestop() -> Iterator[OneStop]:
    base = make_url(os.environ.get(MYSQL_ENV) or MYSQL_DEFAULT)
    host, port = base.host or "127.0.0.1", base.port or 3306
    if not _answers(host, port):
        pytest.skip(f"no MariaDB/MySQL answers on {host}:{port} (or set {MYSQL_ENV})")
    pytest.importorskip("pymysql")
    name = f"onestop_{uuid.uuid4().hex[:10]}"
    user = f"ws_{uuid.uuid4().hex[:10]}"
    root = create_engine(base)
    with root.begin() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
        # the login the docs recommend: it may only read the one-stop database
        conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'"))
        conn.execute(text(f"GRANT SELECT ON {name}.* TO '{user}'@'%'"))
    admin = create_engine(base.set(database=name))
    with admin.begin() as conn:
        conn.execute(text(_ddl("DATETIME")))

    def url(p: int | None = None) -> str:
        u = base.set(username=user, password=PASSWORD, database=name, port=p or port)
        return u.render_as_string(hide_password=False)

    try:
        yield OneStop("mariadb", admin, url, host, port)
    finally:
        admin.dispose()
        with root.begin() as conn:
            conn.execute(text(f"DROP DATABASE {name}"))
            conn.execute(text(f"DROP USER '{user}'@'%'"))
        root.dispose()


@pytest.fixture(params=["postgresql", "mariadb"])
def onestop(request: pytest.FixtureRequest) -> Iterator[OneStop]:
    make = postgres_onestop if request.param == "postgresql" else mariadb_onestop
    with make() as db:
        yield db


@pytest.fixture
def settings(small_config: Path) -> Settings:
    return load_settings(small_config)


class Clock:
    def __init__(self, now: datetime = NOW):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def poller(
    store: Store,
    settings: Settings,
    url: str,
    *,
    query: str = QUERY,
    watermark: str | None = "NgayCapNhat",
    clock: Callable[[], datetime] | None = None,
    page_rows: int | None = None,
) -> SqlPoller:
    config = SqlSourceConfig(type="sql", name="hoso", url=url, query=query, watermark=watermark)
    return SqlPoller(config, store, lambda: settings, clock or Clock(), page_rows=page_rows)


def cases(store: Store) -> dict[str, tuple[CaseRecord, tuple[CaseEvent, ...]]]:
    """Every case written (received in 2026), with its events, by code."""
    return {
        record.case_code: (record, events)
        for record, events in cases_received_between(store, vn(2026, 1, 1), vn(2027, 1, 1))
    }


def counts(report: PollReport) -> tuple[int, int, int, int, int]:
    return report.rows, report.inserted, report.updated, report.unchanged, report.rejected


def three_cases(db: OneStop) -> None:
    db.insert(
        hoso("HS-001", naive(2026, 3, 2, 8, 5)),
        hoso(
            "HS-002",
            naive(2026, 3, 3, 10, 0),
            NgayTiepNhan=naive(2026, 3, 3, 9, 30),
            # a date kept in a DATETIME at midnight: the appointment is that day's close
            NgayHenTra=naive(2026, 3, 17),
            CanBoXuLy=None,
            TrangThaiHoSo=2,
        ),
        hoso(
            "HS-003",
            naive(2026, 3, 5, 16, 0),
            TrangThaiHoSo=9,
            NgayKetThucXuLy=naive(2026, 3, 5, 15, 45),
        ),
    )


# ----- tests ------------------------------------------------------------------------------------


def test_the_first_poll_imports_every_row_with_local_times(
    store: Store, settings: Settings, onestop: OneStop
) -> None:
    three_cases(onestop)
    report = poller(store, settings, onestop.url(None)).poll_once()
    assert report.error is None
    assert counts(report) == (3, 3, 0, 0, 0)
    assert report.problems == [] and report.ignored_columns == []  # TenTTHC is known
    assert report.watermark == naive(2026, 3, 5, 16, 0)  # handed back as the source gave it
    got = cases(store)
    assert sorted(got) == ["HS-001", "HS-002", "HS-003"]
    one, _events = got["HS-001"]
    assert (one.procedure_code, one.unit_code, one.assignee) == ("2.000488", "STP.HC", "chuyenvien")
    assert one.status is Status.IN_PROGRESS
    assert one.received_at == vn(2026, 3, 2, 8, 0)  # naive = local time of the calendar
    assert one.due_at == vn(2026, 3, 16, 8, 0)
    assert one.source_updated_at == vn(2026, 3, 2, 8, 5)
    two = got["HS-002"][0]
    assert two.status is Status.RECEIVED and two.assignee is None
    assert two.due_at == vn(2026, 3, 17, 17, 0)  # midnight DATETIME = a date: close of office
    three = got["HS-003"][0]
    assert three.status is Status.FINISHED and three.finished_at == vn(2026, 3, 5, 15, 45)
    key = watermark_key("hoso")
    assert key == "source:hoso:watermark" and get_state(store, key) is not None


def test_a_changed_row_is_picked_up_next_poll_and_derives_its_events(
    store: Store, settings: Settings, onestop: OneStop
) -> None:
    three_cases(onestop)
    clock = Clock()
    p = poller(store, settings, onestop.url(None), clock=clock)
    assert counts(p.poll_once()) == (3, 3, 0, 0, 0)

    # HS-001 finished; HS-002's appointment extended (recorded days before its due)
    onestop.update(
        "HS-001",
        TrangThaiHoSo=9,
        NgayKetThucXuLy=naive(2026, 3, 11, 14, 0),
        NgayCapNhat=naive(2026, 3, 11, 14, 1),
    )
    onestop.update(
        "HS-002", NgayHenTra=naive(2026, 3, 24, 17, 0), NgayCapNhat=naive(2026, 3, 11, 15, 0)
    )
    clock.now = vn(2026, 3, 11, 15, 5)
    report = p.poll_once()
    assert report.error is None
    # the watermark: only the two changed rows were read
    assert counts(report) == (2, 0, 2, 0, 0)
    assert report.watermark == naive(2026, 3, 11, 15, 0)

    got = cases(store)
    one, one_events = got["HS-001"]
    assert one.status is Status.FINISHED and one.finished_at == vn(2026, 3, 11, 14, 0)
    assert [(e.kind, e.at) for e in one_events] == [("finished", vn(2026, 3, 11, 14, 0))]
    two, two_events = got["HS-002"]
    assert two.due_at == vn(2026, 3, 24, 17, 0)
    assert [e.kind for e in two_events] == ["extended"]
    extended = two_events[0]
    assert extended.at == vn(2026, 3, 11, 15, 0)  # the source's NgayCapNhat, not the poll's now
    assert extended.data["reason"] == "extension"
    assert datetime.fromisoformat(extended.data["previous_due"]) == vn(2026, 3, 17, 17, 0)
    assert datetime.fromisoformat(extended.data["new_due"]) == vn(2026, 3, 24, 17, 0)
    assert got["HS-003"][1] == ()  # untouched

    # nothing changed since: nothing read, nothing written
    assert counts(p.poll_once()) == (0, 0, 0, 0, 0)


def test_without_a_watermark_every_poll_reads_every_row(
    store: Store, settings: Settings, onestop: OneStop
) -> None:
    three_cases(onestop)
    plain = "SELECT * FROM HoSo"
    p = poller(store, settings, onestop.url(None), query=plain, watermark=None)
    assert counts(p.poll_once()) == (3, 3, 0, 0, 0)
    onestop.update("HS-003", TrangThaiHoSo=10, NgayCapNhat=naive(2026, 3, 6, 8, 0))
    report = p.poll_once()
    assert counts(report) == (3, 0, 1, 2, 0)
    assert report.watermark is None
    assert get_state(store, watermark_key("hoso")) is None
    assert cases(store)["HS-003"][0].status is Status.RETURNED


def test_a_bad_row_is_rejected_by_row_and_column_and_the_good_ones_land(
    store: Store, settings: Settings, onestop: OneStop
) -> None:
    onestop.insert(
        hoso("HS-001", naive(2026, 3, 2, 9, 0)),
        hoso("HS-BAD1", naive(2026, 3, 2, 10, 0), TrangThaiHoSo=42),
        hoso("HS-BAD2", naive(2026, 3, 2, 11, 0), NgayTiepNhan=None, DonViXuLy=None),
        hoso("HS-004", naive(2026, 3, 2, 12, 0)),
    )
    p = poller(store, settings, onestop.url(None))
    report = p.poll_once()
    assert report.error is None
    assert counts(report) == (4, 2, 0, 0, 2)
    assert report.problems[0].startswith("hoso: row 2, column TrangThaiHoSo (status): ")
    assert "42" in report.problems[0]
    assert sorted(report.problems[1:]) == [
        "hoso: row 3, column DonViXuLy (unit_code): required value is missing",
        "hoso: row 3, column NgayTiepNhan (received_at): required value is missing",
    ]
    assert sorted(cases(store)) == ["HS-001", "HS-004"]
    # the watermark passed the bad rows: they come back once the one-stop system corrects them
    assert report.watermark == naive(2026, 3, 2, 12, 0)
    onestop.update("HS-BAD1", TrangThaiHoSo=4, NgayCapNhat=naive(2026, 3, 3, 8, 0))
    again = p.poll_once()
    assert counts(again) == (1, 1, 0, 0, 0)
    assert "HS-BAD1" in cases(store)


def test_an_unreachable_source_is_a_report_with_the_password_masked_and_the_next_poll_recovers(
    store: Store, settings: Settings, onestop: OneStop
) -> None:
    three_cases(onestop)
    relay = Relay(onestop.host, onestop.port)
    url = onestop.url(relay.port)
    p = poller(store, settings, url)
    try:
        down = p.poll_once()  # the relay is not started: the port refuses connections
        assert down.error is not None
        assert down.error.startswith(f"source hoso ({make_url(url).render_as_string()}): ")
        assert "cannot connect to the database server" in down.error
        assert PASSWORD not in down.error and ":***@" in down.error
        assert "\n" not in down.error
        assert counts(down) == (0, 0, 0, 0, 0)
        assert down.watermark is None and get_state(store, watermark_key("hoso")) is None

        relay.start()
        up = p.poll_once()
        assert up.error is None, up.error
        assert counts(up) == (3, 3, 0, 0, 0)

        relay.stop()
        onestop.update("HS-001", CanBoXuLy="truongphong", NgayCapNhat=naive(2026, 3, 9, 8, 0))
        assert "cannot connect" in (p.poll_once().error or "")
        relay.start()
        back = p.poll_once()
        assert counts(back) == (1, 0, 1, 0, 0)  # the watermark held while the source was down
    finally:
        relay.stop()
    assert cases(store)["HS-001"][0].assignee == "truongphong"


def test_the_watermark_survives_a_new_poller(
    store: Store, settings: Settings, onestop: OneStop
) -> None:
    three_cases(onestop)
    first = poller(store, settings, onestop.url(None))
    assert counts(first.poll_once()) == (3, 3, 0, 0, 0)

    restarted = poller(store, settings, onestop.url(None))
    assert restarted.watermark() == naive(2026, 3, 5, 16, 0)
    assert counts(restarted.poll_once()) == (0, 0, 0, 0, 0)
    onestop.update("HS-002", CanBoXuLy="chuyenvien", NgayCapNhat=naive(2026, 3, 9, 9, 0))
    report = restarted.poll_once()
    assert counts(report) == (1, 0, 1, 0, 0)
    assert [e.kind for e in cases(store)["HS-002"][1]] == ["assigned"]

    # a watermark kept for another column is not used for this one: one full read
    other = poller(store, settings, onestop.url(None), watermark="NgayTiepNhan")
    assert other.watermark() is None


def test_rows_come_in_pages_and_the_watermark_is_kept_only_after_every_row_is_written(
    store: Store, settings: Settings, onestop: OneStop, monkeypatch: pytest.MonkeyPatch
) -> None:
    onestop.insert(*(hoso(f"HS-{i:03}", naive(2026, 3, 2, 8, i)) for i in range(1, 8)))
    onestop.update("HS-004", TrangThaiHoSo=42)  # in the second page of two rows
    real = sqlpoll.upsert_cases
    calls: list[int] = []

    def crash_on_third_page(store, batch, now, **kw):
        calls.append(len(batch))
        if len(calls) == 3:
            raise RuntimeError("the daemon died here")
        return real(store, batch, now, **kw)

    monkeypatch.setattr(sqlpoll, "upsert_cases", crash_on_third_page)
    p = poller(store, settings, onestop.url(None), page_rows=2)
    with pytest.raises(RuntimeError):
        p.poll_once()
    assert calls == [2, 1, 2]  # a page at a time; the bad row never reached the store
    assert sorted(cases(store)) == ["HS-001", "HS-002", "HS-003"]
    assert get_state(store, watermark_key("hoso")) is None  # the rows were not all written

    monkeypatch.setattr(sqlpoll, "upsert_cases", real)
    report = p.poll_once()  # reads them all again: the rows written before are unchanged
    assert counts(report) == (7, 3, 0, 3, 1)
    assert report.problems[0].startswith("hoso: row 4, column TrangThaiHoSo (status): ")
    assert p.watermark() == naive(2026, 3, 2, 8, 7)


def test_a_query_that_fails_or_does_not_fit_is_one_line_naming_the_source(
    store: Store, settings: Settings, onestop: OneStop
) -> None:
    three_cases(onestop)
    url = onestop.url(None)
    shown = f"source hoso ({make_url(url).render_as_string()})"

    bad = poller(store, settings, url, query="SELECT MaHoSo FROM KhongCoBang").poll_once()
    assert bad.error is not None and bad.error.startswith(f"{shown}: the query failed: ")
    assert "\n" not in bad.error and PASSWORD not in bad.error

    # the query runs read-only and is never committed: a write is refused
    write = poller(store, settings, url, query="UPDATE HoSo SET CanBoXuLy = 'x'").poll_once()
    assert write.error is not None and write.error.startswith(shown)
    assert onestop.count("CanBoXuLy = 'x'") == 0

    short = poller(store, settings, url, query="SELECT MaHoSo, MaTTHC, NgayCapNhat FROM HoSo")
    error = short.poll_once().error
    assert error is not None
    assert error.startswith(
        "source hoso: the query returns no unit_code, received_at column (it returns "
    )
    assert "mahoso, matthc, ngaycapnhat" in error.lower()

    no_mark = poller(store, settings, url, query="SELECT * FROM HoSo", watermark="NgaySua")
    error = no_mark.poll_once().error
    assert error is not None and "watermark column 'NgaySua' is not among" in error
    assert cases(store) == {}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            f"mssql+pyodbc://watch:{PASSWORD}@motcua-dsn",
            "source hoso (mssql+pyodbc://watch:***@motcua-dsn): the database driver pyodbc "
            "is not installed: pip install pyodbc",
        ),
        (
            f"nosuchdb://watch:{PASSWORD}@host/db",
            "source hoso (nosuchdb://watch:***@host/db): unknown database URL scheme 'nosuchdb'",
        ),
        (
            "not a url at all",
            "source hoso (not a url at all): not a database URL",
        ),
    ],
    ids=["missing-driver", "unknown-scheme", "not-a-url"],
)
def test_an_unusable_url_is_a_report_not_an_exception(
    store: Store, settings: Settings, url: str, expected: str
) -> None:
    report = poller(store, settings, url).poll_once()
    assert report.error is not None and report.error.startswith(expected), report.error
    assert PASSWORD not in report.error


@pytest.mark.parametrize(
    "value",
    [
        naive(2026, 3, 2, 8, 5),
        vn(2026, 3, 2, 8, 5),
        datetime(2026, 3, 2).date(),
        123456789012,
        Decimal("1234.50"),
        b"\x00\x00\x00\x00\x00\x01\x86\xa0",  # SQL Server rowversion
        "2026-03-02 08:05",
    ],
    ids=["naive", "aware", "date", "int", "decimal", "rowversion", "text"],
)
def test_a_watermark_goes_back_to_the_source_as_the_type_it_came(value: Any) -> None:
    kept = sqlpoll._state("NgayCapNhat", value)
    back = sqlpoll._decode(kept, "ngaycapnhat")  # PostgreSQL's spelling of the same column
    assert back == value and type(back) is type(value)
    if isinstance(value, datetime):
        assert (back.tzinfo is None) == (value.tzinfo is None)
    assert sqlpoll._decode(kept, "NgayTiepNhan") is None  # kept for another column
    assert sqlpoll._decode("not json", "NgayCapNhat") is None


def test_a_long_source_name_still_has_a_key_that_fits() -> None:
    assert watermark_key("motcua") == "source:motcua:watermark"
    long = watermark_key("mot-cua-" * 20)
    assert len(long) <= 64 and long.startswith("source:") and long.endswith(":watermark")
    assert long != watermark_key("mot-cua-" * 21)
