"""Messages from views: subject, plain text and HTML per channel, from Jinja2 templates.

Templates live in `templates/<channel>/` (the admin's folder first, then the shipped one), so an
admin changes the wording of one stage by dropping one file, and `watchdog check` proves every
template renders before the daemon sends anything (`check_templates`). Templates get plain values
(the views) and a few helpers bound to the message (`when`, `remaining`, `applicant`, ...); the
Vietnamese text is in the templates, except the remaining-time words, which are worked here.

Escaping: `.html` templates are HTML-autoescaped; Telegram templates are Telegram-HTML, where
only `&`, `<` and `>` are escaped (Telegram knows no other named entity worth using) and only
the tags Telegram allows may appear. Subjects are plain text on one line. A case field can
therefore never inject markup, a header or a blank line that would split a Telegram block.
"""

from __future__ import annotations

import html as htmlmod
import re
import traceback
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, tzinfo
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    select_autoescape,
)
from markupsafe import Markup

from watchdog.channels import Recipient
from watchdog.outbox.views import (
    BacklogLine,
    CaseView,
    DigestSection,
    DigestView,
    MessageView,
    ReportView,
    UnitRate,
)
from watchdog.timefmt import show

CHANNELS = ("email", "telegram", "webhook", "file")
KINDS = ("alert", "digest", "test", "notice", "report")
TELEGRAM_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a"}
    | {"code", "pre", "blockquote", "tg-emoji"}
)
SUBJECT_MAX = 150  # characters; longer subjects are cut with "…"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str  # plain text; on Telegram: Telegram-HTML, case blocks separated by "\n\n"
    html: str | None  # e-mail's HTML part (also webhook and file); None on Telegram


class RenderError(Exception):
    """A template failed; the message names the file and line ("templates/x.html:3: ...")."""


# ----- words and masks -----------------------------------------------------------------------


def say_remaining(seconds: int | float | None, day_seconds: int) -> str:
    """Remaining working time in Vietnamese, whatever the process language (messages are
    Vietnamese): "còn 1 ngày làm việc", "quá hạn 2 ngày làm việc 3 giờ", "đến hạn" at 0.

    Like `i18n.remaining`: the largest unit and the next one when not zero, cut down, never
    rounded up (a case never looks less urgent than it is); under a minute is "dưới 1 phút".
    """
    if seconds is None:
        return "chưa có hạn"
    whole = int(seconds)
    if whole == 0:
        return "đến hạn"
    day = day_seconds if day_seconds > 0 else 8 * 3600
    days, rest = divmod(abs(whole), day)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    amounts = [(days, "ngày"), (hours, "giờ"), (minutes, "phút")]
    first = next((i for i, (n, _unit) in enumerate(amounts) if n), None)
    if first is None:
        span = "dưới 1 phút làm việc"
    else:
        n, unit = amounts[first]
        span = f"{n} {unit} làm việc"
        if first + 1 < len(amounts) and amounts[first + 1][0]:
            span += " {} {}".format(*amounts[first + 1])
    return ("còn " if whole > 0 else "quá hạn ") + span


def mask_name(name: str | None) -> str:
    """A person's name as chats may show it: the family name, then initials
    ("Nguyễn Văn An" -> "Nguyễn V*** A*"); middle names hide their length."""
    words = unicodedata.normalize("NFC", name or "").split()
    if not words:
        return ""
    if len(words) == 1:
        return words[0][0] + "*"
    head, *middle, last = words
    return " ".join([head, *(w[0] + "***" for w in middle), last[0] + "*"])


def mask_phone(phone: str | None) -> str:
    """The first two and last two characters ("0912345689" -> "09******89")."""
    s = "".join((phone or "").split())
    if len(s) <= 4:
        return "*" * len(s)
    return s[:2] + "*" * (len(s) - 4) + s[-2:]


