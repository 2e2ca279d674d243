"""Role templates and the helper-contract builder.

A role template is a SESSION.md with `{{placeholder}}` placeholders (see `PLACEHOLDERS`), one file per role
named `<role>.md`. The package ships templates for common roles (`contracts/` in the source tree); a
repository adds or overrides its own in `agents/templates/`. A role listed in a parent's Helper Permissions
that has no template of its own gets the generic `helper.md`.

`helper_contract` turns a parent's contract, a role and a template into the helper's contract. The parent
decides what the helper may touch (its Helper Permissions entry, narrowed by `--paths`); the template
decides how the helper works (goals, timeout, whether it may spawn and with which permissions).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from supervisor.core.contract import (
    KEY_BUDGET,
    KEY_MODIFY,
    MAX_LEVEL,
    ROLE_NAME,
    SECTION_CAN_DO,
    Contract,
    HelperPermissions,
    derive_helper_contract,
    parse_contract,
)
from supervisor.core.pathrules import covers, validate_pattern
from supervisor.errors import InputFileError, SupervisorError
from supervisor.resources import data_dir

__all__ = [
    "GENERIC_ROLE",
    "NO_TASK",
    "PLACEHOLDERS",
    "REPO_TEMPLATES",
    "available_roles",
    "default_session_contract",
    "helper_contract",
    "module_of",
    "render_template",
    "template_dirs",
    "template_for",
    "template_values",
]

PLACEHOLDERS = ("name", "parent", "role", "paths", "module", "task")
"""The placeholders `helper_contract` fills in, in the order error messages list them."""

GENERIC_ROLE = "helper"
"""The template (`helper.md`) for a listed role that has no template of its own; not a role itself."""

REPO_TEMPLATES = Path("agents") / "templates"
"""Where a repository keeps its own role templates, relative to its root."""

NO_TASK = "the task in your first prompt"
"""What `{{task}}` says when the helper was started without `--task`."""

TASK_LIMIT = 400
"""`{{task}}` is cut to about this many characters: the full task is the helper's first prompt anyway."""

_WHOLE_REPO = "the repository"
_GLOB_CHARS = frozenset("*?[]\\")
_ITEM_KEY = re.compile(r"^[ \t]*[-*+][ \t]+([^:]*):")
_HEADER = re.compile(r"^[ \t]*#+(?:[ \t]+(.*))?$")


# ---------------------------------------------------------------------------------------------------------
# Finding templates


def template_dirs(repo_root: Path) -> list[Path]:
    """The folders searched for templates, the first winning: the repo's `agents/templates/`, then the shipped
    one. Either may not exist."""
    return [Path(repo_root) / REPO_TEMPLATES, data_dir("contracts")]


def _templates_in(folder: Path) -> dict[str, Path]:
    """`<role>.md` files in `folder` whose stem is a valid role name (so a README.md is not a role)."""
    if not folder.is_dir():
        return {}
    found: dict[str, Path] = {}
    for path in sorted(folder.glob("*.md")):
        if path.is_file() and ROLE_NAME.fullmatch(path.stem):
            found[path.stem] = path
    return found


def _all_templates(repo_root: Path) -> dict[str, Path]:
    merged: dict[str, Path] = {}
    for folder in reversed(template_dirs(repo_root)):  # shipped first, so the repo's override them
        merged.update(_templates_in(folder))
    return merged


def available_roles(repo_root: Path) -> dict[str, Path]:
    """Role → its template file, sorted by role; the repo's templates win over shipped ones of the same name.
    The generic `helper.md` is not a role and is left out."""
    merged = _all_templates(repo_root)
    return {role: merged[role] for role in sorted(merged) if role != GENERIC_ROLE}


