"""SESSION.md: an agent's contract. Parse it (errors name the line), render it, derive a helper's from it.

The grammar (SPEC §6)::

    # What This Session Can Do
    - Modify: packages/auth/**
    - Don't touch: services/**, packages/ui/**
    - Can spawn helpers: yes
    - Max helpers: 3
    - Timeout: 1h
    - Stall after: 10m
    - Budget: $20, 2M tokens

    # Helper Permissions
    - test-agent: packages/auth/__tests__/**

    # What We're Building
    - Tests pass

Section names and keys are case-insensitive and accept ’ for '. Lists are comma-separated (`\\,` is a
literal comma in a pattern). HTML comments (`<!-- -->`) and blank lines may appear anywhere; free text
may appear before the first section and between the items of "What We're Building"; anywhere else a line
that is not a list item is an error. The free text is the user's note to the agent: it is kept (`notes`,
`goal_notes`) and rendered back where it was, so the agent reads it; comments are not kept.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from supervisor.core.budget import Budget, parse_budget
from supervisor.core.durations import MAX_SECONDS, parse_duration
from supervisor.core.pathrules import PathRules, covers, validate_pattern
from supervisor.errors import InputFileError, UsageError

__all__ = [
    "DEFAULT_MAX_HELPERS",
    "MAX_LEVEL",
    "ROLE_NAME",
    "Contract",
    "HelperPermissions",
    "derive_helper_contract",
    "format_exact_duration",
    "parse_contract",
    "render_contract",
]

MAX_LEVEL = 3
"""Session → helper → sub-helper. There is no level 4."""

DEFAULT_MAX_HELPERS = 3
"""`Max helpers` when a contract says `Can spawn helpers: yes` but gives no number."""

ROLE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")

SECTION_CAN_DO = "What This Session Can Do"
SECTION_HELPERS = "Helper Permissions"
SECTION_GOALS = "What We're Building"
_SECTIONS = (SECTION_CAN_DO, SECTION_HELPERS, SECTION_GOALS)

KEY_MODIFY = "Modify"
KEY_DONT_TOUCH = "Don't touch"
KEY_CAN_SPAWN = "Can spawn helpers"
KEY_MAX_HELPERS = "Max helpers"
KEY_TIMEOUT = "Timeout"
KEY_STALL_AFTER = "Stall after"
KEY_BUDGET = "Budget"
_KEYS = (KEY_MODIFY, KEY_DONT_TOUCH, KEY_CAN_SPAWN, KEY_MAX_HELPERS, KEY_TIMEOUT, KEY_STALL_AFTER, KEY_BUDGET)

_EDGE_SPACE = " \t"
_HEADER = re.compile(r"^#+(?:[ \t]+(.*))?$")
_ITEM = re.compile(r"^[ \t]*[-*+](?:[ \t]+(.*))?$")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'"})


# ---------------------------------------------------------------------------------------------------------
# The model


class HelperPermissions(Mapping[str, tuple[str, ...]]):
    """Role → the path patterns a helper in that role may modify; immutable, hashable, ordered.

    Built from a mapping or from (role, patterns) pairs; role names and patterns are validated
    (ValueError) and patterns kept in canonical form (see `validate_pattern`).
    """

    __slots__ = ("_index", "_items")

    def __init__(self, entries: Mapping[str, Iterable[str]] | Iterable[tuple[str, Iterable[str]]] = ()) -> None:
        pairs = entries.items() if isinstance(entries, Mapping) else entries
        items: list[tuple[str, tuple[str, ...]]] = []
        index: dict[str, tuple[str, ...]] = {}
        for role, patterns in pairs:
            _check_role_name(role)
            if role in index:
                raise ValueError(f"role {role!r} is listed twice")
            canonical = _canonical_patterns(patterns)
            if not canonical:
                raise ValueError(f"role {role!r} lists no paths")
            items.append((role, canonical))
            index[role] = canonical
        self._items: tuple[tuple[str, tuple[str, ...]], ...] = tuple(items)
        self._index = index

    def __getitem__(self, role: str) -> tuple[str, ...]:
        return self._index[role]

    def __iter__(self) -> Iterator[str]:
        return (role for role, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items))

    def __repr__(self) -> str:
        return f"HelperPermissions({dict(self._items)!r})"


@dataclass(frozen=True)
class Contract:
    """What one agent may do. Constructing one validates and canonicalises it (ValueError otherwise), so
    every Contract renders to a SESSION.md that parses back to an equal Contract."""

    modify: tuple[str, ...]
    dont_touch: tuple[str, ...] = ()
    can_spawn: bool = False
    max_helpers: int = 0
    timeout: float | None = None
    stall_after: float | None = None
    budget: Budget | None = None
    """What this agent's tree may spend (a helper's: its own subtree, within its parent's)."""
    helper_permissions: HelperPermissions = field(default_factory=HelperPermissions)
    goals: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    """Free text before the first section, line by line ("" between paragraphs)."""
    goal_notes: tuple[tuple[int, str], ...] = ()
    """Free text in "What We're Building": (how many goals come before it, the line)."""

    def __post_init__(self) -> None:
        modify = _canonical_patterns(self.modify)
        if not modify:
            raise ValueError("Modify is empty: a contract must allow at least one path")
        permissions = self.helper_permissions
        if not isinstance(permissions, HelperPermissions):
            permissions = HelperPermissions(permissions)
        for role, patterns in permissions.items():
            wide = _first_uncovered(patterns, modify)
            if wide is not None:
                raise ValueError(f"helper permission {wide!r} of role {role!r} is outside Modify")
        if isinstance(self.max_helpers, bool) or not isinstance(self.max_helpers, int):
            raise ValueError(f"Max helpers must be a whole number, not {self.max_helpers!r}")
        if self.max_helpers < 0:
            raise ValueError(f"Max helpers cannot be negative: {self.max_helpers}")
        object.__setattr__(self, "modify", modify)
        object.__setattr__(self, "dont_touch", _canonical_patterns(self.dont_touch))
        object.__setattr__(self, "can_spawn", bool(self.can_spawn))
        object.__setattr__(self, "timeout", _checked_duration(KEY_TIMEOUT, self.timeout))
        object.__setattr__(self, "stall_after", _checked_duration(KEY_STALL_AFTER, self.stall_after))
        object.__setattr__(self, "helper_permissions", permissions)
        object.__setattr__(self, "goals", tuple(_checked_goal(goal) for goal in _as_tuple(self.goals)))
        notes = [(0, note) for note in _as_tuple(self.notes)]
        object.__setattr__(self, "notes", tuple(text for _, text in _checked_notes(notes, 0)))
        object.__setattr__(self, "goal_notes", _checked_notes(self.goal_notes, len(self.goals)))

    def rules(self) -> PathRules:
        """The compiled path rules of this contract (Modify, Don't touch)."""
        return _rules(self.modify, self.dont_touch)

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(self.helper_permissions)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready form (for `show --json`)."""
        return {
            "modify": list(self.modify),
            "dont_touch": list(self.dont_touch),
            "can_spawn": self.can_spawn,
            "max_helpers": self.max_helpers,
            "timeout": self.timeout,
            "stall_after": self.stall_after,
            "budget": self.budget.as_dict() if self.budget is not None else None,
            "helper_permissions": {role: list(p) for role, p in self.helper_permissions.items()},
            "goals": list(self.goals),
        }


@lru_cache(maxsize=1024)
def _rules(modify: tuple[str, ...], dont_touch: tuple[str, ...]) -> PathRules:
    return PathRules(modify, dont_touch)


def _as_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return (values,) if isinstance(values, str) else tuple(values)


def _canonical_patterns(patterns: Iterable[str]) -> tuple[str, ...]:
    """Validated, canonical, without repeats (SESSION.md lists are sets in a stable order)."""
    return tuple(dict.fromkeys(validate_pattern(p) for p in _as_tuple(patterns)))


def _first_uncovered(patterns: Iterable[str], within: Sequence[str]) -> str | None:
    for pattern in patterns:
        if not any(covers(outer, pattern) for outer in within):
            return pattern
    return None


def _check_role_name(role: str) -> None:
    if not isinstance(role, str) or not ROLE_NAME.fullmatch(role):
        raise ValueError(
            f"{role!r} is not a role name: lowercase letters, digits and '-', at most 32, "
            "starting with a letter or digit"
        )


def _checked_duration(key: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number of seconds, not {value!r}")
    if not math.isfinite(value) or not 0 <= value <= MAX_SECONDS:
        raise ValueError(f"{key} must be a finite number of seconds from 0 to {MAX_SECONDS:.0f}, not {value!r}")
    return float(value)


def _checked_notes(notes: Iterable[tuple[int, str]], goals: int) -> tuple[tuple[int, str], ...]:
    """Free-text lines (each after `position` goals, in order) as the parser would read them back: edges
    stripped, blank lines between paragraphs only, once. ValueError for a line that would read as
    something else (a header, a list item, a comment)."""
    kept: list[tuple[int, str]] = []
    last = 0
    for position, note in notes:
        if isinstance(position, bool) or not isinstance(position, int) or not last <= position <= goals:
            raise ValueError(f"a note's place must be 0 to {goals}, in order, not {position!r}")
        if not isinstance(note, str):
            raise ValueError(f"a note must be text, not {note!r}")
        if "\n" in note or "\r" in note:
            raise ValueError(f"a note is one line: {note!r}")
        text = note.strip(_EDGE_SPACE) if note.strip() else ""
        if text and (_HEADER.match(text) or _ITEM.match(text) or text.startswith("<!--")):
            raise ValueError(f"a note cannot start like a header, a list item or a comment: {note!r}")
        last = position
        if not text and (not kept or kept[-1] == (position, "")):
            continue  # no blank line first, and never two in a row
        kept.append((position, text))
    while kept and not kept[-1][1]:
        kept.pop()
    return tuple(kept)


def _checked_goal(goal: str) -> str:
    if not isinstance(goal, str):
        raise ValueError(f"a goal must be text, not {goal!r}")
    text = goal.strip(_EDGE_SPACE)
    if not text:
        raise ValueError("a goal cannot be empty")
    if "\n" in text or "\r" in text:
        raise ValueError(f"a goal is one line: {goal!r}")
    return text


# ---------------------------------------------------------------------------------------------------------
# Parsing


def parse_contract(text: str, path: Path | str = "SESSION.md") -> Contract:
    """The Contract in SESSION.md `text`; InputFileError naming `path` and the line of the first problem."""
    return _Parser(path).parse(text)


def _normalise_name(text: str) -> str:
    """Section titles and keys compare lower-case, with one kind of apostrophe and single spaces."""
    return " ".join(text.translate(_APOSTROPHES).lower().split())


_SECTION_BY_NAME = {_normalise_name(name): name for name in _SECTIONS}
_KEY_BY_NAME = {_normalise_name(key): key for key in _KEYS}


def _closest(word: str, choices: Iterable[str]) -> str | None:
    choices = list(choices)
    by_name = {_normalise_name(choice): choice for choice in choices}
    match = difflib.get_close_matches(_normalise_name(word), list(by_name), n=1, cutoff=0.5)
    return by_name[match[0]] if match else None


def _split_list(value: str) -> list[str]:
    """Comma-separated items; a backslash escapes the next character (kept, for gitignore to read)."""
    items: list[str] = []
    current: list[str] = []
    escaped = False
    for char in value:
        if char == "," and not escaped:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
        escaped = char == "\\" and not escaped
    items.append("".join(current))
    return [item for item in items if item.strip(_EDGE_SPACE)]


@dataclass
class _Role:
    name: str
    patterns: tuple[str, ...]
    line: int


class _Parser:
    """One pass over the lines; each problem raises at once with its line number."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self.section: str | None = None
        self.section_lines: dict[str, int] = {}
        self.key_lines: dict[str, int] = {}  # key → the line that set it
        self.pattern_lists: dict[str, tuple[str, ...]] = {}
        self.flags: dict[str, bool] = {}
        self.counts: dict[str, int] = {}
        self.durations: dict[str, float] = {}
        self.budget: Budget | None = None
        self.roles: list[_Role] = []
        self.goals: list[str] = []
        self.notes: list[str] = []
        self.goal_notes: list[tuple[int, str]] = []
        self.goal_open = False  # the previous line was a goal item: an indented line continues it

    def error(self, line: int | None, message: str, hint: str | None = None) -> InputFileError:
        return InputFileError(self.path, line, message, hint)

    def parse(self, text: str) -> Contract:
        comment_start: int | None = None
        for number, line in enumerate(_lines(text), start=1):
            if comment_start is not None:
                if "-->" in line:
                    comment_start = None
                continue
            stripped = line.strip(_EDGE_SPACE)
            if stripped.startswith("<!--"):
                if "-->" not in stripped[4:]:
                    comment_start = number
                continue
            self.read_line(number, line, stripped)
        if comment_start is not None:
            raise self.error(comment_start, "this comment is never closed", "end it with -->")
        return self.build()

    def read_line(self, number: int, line: str, stripped: str) -> None:
        if not line.strip():
            self.goal_open = False
            self.note("")
            return
        header = _HEADER.match(stripped)
        if header:
            self.start_section(number, (header.group(1) or "").strip(_EDGE_SPACE).rstrip("#"))
            return
        item = _ITEM.match(line)
        if item:
            self.read_item(number, (item.group(1) or ""))
            return
        self.read_text(number, line, stripped)

    def start_section(self, number: int, title: str) -> None:
        self.goal_open = False
        name = _SECTION_BY_NAME.get(_normalise_name(title.rstrip(":")))
        if name is None:
            close = _closest(title, _SECTIONS)
            hint = f"did you mean '# {close}'?" if close else "sections: " + ", ".join(_SECTIONS)
            raise self.error(number, f"unknown section '{title}'", hint)
        if name in self.section_lines:
            first = self.section_lines[name]
            raise self.error(number, f"section '{name}' appears twice (first on line {first})")
        self.section_lines[name] = number
        self.section = name

    def read_item(self, number: int, content: str) -> None:
        if self.section == SECTION_GOALS:
            goal = content.strip(_EDGE_SPACE)
            if goal:
                self.goals.append(goal)
            self.goal_open = bool(goal)
        elif self.section == SECTION_CAN_DO:
            self.read_setting(number, content)
        elif self.section == SECTION_HELPERS:
            self.read_role(number, content)
        else:
            hint = f"put it under '# {SECTION_CAN_DO}'"
            raise self.error(number, "a list item before the first section", hint)

    def read_text(self, number: int, line: str, stripped: str) -> None:
        if self.section is None:
            self.note(stripped)  # free text before the first section: a title, a note for the agent
            return
        if self.section == SECTION_GOALS:
            if self.goal_open and line[:1] in _EDGE_SPACE:
                self.goals[-1] = f"{self.goals[-1]} {stripped}"
            else:
                self.note(stripped)
            return
        shape = "- Key: value" if self.section == SECTION_CAN_DO else "- role: pattern, pattern"
        raise self.error(number, f"expected a list item '{shape}' in '{self.section}', got '{stripped}'")

    def note(self, text: str) -> None:
        """Keep a line of free text (or a blank line) where free text may be."""
        if self.section is None:
            self.notes.append(text)
        elif self.section == SECTION_GOALS:
            self.goal_notes.append((len(self.goals), text))

    def read_setting(self, number: int, content: str) -> None:
        raw_key, colon, value = content.partition(":")
        if not colon:
            raise self.error(number, f"expected '- Key: value', got '- {content.strip()}'", _keys_hint())
        key = _KEY_BY_NAME.get(_normalise_name(raw_key))
        if key is None:
            close = _closest(raw_key, _KEYS)
            hint = f"did you mean '{close}'?" if close else _keys_hint()
            raise self.error(number, f"unknown key '{raw_key.strip()}'", hint)
        if key in self.key_lines:
            raise self.error(number, f"'{key}' is given twice (first on line {self.key_lines[key]})")
        self.key_lines[key] = number
        text = value.strip()
        if key in (KEY_MODIFY, KEY_DONT_TOUCH):
            self.pattern_lists[key] = self.patterns(number, value)
        elif key == KEY_CAN_SPAWN:
            self.flags[key] = self.yes_no(number, key, text)
        elif key == KEY_MAX_HELPERS:
            self.counts[key] = self.count(number, key, text)
        elif key == KEY_BUDGET:
            try:
                self.budget = parse_budget(text)
            except ValueError as exc:
                raise self.error(number, f"'{key}': {exc}") from None
        else:
            self.durations[key] = self.duration(number, key, text)

    def yes_no(self, number: int, key: str, text: str) -> bool:
        answer = text.lower()
        if answer not in ("yes", "no"):
            raise self.error(number, f"'{key}' must be yes or no, not '{text}'")
        return answer == "yes"

    def count(self, number: int, key: str, text: str) -> int:
        if not re.fullmatch(r"[0-9]+", text):
            raise self.error(number, f"'{key}' must be a whole number ≥ 0, not '{text}'")
        if len(text) > 9:
            raise self.error(number, f"'{key}': {text} is too many")
        return int(text)

    def duration(self, number: int, key: str, text: str) -> float:
        try:
            return parse_duration(text)
        except ValueError as exc:  # not a duration, or too long for one (every overflow included)
            raise self.error(number, f"'{key}': {exc}") from None

    def patterns(self, number: int, value: str) -> tuple[str, ...]:
        patterns: list[str] = []
        for item in _split_list(value):
            try:
                pattern = validate_pattern(item)
            except ValueError as exc:
                raise self.error(number, f"bad path pattern: {exc}") from None
            if pattern not in patterns:
                patterns.append(pattern)
        return tuple(patterns)

    def read_role(self, number: int, content: str) -> None:
        raw_role, colon, value = content.partition(":")
        role = raw_role.strip()
        if not colon:
            raise self.error(number, f"expected '- role: pattern, pattern', got '- {content.strip()}'")
        try:
            _check_role_name(role)
        except ValueError as exc:
            hint = f"write '{role.lower()}'" if ROLE_NAME.fullmatch(role.lower()) else None
            raise self.error(number, str(exc), hint) from None
        for seen in self.roles:
            if seen.name == role:
                raise self.error(number, f"role '{role}' is listed twice (first on line {seen.line})")
        patterns = self.patterns(number, value)
        if not patterns:
            raise self.error(number, f"role '{role}' lists no paths")
        self.roles.append(_Role(role, patterns, number))

    def build(self) -> Contract:
        modify = self.pattern_lists.get(KEY_MODIFY)
        if modify is None:
            raise self.error(
                self.section_lines.get(SECTION_CAN_DO),
                "Modify is missing: a contract must say which paths this agent may change",
                f"add '- Modify: <pattern>, ...' under '# {SECTION_CAN_DO}'",
            )
        if not modify:
            raise self.error(self.key_lines[KEY_MODIFY], "Modify is empty: list at least one path pattern")
        for role in self.roles:
            wide = _first_uncovered(role.patterns, modify)
            if wide is not None:
                raise self.error(
                    role.line,
                    f"role '{role.name}' may modify '{wide}', which is outside Modify ({', '.join(modify)})",
                    "a helper permission must lie inside a Modify pattern, e.g. Modify a/** covers a/b/**",
                )
        can_spawn = self.flags.get(KEY_CAN_SPAWN, False)
        try:
            return Contract(
                modify=modify,
                dont_touch=self.pattern_lists.get(KEY_DONT_TOUCH, ()),
                can_spawn=can_spawn,
                max_helpers=self.counts.get(KEY_MAX_HELPERS, DEFAULT_MAX_HELPERS if can_spawn else 0),
                timeout=self.durations.get(KEY_TIMEOUT),
                stall_after=self.durations.get(KEY_STALL_AFTER),
                budget=self.budget,
                helper_permissions=HelperPermissions((r.name, r.patterns) for r in self.roles),
                goals=tuple(self.goals),
                notes=tuple(self.notes),
                goal_notes=tuple(self.goal_notes),
            )
        except ValueError as exc:  # every rule is checked above; this is a safety net, not a path
            raise self.error(None, str(exc)) from None