def percent(value: float | None) -> str:
    """A rate as Vietnamese write it: "95,24%"; "chưa có" when nothing was finished."""
    return "chưa có" if value is None else f"{value:.2f}".replace(".", ",") + "%"


def telegram_escape(text: str) -> str:
    """Telegram-HTML escaping: `&`, `<` and `>` only."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _one_line(text: str) -> str:
    """Control characters (CR, LF, tabs, ...) become spaces; runs of spaces become one."""
    cleaned = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)
    return " ".join(cleaned.split())


def _plain(markup: str) -> str:
    """Rendered Telegram- or HTML-markup as one line of plain text (for subjects)."""
    return _one_line(htmlmod.unescape(re.sub(r"<[^>]*>", "", markup)))


def _finalize_plain(value: Any) -> Any:
    return "" if value is None else value


def _finalize_telegram(value: Any) -> str:
    """Every `{{ ... }}` of a Telegram template passes here: Markup (rendered blocks, `|safe`)
    goes through as it is, anything else is escaped for Telegram."""
    if value is None:
        return ""
    if isinstance(value, Markup):
        return str(value)
    return telegram_escape(str(value))


def _tidy_block(text: str) -> str:
    """A Telegram case block: no blank line inside (the channel splits long texts there)."""
    return "\n".join(line.rstrip() for line in text.strip().splitlines() if line.strip())


def _tidy_text(text: str) -> str:
    """Trailing spaces off, at most one blank line in a row."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out)


# ----- the renderer ----------------------------------------------------------------------------


