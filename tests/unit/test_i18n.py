"""The message catalogue (SPEC 8): remaining time in words, numbers, and a catalogue that is
complete, translated and compiled.

Remaining time is worked by hand with the default calendar's 8-hour working day (28,800 s):
the largest unit and the one below it when not zero, cut down, never rounded up."""

from __future__ import annotations

import gettext
import io
import re
import string
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchdog import i18n

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "watchdog"
PO = PACKAGE / "locale" / "vi" / "LC_MESSAGES" / "watchdog.po"
MO = PO.with_suffix(".mo")
DAY = 8 * 3600
HOUR, MINUTE = 3600, 60


@pytest.fixture(autouse=True)
def restore_language() -> Iterator[None]:
    before = i18n.language()
    yield
    i18n.use(before)


@pytest.mark.parametrize(
    ("seconds", "vi", "en"),
    [
        # 1 day (8 h) + 2 h = 10 h
        (DAY + 2 * HOUR, "còn 1 ngày 2 giờ", "1 day 2 hours left"),
        # 1 day 1 h 30 min: days and hours shown, the 30 min cut (never shown as more time)
        (DAY + HOUR + 30 * MINUTE, "còn 1 ngày 1 giờ", "1 day 1 hour left"),
        # 1 day 0 h 30 min: the unit below days is zero, so days alone
        (DAY + 30 * MINUTE, "còn 1 ngày", "1 day left"),
        # 3 days late: 24 working hours
        (-3 * DAY, "quá hạn 3 ngày", "3 days overdue"),
        # 2 days 5 h 59 min late: the minutes are cut, the hours kept
        (-(2 * DAY + 5 * HOUR + 59 * MINUTE), "quá hạn 2 ngày 5 giờ", "2 days 5 hours overdue"),
        (90 * MINUTE, "còn 1 giờ 30 phút", "1 hour 30 minutes left"),
        (HOUR, "còn 1 giờ", "1 hour left"),
        (60, "còn 1 phút", "1 minute left"),
        # under a minute either way: never "0 phút" nor "-0 phút"
        (59, "còn dưới 1 phút", "less than a minute left"),
        (-30, "quá hạn dưới 1 phút", "less than a minute overdue"),
        (-59, "quá hạn dưới 1 phút", "less than a minute overdue"),
        # exactly at the due
        (0, "đến hạn", "due now"),
        # a 7 h 59 min 59 s remainder is still 7 h 59 min, not a day
        (DAY - 1, "còn 7 giờ 59 phút", "7 hours 59 minutes left"),
    ],
)
def test_remaining_time_in_words(seconds: int, vi: str, en: str) -> None:
    i18n.use("vi")
    assert i18n.remaining(seconds, DAY) == vi
    i18n.use("en")
    assert i18n.remaining(seconds, DAY) == en


def test_a_shorter_working_day_counts_days_of_its_own_length() -> None:
    """A 4-hour day (a desk open mornings only): 9 h = 2 days 1 h."""
    i18n.use("vi")
    assert i18n.remaining(9 * HOUR, 4 * HOUR) == "còn 2 ngày 1 giờ"


def test_numbers_as_people_write_them() -> None:
    i18n.use("vi")
    assert i18n.decimal(1.125, 1, sign=True) == "+1,1"
    assert i18n.decimal(33.333, 2) == "33,33"
    assert i18n.integer(1_200_000) == "1.200.000"
    i18n.use("en")
    assert i18n.decimal(-3, 1, sign=True) == "-3.0"
    assert i18n.integer(2500) == "2,500"


def test_states_and_finding_kinds_have_names_codes_stay_codes() -> None:
    i18n.use("vi")
    names = [i18n.state_label(s) for s in ("on_track", "due_soon", "overdue", "waiting", "no_due")]
    assert names == ["Trong hạn", "Sắp đến hạn", "Quá hạn", "Chờ bổ sung", "Chưa có hạn"]
    assert i18n.finding_label("no_assignee") == "Chưa có cán bộ thụ lý"
    assert i18n.finding_label("made_up_kind") == "made_up_kind"
    i18n.use("en")
    assert i18n.state_label("waiting") == "Waiting for documents"


