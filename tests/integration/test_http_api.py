"""The daemon's HTTP server (SPEC 6 push API, /healthz, /metrics, e-mail acknowledgement links),
served for real: uvicorn on a loopback port in a thread, over a database on SQLite and on
PostgreSQL (`store` fixture), asked with httpx as an integrator's program would.

Nothing of ours is replaced: the app writes through the store, reads its settings from a real
configuration file, and the "daemon" around it is the few callables AppContext asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SMALL_CONFIG
from watchdog.clock import FixedClock
from watchdog.config import Settings, load_settings
from watchdog.http import AppContext, HealthState, Metrics, create_app, embedded_server
from watchdog.http.acklink import make_token
from watchdog.sources.ingest import upsert_cases
from watchdog.sources.push import EventRefused, effect, read_cases, read_event
from watchdog.store import Store
from watchdog.store.cases import case_versions, count_cases, has_cases_from, read_source_rows
from watchdog.store.db import create_db_engine
from watchdog.store.events import EventWrite, apply_events, stored_events
from watchdog.store.outbox import NewMessage, acknowledge, enqueue_message, history

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=VN)
LATER = NOW + timedelta(hours=1)
TOKEN = "portal-token-0123456789abcdef"
OTHER_TOKEN = "second-token-fedcba9876543210"
KEY = b"k" * 32
MAX_BODY = 8192
CASES = "/api/v1/cases"

CONFIG = (
    SMALL_CONFIG
    + f"""\
sources:
  - {{type: http, name: portal, token: "${{PORTAL_TOKEN}}"}}
  - {{type: http, name: lgsp, token: "${{LGSP_TOKEN}}"}}