class Renderer:
    """Renders MessageViews with the templates of `dirs` (the admin's folder first, then the
    shipped one: a file of the same name in an earlier folder wins).

    `mask_on` lists the channels that show applicants masked (Telegram and webhook by default:
    chats and bridges leave the agency's mail system)."""

    def __init__(
        self, dirs: Sequence[Path], *, mask_on: Iterable[str] = ("telegram", "webhook")
    ) -> None:
        self.dirs = tuple(Path(d) for d in dirs)
        self.mask_on = frozenset(mask_on)
        loader = ChoiceLoader([FileSystemLoader(str(d)) for d in self.dirs])
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
        }
        self._mail = Environment(
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            finalize=_finalize_plain,
            **common,
        )
        self._telegram = Environment(autoescape=False, finalize=_finalize_telegram, **common)

    # -- public

    def render(self, view: MessageView) -> Rendered:
        """Subject, text and HTML of one message; RenderError names the failing file:line."""
        if view.kind not in KINDS:
            raise RenderError(f"unknown message kind {view.kind!r}: expected {', '.join(KINDS)}")
        try:
            return self._render(view)
        except RenderError:
            raise
        except TemplateSyntaxError as e:
            raise RenderError(f"{_where(e.filename or e.name, e.lineno)}: {e.message}") from e
        except TemplateNotFound as e:
            raise RenderError(f"template not found: {e.message or e.name}") from e
        except Exception as e:
            raise RenderError(f"{self._where_raised(e)}: {e}") from e

    # -- kinds

    def _render(self, view: MessageView) -> Rendered:
        ctx = self._context(view)
        telegram = view.channel == "telegram"
        if view.kind == "alert":
            if not view.cases:
                raise RenderError("an alert needs at least one case")
            parts = [self._case(view.channel, c, ctx) for c in view.cases]
            ctx["titles"] = [title for title, _text, _html in parts]
            text_blocks = [_tidy_block(t) if telegram else t.strip() for _t, t, _h in parts]
            ctx["blocks"] = [Markup(t) for t in text_blocks]
            ctx["body"] = Markup("\n\n".join(text_blocks))
            subject = self._subject(view.channel, ctx)
            ctx["subject"] = subject
            text = self._get(view.channel, "_message.txt").render(ctx)
            html = None
            if not telegram:
                ctx["blocks"] = [Markup(h) for _t, _x, h in parts]
                html = self._get(view.channel, "_message.html").render(ctx)
        else:
            name = {
                "digest": "_digest",
                "test": "_test",
                "notice": "_notice",
                "report": "_report",
            }[view.kind]
            if view.kind == "digest" and view.digest is None:
                raise RenderError("a digest message needs its DigestView")
            if view.kind == "report" and view.report is None:
                raise RenderError("a report message needs its ReportView")
            subject = self._subject(view.channel, ctx)
            ctx["subject"] = subject
            text = self._get(view.channel, f"{name}.txt").render(ctx)
            html = None if telegram else self._get(view.channel, f"{name}.html").render(ctx)
        return Rendered(subject=subject, text=_tidy_text(text), html=html)

    def _case(self, channel: str, case: CaseView, ctx: dict[str, Any]) -> tuple[str, str, str]:
        """(title, text block, HTML block) of one case, from its stage's template."""
        local = {**ctx, "c": case}
        text_tmpl = self._stage_template(channel, case.template, "txt")
        text = text_tmpl.render(local)
        title = self._title(text_tmpl, local)
        html = ""
        if channel != "telegram":
            html = self._stage_template(channel, case.template, "html").render(local)
        return title, text, html

    def _subject(self, channel: str, ctx: dict[str, Any]) -> str:
        names = [f"{ch}/_subject.txt" for ch in dict.fromkeys((channel, "email"))]
        subject = _one_line(self._mail.select_template(names).render(ctx))
        if len(subject) > SUBJECT_MAX:
            subject = subject[: SUBJECT_MAX - 1].rstrip() + "…"
        return subject

    # -- templates

    def _env(self, channel: str) -> Environment:
        return self._telegram if channel == "telegram" else self._mail

    @staticmethod
    def _chain(channel: str) -> tuple[str, ...]:
        """Folders a channel's templates are looked up in: webhook and file (and any other
        channel) read like e-mail unless the admin gives them their own."""
        return (channel,) if channel in ("email", "telegram") else (channel, "email")

    def _get(self, channel: str, name: str) -> Template:
        return self._env(channel).select_template([f"{ch}/{name}" for ch in self._chain(channel)])

    def _stage_template(self, channel: str, template: str, ext: str) -> Template:
        """The stage's own block, else the generic `_case` block."""
        chain = self._chain(channel)
        names = [f"{ch}/{template}.{ext}" for ch in chain if template and "/" not in template]
        names += [f"{ch}/_case.{ext}" for ch in chain]
        return self._env(channel).select_template(names)

    @staticmethod
    def _title(tmpl: Template, ctx: dict[str, Any]) -> str:
        """The stage's `{% block title %}` as plain text (subjects say it)."""
        block = tmpl.blocks.get("title")
        if block is None:
            return "Cảnh báo"
        return _plain("".join(block(tmpl.new_context(ctx)))) or "Cảnh báo"

    def _context(self, view: MessageView) -> dict[str, Any]:
        tz = view.tz
        masked = view.channel in self.mask_on

        def when(t: datetime | None) -> str:
            return show(t, tz)

        def day(t: datetime | None) -> str:
            return "" if t is None else t.astimezone(tz).strftime("%d/%m/%Y")

        def remaining(c: CaseView) -> str:
            return say_remaining(c.remaining_working_seconds, c.working_day_seconds)

        def applicant(c: CaseView) -> str:
            name = c.applicant_name or ""
            return mask_name(name) if masked else name

        def phone(c: CaseView) -> str:
            number = c.applicant_phone or ""
            return mask_phone(number) if masked else number

        digest = view.digest
        sections = [s for s in digest.sections if s.cases or s.findings] if digest else []
        return {
            "kind": view.kind,
            "channel": view.channel,
            "recipient": view.recipient,
            "now": view.now,
            "cases": list(view.cases),
            "count": len(view.cases),
            "d": digest,
            "r": view.report,
            "sections": sections,
            "notice": view.notice or "",
            "ack_url": view.ack_url or "",
            "masked": masked,
            "when": when,
            "day": day,
            "remaining": remaining,
            "say_remaining": say_remaining,
            "applicant": applicant,
            "phone": phone,
            "percent": percent,
            "number": _number,
        }

    def _where_raised(self, error: BaseException) -> str:
        """file:line of the innermost template frame of a render-time error."""
        for frame in reversed(traceback.extract_tb(error.__traceback__)):
            path = Path(frame.filename)
            if path.suffix in (".html", ".txt") and any(_inside(path, d) for d in self.dirs):
                return _where(frame.filename, frame.lineno)
        return "template"


