"""`stop`, `restart`, `approve`, `deny`, `send` and `rm` on one agent or many: several names, `--all`, `--state S`,
`--host H`.

The engine does the loop (the `each` request, supervisor.engine.bulk): one request, each agent under its own
lock, one result per agent. Here: one line per agent of what happened (refusals on stderr), and an exit code
that is 0 only when every one succeeded.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from supervisor.commands.common import Add, call
from supervisor.errors import UsageError

SELECTION_HELP = (
    "NAME… and --all/--state/--host combine (--host H alone: what --all picks, on H); each agent is acted on "
    "once. A name that does not exist stops the whole command before anything is done (a typo in a list is not "
    "what you meant, and half a stop or rm cannot be taken back); an agent that refuses (e.g. it is not "
    "waiting) is reported and the others still act. The exit code is 0 only when every one succeeded.")

# verb → (what --all selects, the words for an empty selection)
_ALL = {
    "stop": ("every running or queued agent", "nothing to stop: no agent runs"),
    "restart": ("every agent (not the queued ones)", "no agent to restart"),
    "approve": ("every agent waiting for an answer", "nothing to approve: no agent waits for an answer"),
    "deny": ("every agent waiting for an answer", "nothing to deny: no agent waits for an answer"),
    "send": ("every running agent", "no running agent to send to"),
    "rm": ("every agent (running ones refused without --force)", "no agent to remove"),
}


def register(add: Add) -> None:
    p = add("send", cmd_send, "type TEXT into each agent and submit it ('-' reads stdin); typed ahead where one is "
            "mid-turn")
    p.add_argument("words", nargs="*", metavar="NAME… TEXT",
                   help="the agents, then the text last (`send a b -- TEXT` for a text that starts with -)")
    _selection(p, "send")
    p = add("stop", cmd_stop, "stop agents with their helpers: graceful, then the whole process tree is killed")
    _selection(p, "stop")
    p.add_argument("--kill", action="store_true", help="kill at once, without the grace period")
    p = add("restart", cmd_restart, "start agents again in their own worktrees")
    _selection(p, "restart")
    p = add("rm", cmd_rm, "remove stopped agents' worktrees and branches (with their helpers')")
    _selection(p, "rm")
    p.add_argument("--force", action="store_true", help="also drop unmerged work and stop it if running")
    p = add("approve", cmd_approve, "approve what each agent waits for (its permission request)")
    _selection(p, "approve")
    p.add_argument("--always", action="store_true",
                   help="pick the dialog's standing option (always / for this session / don't ask again)")
    p.add_argument("--reason", help=argparse.SUPPRESS)
    p = add("deny", cmd_deny, "deny what each agent waits for; the reason reaches the agent")
    _selection(p, "deny")
    p.add_argument("--reason", help="why: each agent is told")


def _selection(p: argparse.ArgumentParser, verb: str) -> None:
    if verb != "send":
        p.add_argument("agents", nargs="*", metavar="NAME", help="the agents (a helper by its full name)")
    p.add_argument("--all", action="store_true", help=_ALL[verb][0])
    p.add_argument("--state", action="append", default=[], metavar="S",
                   help="the agents in state S (repeatable); with --all, those of them --all would pick")
    p.add_argument("--host", action="append", default=[], metavar="H",
                   help="the agents on host H (repeatable; `local` is this machine); with --state, those in S")
    p.epilog = SELECTION_HELP


def act(verb: str, names: list[str], args: argparse.Namespace, params: dict[str, Any]) -> int:
    """Do `verb` to the selected agents; print a line per agent; the exit code."""
    if not names and not args.all and not args.state and not args.host:
        raise UsageError(f"name the agents to {verb}, or give --all, --state S or --host H",
                         hint="`supervisor ls` lists the agents")
    request: dict[str, Any] = {"method": verb, "names": names, "every": args.all, "states": args.state,
                               "params": params}
    if args.host:
        request["hosts"] = args.host
    answer = call("each", request)
    results = answer["results"]
    if not results:
        print(_ALL[verb][1] + (f" (on host {', '.join(args.host)})" if args.host else ""))
        return 0
    code = 0
    one = len(names) == 1 and not args.all and not args.state and not args.host  # as it always was: the error alone
    for item in results:
        name = item["name"]
        if item["ok"]:
            print(_done(verb, item, args))
            continue
        error = item["error"]
        print(f"supervisor: error: {error if one or error.startswith(name) else f'{name}: {error}'}", file=sys.stderr)
        if item.get("hint"):
            print(f"hint: {item['hint']}", file=sys.stderr)
        code = max(code, int(item.get("exit_code") or 1))
    return code


def _done(verb: str, item: dict[str, Any], args: argparse.Namespace) -> str:
    name = item["name"]
    if item.get("with"):
        done = "removed" if verb == "rm" else "killed" if getattr(args, "kill", False) else "stopped"
        return f"{name}: {done} with {item['with']}"
    result = item["result"]
    if verb == "stop":
        return f"{name}: {result['state']}" + (f" ({result['reason']})" if result.get("stop_pending") else "")
    if verb == "restart":
        return f"{name}: {result['state']} (pane {result['pane']})"
    if verb in ("approve", "deny"):
        return f"{name}: {result['answered']} {result.get('request') or ''}".rstrip()
    if verb == "send":
        return f"{name}: sent"
    helpers = f", with {', '.join(result['helpers'])}" if result.get("helpers") else ""
    left = result.get("left_on_host") or {}
    if left:
        return "\n".join([f"{name}: removed here{helpers}",
                          *(f"  {member}: {said}" for member, said in left.items())])
    return f"{name}: removed (worktree and branch deleted{helpers})"


def cmd_send(args: argparse.Namespace) -> int:
    words = list(args.words)
    if not words:
        raise UsageError("what to send? give the text last: `supervisor send NAME… TEXT` or `send --all TEXT`")
    if len(words) == 1 and not args.all and not args.state and not args.host:
        raise UsageError(f"send {words[0]!r} to whom? name the agents first, the text last: "
                         "`supervisor send NAME… TEXT` (or --all / --state S / --host H)")
    text = sys.stdin.read() if words[-1] == "-" else words[-1]
    return act("send", words[:-1], args, {"text": text})


def cmd_stop(args: argparse.Namespace) -> int:
    return act("stop", args.agents, args, {"kill": args.kill})


def cmd_restart(args: argparse.Namespace) -> int:
    return act("restart", args.agents, args, {})


def cmd_rm(args: argparse.Namespace) -> int:
    return act("rm", args.agents, args, {"force": args.force})


def cmd_approve(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"reason": args.reason}
    if args.always:
        params["always"] = True
    return act("approve", args.agents, args, params)


def cmd_deny(args: argparse.Namespace) -> int:
    return act("deny", args.agents, args, {"reason": args.reason})