@pytest.mark.parametrize(
    ("value", "lang"),
    [("vi", "vi"), ("en", "en"), ("EN", "en"), ("vi_VN.UTF-8", "vi"), ("en-GB", "en")],
)
def test_language_names_people_write(value: str, lang: str) -> None:
    assert i18n.normalize(value) == lang
    assert i18n.from_environment({i18n.ENV_VAR: value}) == lang


def test_default_is_vietnamese_and_unknown_languages_are_refused() -> None:
    assert i18n.from_environment({}) == "vi"
    assert i18n.from_environment({i18n.ENV_VAR: " "}) == "vi"
    with pytest.raises(i18n.LanguageError, match="'fr'"):
        i18n.from_environment({i18n.ENV_VAR: "fr"})


# ----- the catalogue itself ----------------------------------------------------------------------


def catalogue():
    from babel.messages.pofile import read_po

    with PO.open("rb") as f:
        return read_po(f)


def code_messages() -> set[str]:
    """Every msgid the code marks (`_`, `ngettext`, `N_`), as `make i18n` extracts them."""
    from babel.messages.extract import extract_from_dir

    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(PACKAGE):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_every_message_of_the_code_is_in_the_catalogue_and_translated() -> None:
    """Fails when someone adds or changes a message without `make i18n` and a translation."""
    cat = catalogue()
    translated = {}
    for m in cat:
        if not m.id:
            continue
        key = m.id[0] if isinstance(m.id, tuple) else m.id
        text = m.string[0] if isinstance(m.string, tuple) else m.string
        translated[key] = bool(text) and "fuzzy" not in m.flags
    missing = sorted(code_messages() - set(translated))
    assert not missing, f"run `make i18n` and translate: {missing}"
    untranslated = sorted(k for k, ok in translated.items() if not ok)
    assert not untranslated, f"translate (or clear the fuzzy flag) in {PO.name}: {untranslated}"


def placeholders(text: str) -> tuple[list[str], list[str]]:
    """The `{name}` fields and the `%(name)s` / `%s` conversions (argparse's) of a message."""
    braces = sorted(f for _lit, f, _spec, _conv in string.Formatter().parse(text) if f)
    percents = sorted(re.findall(r"%(?:\(\w+\))?[sr]", text)) if "%" in text else []
    return braces, percents


def test_translations_keep_every_placeholder() -> None:
    bad = []
    for m in catalogue():
        if not m.id:
            continue
        pairs = zip(m.id, m.string, strict=False) if isinstance(m.id, tuple) else [(m.id, m.string)]
        bad += [(a, b) for a, b in pairs if b and placeholders(a) != placeholders(b)]
    assert not bad


def test_the_shipped_mo_is_the_compiled_po() -> None:
    """The .mo the package ships says what the .po says (compiled here with Babel)."""
    from babel.messages.mofile import write_mo

    buffer = io.BytesIO()
    write_mo(buffer, catalogue())
    buffer.seek(0)
    expected = gettext.GNUTranslations(buffer)
    with MO.open("rb") as f:
        shipped = gettext.GNUTranslations(f)
    assert shipped._catalog == expected._catalog  # type: ignore[attr-defined]


def test_the_runtime_finds_the_catalogue_with_the_standard_library_alone() -> None:
    found = gettext.translation(
        i18n.DOMAIN, localedir=i18n.LOCALE_DIR, languages=["vi"], fallback=False
    )
    assert found.gettext("Overdue") == "Quá hạn"
    assert found.ngettext("{n} open case", "{n} open cases", 5) == "{n} hồ sơ đang giải quyết"
