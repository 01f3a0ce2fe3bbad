"""Text for people (SPEC 8): the gettext catalogue `watchdog`, Vietnamese by default.

Messages are written in English in the code (the msgids); `locale/vi/LC_MESSAGES/watchdog.mo`
gives their Vietnamese. English needs no catalogue: it is the msgids themselves. At run time
only the standard library's `gettext` reads the compiled catalogue; Babel is a development tool
that extracts, updates and compiles it (`make i18n`).

The language is `--lang`, else `WATCHDOG_LANG`, else Vietnamese. It is chosen after the
modules are imported, so text is looked up when it is shown: call `_()` inside functions, never
at import time; mark constant text with `N_()` and translate it where it is used.

Machine output (jsonl, CSV headers, ISO instants, state and finding codes) never goes through
this module.
"""

from __future__ import annotations

import gettext as _gettext
import os
from collections.abc import Mapping
from pathlib import Path

DOMAIN = "watchdog"
LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
ENV_VAR = "WATCHDOG_LANG"


class LanguageError(ValueError):
    """A language we have no text for."""


_active: dict[str, object] = {}  # "lang" -> str, "catalogue" -> gettext.NullTranslations


def normalize(value: str) -> str:
    """`vi`, `vi_VN`, `vi_VN.UTF-8`, `EN` -> the language code; LanguageError otherwise."""
    code = value.strip().split(".")[0].replace("-", "_").split("_")[0].lower()
    if code not in LANGUAGES:
        raise LanguageError(f"unsupported language {value!r}: expected {' or '.join(LANGUAGES)}")
    return code


def from_environment(environ: Mapping[str, str] | None = None) -> str:
    """The language WATCHDOG_LANG asks for (Vietnamese when unset or empty)."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    return normalize(value) if value else DEFAULT_LANGUAGE


def use(lang: str | None = None) -> str:
    """Make `lang` (default: from the environment) the language of this process's text."""
    lang = normalize(lang) if lang else from_environment()
    _active["lang"] = lang
    _active["catalogue"] = _gettext.translation(
        DOMAIN, localedir=LOCALE_DIR, languages=[lang], fallback=True
    )
    return lang


def _catalogue() -> _gettext.NullTranslations:
    found = _active.get("catalogue")
    if found is None:  # first text of a process that never chose: the environment decides
        try:
            use()
        except LanguageError:
            use(DEFAULT_LANGUAGE)
        found = _active["catalogue"]
    return found  # type: ignore[return-value]


def language() -> str:
    _catalogue()
    return _active["lang"]  # type: ignore[return-value]


def _(message: str) -> str:
    """The text of `message` in the current language."""
    return _catalogue().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The text for a count (English has plurals, Vietnamese does not)."""
    return _catalogue().ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks constant text for extraction; translate it with `_()` where it is shown."""
    return message


# ----- words for the product's codes ----------------------------------------------------------

STATES: dict[str, str] = {  # engine.deadline.State values, in board order
    "overdue": N_("Overdue"),
    "due_soon": N_("Due soon"),
    "on_track": N_("On track"),
    "waiting": N_("Waiting for documents"),
    "no_due": N_("No due date"),
}

FINDINGS: dict[str, str] = {  # finding kinds (engine, board, reports)
    "late_extension": N_("Extension recorded too late"),
    "second_extension": N_("Second extension"),
    "unknown_procedure": N_("Procedure not configured"),
    "unknown_unit": N_("Unit not configured"),
    "no_assignee": N_("No assignee"),
    "unknown_official": N_("Official not configured"),
    "due_mismatch": N_("Appointment differs from the due"),
    "step_without_handler": N_("Step without a handler"),
    "evaluation_error": N_("Deadline cannot be computed"),
}


def state_label(state: str) -> str:
    return _(STATES[state]) if state in STATES else state


MESSAGE_STATUSES = {
    "pending": N_("waiting to be sent"),
    "held": N_("held for office hours"),
    "sending": N_("being sent"),
    "sent": N_("sent"),
    "failed": N_("failed, will retry"),
    "dead": N_("failed for good"),
}


def message_status_label(status: str) -> str:
    return _(MESSAGE_STATUSES[status]) if status in MESSAGE_STATUSES else status


def finding_label(kind: str) -> str:
    return _(FINDINGS[kind]) if kind in FINDINGS else kind


# ----- numbers and durations ----------------------------------------------------------------


def integer(value: float) -> str:
    """A whole number with its thousands grouped as people write them: `12.345` in Vietnamese,
    `12,345` in English."""
    text = f"{round(value):,}"
    return text.replace(",", ".") if language() == "vi" else text


def decimal(value: float, digits: int = 1, *, sign: bool = False) -> str:
    """A decimal number as people write it: `1,5` in Vietnamese, `1.5` in English."""
    text = f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"
    return text.replace(".", ",") if language() == "vi" else text


def remaining(seconds: float, day_seconds: int) -> str:
    """Remaining working time as officials say it: "còn 1 ngày 2 giờ", "quá hạn 3 ngày".

    Shows the largest unit and the next one below it when not zero (days and hours, hours and
    minutes, or minutes), cut down, never rounded up: a case is never shown with more time left
    or less late than it is. Under a minute is "dưới 1 phút", never "0 phút" or "-0 phút"; a
    case exactly at its due is "đến hạn".
    """
    whole = int(seconds)
    if whole == 0:
        return _("due now")
    days, rest = divmod(abs(whole), day_seconds)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    amounts = [
        (days, ngettext("{n} day", "{n} days", days)),
        (hours, ngettext("{n} hour", "{n} hours", hours)),
        (minutes, ngettext("{n} minute", "{n} minutes", minutes)),
    ]
    first = next((i for i, (n, _text) in enumerate(amounts) if n), None)
    if first is None:
        span = _("less than a minute")
    else:
        shown = [amounts[first]]
        if first + 1 < len(amounts) and amounts[first + 1][0]:
            shown.append(amounts[first + 1])
        span = " ".join(text.format(n=n) for n, text in shown)
    if whole > 0:
        return _("{span} left").format(span=span)
    return _("{span} overdue").format(span=span)


# ----- argparse's own words ('usage:', 'options', its errors) --------------------------------

ARGPARSE = (  # the messages of Python's argparse that a user meets, kept in our catalogue
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("show this help message and exit"),
    N_("%(prog)s: error: %(message)s\n"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("the following arguments are required: %s"),
    N_("one of the arguments %s is required"),
    N_("not allowed with argument %s"),
    N_("unrecognized arguments: %s"),
    N_("expected one argument"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("invalid %(type)s value: %(value)r"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
)


def translate_argparse() -> None:
    """Let argparse's own words ('usage:', 'options', its errors) come from our catalogue.

    argparse looks them up through the module-level `_` and `ngettext` it imported from
    `gettext` (the global `messages` domain), at the time it formats them."""
    import argparse

    argparse._ = _  # type: ignore[attr-defined]
    argparse.ngettext = ngettext  # type: ignore[attr-defined]
