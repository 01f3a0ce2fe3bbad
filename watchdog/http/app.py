"""The daemon's HTTP server as a library: `create_app(ctx)` builds the FastAPI app the daemon
mounts (SPEC 6 push API, /healthz, /metrics, the e-mail "Đã nhận" pages).

The app holds no state of its own beyond its context: the current settings are asked for on
every request (tokens and `http.max_body` follow a reload), the health figures are what the
daemon recorded, and every write goes through the store's named functions, answered 2xx only
once committed. Store calls run in worker threads; the event loop never waits on a database.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from watchdog.config import Settings
from watchdog.domain import EventKind
from watchdog.http.acklink import check_token
from watchdog.http.metrics import HealthState, Metrics
from watchdog.sources.ingest import upsert_cases
from watchdog.sources.push import (
    CASE_FIELDS,
    EVENT_DATA,
    REASONS,
    EventRefused,
    FieldError,
    PushedCases,
    effect,
    read_cases,
    read_event,
)
from watchdog.store import Store
from watchdog.store.events import EventWrite, Outcome, apply_events, ping

log = logging.getLogger(__name__)

API = "/api/v1"
PING_TIMEOUT_S = 2.0  # /healthz waits no longer for the database to answer
PING_EVERY_S = 1.0  # one check per second at most, however often /healthz is asked

# The push routes' security in the OpenAPI document; the endpoints check the header themselves
# (a FastAPI security dependency cost more per request than the check, bench/api.py).
_SECURITY = {"security": [{"bearer": []}]}


@dataclass
class AppContext:
    """What the app needs from the daemon."""

    store: Store
    settings: Callable[[], Settings]  # the current settings (the daemon reloads them)
    clock: Callable[[], datetime]  # aware "now"
    health: HealthState
    changed: Callable[[list[str]], None]  # case codes a push changed, called after commit
    ack: Callable[[int], bool]  # acknowledge a message id; False when there is none
    ack_key: bytes  # verifies e-mail acknowledgement links (acklink)
    metrics: Metrics = field(default_factory=Metrics)


def create_app(ctx: AppContext) -> FastAPI:
    app = FastAPI(
        title="tthc-watchdog",
        summary="Push API of the deadline-warning daemon for administrative case files",
        version="1",
        openapi_url=f"{API}/openapi.json",
        docs_url=f"{API}/docs",
        redoc_url=None,
    )
    app.add_middleware(_BodyLimit, limit=lambda: ctx.settings().config.http.max_body)
    if ctx.health.started_at is None:
        ctx.health.started_at = ctx.clock()
    ctx.metrics.watch(ctx.health, ctx.clock)
    probe = _Probe(ctx)
    # Writes wait their turn here, in the event loop, rather than in worker threads inside the
    # database: SQLite has one writer, and its busy handler sleeps in steps of up to 100 ms
    # (p99 of 0.5 s at 16 concurrent pushes without this); on PostgreSQL pushes serialise on
    # the ingest lock anyway, a few in flight keep the connection pool free for the rest.
    writers = asyncio.Semaphore(1 if ctx.store.dialect == "sqlite" else 4)
    events = _EventBatches(ctx, writers)

    # ----- push API (SPEC 6) -----------------------------------------------------------------

    @app.post(
        f"{API}/cases",
        summary="Create or update cases",
        description=(
            "One case object or a list of them, with the fields of a file import by canonical "
            "name. Every record is checked first: if any has a problem the answer is 422 "
            "listing every problem and nothing is written."
        ),
        openapi_extra=_body(_CASE_SCHEMA_OR_LIST) | _SECURITY,
        responses=_RESPONSES,
    )
    async def push_cases(request: Request) -> Response:
        settings = ctx.settings()
        source = _source(request, settings)
        if source is None:
            return _unauthorized()
        body = await _json(request)
        if isinstance(body, Response):
            return body
        pushed = await run_in_threadpool(read_cases, body, settings)
        if pushed.errors:
            ctx.metrics.pushed_cases.labels("invalid").inc(len({e.index for e in pushed.errors}))
            return _invalid(pushed.errors)
        try:
            async with writers:
                result = await run_in_threadpool(_write_cases, ctx, pushed, source)
        except Exception:
            log.exception("pushed cases not stored")
            return _unavailable()
        if isinstance(result, Response):
            return result
        answer, codes = result
        if codes:
            _tell(ctx, codes)
        return JSONResponse(answer)

    @app.post(
        API + "/cases/{case_code:path}/events",
        summary="Record an event of a case",
        description=(
            "The event's `event_id` makes a retry harmless: a repeated id changes nothing and "
            'is answered 200 with `"duplicate": true`.'
        ),
        openapi_extra=_body(_EVENT_SCHEMA) | _SECURITY,
        responses={**_RESPONSES, 404: {"description": "No case with this code"}},
    )
    async def push_event(
        case_code: str,
        request: Request,
    ) -> Response:
        settings = ctx.settings()
        source = _source(request, settings)
        if source is None:
            return _unauthorized()
        body = await _json(request)
        if isinstance(body, Response):
            return body
        read = read_event(body, settings)
        if read.event is None:
            ctx.metrics.pushed_events.labels("invalid").inc()
            return _invalid(read.errors)
        event = read.event
        write = EventWrite(case_code, event.new_event, effect(event, settings), source)
        try:
            outcome = await events.write(write)
        except EventRefused as e:
            ctx.metrics.pushed_events.labels("invalid").inc()
            return _invalid([FieldError(None, e.field, e.message)])
        except Exception:
            log.exception("pushed event %s of %s not stored", event.event_id, case_code)
            return _unavailable()
        ctx.metrics.pushed_events.labels(outcome).inc()
        if outcome == "unknown":
            return JSONResponse({"detail": f"no case with code {case_code!r}"}, status_code=404)
        if outcome == "applied":
            _tell(ctx, [case_code])
        answer: dict[str, Any] = {
            "case_code": case_code,
            "event_id": event.event_id,
            "duplicate": outcome == "duplicate",
        }
        if read.warnings:
            answer["warnings"] = [w.as_json() for w in read.warnings]
        return JSONResponse(answer)

    # ----- health and metrics ------------------------------------------------------------------

    @app.get("/healthz", summary="Liveness and readiness", tags=["operations"])
    async def healthz() -> Response:
        await probe.check()
        now = ctx.clock()
        h = ctx.health.snapshot()
        problems = h.problems(now)
        age = h.tick_age(now)
        answer = {
            "status": "ok" if not problems else "unhealthy",
            "problems": problems,
            "database": {"reachable": h.database_ok, "error": h.database_error},
            "last_tick_at": _iso(h.last_tick_at),
            "last_tick_age_s": None if age is None else round(age, 3),
            "last_tick_duration_s": h.last_tick_duration_s,
            "stale_after_s": h.stale_after.total_seconds(),
            "backlog": h.backlog,
            "dead": h.dead,
            "open_cases": dict(h.open_cases),
        }
        return JSONResponse(answer, status_code=503 if problems else 200)

    @app.get("/metrics", summary="Prometheus metrics", tags=["operations"])
    async def metrics() -> Response:
        return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    # ----- the e-mail "Đã nhận" link -----------------------------------------------------------

    @app.get("/ack/{token}", include_in_schema=False)
    async def ack_page(token: str) -> Response:
        found = check_token(ctx.ack_key, token, ctx.clock())
        if found.outcome != "valid":
            return _token_refused(found.outcome)
        return _page(
            200,
            "Xác nhận đã nhận thông báo",
            f"<p>Bấm nút dưới đây để xác nhận anh/chị đã nhận thông báo số "
            f"{found.message_id}. Sau khi xác nhận, hệ thống ngừng nhắc lại thông báo này.</p>"
            '<form method="post"><button type="submit">Đã nhận</button></form>',
        )

    @app.post("/ack/{token}", include_in_schema=False)
    async def ack_confirm(token: str) -> Response:
        found = check_token(ctx.ack_key, token, ctx.clock())
        if found.outcome != "valid" or found.message_id is None:
            return _token_refused(found.outcome)
        try:
            known = await run_in_threadpool(ctx.ack, found.message_id)
        except Exception:
            log.exception("acknowledgement of message %s not recorded", found.message_id)
            return _page(
                503,
                "Chưa ghi nhận được",
                "<p>Hệ thống tạm thời chưa ghi nhận được xác nhận. "
                "Vui lòng thử lại sau ít phút.</p>",
            )
        if not known:
            return _page(
                404,
                "Không tìm thấy thông báo",
                "<p>Thông báo này không còn trong hệ thống.</p>",
            )
        return _page(
            200,
            "Đã ghi nhận",
            f"<p>Cảm ơn anh/chị. Hệ thống đã ghi nhận anh/chị đã nhận thông báo số "
            f"{found.message_id}.</p>",
        )

    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = default_openapi()
            doc.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "The token of an http source (`sources: - {type: http, name, "
                "token}`); the source's name is recorded on the cases it writes.",
            }
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    # ----- the web dashboard (issue 8): its own package, its routes added last ---------------
    if ctx.settings().config.dashboard.enabled:
        from watchdog.web.app import mount

        mount(app, ctx)
    return app


# ----- the push API's pieces ---------------------------------------------------------------------


def _source(request: Request, settings: Settings) -> str | None:
    """The name of the http source whose token the request bears; None when none matches.
    Every configured token is compared (in constant time), whichever matches."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    given = token.strip().encode()
    found = None
    for source in settings.config.sources:
        if source.type != "http" or not source.token:
            continue
        if hmac.compare_digest(given, source.token.encode()) and found is None:
            found = source.name
    return found if given else None


