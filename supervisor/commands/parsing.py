"""The command line's parser: argparse with two changes people rely on.

- Options are taken by their whole names only (`allow_abbrev=False`): `stop --stat idle` is an error, not
  `stop --state idle` stopping every idle agent.
- An option it does not know says the nearest one it has (`--stat`: did you mean `--state`?).
- A word that is not one of its choices (an action such as `alerts snoze`, `engine strat`, `hosts chek`, or
  a value such as `usage --by agnet`) is a usage error with the nearest valid word, not argparse's list of
  every choice (internal commands included).
"""

from __future__ import annotations

import argparse
from typing import Any

from supervisor.errors import UsageError
from supervisor.suggest import did_you_mean

INTERNAL_COMMANDS = frozenset({"hook", "guard"})  # run by hooks, never by a person: in no listing or hint


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose subparsers are of its kind too (argparse makes them with `type(self)`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is None or value in choices:
            return
        valid = [str(choice) for choice in choices if choice not in INTERNAL_COMMANDS]
        if not action.option_strings:  # an action: `alerts snoze`, `engine strat`
            where = _command(self)
            message = f"unknown {where + ' ' if where else ''}action {value!r}"
        else:
            name = action.option_strings[-1] if action.option_strings else (action.metavar or action.dest)
            message = f"{name}: {value!r} is not one of {', '.join(valid)}"
        raise UsageError(message, hint=did_you_mean(str(value), valid) or f"one of {', '.join(valid)}")


def refuse_unknown(parser: argparse.ArgumentParser, parsed: argparse.Namespace, extras: list[str]) -> None:
    """What `parse_known_args` left over is a usage error naming the first word, with the nearest option of
    the command it was given to."""
    if not extras:
        return
    command = _chosen(parser, parsed)
    word = extras[0]
    options = [option for action in command._actions for option in action.option_strings
               if action.help != argparse.SUPPRESS]
    where = _command(command)
    hint = did_you_mean(word.split("=", 1)[0], options) if word.startswith("-") else None
    what = "unknown option" if word.startswith("-") else "unexpected argument"
    raise UsageError(f"{where + ': ' if where else ''}{what} {word!r}",
                     hint=hint or f"`{command.prog} --help` lists what it takes")


def _chosen(parser: argparse.ArgumentParser, parsed: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)command parser the words were given to: `supervisor alerts snooze` → that of `snooze`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            name = getattr(parsed, action.dest, None)
            if name in action.choices:
                return _chosen(action.choices[name], parsed)
    return parser


def _command(parser: argparse.ArgumentParser) -> str:
    """`alerts snooze` for that command's parser ('' for the top one)."""
    return parser.prog.removeprefix("supervisor").strip()
