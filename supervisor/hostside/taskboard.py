"""`supervisor task add|ls|claim|done|release`, the task board's command line: one for this machine's CLI and for
the client in an agent's pane on a host (supervisor/hostside/client.py), so that an agent claims work there as
here, with the same words, output and exit statuses. Standard library only; `run` is given how to ask the engine
(through the human's socket, or the agent's own)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from .texts import age, table

HELP = "the task board: jobs that agents claim one at a time"
STATES = ("open", "claimed", "done")

Call = Callable[[str, dict[str, Any]], Any]  # method, params → the engine's result


class BadInput(Exception):
    """What was given is no task (exit status 2, as argparse's own errors)."""


def register(sub: Any, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """The `task` command and its actions, added to `sub` (an argparse subparsers action)."""
    p: argparse.ArgumentParser = sub.add_parser("task", help=HELP, description=HELP)
    p.set_defaults(func=func)
    add_actions(p)
    return p


def add_actions(p: argparse.ArgumentParser) -> None:
    """The task command's actions (add, ls, claim, done, release) and their options, added to `p`."""
    actions = p.add_subparsers(dest="task_action", metavar="ACTION", required=True)
    a = actions.add_parser("add", help="add a task (with --lines: one task per non-blank line)")
    source = a.add_mutually_exclusive_group()
    source.add_argument("text", nargs="?", help="the task ('-' reads stdin)")
    source.add_argument("--file", help="read the task from a file")
    a.add_argument("--lines", action="store_true", help="each non-blank line of the text is a task of its own")
    a.add_argument("--json", action="store_true")
    a = actions.add_parser("ls", help="every task: id, state, who holds or finished it, age in its state, text")
    a.add_argument("--state", choices=STATES, help="only the tasks in this state")
    a.add_argument("--json", action="store_true")
    a = actions.add_parser("claim", help="claim the oldest open task and print its id and text; "
                                         "nothing and exit 1 when none is left")
    a.add_argument("--json", action="store_true")
    for verb, help_text in (("done", "mark a task done (an agent: only its own claim)"),
                            ("release", "put a claimed task back on the board (an agent: only its own claim)")):
        a = actions.add_parser(verb, help=help_text)
        a.add_argument("id", type=int, help="the task's id")
        a.add_argument("--json", action="store_true")


def texts(args: argparse.Namespace) -> list[str]:
    """The text of `task add`: TEXT, stdin (`-`) or --file; with --lines each non-blank line is a task."""
    if args.file:
        try:
            with open(args.file, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"cannot read --file: {getattr(exc, 'strerror', None) or exc}: {args.file}") from None
    elif args.text == "-":
        text = sys.stdin.read()
    elif args.text is not None:
        text = str(args.text)
    else:
        raise BadInput("what is the task? give its TEXT, '-' to read stdin, or --file FILE")
    found = [line for line in text.splitlines() if line.strip()] if args.lines else [text]
    if not any(t.strip() for t in found):
        raise BadInput("the task is empty" if not args.lines else "no task: every line is blank")
    return found


def run(args: argparse.Namespace, call: Call) -> int:
    """Do the action `args` name, asking the engine through `call`; print what it did; the exit status."""
    action = args.task_action
    if action == "add":
        added = call("task_add", {"texts": texts(args)})
        if args.json:
            _print_json(added)
        elif len(added) == 1:
            print(f"added task {added[0]['id']}")
        else:
            print(f"added {len(added)} tasks: {added[0]['id']}–{added[-1]['id']}")
        return 0
    if action == "ls":
        tasks = call("task_ls", {"state": args.state})
        if args.json:
            _print_json(tasks)
            return 0
        if not tasks:
            print("no tasks" + (f" {args.state}" if args.state else "") + "; add one with `supervisor task add TEXT`")
            return 0
        rows = [["ID", "STATE", "BY", "AGE", "TEXT"]]
        for task in tasks:
            text = task["text"].splitlines()[0][:80] if task["text"] else ""
            rows.append([str(task["id"]), task["state"], _by(task), age(task["updated_at"]), text])
        print(table(rows))
        return 0
    if action == "claim":
        task = call("task_claim", {})
        if task is None:
            return 1  # nothing left: no output, so `while supervisor task claim ...` loops end cleanly
        if args.json:
            _print_json(task)
        else:
            print(f"{task['id']}\t{task['text']}")
        return 0
    task = call(f"task_{action}", {"task_id": args.id})
    if args.json:
        _print_json(task)
    else:
        print(f"task {task['id']}: " + ("done" if action == "done" else "back on the board"))
    return 0


def _by(task: dict[str, Any]) -> str:
    if task["state"] == "open":
        return "-"
    return str(task.get("by") or "human")


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))