def template_for(repo_root: Path, role: str) -> Path:
    """The template a helper in `role` gets: the role's own, else the generic `helper.md`."""
    merged = _all_templates(repo_root)
    found = merged.get(role) if role != GENERIC_ROLE else None
    found = found or merged.get(GENERIC_ROLE)
    if found is None:
        searched = ", ".join(str(folder) for folder in template_dirs(repo_root))
        raise SupervisorError(f"no template for role '{role}' and no generic {GENERIC_ROLE}.md in {searched}",
                              "the shipped templates are missing: reinstall supervisor")
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InputFileError(path, None, f"cannot read the template: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------------------------------------------
# Rendering


def _one_line(value: str) -> str:
    """A value never spans lines, so it cannot add lines (keys, sections) to the contract it lands in."""
    if any(char in value for char in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"):
        return " ".join(part for part in value.splitlines() if part.strip())
    return value


def render_template(text: str, values: Mapping[str, str], path: Path | str) -> str:
    """`text` with every `{{ key }}` replaced by `values[key]` (spaces inside the braces are fine).

    Values are inserted literally, each made one line (line breaks become spaces): a `{{x}}` inside a value
    stays as it is. Line numbers are kept, so an error in the result points at the template's line. A
    placeholder that is not a key of `values`, or a `{{` without `}}` on its line, raises InputFileError
    naming `path` and the line.
    """
    known = {key: _one_line(value) for key, value in values.items()}
    listed = ", ".join("{{" + key + "}}" for key in known) or "none"
    out: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        pieces: list[str] = []
        position = 0
        while (start := line.find("{{", position)) >= 0:
            end = line.find("}}", start + 2)
            if end < 0:
                raise InputFileError(path, number, f"'{{{{' is never closed with '}}}}' (placeholders: {listed})",
                                     "a placeholder is written on one line, like {{name}}")
            key = line[start + 2 : end].strip(" \t")
            if key not in known:
                close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
                hint = f"did you mean {{{{{close[0]}}}}}?" if close else None
                raise InputFileError(path, number, f"unknown placeholder '{{{{{key}}}}}' (placeholders: {listed})",
                                     hint)
            pieces += [line[position:start], known[key]]
            position = end + 2
        pieces.append(line[position:])
        out.append("".join(pieces))
    return "\n".join(out)


def module_of(patterns: Sequence[str]) -> str:
    """A human phrase for the area `patterns` cover: the longest common run of leading literal path segments
    (`packages/auth/**`, `packages/auth/api/**` → `packages/auth`), or "the repository" when there is none.
    ValueError for an invalid pattern."""
    common: list[str] | None = None
    for pattern in patterns:
        segments = validate_pattern(pattern).strip("/").split("/")
        literal: list[str] = []
        for segment in segments:
            if any(char in _GLOB_CHARS for char in segment):
                break
            literal.append(segment)
        if common is None:
            common = literal
        else:
            keep = 0
            while keep < min(len(common), len(literal)) and common[keep] == literal[keep]:
                keep += 1
            common = common[:keep]
    return "/".join(common) if common else _WHOLE_REPO


def _task_phrase(task: str | None) -> str:
    text = " ".join((task or "").split())
    if not text:
        return NO_TASK
    if len(text) > TASK_LIMIT:
        cut = text[:TASK_LIMIT].rsplit(" ", 1)[0] or text[:TASK_LIMIT]
        text = f"{cut} … (the whole task is in your first prompt)"
    return text


def template_values(*, name: str, parent: str, role: str, paths: Sequence[str], task: str | None) -> dict[str, str]:
    """The placeholder values for a helper (see `PLACEHOLDERS`). `paths` is the helper's Modify."""
    return {
        "name": name,
        "parent": parent,
        "role": role,
        "paths": ", ".join(validate_pattern(p) for p in paths),  # canonical: commas inside are escaped
        "module": module_of(paths),
        "task": _task_phrase(task),
    }


# ---------------------------------------------------------------------------------------------------------
# Contracts


def helper_contract(
    parent: Contract,
    role: str,
    *,
    name: str,
    parent_name: str,
    repo_root: Path,
    paths: Sequence[str] | None = None,
    task: str | None = None,
    level: int,
    max_level: int = MAX_LEVEL,
    default_timeout: float | None = None,
) -> tuple[Contract, str]:
    """The contract of helper `name` in `role` under `parent`, and the path of the template it came from.

    What the helper may touch comes from the parent: Modify is the parent's Helper Permissions entry for
    the role, narrowed by `paths`; Don't touch and Stall after are inherited. A refusal (role not listed,
    widening, level too deep, parent may not spawn) raises UsageError saying why, before any template is read.

    The template gives goals (and its free text), Timeout (else `default_timeout`), Can spawn helpers, Max
    helpers and Helper Permissions. Its Modify should be `{{paths}}`; a narrower one (every pattern inside the
    derived Modify) is honoured, since granting more than the template says would be the surprise; a wider
    one is an InputFileError at its line. A Don't touch or Stall after in a template is added to (never replaces)
    what the parent gives. A broken template raises InputFileError with its path and line.
    """
    derived = derive_helper_contract(parent, role, paths=paths, level=level, max_level=max_level)
    template = template_for(repo_root, role)
    values = template_values(name=name, parent=parent_name, role=role, paths=derived.modify, task=task)
    rendered = render_template(_read(template), values, template)
    shape = parse_contract(rendered, path=template)
    modify = _template_modify(shape, derived.modify, rendered, template)
    _check_budget(shape, parent, rendered, template)
    contract = derive_helper_contract(
        parent,
        role,
        paths=modify,
        level=level,
        max_level=max_level,
        can_spawn=shape.can_spawn,
        max_helpers=shape.max_helpers,
        timeout=shape.timeout if shape.timeout is not None else default_timeout,
        helper_permissions=shape.helper_permissions,
        goals=shape.goals,
    )
    contract = dataclasses.replace(
        contract,
        dont_touch=contract.dont_touch + shape.dont_touch,
        stall_after=shape.stall_after if shape.stall_after is not None else contract.stall_after,
        notes=shape.notes,  # the template's free text reaches the helper too
        goal_notes=shape.goal_notes,
        budget=shape.budget,  # its own subtree's; the parent's budget covers it as part of the parent's tree
    )
    return contract, str(template)


def _template_modify(shape: Contract, derived: tuple[str, ...], rendered: str, template: Path) -> tuple[str, ...]:
    for pattern in shape.modify:
        if not any(covers(outer, pattern) for outer in derived):
            raise InputFileError(
                template,
                _modify_line(rendered),
                f"Modify '{pattern}' is outside the helper's paths ({', '.join(derived)})",
                "write '- Modify: {{paths}}': the parent's Helper Permissions decide what a helper may change",
            )
    return shape.modify


def _check_budget(shape: Contract, parent: Contract, rendered: str, template: Path) -> None:
    """A helper's Budget may narrow its parent's, never widen it (a measure it leaves out is its parent's)."""
    if shape.budget is None or parent.budget is None:
        return
    wider = shape.budget.widens(parent.budget)
    if wider is not None:
        raise InputFileError(
            template, _key_line(rendered, KEY_BUDGET),
            f"Budget {shape.budget} would widen the parent's budget ({parent.budget}): {wider}",
            "a helper's Budget must lie within its parent's: lower it, or remove it to share the parent's")


def _modify_line(text: str) -> int | None:
    return _key_line(text, KEY_MODIFY)


def _key_line(text: str, key: str) -> int | None:
    """The line of the `key` item under 'What This Session Can Do' (the parser has accepted `text`)."""
    in_can_do = False
    in_comment = False
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip(" \t")
        if in_comment or stripped.startswith("<!--"):
            in_comment = "-->" not in (stripped[4:] if not in_comment else stripped)
            continue
        header = _HEADER.match(line)
        if header:
            title = (header.group(1) or "").strip(" \t").rstrip("#").rstrip(":")
            in_can_do = " ".join(title.lower().split()) == SECTION_CAN_DO.lower()
            continue
        item = _ITEM_KEY.match(line)
        if in_can_do and item and " ".join(item.group(1).lower().split()) == key.lower():
            return number
    return None


def default_session_contract(repo_root: Path, max_helpers: int = 3) -> Contract:
    """The contract of a session started without `--contract`: the whole repository, up to `max_helpers`
    helpers at a time, each available role allowed everywhere (a narrower role needs `--paths`)."""
    roles = available_roles(repo_root)
    return Contract(
        modify=("**",),
        can_spawn=max_helpers > 0,
        max_helpers=max_helpers,
        helper_permissions=HelperPermissions((role, ("**",)) for role in roles),
    )
