"""`supervisor restore`: bring back agents whose panes are gone, each in its own conversation.

Its selectors combine as the other bulk verbs' do (supervisor.commands.many): NAME… with --all, --state S and
--host H adds to the named ones what those pick (--all: the restorable ones, those whose pane went with the
tmux server; --state: the ended ones in S; --host alone: what --all picks there; together: every condition).
--all or --host alone is left to the engine (`every`), which passes over an agent another request brought back
meanwhile; otherwise the CLI names each one, and the engine refuses the whole request before anything starts
when one is no case for a restore.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from supervisor.commands.common import Add, call, print_json
from supervisor.core.model import State
from supervisor.errors import UsageError
from supervisor.suggest import did_you_mean

ENDED = frozenset(state.value for state in State if state.ended)


def register(add: Add) -> None:
    p = add("restore", cmd_restore, "bring back agents whose panes are gone (tmux server ended, reboot), each in "
            "its own conversation")
    p.add_argument("agents", nargs="*", metavar="NAME", help="these agents (also one that ended by itself)")
    p.add_argument("--all", action="store_true", help="every agent whose pane went with the tmux server (and that was "
                   "not stopped since)")
    p.add_argument("--state", action="append", default=[], metavar="S",
                   help="the ended agents in state S (repeatable): exited, failed, killed, stopped")
    p.add_argument("--host", action="append", default=[], metavar="H",
                   help="the agents on host H (repeatable): alone or with --all, those --all picks there; with "
                   "--state, those in S there")
    p.add_argument("--json", action="store_true")


def cmd_restore(args: argparse.Namespace) -> int:
    names = list(dict.fromkeys(args.agents))
    states, hosts = list(args.state), list(args.host)
    if not (names or args.all or states or hosts):
        raise UsageError("name the agents to restore, or --all for every one whose pane went with the tmux server",
                         hint="`supervisor ls` shows them: their reason says the tmux server ended")
    for state in states:
        if state not in {s.value for s in State}:
            raise UsageError(f"no state {state!r}", hint=did_you_mean(state, [s.value for s in State]))
    every = args.all or bool(hosts and not states)
    request: dict[str, Any]
    if every and not names and not states:
        request = {"names": None, "every": True, **({"hosts": hosts} if hosts else {})}
    else:
        agents = call("ls")
        _check_hosts(hosts, agents)
        picked = [agent["name"] for agent in agents if (every or states) and agent["name"] not in names
                  and (not every or agent.get("restorable"))
                  and (not states or (agent["state"] in states and agent["state"] in ENDED))
                  and (not hosts or agent.get("host") in hosts)]
        names += picked
        if not names:
            what = f"no ended agent is {' or '.join(states)}" if states else "no agent's pane went with the tmux server"
            print(f"nothing to restore: {what}{' on ' + ', '.join(hosts) if hosts else ''}")
            return 0
        request = {"names": names, "every": False}
    result = call("restore", request)
    if args.json:
        print_json(result)
        return 1 if result["failed"] else 0
    if not result["restored"] and not result["failed"]:
        print("nothing to restore: no agent's pane went with the tmux server (`supervisor restore NAME` brings "
              "back one that ended by itself)")
    for agent in result["restored"]:
        how = f"resumed conversation {agent['session_id']}" if agent["session_id"] else \
            "resumed its conversation" if agent["resumed"] else \
            "started afresh, its task given again" if agent.get("task") else "started afresh"
        print(f"{agent['name']}: {agent['state']} in {agent['worktree']} ({how})")
    for failure in result["failed"]:
        print(f"supervisor: error: {failure['name']} not restored: {failure['error']}", file=sys.stderr)
        if failure.get("hint"):
            print(f"hint: {failure['hint']}", file=sys.stderr)
    return 1 if result["failed"] else 0


def _check_hosts(hosts: list[str], agents: list[dict[str, Any]]) -> None:
    """A host no agent is on is a typo, not "nothing there" (the engine says so for `--host` alone)."""
    known = sorted({str(agent.get("host") or "local") for agent in agents})
    for host in hosts:
        if host not in known:
            raise UsageError(f"no agent is on host {host!r}",
                             hint=did_you_mean(host, known) or f"the agents' hosts: {', '.join(known) or 'none'}")
