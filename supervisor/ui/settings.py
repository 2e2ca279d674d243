"""What the dashboard remembers between runs (its theme), in the user's XDG config folder:
`$XDG_CONFIG_HOME/supervisor/dashboard.json` (by default `~/.config/supervisor/dashboard.json`).

Settings are a convenience: a file that cannot be read or written is said once and otherwise ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def settings_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "supervisor" / "dashboard.json"


def load() -> tuple[dict[str, Any], str | None]:
    """The settings, and why they could not be read (None: read, or no file yet)."""
    path = settings_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError) as exc:
        return {}, f"{path}: not read ({exc})"
    return (data, None) if isinstance(data, dict) else ({}, f"{path}: not a JSON object")


def save(**changes: Any) -> str | None:
    """Merge `changes` into the settings file; why it could not be written, or None."""
    path = settings_path()
    data, _ = load()
    data.update(changes)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        temporary.replace(path)
    except OSError as exc:
        return f"{path}: not written ({exc})"
    return None