def _keys_hint() -> str:
    return "keys: " + ", ".join(_KEYS)


def _lines(text: str) -> Iterator[str]:
    """Lines as an editor numbers them: split on \\n only, a trailing \\r dropped, a BOM ignored."""
    for line in text.removeprefix("\ufeff").split("\n"):
        yield line.removesuffix("\r")


# ---------------------------------------------------------------------------------------------------------
# Rendering


def render_contract(contract: Contract) -> str:
    """The canonical SESSION.md for `contract`; `parse_contract` reads it back to an equal Contract."""
    lines = [*_header_comment(contract), ""]
    if contract.notes:
        lines += [*contract.notes, ""]
    lines.append(f"# {SECTION_CAN_DO}")
    lines.append(f"- {KEY_MODIFY}: {', '.join(contract.modify)}")
    if contract.dont_touch:
        lines.append(f"- {KEY_DONT_TOUCH}: {', '.join(contract.dont_touch)}")
    lines.append(f"- {KEY_CAN_SPAWN}: {'yes' if contract.can_spawn else 'no'}")
    lines.append(f"- {KEY_MAX_HELPERS}: {contract.max_helpers}")
    if contract.timeout is not None:
        lines.append(f"- {KEY_TIMEOUT}: {format_exact_duration(contract.timeout)}")
    if contract.stall_after is not None:
        lines.append(f"- {KEY_STALL_AFTER}: {format_exact_duration(contract.stall_after)}")
    if contract.budget is not None:
        lines.append(f"- {KEY_BUDGET}: {contract.budget}")
    lines += ["", f"# {SECTION_HELPERS}"]
    roles = [f"- {role}: {', '.join(p)}" for role, p in contract.helper_permissions.items()]
    lines += roles or ["<!-- none -->"]
    lines += ["", f"# {SECTION_GOALS}"]
    if not contract.goals and not contract.goal_notes:
        lines.append("<!-- none listed -->")
    notes = list(contract.goal_notes)
    for position in range(len(contract.goals) + 1):
        while notes and notes[0][0] == position:
            lines.append(notes.pop(0)[1])
        if position < len(contract.goals):
            lines.append(f"- {contract.goals[position]}")
    return "\n".join(lines) + "\n"