async def _json(request: Request) -> Any:
    """The request's JSON body; an error response when it is not JSON (413 is raised by the
    body limit while reading)."""
    raw = await request.body()
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return _invalid([FieldError(None, None, f"the body is not valid JSON: {e}")])


def _write_cases(
    ctx: AppContext, pushed: PushedCases, source: str
) -> Response | tuple[dict[str, Any], list[str]]:
    """Write checked records in one transaction (in a worker thread)."""
    result = upsert_cases(ctx.store, pushed.records, ctx.clock(), source=source)
    m = ctx.metrics.pushed_cases
    for outcome, n in (
        ("inserted", result.inserted),
        ("updated", result.updated),
        ("unchanged", result.unchanged),
        ("refused", len(result.refused)),
    ):
        if n:
            m.labels(outcome).inc(n)
    answer: dict[str, Any] = {
        "received": len(pushed.records),
        "inserted": result.inserted,
        "updated": result.updated,
        "unchanged": result.unchanged,
    }
    if pushed.warnings:
        answer["warnings"] = [w.as_json() for w in pushed.warnings]
    if result.refused:
        # normalize_case checks what a database refuses, so this is a bug to report; the
        # other records are written (write_cases refuses a row alone)
        answer["refused"] = [
            {"index": i, "field": None, "message": reason} for i, reason in result.refused
        ]
        return JSONResponse(answer, status_code=422)
    codes = [r["case_code"] for r in pushed.records] if result.inserted + result.updated else []
    return answer, codes


