"""The web dashboard (issue 8): server-rendered pages on the daemon's HTTP server.

`mount(app, ctx)` adds its routes to the daemon's FastAPI app (watchdog.http.app does it when
`dashboard.enabled`). Every page needs a signed-in account and shows only what the account's
role lets it see (watchdog.web.auth.Scope); a case or a unit outside it answers 404, exactly
as one that does not exist. The only forms are sign-in and sign-out, both CSRF-protected
(watchdog.web.csrf). No JavaScript: the pages work with scripts off, and the Content Security
Policy forbids any.
"""

from __future__ import annotations

import logging
import secrets
from datetime import date, datetime, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from watchdog.config import Settings
from watchdog.reports.ontime import By
from watchdog.store.links import shared_secret
from watchdog.store.users import User, end_sessions, find_user, record_failure, record_success
from watchdog.timefmt import parse_when, show
from watchdog.web import csrf, views
from watchdog.web.auth import (
    COOKIE,
    LOCK_FOR,
    LOGIN_COOKIE,
    WINDOW,
    FailureWindow,
    Scope,
    Session,
    check_password,
    extended,
    new_session,
    read_session,
    scope_of,
    sign_session,
    valid_login,
)

if TYPE_CHECKING:
    from watchdog.http.app import AppContext

log = logging.getLogger(__name__)

SECRET_NAME = "dashboard_session"
ROLE_NAMES = {
    "official": "Cán bộ",
    "unit_head": "Lãnh đạo đơn vị",
    "supervisor": "Giám sát",
    "admin": "Quản trị",
}
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
CSP_INLINE_STYLES = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CSP,
}


class Signed:
    """The account behind a request."""

    def __init__(self, user: User, session: Session, scope: Scope, renew: Session | None):
        self.user = user
        self.session = session
        self.scope = scope
        self.renew = renew


