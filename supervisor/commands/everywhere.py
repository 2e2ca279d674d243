"""`supervisor ls --all` and `supervisor ui --all`: every repository of this user with a running engine, each
through its own engine (supervisor/repositories.py). Neither starts an engine: a repository shows while its
engine runs. Both work from anywhere, also outside a repository, and never from inside an agent's pane."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

Table = Callable[[list[dict[str, Any]]], str]
NONE_RUNNING = "no repository of yours has a running engine"
NONE_HINT = "`supervisor ui` or `supervisor engine start` in a repository starts its engine"


def ls_all(args: argparse.Namespace, table: Table) -> int:
    """Each repository's agents, grouped by repository; 1 when one of them could not be listed (said on stderr,
    the others listed all the same)."""
    from supervisor import repositories as repos

    repos.refuse_inside_an_agent("`ls --all`")
    found = repos.each_repository(repos.repositories(), lambda repo: list(repo.call("ls")))
    faults = [(repo, error) for repo, _, error in found if error is not None]
    for repo, error in faults:
        print(f"supervisor: warning: {repo.label} ({repo.paths.root}): {_words(error)}", file=sys.stderr)
    listed = [(repo, agents or []) for repo, agents, error in found if error is None]
    if args.json:
        print(json.dumps([repos.with_repository(repo, agent) for repo, agents in listed for agent in agents],
                         indent=2, sort_keys=True))
        return 1 if faults else 0
    if not found:
        print(f"{NONE_RUNNING}; {NONE_HINT}")
        return 0
    blocks = []
    for repo, agents in listed:
        count = f"{len(agents)} agent{'' if len(agents) == 1 else 's'}"
        heading = f"{repo.label}  {repo.paths.root}  ({count}, engine pid {repo.registration.pid})"
        blocks.append(heading + "\n" + (table(agents) if agents else "  no agents"))
    if blocks:
        print("\n\n".join(blocks))
    return 1 if faults else 0


def ui_all(args: argparse.Namespace, table: Table) -> int:
    """The dashboard over every repository with a running engine."""
    from supervisor import repositories as repos
    from supervisor.errors import SupervisorError

    repos.refuse_inside_an_agent("`ui --all`")
    if not repos.repositories():
        raise SupervisorError(NONE_RUNNING, hint=NONE_HINT)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("supervisor: the dashboard needs a terminal; here is the listing instead", file=sys.stderr)
        return ls_all(argparse.Namespace(json=False), table)
    from supervisor.ui.app import SupervisorApp  # Textual is imported only here: the CLI stays light
    from supervisor.ui.everywhere import EverySource

    SupervisorApp(EverySource(), remember_settings=True).run()
    return 0


def _words(error: Exception) -> str:
    from supervisor.errors import SupervisorError

    return error.message if isinstance(error, SupervisorError) else f"{type(error).__name__}: {error}"
