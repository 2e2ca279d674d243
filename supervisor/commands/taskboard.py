"""`supervisor task`: the task board, jobs that agents (swarms of fresh sessions) claim one at a time. Its words,
output and exit statuses are shared with the client in an agent's pane on a host (supervisor/hostside/taskboard.py).
"""

from __future__ import annotations

import argparse

from supervisor.commands.common import Add, call
from supervisor.errors import UsageError
from supervisor.hostside import taskboard


def register(add: Add) -> None:
    taskboard.add_actions(add("task", cmd_task, taskboard.HELP))


def cmd_task(args: argparse.Namespace) -> int:
    """`supervisor task add|ls|claim|done|release`."""
    try:
        return taskboard.run(args, call)
    except taskboard.BadInput as exc:
        raise UsageError(str(exc)) from None
