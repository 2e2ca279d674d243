"""Path rules of a contract: which repository paths an agent may change.

Patterns have gitignore semantics and are matched by the `pathspec` library (``GitIgnoreSpec``), never by
globbing of our own. A repository-relative POSIX path may be changed iff it matches a Modify pattern and
no Don't-touch pattern. Paths are opaque strings: spaces and any Unicode are fine.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from pathspec import GitIgnoreSpec

__all__ = [
    "PathRules",
    "Violation",
    "check_changes",
    "covers",
    "narrows",
    "uncovered",
    "validate_pattern",
]

_EDGE_SPACE = " \t"
_GLOB_CHARS = frozenset("*?[]\\")
_DRIVE = re.compile(r"^[A-Za-z]:(?:[\\/]|$)")


# ---------------------------------------------------------------------------------------------------------
# Patterns


def validate_pattern(pattern: str) -> str:
    """The canonical form of one path pattern; ValueError with a readable reason if it is not acceptable.

    Normalising: unescaped spaces/tabs at either end are dropped, repeated slashes collapse, `.` segments
    go (a leading `./` becomes `/`, i.e. anchored at the repo root, which is what it means to a user), and
    an unescaped comma is written `\\,` (same meaning to gitignore, and it keeps comma-separated lists in
    SESSION.md unambiguous).

    Refused: empty patterns, NUL or line breaks, the bare root `/`, absolute filesystem paths (`//host`,
    `C:\\`, `~/`), any `..` segment (also when spelled with backslashes), a trailing lone backslash,
    gitignore negation (`!`) and comments (`#`), and patterns gitignore would silently ignore (`[a`).
    A leading `/` is fine: it anchors the pattern at the repository root.
    """
    if not isinstance(pattern, str):
        raise ValueError(f"a path pattern must be text, not {type(pattern).__name__}")
    if "\x00" in pattern:
        raise ValueError("a path pattern cannot contain a NUL character")
    if "\n" in pattern or "\r" in pattern:
        raise ValueError("a path pattern cannot contain a line break")
    text = _strip_unescaped(pattern)
    if not text:
        raise ValueError("empty path pattern")
    if _trailing_backslashes(text) % 2 == 1:
        raise ValueError(f"{pattern!r} ends with a lone backslash")
    if any(_trailing_backslashes(segment) % 2 == 1 for segment in text.split("/")[:-1]):
        raise ValueError(f"{pattern!r}: a backslash cannot escape '/'")
    if text.startswith("//"):
        raise ValueError(f"{pattern!r} is an absolute path outside the repository")
    if text.startswith("!"):
        raise ValueError(
            f"{pattern!r}: negation ('!') is not supported; list the path under Don't touch instead "
            "(write '\\!' for a name that starts with '!')"
        )
    if text.startswith("#"):
        raise ValueError(f"{pattern!r} would be a comment; write '\\#' for a name that starts with '#'")
    text = _escape_trailing_space(_escape_commas(_normalise_segments(text)))
    if text == "/":
        raise ValueError("'/' alone names no files; write '**' for the whole repository")
    _refuse_outside_repo(text, pattern)  # on the canonical form, so that validating it again agrees
    if not _compiles(text):
        raise ValueError(f"{pattern!r} is not a valid pattern (check its '[...]')")
    return text


def _strip_unescaped(text: str) -> str:
    text = text.lstrip(_EDGE_SPACE)
    end = len(text)
    while end > 0 and text[end - 1] in _EDGE_SPACE and _trailing_backslashes(text[: end - 1]) % 2 == 0:
        end -= 1
    return text[:end]


def _escape_trailing_space(text: str) -> str:
    """A space that ends the pattern only once a `.` segment is gone (`a /.`) is part of a name: escaped,
    so that the canonical form means the same when it is read (and stripped) again."""
    if text and text[-1] in _EDGE_SPACE and _trailing_backslashes(text[:-1]) % 2 == 0:
        return text[:-1] + "\\" + text[-1]
    return text


def _trailing_backslashes(text: str) -> int:
    return len(text) - len(text.rstrip("\\"))


def _refuse_outside_repo(text: str, original: str) -> None:
    if _DRIVE.match(text) or text.startswith("\\\\"):
        raise ValueError(f"{original!r} is a Windows path; patterns are repository-relative with '/'")
    if text == "~" or text.startswith(("~/", "~\\")):
        raise ValueError(f"{original!r} points into a home directory, outside the repository")
    # Backslash escapes are read away by gitignore (`\.\.` is `..`), and a Windows-minded user writes
    # `..\x`: treat `\` as a separator too, so neither can smuggle a parent reference in.
    for piece in re.split(r"[/\\]+", text):
        if piece == "..":
            raise ValueError(f"{original!r} contains '..'; patterns must stay inside the repository")
    for segment in text.split("/"):
        if segment.replace("\\", "") == "..":
            raise ValueError(f"{original!r} contains '..'; patterns must stay inside the repository")


def _normalise_segments(text: str) -> str:
    anchored = text.startswith("/") or text.startswith("./")
    dir_only = text.endswith("/") and len(text.strip("/")) > 0
    parts = [part for part in text.split("/") if part not in ("", ".")]
    body = "/".join(parts)
    if not body:
        return "/"
    return ("/" if anchored else "") + body + ("/" if dir_only else "")


def _escape_commas(text: str) -> str:
    out: list[str] = []
    escaped = False
    for char in text:
        if char == "," and not escaped:
            out.append("\\")
        out.append(char)
        escaped = char == "\\" and not escaped
    return "".join(out)


def _compiles(text: str) -> bool:
    """Whether pathspec compiles `text` to one pattern, cleanly: character classes that Python's `re`
    calls ambiguous (a FutureWarning, e.g. `[[a]`) or invalid (`[z-a]`) are refused rather than guessed."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            spec = GitIgnoreSpec.from_lines([text])
        except (ValueError, re.error, Warning):
            return False
    return len(spec.patterns) == 1 and spec.patterns[0].include is not None


