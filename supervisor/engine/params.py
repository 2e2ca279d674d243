"""A request's parameters checked against its handler's signature before it runs.

Any client can send any JSON, so a parameter of the wrong kind (a list for a text, a string for a flag), one
missing, one unknown or one named like an internal argument (`_caller`) is a one-line usage error here, not a
crash deep in the engine. A parameter that names an agent (`name`, `parent`, `to`, `waiting_for`) must be a
valid agent name: an agent's name becomes a path (its worktree, its transcript), so anything else is refused
before any file is opened. The alert requests' `name` is an alert subject instead (an agent's name, or e.g.
`tmux:`), checked as one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from supervisor.core import subjects
from supervisor.core.model import validate_name
from supervisor.errors import UsageError

NAME_PARAMS = frozenset({"name", "parent", "to", "waiting_for"})
SUBJECT_METHODS = frozenset({"alerts", "snooze", "unsnooze"})  # their `name` is an alert subject

# Annotation → (check, how the expected kind reads in a message).
_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "float": (lambda v: isinstance(v, int | float) and not isinstance(v, bool), "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "list[str]": (lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v), "a list of strings"),
    "dict[str, Any]": (lambda v: isinstance(v, dict), "an object"),
    "Any": (lambda v: True, "anything"),
}
_JSON_KINDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
               dict: "an object", type(None): "null"}


def check_params(method: str, handler: Callable[..., Any], params: dict[str, Any]) -> None:
    """Raise UsageError when `params` do not fit `handler` (its parameters starting with `_` are the engine's
    to give, never a client's)."""
    def bad(problem: str) -> UsageError:
        return UsageError(f"bad parameters for {method}: {problem}")

    signature = inspect.signature(handler)
    for key in params:
        if key.startswith("_") or key not in signature.parameters:
            raise bad(f"unknown parameter {key!r}")
    for key, parameter in signature.parameters.items():
        if key.startswith("_"):
            continue
        if key not in params:
            if parameter.default is inspect.Parameter.empty:
                raise bad(f"{key} is missing")
            continue
        value = params[key]
        kinds = [kind.strip() for kind in str(parameter.annotation).split("|")]
        if value is None and "None" in kinds:
            continue
        checks = [_KINDS[kind] for kind in kinds if kind in _KINDS]
        if len(checks) == len([kind for kind in kinds if kind != "None"]) and not any(ok(value) for ok, _ in checks):
            wanted = " or ".join(label for _, label in checks)
            raise bad(f"{key} must be {wanted}, not {_JSON_KINDS.get(type(value), type(value).__name__)}")
        if key == "name" and method in SUBJECT_METHODS:
            subjects.check(value)
        elif key in NAME_PARAMS:
            for name in value if isinstance(value, list) else [value]:
                validate_name(name)
