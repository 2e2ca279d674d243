"""Reading supervisor.yaml's YAML node tree: syntax errors with their line, and each key and scalar checked
with an error that names the file and line (the sections themselves: supervisor/config/sections.py)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NoReturn

import yaml

from supervisor.config.settings import _SECTIONS
from supervisor.config.values import _ExpansionError, expand_env, parse_size
from supervisor.core.durations import parse_duration
from supervisor.errors import InputFileError
from supervisor.suggest import closest

_TAG: Final = "tag:yaml.org,2002:"
_NULL_TAG: Final = _TAG + "null"
_SCALAR_TAGS: Final = frozenset(_TAG + name for name in ("null", "bool", "int", "float", "str", "timestamp"))
_TRUE: Final = frozenset({"true", "yes", "on"})
_FALSE: Final = frozenset({"false", "no", "off"})
_INTEGER: Final = re.compile(r"[+-]?\d+")
_PERCENT: Final = re.compile(r"(\d+(?:\.\d+)?)\s*%?")
_SYNTAX_HINT: Final = (
    "check the indentation and quoting near that line; quote values that contain ': ' or ' #' "
    "or start with one of * & ! { [ % @ `"
)


# ---------------------------------------------------------------------------------------------------
# Reading the YAML node tree


def _compose(text: str, path: Path) -> yaml.Node | None:
    """The YAML node tree of `text`; syntax errors become InputFileError with the line of the problem."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "malformed YAML"
        if exc.context:
            problem = f"{problem} ({exc.context})"
        line = mark.line + 1 if mark is not None else None
        raise InputFileError(path, line, f"invalid YAML: {problem}", _syntax_hint(text, line)) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise InputFileError(
            path, line, f"invalid character {chr(exc.character)!r} in the file", "remove it or quote it"
        ) from None
    except yaml.YAMLError as exc:
        raise InputFileError(path, None, f"invalid YAML: {exc}", _SYNTAX_HINT) from None
    except RecursionError:
        raise InputFileError(path, None, "invalid YAML: nested too deeply") from None


def _syntax_hint(text: str, line: int | None) -> str:
    """A hint for the two mistakes that cause most YAML syntax errors in this file."""
    lines = text.splitlines()
    nearby = "\n".join(lines[max(0, line - 2) : line]) if line is not None else ""
    if "\t" in nearby:
        return "indent with spaces: YAML does not allow tabs"
    if "${" in nearby:
        return 'quote values that use ${VAR} inside { } or [ ], e.g. {token: "${SLACK_BOT_TOKEN}"}'
    return _SYNTAX_HINT


def _line(node: yaml.Node) -> int | None:
    return node.start_mark.line + 1 if node.start_mark is not None else None


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG


