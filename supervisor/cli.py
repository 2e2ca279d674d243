"""The `supervisor` command: the entry point, which builds the parser from each command family's `register`
(supervisor/commands/) and dispatches to the chosen command; the work happens in the engine.

Imports stay light at module level (the CLI runs often, also from agents' hooks); a command imports what
it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from supervisor import __version__
from supervisor.commands import (
    alerts,
    dashboard,
    down,
    getting_started,
    hosts,
    inpane,
    many,
    restoring,
    review,
    sessions,
    taskboard,
    upkeep,
    viewing,
)
from supervisor.commands.common import Command
from supervisor.commands.parsing import INTERNAL_COMMANDS, Parser, refuse_unknown
from supervisor.errors import SupervisorError, UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="supervisor", description="Run many AI coding agents in parallel on one repository.")
    parser.add_argument("--version", action="version", version=f"supervisor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(func=func)
        return command

    # The order here is the order `supervisor --help` lists the commands in.
    dashboard.register(add)  # ui
    getting_started.register(add)  # demo, init
    sessions.register(add)  # start, run, compare, helper, merge
    inpane.register_msg(add)
    taskboard.register(add)  # task
    viewing.register(add)  # ls, show, usage, log, attach
    many.register(add)  # send, stop, restart, rm, approve, deny: one agent or many
    review.register(add)  # diff, push, pr
    down.register(add)
    hosts.register(add)  # hosts, hosts check
    restoring.register(add)
    upkeep.register(add)  # engine, doctor
    alerts.register(add)
    inpane.register_report(add)
    # Internal: without a `help`, a command is left out of every listing (`help=SUPPRESS` printed "==SUPPRESS==").
    p = sub.add_parser("hook")  # what agent-CLI hooks run
    p.set_defaults(func=inpane.cmd_hook)
    p = sub.add_parser("guard")  # what the installed pre-commit hook runs
    p.set_defaults(func=inpane.cmd_guard)
    return parser


_LITERAL = "\x00"  # marks an argument given after `--` (no argument can hold a NUL byte)


def parse_argv(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line, taking everything after a `--` that follows the command's name as is, whatever
    it looks like: `send NAME -- --` sends "--", `start NAME --task -- -x` gives the task "-x". (argparse
    drops or misreads such values, and differently from one Python version to the next.)"""
    words = list(sys.argv[1:] if argv is None else argv)
    _check_command(parser, words)
    if "--" in words:
        cut = words.index("--")
        if any(not word.startswith("-") for word in words[:cut]):
            words = words[:cut] + [_LITERAL + word if word.startswith("-") else word for word in words[cut + 1:]]
    args, extras = parser.parse_known_args(words)
    refuse_unknown(parser, args, extras)
    for key, value in vars(args).items():
        setattr(args, key, _unmark(value))
    return args


def _check_command(parser: argparse.ArgumentParser, words: list[str]) -> None:
    """A mistyped command is a usage error with the nearest real command (argparse's own error lists every
    choice, the internal ones too)."""
    if not words or words[0].startswith("-"):
        return  # no command, or a top-level option (--help, --version): argparse's to judge
    command = words[0]
    choices = next(action.choices for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    if command in choices:
        return
    from supervisor.suggest import did_you_mean

    visible = [name for name in choices if name not in INTERNAL_COMMANDS]
    raise UsageError(f"unknown command {command!r}",
                     hint=did_you_mean(command, visible) or "`supervisor --help` lists the commands")


def _unmark(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_LITERAL):
        return value[len(_LITERAL):]
    if isinstance(value, list):
        return [_unmark(item) for item in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parse_argv(parser, argv)
        func: Command = getattr(args, "func", dashboard.cmd_ui)
        return func(args)
    except SupervisorError as exc:
        print(f"supervisor: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
