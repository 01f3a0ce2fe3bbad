"""Rendering (SPEC 7): every shipped stage on every channel, escaping, masking, Vietnamese time
words, the order of a grouped alert, digests, and the template check `watchdog check` runs."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from watchdog.outbox.render import (
    CHANNELS,
    TRICKY,
    Renderer,
    RenderError,
    check_templates,
    mask_name,
    mask_phone,
    sample_case,
    sample_view,
    say_remaining,
    telegram_markup_problems,
)
from watchdog.shipped import shipped_path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = shipped_path("templates")
DAY, HOUR, MINUTE = 8 * 3600, 3600, 60


def shipped_stages() -> list[str]:
    rules = yaml.safe_load((ROOT / "rules" / "default.yaml").read_text(encoding="utf-8"))
    return [s.get("template", s["id"]) for p in rules["policies"] for s in p["stages"]]


STAGES = shipped_stages()
TITLES = {
    "due_soon": "Sắp đến hạn",
    "due_today": "Đến hạn hôm nay",
    "apology_needed": "Cần Phiếu xin lỗi",
    "overdue": "Quá hạn",
    "overdue_agency": "Quá hạn, báo lãnh đạo cơ quan",
    "overdue_supervisor": "Quá hạn kéo dài",
    "step_overdue": "Bước xử lý quá hạn",
    "idle": "Hồ sơ không có xử lý",
    "waiting_too_long": "Chờ bổ sung quá lâu",
}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer([SHIPPED])


def test_the_shipped_rules_name_the_stages_we_ship_templates_for() -> None:
    assert sorted(STAGES) == sorted(TITLES)
    for stage in STAGES:
        for rel in (f"email/{stage}.txt", f"email/{stage}.html", f"telegram/{stage}.txt"):
            assert (SHIPPED / rel).is_file(), rel


# ----- words, masks, instants -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (DAY, "còn 1 ngày làm việc"),
        (3 * HOUR, "còn 3 giờ làm việc"),
        (-(2 * DAY + 3 * HOUR), "quá hạn 2 ngày làm việc 3 giờ"),
        (-(2 * DAY + 3 * HOUR + 59 * MINUTE), "quá hạn 2 ngày làm việc 3 giờ"),  # cut, not rounded
        (DAY + 30 * MINUTE, "còn 1 ngày làm việc"),
        (90 * MINUTE, "còn 1 giờ làm việc 30 phút"),
        (5 * MINUTE, "còn 5 phút làm việc"),
        (0, "đến hạn"),
        (30, "còn dưới 1 phút làm việc"),
        (-30, "quá hạn dưới 1 phút làm việc"),
        (DAY - 1, "còn 7 giờ làm việc 59 phút"),
        (None, "chưa có hạn"),
    ],
)
def test_remaining_time_in_vietnamese_words(seconds: int | None, words: str) -> None:
    assert say_remaining(seconds, DAY) == words


def test_a_short_working_day_counts_days_of_its_own_length() -> None:
    assert say_remaining(9 * HOUR, 4 * HOUR) == "còn 2 ngày làm việc 1 giờ"


def test_masks() -> None:
    assert mask_name("Nguyễn Văn An") == "Nguyễn V*** A*"
    assert mask_name("Trần Thị Bích Ngọc") == "Trần T*** B*** N*"
    assert mask_name("  An  ") == "A*"
    assert mask_name(None) == ""
    assert mask_phone("0912345689") == "09******89"
    assert mask_phone("0912 345 689") == "09******89"
    assert mask_phone("123") == "***"
    assert mask_phone(None) == ""


def test_instants_show_as_dd_mm_yyyy_hh_mm_in_the_views_zone(renderer: Renderer) -> None:
    case = replace(
        sample_case(0, "due_soon"),
        received_at=datetime(2026, 11, 24, 7, 5, tzinfo=UTC),  # 14:05 in Hà Nội
        due_at=datetime(2026, 12, 4, 1, 15, tzinfo=UTC),  # 08:15 in Hà Nội
    )
    for channel in ("email", "telegram"):
        out = renderer.render(replace(sample_view(channel), cases=(case,)))
        assert "24/11/2026 14:05" in out.text
        assert "04/12/2026 08:15" in out.text
        if out.html:
            assert "04/12/2026 08:15" in out.html


# ----- every stage, every channel ------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("channel", ["email", "telegram"])
def test_every_shipped_stage_renders(renderer: Renderer, channel: str, stage: str) -> None:
    view = sample_view(channel, templates=[stage])
    case = view.cases[0]
    out = renderer.render(view)
    assert out.subject == f"[{TITLES[stage]}] Hồ sơ {case.case_code}"
    for part in (out.text, out.html) if channel == "email" else (out.text,):
        assert part is not None
        assert case.case_code in part
        assert case.procedure_name in part
        assert TITLES[stage] in part
        assert say_remaining(case.remaining_working_seconds, DAY) in part
        assert case.step_name in part and case.step_handler in part
        assert "Việc cần làm" in part or "👉" in part
    if channel == "telegram":
        assert out.html is None
        assert telegram_markup_problems(out.text) == []
        assert "\n\n\n" not in out.text
    else:
        assert out.html.lstrip().startswith("<!DOCTYPE html>")
        assert 'name="viewport"' in out.html


def test_what_to_do_next_differs_by_stage(renderer: Renderer) -> None:
    text = {s: renderer.render(sample_view("email", templates=[s])).text for s in STAGES}
    assert "Hoàn thành hoặc xin gia hạn trước hạn" in text["due_soon"]
    assert "Phiếu xin lỗi và hẹn lại ngày trả kết quả" in text["apology_needed"]
    todo = {s: re.search(r"Việc cần làm:\s+(.*)", t).group(1) for s, t in text.items()}
    assert len(set(todo.values())) == len(STAGES)


@pytest.mark.parametrize("channel", ["webhook", "file"])
def test_webhook_and_file_read_like_email(renderer: Renderer, channel: str) -> None:
    out = renderer.render(sample_view(channel))
    mail = renderer.render(sample_view("email"))
    assert out.subject == mail.subject
    assert out.html is not None and "Cảnh báo hạn xử lý hồ sơ" in out.html
    if channel == "file":
        assert out.text == mail.text


# ----- escaping and masking ------------------------------------------------------------------


def tricky_view(channel: str):
    case = replace(
        sample_case(1, "due_soon"),
        applicant_name='Lê <script>alert("x")</script> & Co',
        procedure_name="Cấp phép <b>xây dựng</b> & sửa chữa",
    )
    return replace(sample_view(channel), cases=(case,))


def test_html_escapes_case_fields(renderer: Renderer) -> None:
    out = renderer.render(tricky_view("email"))
    assert "<script>" not in out.html and "<b>xây dựng</b>" not in out.html
    assert "&lt;script&gt;" in out.html
    assert "Cấp phép &lt;b&gt;xây dựng&lt;/b&gt; &amp; sửa chữa" in out.html
    assert "&amp; Co" in out.html
    # plain text is plain: nothing to escape
    assert 'Lê <script>alert("x")</script> & Co' in out.text


def test_telegram_escapes_only_amp_lt_gt(renderer: Renderer) -> None:
    out = renderer.render(tricky_view("telegram"))
    assert "Cấp phép &lt;b&gt;xây dựng&lt;/b&gt; &amp; sửa chữa" in out.text
    assert "<script>" not in out.text
    # masked on Telegram: "Lê <script>alert("x")</script> & Co" -> initials, escaped
    assert "Lê &lt;*** &amp;*** C*" in out.text
    assert telegram_markup_problems(out.text) == []
    quoted = replace(sample_case(1, "due_soon"), procedure_name="Thủ tục \"A\" & 'B'")
    text = renderer.render(replace(sample_view("telegram"), cases=(quoted,))).text
    assert "Thủ tục \"A\" &amp; 'B'" in text  # quotes stay as they are


def test_applicants_are_masked_where_the_renderer_says(renderer: Renderer) -> None:
    case = sample_case(1, "due_soon")  # Nguyễn Văn An, 0987654321
    assert case.applicant_name == "Nguyễn Văn An"
    texts = {ch: renderer.render(replace(sample_view(ch), cases=(case,))).text for ch in CHANNELS}
    assert "Nguyễn V*** A*" in texts["telegram"] and "Nguyễn Văn An" not in texts["telegram"]
    assert "Nguyễn V*** A*" in texts["webhook"] and "09******21" in texts["webhook"]
    assert "Nguyễn Văn An" in texts["email"] and "0987654321" in texts["email"]
    assert "Nguyễn Văn An" in texts["file"]
    open_renderer = Renderer([SHIPPED], mask_on=())
    text = open_renderer.render(replace(sample_view("telegram"), cases=(case,))).text
    assert "Nguyễn Văn An" in text


def test_subject_is_one_line_whatever_the_fields(renderer: Renderer) -> None:
    case = replace(sample_case(0, "overdue"), case_code="H01-1\r\nBcc: evil@example.com")
    out = renderer.render(replace(sample_view("email"), cases=(case,)))
    assert "\n" not in out.subject and "\r" not in out.subject
    assert out.subject == "[Quá hạn] Hồ sơ H01-1 Bcc: evil@example.com"


# ----- grouped alerts -------------------------------------------------------------------------


def test_a_grouped_alert_lists_cases_in_the_given_order(renderer: Renderer) -> None:
    cases = (
        sample_case(2, "due_soon"),
        sample_case(0, "overdue"),
        sample_case(1, "apology_needed"),
    )
    codes = [c.case_code for c in cases]
    for channel in ("email", "telegram"):
        out = renderer.render(replace(sample_view(channel), cases=cases))
        assert out.subject == "[Cảnh báo] 3 hồ sơ cần xử lý"
        for part in filter(None, (out.text, out.html)):
            positions = [part.index(code) for code in codes]
            assert positions == sorted(positions)


def test_a_group_of_one_stage_says_that_stage(renderer: Renderer) -> None:
    view = sample_view("email", templates=["overdue", "overdue"])
    assert renderer.render(view).subject == "[Quá hạn] 2 hồ sơ cần xử lý"


def test_telegram_blocks_are_split_by_exactly_one_blank_line(renderer: Renderer) -> None:
    # a field with blank lines of its own must not split its case's block
    odd = replace(sample_case(0, "overdue"), procedure_name="Dòng một\n\n\nDòng hai")
    cases = (odd, sample_case(1, "apology_needed"), sample_case(2, "due_soon"))
    text = renderer.render(replace(sample_view("telegram"), cases=cases)).text
    chunks = text.split("\n\n")
    assert len(chunks) == 1 + len(cases)  # the heading, then one chunk per case
    for chunk, case in zip(chunks[1:], cases, strict=True):
        assert case.case_code in chunk
        assert chunk == chunk.strip() and "\n\n" not in chunk


# ----- digests, tests, notices ------------------------------------------------------------


def test_unit_heads_digest(renderer: Renderer) -> None:
    for channel in ("email", "telegram"):
        out = renderer.render(sample_view(channel, "digest"))
        assert out.subject.startswith("[Bản tin] Phòng Hành chính tư pháp 03/12/2026:")
        assert "1 quá hạn, 1 đến hạn hôm nay, 1 sắp đến hạn" in out.subject
        text = out.text.lower()
        order = ["hồ sơ quá hạn", "đến hạn hôm nay", "sắp đến hạn", "theo cán bộ"]
        positions = [text.index(title) for title in order]
        assert positions == sorted(positions)
        assert "đang chờ bổ sung" not in text  # an empty section is left out
        assert "97,56%" in out.text and "Nguyễn Văn Chuyên: 14 hồ sơ, 1 quá hạn" in out.text
        if out.html:
            assert "Tỷ lệ đúng hạn tháng này" in out.html and "97,56%" in out.html


def test_supervisors_weekly_digest(renderer: Renderer) -> None:
    for channel in ("email", "telegram"):
        out = renderer.render(sample_view(channel, "digest", supervisors=True))
        assert out.subject == "[Bản tin tuần] Tiến độ giải quyết hồ sơ 03/12/2026"
        assert "Xếp hạng đơn vị theo tỷ lệ đúng hạn".lower() in out.text.lower()
        ranks = [out.text.index(u) for u in ("Sở Tư pháp", "Sở Xây dựng", "UBND xã Tân Phú")]
        assert ranks == sorted(ranks)
        assert "99,25%" in out.text and "chưa có" in out.text
        assert "quá hạn trên 5 ngày làm việc" in out.text.lower()
        assert "quá hạn 6 ngày làm việc 2 giờ" in out.text
        if channel == "telegram":
            assert telegram_markup_problems(out.text) == []


def test_test_and_notice_messages(renderer: Renderer) -> None:
    for channel in CHANNELS:
        out = renderer.render(sample_view(channel, "test"))
        assert "Tin thử từ tthc-watchdog" in out.text
        assert out.subject == "[Thử] Tin thử từ tthc-watchdog"
    view = replace(sample_view("email", "notice"), notice="Tin #7 <dead> & bỏ")
    out = renderer.render(view)
    assert "Tin #7 <dead> & bỏ" in out.text
    assert "Tin #7 &lt;dead&gt; &amp; bỏ" in out.html
    tg = renderer.render(replace(view, channel="telegram"))
    assert "Tin #7 &lt;dead&gt; &amp; bỏ" in tg.text


# ----- admin templates and the check ------------------------------------------------------


def admin_folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "templates"
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text, encoding="utf-8")
    return folder


def test_the_shipped_templates_pass_the_check(renderer: Renderer) -> None:
    assert check_templates(renderer, [*STAGES, "custom_stage"]) == []


def test_an_admin_template_overrides_the_shipped_one(tmp_path: Path) -> None:
    admin = admin_folder(
        tmp_path,
        {
            "email/due_soon.txt": '{% extends "email/_case.txt" %}\n'
            "{% block title %}Nhắc hạn{% endblock %}\n"
            "{% block todo %}Gọi cho bộ phận Một cửa.{% endblock %}\n"
        },
    )
    r = Renderer([admin, SHIPPED])
    out = r.render(sample_view("email", templates=["due_soon"]))
    assert "Gọi cho bộ phận Một cửa." in out.text
    assert out.subject.startswith("[Nhắc hạn] Hồ sơ")
    # the other stages and the HTML still come from the shipped folder
    assert "Hoàn thành hoặc xin gia hạn" in out.html
    assert "Ưu tiên giải quyết ngay" in r.render(sample_view("email", templates=["overdue"])).text


def test_a_stage_without_a_template_gets_the_generic_block(renderer: Renderer) -> None:
    for channel in ("email", "telegram"):
        out = renderer.render(sample_view(channel, templates=["chua_co_mau"]))
        assert out.subject.startswith("[Cảnh báo] Hồ sơ ")
        assert "Kiểm tra và xử lý hồ sơ theo quy trình." in out.text


def test_the_check_names_file_and_line_of_a_broken_admin_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    admin = admin_folder(
        tmp_path,
        {
            "email/due_soon.html": '{% extends "email/_case.html" %}\n'
            "{% block title %}Sắp đến hạn{% endblock %}\n"
            "{% block todo %}{{ c.no_such_field }}{% endblock %}\n",
            "telegram/overdue.txt": "<b>{{ c.case_code }}</b>\n{% if %}\n",
        },
    )
    errors = check_templates(Renderer([Path("templates"), SHIPPED]), STAGES)
    assert len(errors) == 2, errors
    assert errors[0].startswith("templates/email/due_soon.html:3: ")
    assert "no_such_field" in errors[0]
    assert errors[1].startswith("templates/telegram/overdue.txt:2: ")
    with pytest.raises(RenderError, match=r"due_soon\.html:3"):
        Renderer([admin, SHIPPED]).render(sample_view("email", templates=["due_soon"]))


def test_the_check_catches_unescaped_fields_and_tags_telegram_refuses(tmp_path: Path) -> None:
    admin = admin_folder(
        tmp_path,
        {
            "email/idle.html": '{% extends "email/_case.html" %}\n'
            "{% block todo %}{{ c.procedure_name|safe }}{% endblock %}\n",
            "telegram/idle.txt": "<div>{{ c.case_code }}</div>\n",
        },
    )
    errors = check_templates(Renderer([admin, SHIPPED]), ["idle"])
    assert any("email idle" in e and "unescaped" in e for e in errors), errors
    assert any("telegram idle" in e and "<div>" in e for e in errors), errors


def test_samples_carry_markup_to_prove_escaping() -> None:
    view = sample_view("email", templates=["overdue"], tricky=True)
    assert TRICKY in view.cases[0].applicant_name
    assert TRICKY in view.cases[0].procedure_name
