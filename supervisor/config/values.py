"""What a scalar's text becomes: `${VAR}` expanded from the environment, and sizes such as 10MiB."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

# ---------------------------------------------------------------------------------------------------
# ${VAR} expansion


class _ExpansionError(Exception):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


_ENV_TOKEN: Final = re.compile(r"\$\$|\$\{(?P<body>[^}]*)\}|\$\{")
_ENV_BODY: Final = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


def expand_env(text: str, environ: Mapping[str, str]) -> str:
    """Replace `${VAR}`, `${VAR:-default}` and `$$` in `text`.

    A `$` not followed by `{` or `$` is kept as it is, so `$HOME` in a shell command is left for the
    shell. `${VAR:-default}` uses the default when VAR is unset or empty (as in sh).
    """

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        body = match.group("body")
        if body is None:
            raise _ExpansionError("unterminated '${'", "close it with '}', or write $$ for a literal $")
        ref = _ENV_BODY.fullmatch(body)
        if ref is None:
            raise _ExpansionError(
                f"bad variable reference '${{{body}}}'",
                "write ${NAME} or ${NAME:-default}; $$ is a literal $",
            )
        name, default = ref.group("name"), ref.group("default")
        value = environ.get(name)
        if default is not None:
            return value if value else default
        if value is None:
            raise _ExpansionError(
                f"environment variable '{name}' is not set",
                f"export {name}, or give a default with ${{{name}:-default}}",
            )
        return value

    return _ENV_TOKEN.sub(replace, text)


def named_variables(text: str) -> set[str]:
    """The environment variables `text` names as `${VAR}` or `${VAR:-default}` (what expand_env reads)."""
    names = set()
    for match in _ENV_TOKEN.finditer(text):
        ref = _ENV_BODY.fullmatch(match.group("body") or "")
        if ref is not None:
            names.add(ref.group("name"))
    return names


# ---------------------------------------------------------------------------------------------------
# Sizes


_SIZE: Final = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[kmgt]i?b|b)?", re.IGNORECASE)
_SIZE_UNITS: Final = {
    "b": 1,
    **{f"{p}b": 1000 ** (i + 1) for i, p in enumerate("kmgt")},
    **{f"{p}ib": 1024 ** (i + 1) for i, p in enumerate("kmgt")},
}


def parse_size(text: str) -> int:
    """Bytes in `text`: `1048576`, `512KiB`, `10MiB`, `1GiB`, `5MB`; raises ValueError otherwise."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a size: {text!r} (write e.g. 512KiB, 10MiB, 1GiB, 5MB)")
    unit = (match.group("unit") or "b").lower()
    return int(float(match.group("number")) * _SIZE_UNITS[unit])