class Dashboard:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        self.env = Environment(
            loader=PackageLoader("watchdog.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["role_names"] = ROLE_NAMES
        self._key: bytes | None = None
        self.addresses = FailureWindow()
        self.unknown_logins = FailureWindow()
        self.trend_cache = views.TrendCache()
        self.css = resources.files("watchdog.web").joinpath("static/dashboard.css").read_bytes()

    # ----- plumbing ------------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self.ctx.settings()

    def enabled(self) -> bool:
        return self.settings.config.dashboard.enabled

    async def key(self) -> bytes:
        """The signing key, shared by every process of this database (made by the first)."""
        if self._key is None:
            value = await run_in_threadpool(
                shared_secret, self.ctx.store, SECRET_NAME, secrets.token_hex(32), self.ctx.clock()
            )
            self._key = value.encode()
        return self._key

    def secure(self) -> bool:
        config = self.settings.config
        if config.dashboard.secure_cookie is not None:
            return config.dashboard.secure_cookie
        return (config.http.public_url or "").lower().startswith("https://")

    def idle(self) -> timedelta:
        return self.settings.config.dashboard.session

    def render(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(**values)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def set_session(self, response: Response, key: bytes, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            sign_session(key, session),
            max_age=max(0, int(session.expires - self.ctx.clock().timestamp())),
            path="/",
            secure=self.secure(),
            httponly=True,
            samesite="lax",
        )

    async def signed(self, request: Request) -> Signed | None:
        """The signed-in account of the request: a valid cookie of an enabled account whose
        session epoch it carries."""
        key = await self.key()
        now = self.ctx.clock()
        session = read_session(key, request.cookies.get(COOKIE), now)
        if session is None:
            return None
        user = await run_in_threadpool(find_user, self.ctx.store, session.login)
        if user is None or user.disabled or user.session_epoch != session.epoch:
            return None
        scope = scope_of(user.role, user.official_id, self.settings)
        return Signed(user, session, scope, extended(session, now, self.idle()))

    async def page(
        self, request: Request, who: Signed, name: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        key = await self.key()
        response = self.render(
            name,
            status,
            user=who.user,
            scope=who.scope,
            csrf=csrf.token(key, who.session.sid),
            path=request.url.path,
            official_name=views.official_name(self.settings, who.user.official_id),
            **values,
        )
        if who.renew is not None:
            self.set_session(response, key, who.renew)
        return response

    def to_login(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)

    async def not_found(self, request: Request, who: Signed) -> Response:
        return await self.page(request, who, "error.html", 404, title="Không tìm thấy")

    # ----- sign-in and sign-out ------------------------------------------------------------------

    async def login_form(
        self, request: Request, error: str | None = None, status: int = 200, login: str = ""
    ) -> Response:
        key = await self.key()
        nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(16)
        response = self.render(
            "login.html",
            status,
            csrf=csrf.token(key, nonce),
            next=_safe_next(request.query_params.get("next")),
            error=error,
            login=login,
        )
        response.set_cookie(
            LOGIN_COOKIE,
            nonce,
            path="/login",
            secure=self.secure(),
            httponly=True,
            samesite="strict",
        )
        return response

    async def login(self, request: Request) -> Response:
        key = await self.key()
        if not csrf.same_origin(request, self.settings.config.http.public_url):
            return self.refused("Yêu cầu đến từ một trang khác nên không được thực hiện.")
        form = await request.form()
        if not csrf.valid_token(key, request.cookies.get(LOGIN_COOKIE), _field(form, csrf.FIELD)):
            return self.refused(
                "Biểu mẫu đăng nhập đã cũ hoặc trình duyệt chặn cookie. Hãy mở lại trang đăng nhập."
            )
        login = _field(form, "login").strip()[:64]
        password = _field(form, "password")
        next_url = _safe_next(_field(form, "next")) or "/"
        now = self.ctx.clock()
        limit = self.settings.config.dashboard.login_attempts
        address = request.client.host if request.client else "?"
        user = (
            await run_in_threadpool(find_user, self.ctx.store, login)
            if valid_login(login)
            else None
        )
        waits = [
            self.addresses.blocked_until(address, now, limit),
            self.unknown_logins.blocked_until(login, now, limit) if user is None else None,
            user.locked_until if user and user.locked_until and user.locked_until > now else None,
        ]
        blocked = max((w for w in waits if w is not None), default=None)
        if blocked is not None:
            return await self.login_form(request, _locked(blocked, self.settings), 429, login)
        ok, new_hash = await run_in_threadpool(
            check_password, user.password_hash if user else None, password
        )
        if not ok or user is None or user.disabled:
            self.addresses.fail(address, now)
            if user is None:
                self.unknown_logins.fail(login, now)
            else:
                await run_in_threadpool(
                    lambda: record_failure(
                        self.ctx.store, login, now, limit=limit, window=WINDOW, lock_for=LOCK_FOR
                    )
                )
            log.info("dashboard: failed sign-in for %r from %s", login[:64], address)
            return await self.login_form(
                request, "Tên đăng nhập hoặc mật khẩu không đúng.", 401, login
            )
        await run_in_threadpool(
            lambda: record_success(self.ctx.store, user.id, now, password_hash=new_hash)
        )
        log.info("dashboard: %s signed in from %s", user.login, address)
        response = RedirectResponse(next_url, status_code=303, headers=HEADERS)
        self.set_session(
            response, key, new_session(user.login, user.session_epoch, now, self.idle())
        )
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    async def logout(self, request: Request) -> Response:
        key = await self.key()
        if not csrf.same_origin(request, self.settings.config.http.public_url):
            return self.refused("Yêu cầu đến từ một trang khác nên không được thực hiện.")
        who = await self.signed(request)
        form = await request.form()
        if who is None:
            return RedirectResponse("/login", status_code=303)
        if not csrf.valid_token(key, who.session.sid, _field(form, csrf.FIELD)):
            return self.refused("Biểu mẫu đã cũ. Hãy tải lại trang rồi thử lại.")
        await run_in_threadpool(end_sessions, self.ctx.store, who.user.id, self.ctx.clock())
        log.info("dashboard: %s signed out", who.user.login)
        response = RedirectResponse("/login", status_code=303, headers=HEADERS)
        response.delete_cookie(COOKIE, path="/")
        return response

    def refused(self, why: str) -> HTMLResponse:
        return self.render("error.html", 403, title="Không được phép", message=why, user=None)


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _safe_next(value: str | None) -> str | None:
    """A page of this site to go back to after signing in; never another site."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    if any(c in value for c in "\r\n\\"):
        return None
    return value


def _locked(until: datetime, settings: Settings) -> str:
    return (
        "Đăng nhập sai quá nhiều lần. Vì an toàn, vui lòng thử lại sau "
        f"{show(until, settings.default_calendar.tz)}."
    )


def _int(value: str | None, default: int = 1) -> int:
    try:
        return int(value or default)
    except ValueError:
        return default


def _choice(value: str | None) -> str | None:
    return value.strip() or None if value else None


def _period(settings: Settings, now: datetime, start: str | None, end: str | None):
    """The report's period from the form (dd/mm/yyyy or ISO dates); default: the current
    quarter up to today. Returns (start, end, error)."""
    today = settings.default_calendar.local(now).date()
    default_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    tz = settings.default_calendar.tz
    try:
        first = _day(start, tz) or default_start
        last = _day(end, tz) or today
    except ValueError:
        return default_start, today, "Ngày không hợp lệ: hãy nhập theo dạng dd/mm/yyyy."
    if last < first:
        return first, last, "Ngày cuối kỳ phải sau ngày đầu kỳ."
    return first, last, None


def _day(text: str | None, tz) -> date | None:
    if not text or not text.strip():
        return None
    when = parse_when(text.strip(), tz)
    return when.date() if isinstance(when, datetime) else when


def mount(app: FastAPI, ctx: AppContext) -> Dashboard:
    """Add the dashboard's routes to the daemon's app."""
    d = Dashboard(ctx)

    async def signed_or_login(request: Request) -> Signed | Response:
        if not d.enabled():
            return Response("Not Found", status_code=404)
        who = await d.signed(request)
        return who if who is not None else d.to_login(request)

    @app.get("/static/dashboard.css", include_in_schema=False)
    async def stylesheet() -> Response:
        return Response(
            d.css,
            media_type="text/css; charset=utf-8",
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    @app.get("/login", include_in_schema=False)
    async def login_page(request: Request) -> Response:
        if not d.enabled():
            return Response("Not Found", status_code=404)
        if await d.signed(request) is not None:
            return RedirectResponse(_safe_next(request.query_params.get("next")) or "/", 303)
        return await d.login_form(request)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        if not d.enabled():
            return Response("Not Found", status_code=404)
        return await d.login(request)

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        if not d.enabled():
            return Response("Not Found", status_code=404)
        return await d.logout(request)

    @app.get("/", include_in_schema=False)
    async def board(request: Request) -> Response:
        who = await signed_or_login(request)
        if isinstance(who, Response):
            return who
        q = request.query_params
        filters = views.Filters(
            unit=_choice(q.get("unit")),
            official=_choice(q.get("official")),
            state=_choice(q.get("state")),
            page=_int(q.get("page")),
        )
        data = await run_in_threadpool(
            views.board_page, ctx.store, d.settings, who.scope, ctx.clock(), filters
        )
        query = {
            k: v
            for k, v in (
                ("unit", filters.unit),
                ("official", filters.official),
                ("state", data["filters"].state),
            )
            if v
        }
        return await d.page(
            request,
            who,
            "board.html",
            title="Hồ sơ đang giải quyết",
            query=urlencode(query),
            **data,
        )

    @app.get("/units", include_in_schema=False)
    async def units(request: Request) -> Response:
        who = await signed_or_login(request)
        if isinstance(who, Response):
            return who
        if not who.scope.unit_pages:
            return await d.not_found(request, who)
        data = await run_in_threadpool(
            views.units_page, ctx.store, d.settings, who.scope, ctx.clock()
        )
        return await d.page(request, who, "units.html", title="Đơn vị", **data)

    @app.get("/units/{code:path}", include_in_schema=False)
    async def unit(request: Request, code: str) -> Response:
        who = await signed_or_login(request)
        if isinstance(who, Response):
            return who
        try:
            data = await run_in_threadpool(
                views.unit_page, ctx.store, d.settings, who.scope, ctx.clock(), code, d.trend_cache
            )
        except views.NotVisible:
            return await d.not_found(request, who)
        return await d.page(request, who, "unit.html", title=data["unit"]["name"], **data)

    @app.get("/cases/{code:path}", include_in_schema=False)
    async def case(request: Request, code: str) -> Response:
        who = await signed_or_login(request)
        if isinstance(who, Response):
            return who
        try:
            data = await run_in_threadpool(
                views.case_page, ctx.store, d.settings, who.scope, ctx.clock(), code
            )
        except views.NotVisible:
            return await d.not_found(request, who)
        return await d.page(request, who, "case.html", title=f"Hồ sơ {code}", **data)

    @app.get("/findings", include_in_schema=False)
    async def findings(request: Request) -> Response:
        who = await signed_or_login(request)
        if isinstance(who, Response):
            return who
        data = await run_in_threadpool(
            views.findings_page,
            ctx.store,
            d.settings,
            who.scope,
            ctx.clock(),
            _int(request.query_params.get("page")),
        )
        return await d.page(request, who, "findings.html", title="Phát hiện cần xử lý", **data)

    async def report_of(request: Request, who: Signed):
        q = request.query_params
        settings = d.settings
        now = ctx.clock()
        start, end, error = _period(settings, now, q.get("from"), q.get("to"))
        by = By(q.get("by")) if q.get("by") in {b.value for b in By} else By.UNIT
        if who.scope.units is not None:
            by = By.UNIT
        report = None
        if error is None:
            report = await run_in_threadpool(
                views.scoped_report, ctx.store, settings, who.scope, now, start, end, by
            )
        return start, end, by, error, report

    @app.get("/report", include_in_schema=False)
    async def report(request: Request) -> Response:
        who = await signed_or_login(request)
        if isinstance(who, Response):
            return who
        if not who.scope.unit_pages:
            return await d.not_found(request, who)
        start, end, by, error, built = await report_of(request, who)
        settings = d.settings
        query = urlencode(
            {"from": start.strftime("%d/%m/%Y"), "to": end.strftime("%d/%m/%Y"), "by": by.value}
        )
        table_html = None
        if built is not None:
            from watchdog.reports.html import to_html

            # the report's own table and chart (autoescaped by its templates), with its styles
            table_html = Markup(to_html(built, settings, fragment=True))
        response = await d.page(
            request,
            who,
            "report.html",
            title="Báo cáo kết quả giải quyết",
            start=start.strftime("%d/%m/%Y"),
            end=end.strftime("%d/%m/%Y"),
            by=by.value,
            by_fixed=who.scope.units is not None,
            error=error,
            as_of=show(built.as_of, settings.default_calendar.tz) if built else "",
            query=query,
            table_html=table_html,
        )
        if table_html is not None:  # its <style> and style attributes
            response.headers["Content-Security-Policy"] = CSP_INLINE_STYLES
        return response

    @app.get("/report.xlsx", include_in_schema=False)
    async def report_xlsx(request: Request) -> Response:
        who = await signed_or_login(request)
        if isinstance(who, Response):
            return who
        if not who.scope.unit_pages:
            return await d.not_found(request, who)
        from watchdog.reports.xlsx import to_xlsx

        start, end, _by, error, built = await report_of(request, who)
        if built is None:
            return await d.page(request, who, "error.html", 400, title="Kỳ báo cáo", message=error)
        data = await run_in_threadpool(to_xlsx, built, d.settings)
        name = f"bao-cao-{start:%Y%m%d}-{end:%Y%m%d}.xlsx"
        return Response(
            data,
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return d
