"""What the command modules share with supervisor.cli: the engine request and the parser's `add`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

Command = Callable[[argparse.Namespace], int]
Add = Callable[[str, Command, str], argparse.ArgumentParser]


def call(method: str, params: dict[str, Any] | None = None, *, autostart: bool = True,
         timeout: float | None = 600) -> Any:
    """An engine request as every command makes it (engine started if needed, its notes said on stderr)."""
    from supervisor.cli import _call

    return _call(method, params, autostart=autostart, timeout=timeout)
