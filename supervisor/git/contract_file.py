"""The contract file: the agent's contract as the engine keeps it, written by the engine into the agent's own
runtime folder (`contract.json`) for its pre-commit guard.

Inside the sandbox the store is hidden, and the runtime folder is bound read-only (only its `spool/` is
writable), so the guard reads the engine's contract and the agent cannot change it. Without a sandbox the file
is as writable as anything of the same user: the guard is advice there, and the audit (which reads the store,
under its keyed digest) is what decides. The runtime directory is emptied at reboot: the engine writes the file
again for every agent it knows when it starts.

Imported by the guard on every commit: only the standard library and `supervisor.files`.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from supervisor.files import write_atomically

FILE_NAME = "contract.json"
SOCKET_NAME = "engine.sock"
_MODE = 0o400  # a nudge: the engine replaces it by renaming, never by writing into it


def publish(path: Path, name: str, worktree: str, target: str | None, contract: str | None,
            refused: str | None = None) -> None:
    """Write the contract file of agent `name` at `path`. `refused`: why its commits are refused whatever they
    change (its stored contract failed its digest), said by the guard as it is."""
    record = {"name": name, "worktree": worktree, "target": target, "contract": contract, "refused": refused}
    write_atomically(path, json.dumps(record, ensure_ascii=False, indent=1) + "\n", mode=_MODE)


def find(top: Path, runtime_dir: Path, socket: str | None) -> dict[str, Any] | None:
    """The contract record whose worktree is `top`: first beside the agent's own socket (`socket`, from
    SUPERVISOR_SOCKET), then in every agent's runtime folder; None when none is for `top`."""
    wanted = os.path.realpath(top)
    folders: list[Path] = []
    if socket:
        own = Path(socket)
        if own.name == SOCKET_NAME and own.parent.parent.name == "agents":
            folders.append(own.parent)
    with contextlib.suppress(OSError):
        folders += sorted(Path(entry.path) for entry in os.scandir(runtime_dir / "agents") if entry.is_dir())
    for folder in dict.fromkeys(folders):
        try:
            record = json.loads((folder / FILE_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict):
            continue
        worktree = record.get("worktree")
        if isinstance(worktree, str) and worktree and os.path.realpath(worktree) == wanted:
            return dict(record)
    return None
