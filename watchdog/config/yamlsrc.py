"""YAML with positions: every value remembers the file and line it came from.

Admins keep configuration and rules in YAML under version control, so every error we report
must point at `file:line: key.path`. We compose the YAML node tree ourselves and keep a map from
key paths to lines beside the plain Python data that pydantic validates.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
    return out or "(top level)"


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
        text = file.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([f"{file}: cannot read: {e.strerror or e}"]) from e
    return parse_yaml(text, file, env)


def parse_yaml(text: str, file: Path, env: dict[str, str] | None = None) -> Located:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise ConfigError([f"{file}:{line}: invalid YAML: {getattr(e, 'problem', e)}"]) from e
    located = Located(file, None)
    problems: list[str] = []
    located.data = _build(node, (), located, problems, env) if node is not None else {}
    if problems:
        raise ConfigError(problems)
    return located


def _build(node: yaml.Node, path: Path_, loc: Located, problems: list[str], env) -> Any:
    loc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            if key == "<<":
                problems.append(
                    f"{loc.file}:{key_node.start_mark.line + 1}: merge keys are not supported"
                )
                continue
            child = (*path, key)
            loc.lines[child] = key_node.start_mark.line + 1
            if key in out:
                problems.append(f"{loc.where(child)}: duplicate key")
            out[key] = _build(value_node, child, loc, problems, env)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(n, (*path, i), loc, problems, env) for i, n in enumerate(node.value)]
    if node.tag == _STR_TAG or (":" in str(node.value) and node.tag in _NUMBER_TAGS):
        # YAML 1.1 reads 13:30 as the base-60 number 810; admins mean a time of day.
        value: Any = node.value
    else:
        value = yaml.constructor.SafeConstructor().construct_object(node, deep=True)
    if isinstance(value, str) and "${" in value:
        try:
            value = expand_env(value, env)
        except KeyError as e:
            problems.append(
                f"{loc.where(path)}: environment variable {e.args[0]} is not set "
                f"(use ${{{e.args[0]}:-default}} for a default)"
            )
    return value


_STR_TAG = "tag:yaml.org,2002:str"
_NUMBER_TAGS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