def _number(n: int) -> str:
    """A whole number as the (Vietnamese) messages write it: 1.250."""
    return f"{n:,}".replace(",", ".")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        try:
            path.resolve().relative_to(folder.resolve())
        except (ValueError, OSError):
            return False
    return True


def _where(filename: str | None, line: int | None) -> str:
    """A template's path as a person finds it: relative to the working folder when inside."""
    if not filename:
        return "template"
    path = Path(filename)
    try:
        shown = str(path.relative_to(Path.cwd()))
    except ValueError:
        shown = str(path)
    return f"{shown}:{line}" if line else shown


# ----- sample views and the template check ----------------------------------------------------

VN = ZoneInfo("Asia/Ho_Chi_Minh")
SAMPLE_NOW = datetime(2026, 12, 3, 8, 15, tzinfo=VN)
DAY = 8 * 3600
TRICKY = '<b>&"</b><script>alert(1)</script>'  # must never reach HTML or Telegram raw

# (case code, procedure code, procedure name, applicant, phone, received, due, state,
#  remaining seconds, step, step handler)
_SAMPLES = [
    (
        "000.00.21.H59-261118-0007",
        "1.009994",
        "Cấp giấy phép xây dựng nhà ở riêng lẻ",
        "Trần Thị Bích Ngọc",
        "0912345689",
        datetime(2026, 11, 18, 9, 40, tzinfo=VN),
        datetime(2026, 12, 1, 17, 0, tzinfo=VN),
        "overdue",
        -(2 * DAY + 3 * 3600),
        "Trình lãnh đạo ký",
        "Phạm Thị Trưởng",
    ),
    (
        "000.00.21.H59-261124-0012",
        "2.000488",
        "Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam",
        "Nguyễn Văn An",
        "0987654321",
        datetime(2026, 11, 24, 14, 5, tzinfo=VN),
        datetime(2026, 12, 4, 8, 15, tzinfo=VN),
        "due_soon",
        DAY,
        "Thẩm định hồ sơ",
        "Nguyễn Văn Chuyên",
    ),
    (
        "000.00.21.H59-261126-0031",
        "1.001193",
        "Đăng ký khai sinh kết hợp nhận cha, mẹ, con",
        "Lê Hoàng Phúc",
        "0905111222",
        datetime(2026, 11, 26, 10, 20, tzinfo=VN),
        datetime(2026, 12, 3, 14, 0, tzinfo=VN),
        "due_soon",
        4 * 3600 + 15 * 60,
        "Thẩm định hồ sơ",
        "Nguyễn Văn Chuyên",
    ),
]
_DIGEST_STAGES = ("overdue", "due_soon", "due_today")  # sample cases of a unit head's digest
_STAGE_STATES = {
    "due_soon": "due_soon",
    "due_today": "due_soon",
    "apology_needed": "due_soon",
    "overdue": "overdue",
    "overdue_agency": "overdue",
    "overdue_supervisor": "overdue",
    "step_overdue": "overdue",
    "idle": "on_track",
    "waiting_too_long": "waiting",
}


