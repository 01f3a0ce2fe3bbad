"""The parse cache of large configuration files (watchdog.config.yamlsrc): the same data and
lines as a fresh parse, `${VAR}` expanded after it (so no secret is written), nothing cached for
small or broken files, and a cache that cannot be written is no error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from watchdog.config import yamlsrc
from watchdog.config.yamlsrc import ConfigError, parse_yaml


def big_config(extra: str = "") -> str:
    lines = ["smtp_password: ${SMTP_PASSWORD}", extra, "officials:"]
    for i in range(3000):
        lines.append(f"  - {{id: o{i}, name: Cán bộ số {i}, unit: U{i % 50}, email: o{i}@x.vn}}")
    text = "\n".join(lines) + "\n"
    assert len(text) > yamlsrc.CACHE_MIN_BYTES
    return text


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("WATCHDOG_CACHE_DIR", str(folder))
    return folder


def test_a_large_file_is_parsed_once_and_reads_back_the_same(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, file = big_config(), tmp_path / "config.yaml"
    fresh = parse_yaml(text, file, {"SMTP_PASSWORD": "bí-mật"})
    [stored] = list(cache.glob("config-*.pickle"))
    assert stored.stat().st_mode & 0o777 == 0o600
    assert b"b\xc3\xad-m\xe1\xba\xadt" not in stored.read_bytes()  # the secret is not kept
    assert b"${SMTP_PASSWORD}" in stored.read_bytes()

    def no_parse(*args, **kwargs):
        raise AssertionError("parsed again")

    monkeypatch.setattr(yaml, "compose", no_parse)
    again = parse_yaml(text, file, {"SMTP_PASSWORD": "bí-mật"})
    assert again.data == fresh.data and again.lines == fresh.lines
    assert again.data["smtp_password"] == "bí-mật"
    assert again.line_of(("officials", 2999, "email")) == 3003
    # expanded from the environment of this run, not the one that filled the cache
    other = parse_yaml(text, file, {"SMTP_PASSWORD": "khác"})
    assert other.data["smtp_password"] == "khác"
    with pytest.raises(ConfigError) as e:
        parse_yaml(text, file, {})
    assert e.value.problems == [
        f"{file}:1: smtp_password: environment variable SMTP_PASSWORD is not set (use "
        "${SMTP_PASSWORD:-default} for a default)"
    ]


def test_small_and_broken_files_are_not_cached(cache: Path, tmp_path: Path) -> None:
    parse_yaml("a: 1\n", tmp_path / "small.yaml", {})
    with pytest.raises(ConfigError):
        parse_yaml(big_config("officials: []"), tmp_path / "twice.yaml", {"SMTP_PASSWORD": "x"})
    assert not cache.exists() or not list(cache.glob("config-*.pickle"))


def test_a_cache_that_cannot_be_written_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("WATCHDOG_CACHE_DIR", str(blocked / "cache"))
    located = parse_yaml(big_config(), tmp_path / "c.yaml", {"SMTP_PASSWORD": "x"})
    assert located.data["smtp_password"] == "x"
    monkeypatch.setenv("WATCHDOG_CACHE_DIR", "")  # off
    assert yamlsrc._cache_file(big_config()) is None