def _describe(node: yaml.Node) -> str:
    """How a value looks to a user, for 'got …' in messages."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == _NULL_TAG:
        return "null"
    text = str(node.value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


@dataclass
class _Section:
    """One YAML mapping, checked against the keys it allows: key → (key node, value node)."""

    name: str
    """Dotted name of the mapping ('' for the top level, 'alerts.slack')."""
    entries: dict[str, tuple[yaml.Node, yaml.Node]]

    def get(self, key: str) -> yaml.Node | None:
        entry = self.entries.get(key)
        return entry[1] if entry is not None else None

    def dotted(self, key: str) -> str:
        return _join(self.name, key)


class _Reader:
    """Walks the node tree; every method raises InputFileError on bad input."""

    def __init__(self, path: Path, environ: Mapping[str, str], repo_root: Path) -> None:
        self.path = path
        self.environ = environ
        self.repo_root = repo_root

    def fail(self, node: yaml.Node | None, message: str, hint: str | None = None) -> NoReturn:
        raise InputFileError(self.path, _line(node) if node is not None else None, message, hint)

    def section(self, node: yaml.Node | None, name: str, allowed: tuple[str, ...]) -> _Section:
        """The mapping at `node` (absent or null = empty), rejecting duplicate and unknown keys."""
        if node is None or _is_null(node):
            return _Section(name, {})
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"'{name}' must be a mapping of keys, got {_describe(node)}")
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, f"keys in '{name or 'the top level'}' must be plain names")
            key = str(key_node.value)
            dotted = _join(name, key)
            if key in entries:
                first = _line(entries[key][0])
                hint = f"it is already set on line {first}; keep one"
                self.fail(key_node, f"duplicate key '{dotted}'", hint)
            if key not in allowed:
                self.fail(key_node, f"unknown key '{dotted}'", self.suggest(name, key, allowed))
            entries[key] = (key_node, value_node)
        return _Section(name, entries)

    @staticmethod
    def suggest(name: str, key: str, allowed: tuple[str, ...]) -> str:
        """Hint for an unknown key: the closest valid key, or the section where that key belongs."""
        close = closest(key, allowed)
        if close:
            return f"did you mean '{_join(name, close)}'?"
        if key == "<<":
            return "YAML merge keys (<<) are not supported here; repeat the keys instead"
        if name == "":
            homes = [section for section, keys in _SECTIONS.items() if key in keys]
            if homes:
                return f"'{key}' belongs under '{homes[0]}:'"
        else:
            homes = [section for section, keys in _SECTIONS.items() if key in keys and section != name]
            if homes:
                return f"did you mean '{homes[0]}.{key}'?"
        where = f"in '{name}'" if name else "at the top level"
        return f"valid keys {where}: {', '.join(allowed)}"

    # -- scalars -----------------------------------------------------------------------------------

    def text(self, node: yaml.Node, name: str) -> str | None:
        """The scalar's source text with ${VAR} expanded; None for a YAML null."""
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, f"{name} must be a single value, got {_describe(node)}")
        if node.tag not in _SCALAR_TAGS:
            self.fail(node, f"{name}: unsupported YAML tag '{node.tag}'", "remove the tag")
        if node.tag == _NULL_TAG:
            return None
        try:
            return expand_env(str(node.value), self.environ)
        except _ExpansionError as exc:
            self.fail(node, f"{name}: {exc.message}", exc.hint)

    def required(self, node: yaml.Node, name: str, what: str) -> str:
        """Non-null text; `what` describes the expected value in the error."""
        value = self.text(node, name)
        if value is None:
            self.fail(node, f"{name} must be {what}, got null", "remove the key to use the default")
        return value

    def opt_string(self, sec: _Section, key: str) -> str | None:
        """A string, or None when absent, null, or empty (so `${VAR:-}` can leave it unset)."""
        node = sec.get(key)
        if node is None:
            return None
        return self.text(node, sec.dotted(key)) or None

    def string(self, sec: _Section, key: str, default: str) -> str:
        node = sec.get(key)
        if node is None:
            return default
        value = self.required(node, sec.dotted(key), "a string")
        if not value:
            self.fail(node, f"{sec.dotted(key)} must not be empty", "remove the key to use the default")
        return value

    def integer(self, sec: _Section, key: str, default: int, low: int, high: int | None = None) -> int:
        node = sec.get(key)
        if node is None:
            return default
        name = sec.dotted(key)
        what = f"an integer from {low} to {high}" if high is not None else f"an integer ≥ {low}"
        value = self.required(node, name, what)
        if not _INTEGER.fullmatch(value.strip()):
            self.fail(node, f"{name} must be {what}, got {value!r}")
        number = int(value)
        if number < low or (high is not None and number > high):
            self.fail(node, f"{name} must be {what}, got {number}")
        return number

    def boolean(self, sec: _Section, key: str, default: bool) -> bool:
        node = sec.get(key)
        if node is None:
            return default
        name = sec.dotted(key)
        value = self.required(node, name, "true or false").strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        self.fail(node, f"{name} must be true or false, got {value!r}")

    def choice(self, sec: _Section, key: str, default: str, allowed: tuple[str, ...]) -> str:
        node = sec.get(key)
        if node is None:
            return default
        name = sec.dotted(key)
        value = self.required(node, name, f"one of: {', '.join(allowed)}").strip()
        if value not in allowed:
            close = difflib.get_close_matches(value, allowed, n=1)
            hint = f"did you mean '{close[0]}'?" if close else None
            self.fail(node, f"{name} must be one of: {', '.join(allowed)}; got {value!r}", hint)
        return value

    def percent(self, sec: _Section, key: str, default: float | None) -> float | None:
        """A percentage above 0 and at most 100 (`90%`, or `90`); null or `off` → None (never)."""
        node = sec.get(key)
        if node is None:
            return default
        name = sec.dotted(key)
        value = self.text(node, name)
        if value is None or value.strip().lower() in _FALSE:
            return None
        match = _PERCENT.fullmatch(value.strip())
        number = float(match.group(1)) if match else None
        if number is None or not 0 < number <= 100:
            self.fail(node, f"{name} must be a percentage above 0% and at most 100% (or off), got {value!r}")
        return number

    def opt_duration(self, sec: _Section, key: str, default: float | None) -> float | None:
        """A duration in seconds; null → None (no limit)."""
        node = sec.get(key)
        if node is None:
            return default
        value = self.text(node, sec.dotted(key))
        return None if value is None else self.seconds(node, sec.dotted(key), value)

    def duration(self, sec: _Section, key: str, default: float) -> float:
        node = sec.get(key)
        if node is None:
            return default
        name = sec.dotted(key)
        return self.seconds(node, name, self.required(node, name, "a duration such as 90s, 10m or 1h30m"))

    def seconds(self, node: yaml.Node, name: str, value: str) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(node, f"{name}: {exc}")

    def size(self, sec: _Section, key: str, default: int) -> int:
        node = sec.get(key)
        if node is None:
            return default
        name = sec.dotted(key)
        value = self.required(node, name, "a size such as 10MiB")
        try:
            size = parse_size(value)
        except ValueError as exc:
            self.fail(node, f"{name}: {exc}")
        if size <= 0:
            self.fail(node, f"{name} must be more than 0 bytes, got {value!r}")
        return size

    def strings(
        self, sec: _Section, key: str, *, one_ok: bool = False, allowed: tuple[str, ...] | None = None
    ) -> tuple[str, ...]:
        """A list of non-empty strings; null → empty; with `one_ok`, a single string is a list of one.

        With `allowed`, every item must be one of those names (duplicates are dropped).
        """
        node = sec.get(key)
        if node is None or _is_null(node):
            return ()
        name = sec.dotted(key)
        if isinstance(node, yaml.ScalarNode) and one_ok:
            items: list[yaml.Node] = [node]
        elif isinstance(node, yaml.SequenceNode):
            items = list(node.value)
        else:
            self.fail(node, f"{name} must be a list of strings, got {_describe(node)}")
        values: list[str] = []
        for item in items:
            value = self.required(item, f"{name} item", "a string")
            if not value.strip():
                self.fail(item, f"{name}: empty item", "remove it")
            if allowed is not None and value not in allowed:
                close = difflib.get_close_matches(value, allowed, n=1)
                self.fail(
                    item,
                    f"{name}: unknown name {value!r}; allowed: {', '.join(allowed)}",
                    f"did you mean '{close[0]}'?" if close else None,
                )
            values.append(value)
        return tuple(dict.fromkeys(values)) if allowed is not None else tuple(values)
