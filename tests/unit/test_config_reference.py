"""docs/configuration.md is generated from the configuration models: it is up to date, and it
lists every key a configuration file may hold."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from watchdog.config.models import Config
from watchdog.config.reference import COMMAND, all_keys, anchor, render, sections

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"


def test_docs_configuration_md_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        f"docs/configuration.md is older than watchdog/config/models.py: run `{COMMAND}`"
    )


def test_the_module_prints_the_page() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "watchdog.config.reference"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    assert out.stdout.decode("utf-8") == render()


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models a field's type holds, however wrapped (optional, list, map, union)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every key path, as YAML spells it (aliases), walked independently of the generator."""
    out = set()
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        out.add(key)
        bare = field.annotation
        origin = get_origin(bare)
        if origin in (Union, types.UnionType):  # X | None
            bare = next(a for a in get_args(bare) if a is not type(None))
            origin = get_origin(bare)
        suffix = {tuple: "[].", dict: ".<name>."}.get(origin, ".")
        for child in _models_in(bare):
            out |= _keys(child, key + suffix)
    return out


def test_every_key_of_the_configuration_is_in_the_page() -> None:
    keys = _keys(Config)
    assert {"channels.email.from", "import.encoding", "officials[].absent[].from"} <= keys
    assert {"calendars.<name>.cutoff", "sources[].watermark", "sources[].token"} <= keys
    text = render()
    missing = sorted(k for k in keys if f"| `{k}` |" not in text)
    assert not missing, f"keys missing from docs/configuration.md: {missing}"
    assert set(all_keys()) == keys


def test_every_type_reads_as_words() -> None:
    """A type the generator does not know would show as a Python repr: name it in
    watchdog.config.reference (`simple` in type_text, or FORMS for a validator)."""
    for section in sections():
        for row in section.rows:
            assert not re.search(r"[<>\[\]]|typing|Annotated|\w\.\w", row.type), row


def test_links_inside_the_page_reach_a_section() -> None:
    text = render()
    headings = {
        anchor(m.group(1).replace("`", "")) for m in re.finditer(r"^## (.+)$", text, re.MULTILINE)
    }
    for target in re.findall(r"\]\(#([^)]+)\)", text):
        assert target in headings, f"#{target} is no heading of the page"


def test_aliases_defaults_and_choices_as_written_in_yaml() -> None:
    rows = {line.split(" | ")[0][3:-1]: line for line in render().splitlines() if "| `" in line}
    assert "**required**" in rows["channels.email.from"]
    assert "one of `starttls`, `implicit`, `none` | `starttls`" in rows["channels.email.tls"]
    assert "| span | `5m` |" in rows["delivery.group_window"]
    assert "| size | `10 MB` |" in rows["http.max_body"]
    assert "at least 16 characters" in rows["channels.webhook.secret"]
    assert '`"07:00-11:30, 13:30-17:00"`' in rows["calendars.<name>.office_hours"]
