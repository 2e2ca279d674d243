"""`ui`: the dashboard (the command `supervisor` runs when given none), or every repository's with `--all`."""

from __future__ import annotations

import argparse
import sys

from supervisor.commands.common import Add, repo_paths
from supervisor.commands.viewing import agents_table, cmd_ls


def register(add: Add) -> None:
    p = add("ui", cmd_ui, "open the dashboard (starts the engine if needed)")
    p.add_argument("--all", action="store_true", help="every repository of yours with a running engine, in one "
                   "dashboard (starts no engine)")


def cmd_ui(args: argparse.Namespace) -> int:
    from supervisor import client

    if getattr(args, "all", False):
        from supervisor.commands.everywhere import ui_all

        return ui_all(args, agents_table)
    paths = repo_paths()
    client.ensure_engine(paths)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("supervisor: the dashboard needs a terminal; here is the listing instead", file=sys.stderr)
        return cmd_ls(argparse.Namespace(json=False, all=False))
    from supervisor.ui.app import run_dashboard  # Textual is imported only here: the CLI stays light

    return run_dashboard(paths)
