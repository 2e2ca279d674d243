"""What the command modules share: the engine request (with what it notes said on stderr), the parser's `add`,
and the output helpers (JSON; ages and tables are in supervisor/hostside/texts.py, shared with hosts)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Command = Callable[[argparse.Namespace], int]
Add = Callable[[str, Command, str], argparse.ArgumentParser]


def repo_paths() -> Any:
    from supervisor.paths import find_repo

    return find_repo()


def call(method: str, params: dict[str, Any] | None = None, *, autostart: bool = True,
         timeout: float | None = 600) -> Any:
    """An engine request as every command makes it (engine started if needed, its notes said on stderr)."""
    from supervisor import client

    paths = repo_paths()
    result = client.call(paths, method, params, autostart=autostart, timeout=timeout)
    _warn_if_config_refused(paths.config_refused)
    _print_notes()
    return result


def _print_notes() -> None:
    """What the engine noted beside its answers (the store cannot be written), once each, on stderr."""
    from supervisor import client

    for note in dict.fromkeys(client.notes):
        print(f"supervisor: warning: {note}", file=sys.stderr)
    client.notes.clear()


@functools.cache
def _warn_if_config_refused(marker: Path) -> None:
    """The running engine did not apply an edit of supervisor.yaml that does not parse: say so on stderr
    (once per command), so that the edit is not thought to be in force. The engine's own verdict (its
    environment, not this shell's, expands `${VAR}`)."""
    try:
        error = marker.read_text().strip()
    except OSError:
        return
    print(f"supervisor: warning: {error}", file=sys.stderr)
    print("hint: the running engine keeps the configuration it read before; it applies the file once it "
          "is fixed", file=sys.stderr)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def warn_store_notices() -> None:
    """What the running engine found wrong in the store at its start (records set aside, agents rebuilt)."""
    with contextlib.suppress(OSError):
        for line in repo_paths().store_notice.read_text().splitlines():
            if line.strip():
                print(f"supervisor: warning: {line}", file=sys.stderr)
