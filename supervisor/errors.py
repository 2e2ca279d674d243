"""User-facing errors: one clear line, an optional hint, and the exit code the CLI returns."""

from __future__ import annotations

from pathlib import Path


class SupervisorError(Exception):
    """An operation that failed (exit 1). The message is shown as `supervisor: error: <message>`."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(SupervisorError):
    """Bad usage or invalid input (exit 2)."""

    exit_code = 2


class InputFileError(UsageError):
    """An invalid input file (supervisor.yaml, SESSION.md, a plan), named with its line."""

    def __init__(self, path: Path | str, line: int | None, message: str, hint: str | None = None) -> None:
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}", hint)
        self.path = Path(path)
        self.line = line
        self.detail = message