def sample_case(i: int = 0, template: str = "overdue", *, tricky: bool = False) -> CaseView:
    """A realistic case for previews and the template check; `tricky` puts markup and quotes
    in every free-text field, to prove the templates escape them."""
    code, pcode, pname, who, tel, received, due, _state, left, step, handler = _SAMPLES[
        i % len(_SAMPLES)
    ]
    state = _STAGE_STATES.get(template, _state)
    if state == "overdue" and left > 0:
        left = -(2 * DAY + 3 * 3600)
    elif state in ("due_soon", "on_track", "waiting") and left < 0:
        left = DAY
    if state == "on_track":
        left = 3 * DAY
    mark = f" {TRICKY}" if tricky else ""
    return CaseView(
        case_code=code,
        procedure_code=pcode,
        procedure_name=pname + mark,
        unit_code="STP.HC",
        unit_name="Phòng Hành chính tư pháp" + mark,
        applicant_name=who + mark,
        applicant_phone=tel,
        received_at=received,
        due_at=due,
        state=state,
        remaining_working_seconds=left,
        working_day_seconds=DAY,
        step_name=step + mark,
        step_handler=handler + mark,
        assignee="Nguyễn Văn Chuyên" + mark,
        stage=f"mac_dinh/{template}",
        template=template,
        urgent=state == "overdue",
    )


def sample_view(
    channel: str = "email",
    kind: str = "alert",
    *,
    templates: Sequence[str] | None = None,
    tricky: bool = False,
    supervisors: bool = False,
    now: datetime = SAMPLE_NOW,
    tz: tzinfo = VN,
) -> MessageView:
    """A MessageView with Vietnamese sample data, for `check`, previews and screenshots.

    alert: one case per template name (default: overdue, apology_needed and due_soon, most
    urgent first); digest: a unit head's morning digest, or the supervisors' weekly one."""
    mark = f" {TRICKY}" if tricky else ""
    recipient = Recipient(
        id="chuyenvien",
        name="Nguyễn Văn Chuyên" + mark,
        unit="STP.HC",
        email="cv@example.vn",
        telegram="123456789",
    )
    view = MessageView(kind=kind, channel=channel, recipient=recipient, now=now, tz=tz)
    if kind == "alert":
        names = list(templates) if templates else ["overdue", "apology_needed", "due_soon"]
        cases = tuple(sample_case(i, t, tricky=tricky) for i, t in enumerate(names))
        return replace(view, cases=cases)
    if kind == "test":
        return view
    if kind == "report":
        report = ReportView(
            name="bao_cao_thang" + mark,
            every="month",
            start=date(2026, 11, 1),
            end=date(2026, 11, 30),
            by="unit",
            metric="portal",
        )
        return replace(view, report=report, recipient=replace(recipient, id="thanhtra@example.vn"))
    if kind == "notice":
        text = (
            "2 tin không gửi được sau 8 lần thử và đã chuyển sang trạng thái dead:\n"
            f"- #41 telegram tới chuyenvien: Forbidden: bot was blocked by the user{mark}\n"
            "- #42 email tới truong@example.vn: 550 5.1.1 mailbox unavailable\n"
            "Xem: watchdog history --status dead"
        )
        return replace(view, notice=text)
    if kind != "digest":
        raise ValueError(f"unknown message kind {kind!r}")
    late, soon, soon2 = (sample_case(i, t, tricky=tricky) for i, t in enumerate(_DIGEST_STAGES))
    digest_cases = {"overdue": (late,), "due_today": (soon2,), "due_soon": (soon,)}
    if supervisors:
        head = replace(recipient, id="thanhtra@example.vn", name="Văn phòng UBND tỉnh" + mark)
        late5 = replace(late, remaining_working_seconds=-(6 * DAY + 2 * 3600), stage="")
        digest = DigestView(
            name="ban_tin_tuan",
            scheduled_at=now,
            unit_name=None,
            sections=(
                DigestSection("late_5", cases=(late5,), total=1_250),  # the rest counted
                DigestSection("waiting", cases=(replace(soon, state="waiting"),)),
                DigestSection(
                    "findings",
                    findings=(f"000.00.21.H59-261002-0003: Chưa có cán bộ thụ lý{mark}",),
                ),
            ),
            ranking=(
                UnitRate("Sở Tư pháp" + mark, 412, 398, 3, 99.25),
                UnitRate("Sở Xây dựng", 265, 240, 9, 96.39),
                UnitRate("UBND xã Tân Phú", 131, 118, 7, 94.40),
                UnitRate("Sở Tài nguyên và Môi trường", 0, 0, 0, None),
            ),
        )
        return replace(view, recipient=head, digest=digest)
    head = replace(recipient, id="truongphong", name="Phạm Thị Trưởng" + mark)
    digest = DigestView(
        name="ban_tin_sang",
        scheduled_at=now,
        unit_name="Phòng Hành chính tư pháp" + mark,
        sections=(
            *(DigestSection(k, cases=v) for k, v in digest_cases.items()),
            DigestSection("waiting"),
        ),
        backlog=(
            BacklogLine("Nguyễn Văn Chuyên" + mark, 14, 1),
            BacklogLine("Đỗ Minh Tâm", 9, 0),
        ),
        unit_rate=UnitRate("Phòng Hành chính tư pháp", 87, 80, 2, 97.56),
    )
    return replace(view, recipient=head, digest=digest)


