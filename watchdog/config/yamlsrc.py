"""YAML with positions: every value remembers the file and line it came from.

Admins keep configuration and rules in YAML under version control, so every error we report
must point at `file:line: key.path`. We compose the YAML node tree ourselves and keep a map from
key paths to lines beside the plain Python data that pydantic validates.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from watchdog.i18n import _

Path_ = tuple[str | int, ...]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """One or more configuration problems, each already formatted as `file:line: path: why`."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or _("(top level)")


@dataclass
class Located:
    """Parsed YAML data plus the line of every key path in it."""

    file: Path
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int:
        """Line of the deepest known prefix of `path` (1-based)."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def where(self, path: Path_) -> str:
        return f"{self.file}:{self.line_of(path)}: {format_path(path)}"

    def error(self, path: Path_, message: str) -> str:
        return f"{self.where(path)}: {message}"


def expand_env(text: str, env: dict[str, str] | None = None) -> str:
    """Expand ${VAR} and ${VAR:-default}; an unset variable without default is an error."""
    env = os.environ if env is None else env

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise KeyError(name)

    return _ENV.sub(sub, text)


def load_yaml(file: Path, env: dict[str, str] | None = None) -> Located:
    """Read a YAML file into plain data with line numbers; raises ConfigError."""
    try:
        raw = file.read_bytes()
    except OSError as e:
        raise ConfigError(
            [_("{file}: cannot read: {why}").format(file=file, why=e.strerror or e)]
        ) from e
    return parse_yaml(decode_text(raw, file), file, env)


def decode_text(raw: bytes, file: Path) -> str:
    """The text of a configuration file: UTF-8 (a BOM is allowed); anything else is one
    ConfigError that names the line and says what to do."""
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise ConfigError(
            [
                _(
                    "{file}:{line}: not a text file (it contains NUL bytes): give a YAML file"
                ).format(file=file, line=line)
            ]
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(
            [
                _("{file}:{line}: not UTF-8 text (byte {byte}): save the file as UTF-8").format(
                    file=file, line=line, byte=f"0x{raw[e.start]:02x}"
                )
            ]
        ) from None


# libyaml's parser when PyYAML has it (its wheels do): the same nodes, lines and tags, 15 times
# faster than the pure-Python one, which a configuration of a few hundred lines takes ~25 ms
# with at every command's start.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, file: Path, env: dict[str, str] | None = None) -> Located:
    """The data of a YAML text with the line of every key path; `${VAR}` expanded from `env`
    (default: the process's environment). A large text (a country's officials and procedures)
    is parsed once: its data before expansion is kept in a cache keyed by its content
    (`_cache_dir`), since PyYAML takes seconds over a few megabytes."""
    cached = _from_cache(text)
    if cached is not None:
        data, lines, env_paths = cached
        located = Located(file, data, lines)
    else:
        try:
            node = yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            try:  # the pure-Python parser says what is wrong in the words we quote
                node = yaml.compose(text, Loader=yaml.SafeLoader)
            except yaml.YAMLError as e:
                raise ConfigError([_yaml_problem(e, text, file)]) from e
        located = Located(file, None)
        problems: list[str] = []
        env_paths: list[Path_] = []
        located.data = _build(node, (), located, problems, env_paths) if node is not None else {}
        if problems:
            raise ConfigError(problems)
        _to_cache(text, (located.data, located.lines, env_paths))
    problems = []
    for path in env_paths:
        _expand_at(located, path, env, problems)
    if problems:
        raise ConfigError(problems)
    return located


def _expand_at(loc: Located, path: Path_, env, problems: list[str]) -> None:
    """Expand `${VAR}` in the string at `path` of `loc.data`, in place."""
    parent: Any = loc.data
    for part in path[:-1]:
        parent = parent[part]
    value = parent[path[-1]] if path else parent
    try:
        value = expand_env(value, env)
    except KeyError as e:
        problems.append(
            _(
                "{where}: environment variable {name} is not set (use {default} for a default)"
            ).format(where=loc.where(path), name=e.args[0], default=f"${{{e.args[0]}:-default}}")
        )
        return
    if path:
        parent[path[-1]] = value
    else:
        loc.data = value


# ----- the cache of large texts -------------------------------------------------------------

CACHE_MIN_BYTES = 64 * 1024  # below this, parsing takes milliseconds: no cache
_CACHE_FORMAT = "1"  # bump when what `_build` returns changes


def _cache_dir() -> Path | None:
    """`$WATCHDOG_CACHE_DIR`, else `$XDG_CACHE_HOME/tthc-watchdog`, else
    `~/.cache/tthc-watchdog`; `WATCHDOG_CACHE_DIR=""` turns the cache off."""
    chosen = os.environ.get("WATCHDOG_CACHE_DIR")
    if chosen is not None:
        return Path(chosen) if chosen else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tthc-watchdog"


def _cache_file(text: str) -> Path | None:
    folder = _cache_dir()
    if folder is None or len(text) < CACHE_MIN_BYTES:
        return None
    digest = hashlib.sha256(f"{_CACHE_FORMAT}\0{text}".encode()).hexdigest()
    return folder / f"config-{digest[:40]}.pickle"


def _from_cache(text: str) -> tuple[Any, dict[Path_, int], list[Path_]] | None:
    path = _cache_file(text)
    if path is None:
        return None
    try:
        with path.open("rb") as f:
            return pickle.load(f)
    except Exception:  # absent, unreadable or from another version: parse again
        return None


def _to_cache(text: str, parsed: tuple[Any, dict[Path_, int], list[Path_]]) -> None:
    """Best effort: a cache that cannot be written is no error. The data is kept before
    `${VAR}` expansion, so no secret from the environment reaches the file."""
    path = _cache_file(text)
    if path is None:
        return
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            pickle.dump(parsed, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        _prune(path.parent, keep=path)
    except OSError:
        pass


def _prune(folder: Path, keep: Path, days: int = 7) -> None:
    """Forget parses of texts not read for `days` (older versions of a configuration)."""
    import time

    limit = time.time() - days * 86400
    for old in folder.glob("config-*.pickle"):
        try:
            if old != keep and old.stat().st_atime < limit:
                old.unlink()
        except OSError:
            pass


def _yaml_problem(e: yaml.YAMLError, text: str, file: Path) -> str:
    """One line: where, what PyYAML found, and what to do."""
    if isinstance(e, yaml.reader.ReaderError):
        line = text[: e.position].count("\n") + 1
        return _(
            "{file}:{line}: not a YAML file (character {char} is not allowed in YAML): give a "
            "YAML file in UTF-8"
        ).format(file=file, line=line, char=f"#x{e.character:04x}")
    mark = getattr(e, "problem_mark", None)
    line = mark.line + 1 if mark else 1
    problem = " ".join(str(getattr(e, "problem", None) or e).split())
    lines = text.splitlines()
    at = lines[line - 1] if line <= len(lines) else ""
    indent = at[: len(at) - len(at.lstrip())]
    hint = _("indent with spaces, not tabs") if "\t" in indent else _("fix the YAML syntax")
    return _("{file}:{line}: invalid YAML: {problem}: {hint}").format(
        file=file, line=line, problem=problem, hint=hint
    )


def _build(
    node: yaml.Node, path: Path_, loc: Located, problems: list[str], env_paths: list[Path_]
) -> Any:
    loc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            if key == "<<":
                problems.append(
                    _("{file}:{line}: merge keys (<<) are not supported").format(
                        file=loc.file, line=key_node.start_mark.line + 1
                    )
                )
                continue
            child = (*path, key)
            loc.lines[child] = key_node.start_mark.line + 1
            if key in out:
                problems.append(_("{where}: duplicate key").format(where=loc.where(child)))
            out[key] = _build(value_node, child, loc, problems, env_paths)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(n, (*path, i), loc, problems, env_paths) for i, n in enumerate(node.value)]
    if node.tag == _STR_TAG or (":" in str(node.value) and node.tag in _NUMBER_TAGS):
        # YAML 1.1 reads 13:30 as the base-60 number 810; admins mean a time of day.
        value: Any = node.value
    else:
        value = yaml.constructor.SafeConstructor().construct_object(node, deep=True)
    if isinstance(value, str) and "${" in value:
        env_paths.append(path)  # expanded by parse_yaml, after the cache
    return value


_STR_TAG = "tag:yaml.org,2002:str"
_NUMBER_TAGS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