@lru_cache(maxsize=4096)
def _spec(patterns: tuple[str, ...]) -> GitIgnoreSpec:
    return GitIgnoreSpec.from_lines(list(patterns))


def _matches(pattern: str, path: str) -> bool:
    """Whether one (canonical) pattern matches a repository-relative path, by pathspec."""
    return _spec((pattern,)).match_file(path, separators=())


def _is_repo_path(path: str) -> bool:
    if not path or "\x00" in path or path.startswith("/"):
        return False
    return all(segment not in ("", ".", "..") for segment in path.rstrip("/").split("/"))


# ---------------------------------------------------------------------------------------------------------
# Rules


class PathRules:
    """Modify and Don't-touch patterns, validated and compiled once.

    `allows(path)` is True iff the path matches some Modify pattern and no Don't-touch pattern. A path
    that is not repository-relative (empty, absolute, with `.`/`..` segments) is never allowed.
    """

    __slots__ = ("_dont_touch_spec", "_modify_spec", "dont_touch", "modify")

    def __init__(self, modify: Iterable[str], dont_touch: Iterable[str] = ()) -> None:
        self.modify: tuple[str, ...] = tuple(validate_pattern(p) for p in _as_patterns(modify))
        self.dont_touch: tuple[str, ...] = tuple(validate_pattern(p) for p in _as_patterns(dont_touch))
        self._modify_spec = _spec(self.modify)
        self._dont_touch_spec = _spec(self.dont_touch)

    def allows(self, path: str) -> bool:
        if not _is_repo_path(path):
            return False
        return self._modify_spec.match_file(path, separators=()) and not self._dont_touch_spec.match_file(
            path, separators=()
        )

    def explain(self, path: str) -> str | None:
        """None if `path` may be changed; otherwise why not, naming the pattern responsible."""
        if not _is_repo_path(path):
            return f"'{path}' is not a path inside the repository"
        for pattern in self.dont_touch:
            if _matches(pattern, path):
                return f"matches Don't touch '{pattern}'"
        if not any(_matches(pattern, path) for pattern in self.modify):
            listed = ", ".join(self.modify) if self.modify else "none"
            return f"not under any Modify pattern ({listed})"
        return None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PathRules):
            return NotImplemented
        return (self.modify, self.dont_touch) == (other.modify, other.dont_touch)

    def __hash__(self) -> int:
        return hash((self.modify, self.dont_touch))

    def __repr__(self) -> str:
        return f"PathRules(modify={self.modify!r}, dont_touch={self.dont_touch!r})"


