"""The options of the commands an agent runs from its pane (`helper`, `msg`, `report`), for this machine's CLI and
for the client in an agent's pane on a host (supervisor/hostside/client.py): one definition, so an agent is
understood the same way on either side. Standard library only."""

from __future__ import annotations

import argparse


def add_helper_options(p: argparse.ArgumentParser, parent_default: str) -> None:
    """`helper NAME --role R [--task T | --task-file F] [--paths GLOB…] [--parent P] [--no-wait] [--json]`."""
    p.add_argument("name", help="its short name; the full name becomes PARENT.NAME")
    p.add_argument("--role", required=True, help="a role listed under the parent's Helper Permissions")
    task = p.add_mutually_exclusive_group()
    task.add_argument("--task", help="the first prompt")
    task.add_argument("--task-file", help="read the first prompt from a file")
    p.add_argument("--paths", nargs="+", metavar="GLOB", help="narrow the role's paths (never widen them)")
    p.add_argument("--parent", help=f"the parent agent (default: {parent_default})")
    p.add_argument("--no-wait", action="store_true", help="return once launched; deliver the task meanwhile")
    p.add_argument("--json", action="store_true")


def add_msg_options(p: argparse.ArgumentParser) -> None:
    """`msg TO TEXT`."""
    p.add_argument("to", help="the recipient's full name, or 'parent'")
    p.add_argument("text", help="the message ('-' reads stdin)")


def add_report_options(p: argparse.ArgumentParser) -> None:
    """`report --waiting-for AGENT…`."""
    p.add_argument("--waiting-for", nargs="*", default=[], metavar="AGENT", help="none clears it")