def _header_comment(contract: Contract) -> list[str]:
    if contract.can_spawn and contract.max_helpers > 0 and contract.helper_permissions:
        helpers = [
            f"You may start up to {contract.max_helpers} helpers at a time with `supervisor helper NAME --role ROLE`;",
            f'each may change only its role\'s paths under "{SECTION_HELPERS}".',
        ]
    else:
        helpers = ["You may not start helpers."]
    return [
        "<!--",
        "This file is your contract, written by supervisor. Read it before you change anything.",
        f'Change only paths that match "{KEY_MODIFY}" and none that match "{KEY_DONT_TOUCH}".',
        "A commit touching any other path is rejected by the pre-commit guard, and the supervisor",
        "reports every such commit even when the guard is skipped.",
        *helpers,
        "While you wait for another agent (a helper, your parent), say so: `supervisor report --waiting-for",
        "AGENT...`; `supervisor report --waiting-for` alone clears it. Waits in a cycle are reported as a deadlock.",
        "-->",
    ]


def format_exact_duration(seconds: float) -> str:
    """A duration `parse_duration` reads back to exactly `seconds`: `1h30m` where possible, else `90.5`."""
    if seconds == int(seconds):
        total = int(seconds)
        days, rest = divmod(total, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, secs = divmod(rest, 60)
        parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
        text = "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"
        if parse_duration(text) == seconds:
            return text
    return format(Decimal(repr(float(seconds))), "f")


# ---------------------------------------------------------------------------------------------------------
# Helpers' contracts


def derive_helper_contract(
    parent: Contract,
    role: str,
    *,
    paths: Sequence[str] | None = None,
    level: int,
    max_level: int = MAX_LEVEL,
    can_spawn: bool = False,
    max_helpers: int = 0,
    timeout: float | None = None,
    helper_permissions: Mapping[str, Iterable[str]] | Iterable[tuple[str, Iterable[str]]] = (),
    goals: Sequence[str] = (),
) -> Contract:
    """The contract of a helper in `role` at `level` (2 = helper, 3 = sub-helper) under `parent`.

    Its Modify is the parent's Helper Permissions entry for the role, narrowed to `paths` when given
    (each must lie inside the entry: see `pathrules.covers`); its Don't touch is the parent's, and so is
    its Stall after. `max_level` is capped at 3. A helper at the last level never spawns; one that cannot
    spawn gets Max helpers 0. Refusals raise UsageError saying why.
    """
    last_level = min(max_level, MAX_LEVEL)
    if level > last_level:
        raise UsageError(f"level {level} is not allowed: at most {last_level} levels (session → helper → sub-helper)")
    if level < 2:
        raise UsageError(f"a helper is at level 2 or deeper, not {level}")
    if not parent.can_spawn:
        raise UsageError(f"the parent may not start helpers: its contract says '{KEY_CAN_SPAWN}: no'")
    if parent.max_helpers == 0:
        raise UsageError(f"the parent may not start helpers: its contract says '{KEY_MAX_HELPERS}: 0'")
    entry = parent.helper_permissions.get(role)
    if entry is None:
        listed = ", ".join(parent.roles) if parent.roles else "none"
        raise UsageError(f"role '{role}' is not listed under the parent's {SECTION_HELPERS} (listed: {listed})")
    modify = entry if paths is None else _narrowed(role, entry, paths)
    spawns = can_spawn and level < last_level
    try:
        permissions = HelperPermissions(helper_permissions if spawns else ())
    except ValueError as exc:
        raise UsageError(f"bad helper permissions for the helper: {exc}") from None
    for sub_role, patterns in permissions.items():
        wide = _first_uncovered(patterns, modify)
        if wide is not None:
            raise UsageError(f"sub-helper role '{sub_role}' would widen the helper's paths with '{wide}'")
    try:
        return Contract(
            modify=modify,
            dont_touch=parent.dont_touch,
            can_spawn=spawns,
            max_helpers=max_helpers if spawns else 0,
            timeout=timeout,
            stall_after=parent.stall_after,
            helper_permissions=permissions,
            goals=tuple(goals),
        )
    except ValueError as exc:
        raise UsageError(f"cannot build the helper's contract: {exc}") from None


def _narrowed(role: str, entry: tuple[str, ...], paths: Sequence[str]) -> tuple[str, ...]:
    narrowed: list[str] = []
    for raw in _as_tuple(paths):
        try:
            pattern = validate_pattern(raw)
        except ValueError as exc:
            raise UsageError(f"--paths '{raw}': {exc}") from None
        if _first_uncovered((pattern,), entry) is not None:
            raise UsageError(f"--paths '{pattern}' would widen role '{role}', which may modify only {', '.join(entry)}")
        if pattern not in narrowed:
            narrowed.append(pattern)
    if not narrowed:
        raise UsageError("--paths needs at least one pattern")
    return tuple(narrowed)