def _as_patterns(patterns: Iterable[str]) -> tuple[str, ...]:
    if isinstance(patterns, str):  # a lone string is one pattern, not a sequence of characters
        return (patterns,)
    return tuple(patterns)


# ---------------------------------------------------------------------------------------------------------
# Narrowing (refusing to widen)


@dataclass(frozen=True)
class _Shape:
    """The structure gitignore gives a pattern: anchored or not, its segments, whether it ends in `/`."""

    anchored: bool
    segments: tuple[str, ...]
    dir_only: bool

    @classmethod
    def of(cls, pattern: str) -> _Shape:
        dir_only = pattern.endswith("/")
        body = pattern.rstrip("/")
        anchored = "/" in body
        return cls(anchored, tuple(body.lstrip("/").split("/")), dir_only)

    def literal_prefix(self) -> tuple[str, ...]:
        prefix: list[str] = []
        for segment in self.segments:
            if any(char in _GLOB_CHARS for char in segment):
                break
            prefix.append(segment)
        return tuple(prefix)

    def canonical(self) -> str:
        return ("/" if self.anchored else "") + "/".join(self.segments) + ("/" if self.dir_only else "")


def covers(parent: str, child: str) -> bool:
    """Whether every path `child` matches is certainly matched by `parent` (sound, not complete).

    Containment of glob languages is undecidable in general, so this answers "yes" only when one of these
    rules proves it, and "no" (refuse) otherwise:

    1. the same pattern (after normalising; `/a/b` and `a/b` are the same pattern);
    2. the parent matches everything (`**`, `/**`);
    3. the child is anchored (has a `/` before its end) with literal leading segments L (the segments
       before the first one with `* ? [ ] \\`), and the parent matches the path L itself. A gitignore
       pattern that matches a directory matches everything under it, and every path the child matches
       is L or lies under L. So parent `packages/auth` or `packages/auth/**` covers
       `packages/auth/tests/**`, `packages/auth/x.py` and `packages/auth/migrations/`;
    4. the parent is `X/**` or `X/` (everything strictly inside what X names), X matches a leading part
       L[:k] of the child's literal segments, and every path the child matches lies strictly inside
       L[:k]. So parent `packages/auth/**` covers `packages/auth/*.py`.

    Anything else is refused: e.g. parent `*.py` does not cover `src/**/*.py`, even where a person can
    see that it does, because a wrongly granted path is worse than a refused one.
    """
    parent = validate_pattern(parent)
    child = validate_pattern(child)
    parent_shape, child_shape = _Shape.of(parent), _Shape.of(child)
    if parent_shape.canonical() == child_shape.canonical():
        return True
    if parent_shape.segments == ("**",) and not parent_shape.dir_only:
        return True
    if not child_shape.anchored:
        return False
    literal = child_shape.literal_prefix()
    if not literal:
        return False
    if _matches(parent, "/".join(literal)):
        return True
    return _covers_as_directory(parent_shape, child, child_shape, literal)