http: {{listen: "127.0.0.1:0", max_body: {MAX_BODY}}}
"""
)


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=VN)


def settings_for(tmp_path: Path, extra: str = "", **env: str) -> Settings:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG + extra, encoding="utf-8")
    return load_settings(path, env={"PORTAL_TOKEN": TOKEN, "LGSP_TOKEN": OTHER_TOKEN, **env})


@dataclass
class Api:
    """A running app and what its daemon saw."""

    base: str
    ctx: AppContext
    clock: FixedClock
    current: list[Settings]  # current[0] is what ctx.settings() answers
    changed: list[list[str]] = field(default_factory=list)
    # what the store held when `changed` was called: proof the change was committed first
    seen_at_change: list[dict[str, Any]] = field(default_factory=list)

    def client(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=10)


@contextlib.contextmanager
def serve(app) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a thread of its own."""
    server = embedded_server(app, "127.0.0.1:0")
    host, port = server.address
    thread = threading.Thread(target=asyncio.run, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def make_api(store: Store, settings: Settings, clock: FixedClock, **kw: Any) -> tuple[Api, Any]:
    current = [settings]
    api = Api("", None, clock, current)  # type: ignore[arg-type]

    def changed(codes: list[str]) -> None:
        api.changed.append(codes)
        api.seen_at_change.append(dict(read_source_rows(store, codes)))

    health = kw.pop("health", None) or HealthState(tick_interval=timedelta(seconds=30))
    ctx = AppContext(
        store=store,
        settings=lambda: current[0],
        clock=clock.now,
        health=health,
        changed=changed,
        ack=lambda message_id: acknowledge(store, message_id, clock.now()),
        ack_key=KEY,
        metrics=Metrics(),
        **kw,
    )
    api.ctx = ctx
    return api, create_app(ctx)


@pytest.fixture
def api(store: Store, tmp_path: Path) -> Iterator[Api]:
    clock = FixedClock(NOW)
    running, app = make_api(store, settings_for(tmp_path), clock)
    with serve(app) as base:
        running.base = base
        yield running


def case(code: str, **over: Any) -> dict[str, Any]:
    body = {
        "case_code": code,
        "procedure_code": "2.000488",
        "unit_code": "STP.HC",
        "received_at": "2026-03-02T08:00:00+07:00",
        "assignee": "chuyenvien",
    }
    return body | over


def stored(store: Store, code: str) -> dict[str, Any]:
    return dict(read_source_rows(store, [code])[code])


def version(store: Store, code: str) -> int:
    return case_versions(store, [code])[code]


# ----- tokens ----------------------------------------------------------------------------------


def test_a_push_without_a_valid_token_is_refused(api: Api, store: Store) -> None:
    for token in (None, "wrong-token", TOKEN + "x", TOKEN[:-1]):
        with api.client(token) as c:
            r = c.post(CASES, json=case("H1"))
            assert r.status_code == 401, token
            assert r.headers["www-authenticate"] == "Bearer"
            r = c.post(f"{CASES}/H1/events", json={"event_id": "1", "kind": "received"})
            assert r.status_code == 401
    with httpx.Client(base_url=api.base) as c:  # another scheme with the right secret
        r = c.post(CASES, json=case("H1"), headers={"Authorization": f"Basic {TOKEN}"})
        assert r.status_code == 401
    assert count_cases(store) == 0
    assert api.changed == []


def test_each_source_is_named_by_its_token_and_tokens_follow_a_reload(
    api: Api, store: Store, tmp_path: Path
) -> None:
    with api.client(OTHER_TOKEN) as c:
        assert c.post(CASES, json=case("H1")).status_code == 200
    assert has_cases_from(store, "lgsp") and not has_cases_from(store, "portal")
    # the daemon reloads its configuration: the portal's token changed
    api.current[0] = settings_for(tmp_path, PORTAL_TOKEN="rotated-token-000000000000")
    with api.client(TOKEN) as c:
        assert c.post(CASES, json=case("H2")).status_code == 401
    with api.client("rotated-token-000000000000") as c:
        assert c.post(CASES, json=case("H2")).status_code == 200
    assert has_cases_from(store, "portal")


# ----- cases -----------------------------------------------------------------------------------


def test_cases_are_created_then_updated_and_the_daemon_told_after_commit(
    api: Api, store: Store
) -> None:
    with api.client() as c:
        r = c.post(CASES, json=[case("H1"), case("H2", status="Đang xử lý")])
        assert r.status_code == 200, r.text
        assert r.json() == {"received": 2, "inserted": 2, "updated": 0, "unchanged": 0}
        assert api.changed == [["H1", "H2"]]
        # what the store held when the daemon was told: both cases, committed
        assert set(api.seen_at_change[0]) == {"H1", "H2"}
        r = c.post(CASES, json=[case("H1"), case("H2", status=4)])
        assert r.json() == {"received": 2, "inserted": 0, "updated": 0, "unchanged": 2}
        assert len(api.changed) == 1  # nothing changed: nothing to tell
        before = version(store, "H1")
        r = c.post(CASES, json=case("H1", due_at="2026-03-20", channel="Trực tuyến"))
        assert r.json() == {"received": 1, "inserted": 0, "updated": 1, "unchanged": 0}
    assert api.changed[-1] == ["H1"]
    assert api.seen_at_change[-1]["H1"]["due_at"] == vn(2026, 3, 20, 17)  # close of office
    row = stored(store, "H1")
    assert row["submission_channel"] == "online"
    assert row["assignee"] == "chuyenvien"
    assert version(store, "H1") == before + 1
    assert count_cases(store) == 2


def test_every_field_error_is_listed_and_nothing_is_written(api: Api, store: Store) -> None:
    body = [
        case("H1"),
        case("H2", received_at="31/02/2026", colour="red", status="gần xong"),
        {"procedure_code": "2.000488", "unit_code": "STP.HC", "received_at": "2026-03-02"},
        "not an object",
        case("H5", assignee={"id": "chuyenvien"}),
    ]
    with api.client() as c:
        r = c.post(CASES, json=body)
    assert r.status_code == 422
    found = {(e["index"], e["field"]) for e in r.json()["errors"]}
    assert found == {
        (1, "received_at"),
        (1, "colour"),
        (1, "status"),
        (2, "case_code"),
        (3, None),
        (4, "assignee"),
    }
    assert all(e["message"] for e in r.json()["errors"])
    assert "nothing was written" in r.json()["detail"]
    assert count_cases(store) == 0
    assert api.changed == []


def test_a_body_that_is_not_json_is_422(api: Api, store: Store) -> None:
    with api.client() as c:
        r = c.post(CASES, content=b'{"case_code": ', headers={"Content-Type": "application/json"})
        assert r.status_code == 422
        assert "not valid JSON" in r.json()["errors"][0]["message"]
        r = c.post(CASES, content=b"\xff\xfe", headers={"Content-Type": "application/json"})
        assert r.status_code == 422
        assert c.post(CASES, json=42).status_code == 422
    assert count_cases(store) == 0


# ----- events ----------------------------------------------------------------------------------

T = "2026-03-04T10:00:00+07:00"


@pytest.mark.parametrize(
    ("kind", "data", "start_status", "expected"),
    [
        ("received", {}, None, {}),
        ("assigned", {"assignee": "Phạm Thị Trưởng"}, None, {"assignee": "truongphong"}),
        (
            "step_started",
            {"step": "THAM_DINH", "handler": "truongphong"},
            None,
            {
                "current_step": "THAM_DINH",
                "step_started_at": vn(2026, 3, 4, 10),
                "step_handler": "truongphong",
            },
        ),
        ("supplement_requested", {}, None, {"status": 5}),
        ("supplement_received", {}, 5, {"status": 4}),
        ("extended", {"due_at": "2026-03-25"}, None, {"due_at": vn(2026, 3, 25, 17)}),
        ("finished", {}, None, {"status": 9, "finished_at": vn(2026, 3, 4, 10)}),
        (
            "returned",
            {},
            None,
            {"status": 10, "returned_at": vn(2026, 3, 4, 10), "finished_at": vn(2026, 3, 4, 10)},
        ),
        ("withdrawn", {}, None, {"status": 7}),
        ("stopped", {}, None, {"status": 8}),
        ("rejected", {}, None, {"status": 3}),
    ],
)
def test_each_event_kind_changes_what_it_should(
    api: Api,
    store: Store,
    kind: str,
    data: dict[str, Any],
    start_status: int | None,
    expected: dict[str, Any],
) -> None:
    # a case imported as waiting gets a supplement_requested event at its updated_at (else at
    # the import's now, which is later than the event pushed here)
    extra = {"status": start_status, "updated_at": "03/03/2026 08:00"} if start_status else {}
    with api.client() as c:
        assert c.post(CASES, json=case("H1", due_at="2026-03-16", **extra)).status_code == 200
        before, v = stored(store, "H1"), version(store, "H1")
        api.clock.advance(timedelta(minutes=5))
        r = c.post(f"{CASES}/H1/events", json={"event_id": "ev-1", "kind": kind, "at": T, **data})
    assert r.status_code == 200, r.text
    assert r.json() == {"case_code": "H1", "event_id": "ev-1", "duplicate": False}
    after = stored(store, "H1")
    assert {k: v for k, v in after.items() if before[k] != v} == expected
    assert version(store, "H1") == v + 1
    assert api.changed[-1] == ["H1"]
    assert api.seen_at_change[-1]["H1"] == after  # told after the commit
    events = [e for e in stored_events(store, "H1") if e.event_id == "ev-1"]
    assert len(events) == 1 and events[0].kind == kind
    assert events[0].at == vn(2026, 3, 4, 10)
    assert events[0].recorded_at == api.clock.now()
    # the data keys the engine reads (engine/deadline.py), as derive_events writes them
    want = {
        "assigned": {"to": "truongphong"},
        "step_started": {"step": "THAM_DINH", "handler": "truongphong"},
        "extended": {
            "previous_due": vn(2026, 3, 16, 17).astimezone(UTC).isoformat(),
            "new_due": vn(2026, 3, 25, 17).astimezone(UTC).isoformat(),
            "reason": "extension",
        },
    }.get(kind, {})
    assert events[0].data == want


def test_a_repeated_event_id_changes_nothing(api: Api, store: Store) -> None:
    with api.client() as c:
        c.post(CASES, json=case("H1"))
        body = {"event_id": "portal-778", "kind": "finished", "at": T}
        assert c.post(f"{CASES}/H1/events", json=body).json()["duplicate"] is False
        row, v, told = stored(store, "H1"), version(store, "H1"), len(api.changed)
        again = body | {"at": "2026-03-05T10:00:00+07:00"}  # a retry, even a changed one
        r = c.post(f"{CASES}/H1/events", json=again)
    assert r.status_code == 200
    assert r.json() == {"case_code": "H1", "event_id": "portal-778", "duplicate": True}
    assert stored(store, "H1") == row
    assert version(store, "H1") == v
    assert len(api.changed) == told
    assert [e.event_id for e in stored_events(store, "H1")] == ["portal-778"]


def test_a_late_event_is_recorded_but_never_rolls_the_case_back(api: Api, store: Store) -> None:
    with api.client() as c:
        c.post(CASES, json=case("H1"))
        for event_id, step, at in (
            ("s2", "KY_DUYET", "2026-03-05T10:00:00+07:00"),
            ("s1", "THAM_DINH", "2026-03-04T10:00:00+07:00"),  # arrives late
        ):
            body = {"event_id": event_id, "kind": "step_started", "at": at, "step": step}
            assert c.post(f"{CASES}/H1/events", json=body).status_code == 200
        c.post(f"{CASES}/H1/events", json={"event_id": "f", "kind": "returned", "at": T})
        older = "2026-03-04T09:00:00+07:00"  # finished before it was returned, told after
        c.post(f"{CASES}/H1/events", json={"event_id": "g", "kind": "finished", "at": older})
    row = stored(store, "H1")
    assert row["current_step"] == "KY_DUYET"
    assert row["step_started_at"] == vn(2026, 3, 5, 10)
    assert (row["status"], row["returned_at"]) == (10, vn(2026, 3, 4, 10))
    assert [e.event_id for e in stored_events(store, "H1")] == ["g", "s1", "f", "s2"]


def test_an_unknown_case_is_404_and_a_bad_event_422(api: Api, store: Store) -> None:
    with api.client() as c:
        r = c.post(f"{CASES}/NOPE/events", json={"event_id": "1", "kind": "finished", "at": T})
        assert r.status_code == 404
        c.post(CASES, json=case("H1"))
        r = c.post(f"{CASES}/H1/events", json={"kind": "closed", "due_at": 3})
        assert r.status_code == 422
        assert {e["field"] for e in r.json()["errors"]} == {"event_id", "kind", "at"}
        r = c.post(
            f"{CASES}/H1/events",
            json={"event_id": "2", "kind": "extended", "at": "hôm qua", "step": "X"},
        )
        assert {e["field"] for e in r.json()["errors"]} == {"at", "step", "due_at"}
        r = c.post(
            f"{CASES}/H1/events",
            json={"event_id": "2", "kind": "step_started", "at": T, "step": "  ", "x": 1},
        )
        assert [(e["field"], e["message"]) for e in r.json()["errors"]] == [
            ("x", "not a field of a step_started event; it takes step, handler"),
            ("step", "required for a step_started event"),
        ]
        before = stored(store, "H1")
        r = c.post(
            f"{CASES}/H1/events",
            json={"event_id": "3", "kind": "finished", "at": "2026-03-01T09:00:00+07:00"},
        )
        assert r.status_code == 422  # before the case was received
        assert r.json()["errors"][0]["field"] == "at"
    assert stored(store, "H1") == before
    assert stored_events(store, "H1") == []


def test_a_case_code_with_a_slash_reaches_its_case(api: Api, store: Store) -> None:
    with api.client() as c:
        c.post(CASES, json=case("000.00.12.H55-260302/0001"))
        body = {"event_id": "1", "kind": "finished", "at": T}
        r = c.post(f"{CASES}/000.00.12.H55-260302%2F0001/events", json=body)
    assert r.status_code == 200, r.text
    assert stored(store, "000.00.12.H55-260302/0001")["status"] == 9


def test_concurrent_pushes_lose_nothing(api: Api, store: Store) -> None:
    with api.client() as c:
        c.post(CASES, json=[case(f"H{i}") for i in range(4)])
    v0 = case_versions(store, [f"H{i}" for i in range(4)])

    def push(n: int) -> int:
        body = {
            "event_id": f"e{n}",
            "kind": "step_started",
            "at": (vn(2026, 3, 3, 8) + timedelta(minutes=n)).isoformat(),
            "step": f"B{n}",
        }
        with api.client() as c:
            return c.post(f"{CASES}/H{n % 4}/events", json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(push, range(80))) == {200}
    for i in range(4):
        assert version(store, f"H{i}") == v0[f"H{i}"] + 20
        assert len(stored_events(store, f"H{i}")) == 20
        assert stored(store, f"H{i}")["current_step"] == f"B{76 + i}"  # the latest


def test_the_same_event_pushed_at_once_many_times_is_applied_once(api: Api, store: Store) -> None:
    with api.client() as c:
        c.post(CASES, json=case("H1"))
    v = version(store, "H1")
    body = {"event_id": "same", "kind": "assigned", "at": T, "assignee": "truongphong"}

    def push(_: int) -> bool:
        with api.client() as c:
            r = c.post(f"{CASES}/H1/events", json=body)
            assert r.status_code == 200
            return r.json()["duplicate"]

    with ThreadPoolExecutor(12) as pool:
        duplicates = list(pool.map(push, range(24)))
    assert duplicates.count(False) == 1
    assert version(store, "H1") == v + 1
    assert [e.event_id for e in stored_events(store, "H1")] == ["same"]
    assert api.changed.count(["H1"]) == 2  # the case push, then the one applied event


# ----- body size -------------------------------------------------------------------------------


def test_a_body_over_http_max_body_is_413(api: Api, store: Store, tmp_path: Path) -> None:
    big = [case(f"H{i}") for i in range(60)]
    raw = json.dumps(big).encode()
    assert len(raw) > MAX_BODY
    with api.client() as c:
        r = c.post(CASES, content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
            for i in range(0, len(raw), 1000):
                yield raw[i : i + 1000]

        r = c.post(CASES, content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert "content-length" not in r.request.headers
        assert r.request.headers["transfer-encoding"] == "chunked"
        assert count_cases(store) == 0
        small = json.dumps(big[:20]).encode()
        assert len(small) < MAX_BODY
        r = c.post(CASES, content=small, headers={"Content-Type": "application/json"})
        assert r.status_code == 200
        # the limit follows a reload of http.max_body
        api.current[0] = settings_for(tmp_path).__class__(
            api.current[0].config.model_copy(
                update={"http": api.current[0].config.http.model_copy(update={"max_body": 100})}
            ),
            tmp_path,
        )
        assert c.post(CASES, content=small).status_code == 413


def test_a_chunked_body_over_the_limit_is_refused_on_a_raw_socket(api: Api) -> None:
    """Chunks written by hand: the answer is 413 before the sender has finished."""
    host, port = api.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            f"POST {CASES} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"[" + b" " * 4095
        for _ in range(3):  # 12 kB, over the 8 kB limit, and never finished
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 ")


# ----- health and metrics ----------------------------------------------------------------------


def test_healthz_answers_200_while_ticks_are_fresh_and_503_when_stale(api: Api) -> None:
    h = api.ctx.health
    h.record_tick(NOW, 0.25)
    h.record_messages({("pending", "email"): 3, ("failed", "telegram"): 1, ("dead", "email"): 2})
    with httpx.Client(base_url=api.base) as c:
        r = c.get("/healthz")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "ok"
        assert body["database"] == {"reachable": True, "error": None}
        assert body["last_tick_age_s"] == 0
        assert (body["backlog"], body["dead"]) == (4, 2)
        assert body["stale_after_s"] == 90
        api.clock.advance(timedelta(seconds=91))
        r = c.get("/healthz")
        assert r.status_code == 503
        assert "last tick 91 s ago" in r.json()["problems"][0]
        h.record_tick(api.clock.now(), 0.1)
        assert c.get("/healthz").status_code == 200


def test_healthz_before_the_first_tick(store: Store, tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    running, app = make_api(store, settings_for(tmp_path), clock)
    assert running.ctx.health.started_at == NOW  # create_app starts the count
    with serve(app) as base, httpx.Client(base_url=base) as c:
        r = c.get("/healthz")
        assert r.status_code == 200 and r.json()["last_tick_age_s"] is None
        clock.advance(timedelta(seconds=91))
        r = c.get("/healthz")
        assert r.status_code == 503
        assert r.json()["problems"] == ["no tick since start 91 s ago, more than 90 s"]


def test_answers_on_a_kept_connection_come_without_delayed_ack_stalls(api: Api) -> None:
    """A response written in two parts (head, body) must not wait for the client's delayed
    ACK (~40 ms): the listening socket is TCP, so asyncio sets TCP_NODELAY on each connection."""
    with api.client() as c:
        c.get("/metrics")
        took = []
        for i in range(30):
            t0 = time.perf_counter()
            c.post(f"{CASES}/H0/events", json={"event_id": str(i), "kind": "received", "at": T})
            took.append(time.perf_counter() - t0)
    assert sorted(took)[15] < 0.025


def test_a_busy_port_is_an_error_at_start_not_an_exit(api: Api) -> None:
    port = api.base.rsplit(":", 1)[1]
    with pytest.raises(OSError):
        embedded_server(create_app(api.ctx), f"127.0.0.1:{port}")


def test_healthz_is_503_and_metrics_still_answer_when_the_database_is_gone(
    tmp_path: Path,
) -> None:
    dead = Store(create_db_engine("postgresql://postgres@127.0.0.1:1/none"))
    clock = FixedClock(NOW)
    running, app = make_api(dead, settings_for(tmp_path), clock)
    running.ctx.health.record_tick(NOW, 0.1)
    with serve(app) as base, httpx.Client(base_url=base) as c:
        r = c.get("/healthz")
        assert r.status_code == 503
        assert r.json()["database"]["reachable"] is False
        assert r.json()["database"]["error"]
        t0 = time.monotonic()
        r = c.get("/metrics")
        assert r.status_code == 200 and time.monotonic() - t0 < 1
        families = {f.name: f for f in text_string_to_metric_families(r.text)}
        assert families["watchdog_database_up"].samples[0].value == 0
        r = c.post(CASES, json=case("H1"), headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 503
    dead.close()


def test_metrics_are_prometheus_text_with_every_family(api: Api) -> None:
    m, h = api.ctx.metrics, api.ctx.health
    m.observe_tick(0.3)
    m.observe_send("email", 0.8)
    m.observe_send("telegram", 0.2)
    m.count_firings(5)
    h.record_open_cases({"on_track": 7, "overdue": 2})
    h.record_messages({("sent", "email"): 4, ("dead", "telegram"): 1})
    h.record_tick(NOW - timedelta(seconds=12), 0.3)
    with httpx.Client(base_url=api.base) as c:
        r = c.get("/metrics")
    assert r.status_code == 200 and not r.history  # no redirect to /metrics/
    assert r.headers["content-type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert families["watchdog_tick_duration_seconds"].type == "histogram"
    assert families["watchdog_send_latency_seconds"].type == "histogram"
    assert families["watchdog_firings"].type == "counter"
    assert families["watchdog_messages_sent"].type == "counter"

    def value(name: str, **labels: str) -> float:
        for family in families.values():
            for s in family.samples:
                if s.name == name and s.labels == labels:
                    return s.value
        raise AssertionError(f"no sample {name} {labels}")

    assert value("watchdog_firings_total") == 5
    assert value("watchdog_messages_sent_total", channel="email") == 1
    assert value("watchdog_send_latency_seconds_count", channel="telegram") == 1
    assert value("watchdog_tick_duration_seconds_count") == 1
    assert value("watchdog_open_cases", state="overdue") == 2
    assert value("watchdog_messages", status="dead", channel="telegram") == 1
    assert value("watchdog_outbox_dead") == 1
    assert value("watchdog_last_tick_age_seconds") == 12
    assert value("watchdog_database_up") == 1


def test_the_openapi_document_lists_both_push_routes(api: Api) -> None:
    with httpx.Client(base_url=api.base) as c:
        doc = c.get("/api/v1/openapi.json").json()
    assert {"/api/v1/cases", "/api/v1/cases/{case_code}/events"} <= set(doc["paths"])
    post = doc["paths"]["/api/v1/cases/{case_code}/events"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert "finished" in schema["properties"]["kind"]["enum"]
    assert post["security"]  # the bearer token
    assert not any(p.startswith("/ack") for p in doc["paths"])


# ----- the e-mail acknowledgement link ---------------------------------------------------------


def test_the_ack_link_shows_a_form_and_only_its_post_acknowledges(api: Api, store: Store) -> None:
    assert enqueue_message(
        store, NewMessage("test", "chuyenvien", "email", "cv@example.vn", subject="s"), NOW, NOW
    )
    (message,) = history(store)
    token = make_token(KEY, message.id, NOW + timedelta(days=7))
    with httpx.Client(base_url=api.base) as c:
        r = c.get(f"/ack/{token}")
        assert r.status_code == 200
        assert "Xác nhận đã nhận thông báo" in r.text
        assert '<form method="post">' in r.text
        assert r.headers["cache-control"] == "no-store"
        assert history(store)[0].acknowledged_at is None  # a GET changes nothing
        r = c.post(f"/ack/{token}")
        assert r.status_code == 200
        assert "Đã ghi nhận" in r.text
    assert history(store)[0].acknowledged_at == NOW


def test_forged_expired_and_foreign_tokens_are_refused(api: Api, store: Store) -> None:
    enqueue_message(store, NewMessage("test", "cv", "email", "cv@example.vn"), NOW, NOW)
    (message,) = history(store)
    good = make_token(KEY, message.id, NOW + timedelta(days=1))
    mid, exp, sig = good.split(".")
    forged = [
        f"{mid}.{int(exp) + 86400}.{sig}",  # a later expiry, same signature
        f"{int(mid) + 1}.{exp}.{sig}",  # another message
        make_token(b"another key" * 3, message.id, NOW + timedelta(days=1)),
        f"ack:{message.id}:0123456789abcdef0123",  # the Telegram button's form
        "nonsense",
    ]
    expired = make_token(KEY, message.id, NOW - timedelta(seconds=1))
    with httpx.Client(base_url=api.base) as c:
        for token in forged:
            for method in ("GET", "POST"):
                r = c.request(method, f"/ack/{token}")
                assert r.status_code == 404, (token, method)
                assert "Liên kết không hợp lệ" in r.text
        for method in ("GET", "POST"):
            r = c.request(method, f"/ack/{expired}")
            assert r.status_code == 400
            assert "Liên kết đã hết hạn" in r.text
        gone = make_token(KEY, 999_999, NOW + timedelta(days=1))  # signed, no such message
        r = c.post(f"/ack/{gone}")
        assert r.status_code == 404 and "Không tìm thấy thông báo" in r.text
    assert history(store)[0].acknowledged_at is None


def test_a_batch_of_events_is_applied_in_order_as_one_at_a_time_would(
    store: Store, tmp_path: Path
) -> None:
    """The API writes the events that arrive together in one transaction (apply_events): each
    sees those before it, exactly as if they had come one by one."""
    settings = settings_for(tmp_path)
    pushed = read_cases([case("H1"), case("H2")], settings)
    upsert_cases(store, pushed.records, NOW, source="portal")
    v = case_versions(store, ["H1", "H2"])

    def write(code: str, body: dict[str, Any]) -> EventWrite:
        event = read_event(body, settings).event
        assert event is not None
        return EventWrite(code, event.new_event, effect(event, settings), "lgsp")

    step = {"kind": "step_started", "handler": "truongphong"}
    writes = [
        write("H1", {"event_id": "a", "at": "2026-03-05T10:00:00+07:00", "step": "B2"} | step),
        write("H1", {"event_id": "b", "at": "2026-03-04T10:00:00+07:00", "step": "B1"} | step),
        write("H1", {"event_id": "a", "at": "2026-03-06T10:00:00+07:00", "step": "B3"} | step),
        write("NOPE", {"event_id": "c", "kind": "finished", "at": T}),
        write("H2", {"event_id": "d", "kind": "finished", "at": "2026-03-01T00:00:00+07:00"}),
        write("H2", {"event_id": "e", "kind": "supplement_requested", "at": T}),
        write("H2", {"event_id": "f", "kind": "supplement_received", "at": T}),
        write("H2", {"event_id": "g", "kind": "extended", "at": T, "due_at": "2026-03-30"}),
    ]
    outcomes = apply_events(store, writes, LATER)
    assert outcomes[:4] == ["applied", "applied", "duplicate", "unknown"]
    assert isinstance(outcomes[4], EventRefused)  # before H2 was received
    assert outcomes[5:] == ["applied"] * 3
    h1, h2 = stored(store, "H1"), stored(store, "H2")
    assert (h1["current_step"], h1["step_started_at"]) == ("B2", vn(2026, 3, 5, 10))
    assert h2["status"] == 4  # requested then received at the same instant: the later wins
    assert h2["due_at"] == vn(2026, 3, 30, 17)
    assert case_versions(store, ["H1", "H2"]) == {"H1": v["H1"] + 2, "H2": v["H2"] + 3}
    assert [e.event_id for e in stored_events(store, "H1")] == ["b", "a"]
    assert [e.event_id for e in stored_events(store, "H2")] == ["e", "f", "g"]
    assert stored_events(store, "H2")[2].data["reason"] == "extension"
    assert all(e.recorded_at == LATER for e in stored_events(store, "H2"))
    assert has_cases_from(store, "lgsp") and not has_cases_from(store, "portal")
    # and the same batch again changes nothing
    again = apply_events(store, [w for w in writes if w.case_code != "NOPE"], LATER)
    assert [o for o in again if not isinstance(o, Exception)] == ["duplicate"] * 6
    assert case_versions(store, ["H1", "H2"]) == {"H1": v["H1"] + 2, "H2": v["H2"] + 3}