def _tell(ctx: AppContext, codes: list[str]) -> None:
    """Tell the daemon what changed; the change is committed whatever it does with it."""
    try:
        ctx.changed(list(dict.fromkeys(codes)))
    except Exception:
        log.exception("the daemon was not told about %d changed cases", len(codes))


def _unauthorized() -> Response:
    return JSONResponse(
        {"detail": "a valid bearer token of an http source is required"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def _invalid(errors: list[FieldError]) -> Response:
    return JSONResponse(
        {
            "detail": "nothing was written: fix every error listed and send again",
            "errors": [e.as_json() for e in errors],
        },
        status_code=422,
    )


def _unavailable() -> Response:
    return JSONResponse(
        {"detail": "the database is unavailable; retry later (an event_id makes a retry safe)"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).isoformat()


class _EventBatches:
    """Pushed events are written in batches: whatever arrived while one batch was being
    written goes, in order of arrival, into the next, one transaction for all (on SQLite one
    commit per event capped the API at ~130 events/s; bench/api.py). Each request is answered
    once its batch has committed."""

    MAX = 200

    def __init__(self, ctx: AppContext, writers: asyncio.Semaphore):
        self.ctx = ctx
        self.writers = writers
        self.pending: list[tuple[EventWrite, asyncio.Future[Outcome]]] = []
        self.draining = False
        self.task: asyncio.Future[None] | None = None

    async def write(self, write: EventWrite) -> Outcome:
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.pending.append((write, done))
        if not self.draining:
            self.draining = True
            self.task = asyncio.ensure_future(self._drain())
        return await done

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending[: self.MAX], self.pending[self.MAX :]
                try:
                    async with self.writers:
                        outcomes = await run_in_threadpool(
                            apply_events, self.ctx.store, [w for w, _ in batch], self.ctx.clock()
                        )
                except Exception as e:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(e)
                    continue
                for (_, done), outcome in zip(batch, outcomes, strict=True):
                    if done.done():
                        continue  # its request went away; the event is written all the same
                    if isinstance(outcome, Exception):
                        done.set_exception(outcome)
                    else:
                        done.set_result(outcome)
        finally:
            self.draining = False


class _BodyLimit:
    """Starlette's request body limit (413), with the limit read per request: `http.max_body`
    follows a configuration reload. A body without Content-Length (chunked) is counted as it
    arrives."""

    def __init__(self, app: ASGIApp, limit: Callable[[], int]):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await RequestBodyLimitMiddleware(self.app, self.limit())(scope, receive, send)


class _Probe:
    """The health check's one database query (`store.events.ping`): at most one at a time and
    one per PING_EVERY_S, never waited on for more than PING_TIMEOUT_S. Its answer is recorded
    in the HealthState the daemon keeps."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        self.task: asyncio.Future[None] | None = None
        self.last = -1e9

    async def check(self) -> None:
        if self.task is None:
            if time.monotonic() - self.last < PING_EVERY_S:
                return
            self.last = time.monotonic()
            self.task = asyncio.ensure_future(self._run())
        task = self.task
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), PING_TIMEOUT_S)
        if not task.done():
            self.ctx.health.record_database(
                False, f"no answer within {PING_TIMEOUT_S:.0f} s", self.ctx.clock()
            )

    async def _run(self) -> None:
        try:
            await run_in_threadpool(ping, self.ctx.store)
            self.ctx.health.record_database(True, None, self.ctx.clock())
        except Exception as e:
            error = " ".join(str(getattr(e, "orig", None) or e).split())[:300]
            self.ctx.health.record_database(False, error, self.ctx.clock())
        finally:
            self.task = None


# ----- the pages of the acknowledgement link ------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;
line-height:1.5}}button{{font-size:1.1rem;padding:.6rem 1.6rem;cursor:pointer}}</style>
</head><body><h1>{title}</h1>{body}</body></html>
"""


def _page(status: int, title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(title=html.escape(title), body=body),
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Robots-Tag": "noindex",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "form-action 'self'; frame-ancestors 'none'",
        },
    )


def _token_refused(outcome: str) -> HTMLResponse:
    if outcome == "expired":
        return _page(
            400,
            "Liên kết đã hết hạn",
            "<p>Liên kết xác nhận này đã hết hạn. Nếu vẫn cần xác nhận, vui lòng liên hệ "
            "quản trị hệ thống.</p>",
        )
    return _page(
        404,
        "Liên kết không hợp lệ",
        "<p>Liên kết xác nhận này không đúng hoặc đã bị thay đổi. Vui lòng mở lại liên kết "
        "trong thư điện tử.</p>",
    )


# ----- OpenAPI: the bodies are read by hand (every error at once), so they are described here ----

_TEXT_OR_NUMBER = {"type": ["string", "number", "null"]}
_CASE_SCHEMA = {
    "type": "object",
    "title": "Case",
    "description": "A case by the canonical field names of a file import (SPEC 6).",
    "required": ["case_code", "procedure_code", "unit_code", "received_at"],
    "additionalProperties": False,
    "properties": {name: dict(_TEXT_OR_NUMBER) for name in CASE_FIELDS},
}
_CASE_SCHEMA_OR_LIST = {"oneOf": [_CASE_SCHEMA, {"type": "array", "items": _CASE_SCHEMA}]}
_EVENT_SCHEMA = {
    "type": "object",
    "title": "Event",
    "required": ["event_id", "kind", "at"],
    "additionalProperties": False,
    "properties": {
        "event_id": {"type": "string", "maxLength": 128},
        "kind": {"type": "string", "enum": [k.value for k in EventKind]},
        "at": {"type": "string", "description": "ISO 8601; without a zone: local time"},
        "due_at": {"type": "string", "description": "extended: the new appointment"},
        "reason": {"type": "string", "enum": list(REASONS), "description": "extended"},
        "step": {"type": "string", "description": "step_started: the step's code"},
        "handler": {"type": "string", "description": "step_started: official id or name"},
        "assignee": {"type": "string", "description": "assigned: official id or name"},
    },
    "description": "Data by kind: "
    + "; ".join(f"{k.value}: {', '.join(v)}" for k, v in EVENT_DATA.items()),
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }


_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token"},
    413: {"description": "Body larger than http.max_body"},
    422: {"description": "Not JSON, or field errors (every one listed; nothing written)"},
    503: {"description": "Database unavailable; retry"},
}


# ----- serving ----------------------------------------------------------------------------------


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside the daemon's event loop: it leaves signals to the daemon (uvicorn replaces
    SIGINT/SIGTERM handlers otherwise, uvicorn#1579), and serves on a socket bound beforehand,
    so a busy port is an OSError at start-up rather than uvicorn's sys.exit inside a task.
    Stop it with `should_exit = True`."""

    def __init__(self, app: ASGIApp, sock: socket.socket, **options: Any):
        options.setdefault("log_config", None)
        options.setdefault("access_log", False)
        options.setdefault("timeout_graceful_shutdown", 5)
        super().__init__(uvicorn.Config(app, **options))
        self.sock = sock

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return host, port

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        await super().serve(sockets=sockets or [self.sock])


def bind(listen: str) -> socket.socket:
    """A TCP socket bound to `http.listen` ("127.0.0.1:8080", "[::1]:8080", ":8080" for every
    address, port 0 for any free one)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"http.listen {listen!r}: expected HOST:PORT, such as 127.0.0.1:8080")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto given: asyncio sets TCP_NODELAY on accepted sockets only when it is IPPROTO_TCP
    # (else every answer written in two parts waits out the client's delayed ACK, ~40 ms)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port)))
        sock.listen(2048)  # connections made before uvicorn serves wait, they are not refused
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def embedded_server(app: ASGIApp, listen: str, **options: Any) -> EmbeddedServer:
    return EmbeddedServer(app, bind(listen), **options)