def _covers_as_directory(parent: _Shape, child: str, child_shape: _Shape, literal: tuple[str, ...]) -> bool:
    if parent.dir_only:
        inner = parent.segments
        inner_anchored = parent.anchored
    elif len(parent.segments) >= 2 and parent.segments[-1] == "**":
        inner = parent.segments[:-1]
        inner_anchored = True  # the `/` before `**` anchors X
    else:
        return False
    inner_pattern = ("/" if inner_anchored else "") + "/".join(inner)
    try:
        inner_pattern = validate_pattern(inner_pattern)
    except ValueError:
        return False
    for k in range(1, len(literal) + 1):
        directory = "/".join(literal[:k])
        strictly_inside = k < len(literal) or not _matches(child, directory)
        if strictly_inside and _matches(inner_pattern, directory):
            return True
    return False


def uncovered(child: PathRules | Iterable[str], parent: PathRules | Iterable[str]) -> tuple[str, ...]:
    """The child's Modify patterns that no parent Modify pattern covers (see `covers`), in order.

    When both sides are PathRules, a parent Don't-touch pattern missing from the child's Don't touch is
    reported too (as `Don't touch <pattern>`): without it the child could change what the parent may not.
    """
    child_modify = child.modify if isinstance(child, PathRules) else _as_patterns(child)
    parent_modify = parent.modify if isinstance(parent, PathRules) else _as_patterns(parent)
    missing = [c for c in child_modify if not any(covers(p, c) for p in parent_modify)]
    if isinstance(child, PathRules) and isinstance(parent, PathRules):
        kept = set(child.dont_touch)
        missing += [f"Don't touch {p}" for p in parent.dont_touch if p not in kept]
    return tuple(missing)


def narrows(child: PathRules | Iterable[str], parent: PathRules | Iterable[str]) -> bool:
    """Whether `child` certainly allows no more than `parent` (conservatively: see `covers`)."""
    return not uncovered(child, parent)


def may_overlap(first: str, second: str) -> bool:
    """Whether some path may match both patterns (conservatively: "no" only when it is certain).

    An unanchored pattern (`*.md`, `build`) can match at any depth, so it may overlap anything. Two anchored
    patterns name disjoint paths when their literal leading segments part ways (`packages/auth/**` and
    `packages/ui/**`); when one's literal part leads into the other's, they may share paths.
    """
    a, b = _Shape.of(validate_pattern(first)), _Shape.of(validate_pattern(second))
    if not a.anchored or not b.anchored:
        return True
    pa, pb = a.literal_prefix(), b.literal_prefix()
    shared = min(len(pa), len(pb))
    return pa[:shared] == pb[:shared]


# ---------------------------------------------------------------------------------------------------------
# Changes


@dataclass(frozen=True)
class Violation:
    """One changed path a contract forbids. `status` is git's letter (A, M, D, R, C, T, ...)."""

    path: str
    status: str
    reason: str

    def __str__(self) -> str:
        return f"{self.status} {self.path}: {self.reason}"


def check_changes(rules: PathRules, changes: Iterable[tuple[str, str, str | None]]) -> list[Violation]:
    """The violations in `changes`: (status, path, old_path or None) as git's name-status reports them.

    Every status counts, deletions included. A rename is checked on both sides: moving a file out of a
    forbidden folder deletes it there, so the source violates. For a copy only the new path is checked:
    the source is read, not changed, and git's copy detection pairs new files with any similar old one.
    A status with a score (`R100`) is read by its letter.
    """
    violations: list[Violation] = []
    for status, path, old_path in changes:
        letter = status[:1].upper() or "?"
        if letter == "R" and old_path is not None:
            reason = rules.explain(old_path)
            if reason is not None:
                violations.append(Violation(old_path, letter, f"renamed to '{path}', but {reason}"))
        reason = rules.explain(path)
        if reason is not None:
            if letter in ("R", "C") and old_path is not None:
                verb = "renamed" if letter == "R" else "copied"
                reason = f"{verb} from '{old_path}', but {reason}"
            violations.append(Violation(path, letter, reason))
    return violations