def check_templates(renderer: Renderer, templates: Iterable[str]) -> list[str]:
    """Render every channel's templates for these stage template names, and the digest, test,
    notice and report ones, with sample views full of markup; one error line per failure, each
    naming file:line where a template is at fault. Empty when all is well."""
    names = list(dict.fromkeys(t for t in templates if t))
    errors: list[str] = []

    def attempt(label: str, view: MessageView) -> None:
        try:
            out = renderer.render(view)
        except RenderError as e:
            errors.append(str(e))
            return
        errors.extend(f"{label}: {p}" for p in _output_problems(view.channel, out))

    for channel in CHANNELS:
        for name in names:
            attempt(f"{channel} {name}", sample_view(channel, templates=[name], tricky=True))
        if len(names) > 1:
            attempt(f"{channel} alert", sample_view(channel, templates=names, tricky=True))
        for sup in (False, True):
            attempt(
                f"{channel} digest",
                sample_view(channel, "digest", tricky=True, supervisors=sup),
            )
        attempt(f"{channel} test", sample_view(channel, "test", tricky=True))
        attempt(f"{channel} report", sample_view(channel, "report", tricky=True))
        attempt(f"{channel} notice", sample_view(channel, "notice", tricky=True))
    return list(dict.fromkeys(errors))


def _output_problems(channel: str, out: Rendered) -> list[str]:
    """What a rendered sample must not contain: raw markup from a case field in HTML or
    Telegram text, tags Telegram refuses, unbalanced Telegram tags, a multi-line subject."""
    problems: list[str] = []
    if "\n" in out.subject or "\r" in out.subject:
        problems.append("the subject has a line break")
    if out.html is not None and "<script>" in out.html:
        problems.append("a case field reaches the HTML unescaped (remove |safe?)")
    if channel == "telegram":
        if "<script>" in out.text:
            problems.append("a case field reaches the Telegram text unescaped (remove |safe?)")
        problems.extend(telegram_markup_problems(out.text))
    return problems


class _TagCheck(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TELEGRAM_TAGS:
            self.problems.append(f"<{tag}> is not allowed by Telegram")
        else:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag not in TELEGRAM_TAGS:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes nothing open")
        else:
            self.stack.pop()


def telegram_markup_problems(text: str) -> list[str]:
    """Why Telegram would refuse this Telegram-HTML (empty when it would not)."""
    check = _TagCheck()
    check.feed(text)
    check.close()
    problems = list(dict.fromkeys(check.problems))
    problems.extend(f"<{tag}> is never closed" for tag in check.stack)
    if re.search(r"&(?!(amp|lt|gt|quot|#\d+|#x[0-9a-fA-F]+);)", text):
        problems.append("a bare '&' (escape it as &amp;)")
    return problems
