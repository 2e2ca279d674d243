"""`start`, `run`, `compare`, `helper` and `merge`: a session's course, started alone, from a plan, as
best-of-N or as a helper, then merged."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from supervisor.commands.common import Add, call, print_json
from supervisor.errors import UsageError
from supervisor.hostside.pane_options import add_helper_options
from supervisor.hostside.texts import table as text_table


def register(add: Add) -> None:
    p = add("start", cmd_start, "start a session in its own worktree and tmux pane")
    p.add_argument("name")
    task = p.add_mutually_exclusive_group()
    task.add_argument("--task", help="the first prompt")
    task.add_argument("--task-file", help="read the first prompt from a file")
    p.add_argument("--contract", help="a SESSION.md to use as the session's contract")
    p.add_argument("--agent", help="agent profile: claude, codex, aider, gemini, generic")
    p.add_argument("--command", help="the command line to run (any program; profile from its name)")
    p.add_argument("--base", default="HEAD", help="the revision to branch from (default HEAD)")
    p.add_argument("--isolation", choices=("sandbox", "none"),
                   help="this session's isolation (and its helpers' at least), over supervisor.yaml's")
    p.add_argument("--host", metavar="H", help="run it on host H of supervisor.yaml's `hosts:` (default: local, "
                   "this machine); refused when H has no free place (max_agents)")
    p.add_argument("--no-wait", action="store_true", help="return once launched; deliver the task meanwhile")
    p.add_argument("--best-of", type=int, metavar="N",
                   help="start N sessions NAME-1..NAME-N on the same task; `compare NAME` shows them side by side")
    p.add_argument("--json", action="store_true")

    p = add("run", cmd_run, "start the sessions of a plan (PLAN.yaml) in dependency order")
    p.add_argument("plan", help="the plan file")
    p.add_argument("--dry-run", action="store_true", help="check the plan and show the order; start nothing")
    p.add_argument("--json", action="store_true")
    p = add("compare", cmd_compare, "a best-of-N's candidates side by side: files, size, merge.check")
    p.add_argument("name", help="the NAME given to `start NAME --best-of N`")
    p.add_argument("--no-check", action="store_true", help="do not run merge.check")
    p.add_argument("--json", action="store_true")

    p = add("helper", cmd_helper, "start a helper under an agent, within the agent's contract")
    add_helper_options(p, "the agent whose pane runs this")
    p = add("merge", cmd_merge, "audit the agent's commits and merge its branch into its parent's")
    p.add_argument("agent")
    p.add_argument("--confirm-contract", action="store_true",
                   help="you read the agent's contract (`supervisor show`) and confirm it: needed once for an agent "
                        "rebuilt from its SESSION.md")
    p.add_argument("--accept-tamper", action="store_true",
                   help="you looked at a branch that moved by someone else's hand (a `tamper` alert) and accept it")
    p.add_argument("--json", action="store_true")


def _task_text(args: argparse.Namespace) -> str | None:
    if args.task_file:
        try:
            return Path(args.task_file).read_text()
        except OSError as exc:
            raise UsageError(f"cannot read --task-file: {exc.strerror}: {args.task_file}") from None
    return str(args.task) if args.task else None


def cmd_start(args: argparse.Namespace) -> int:
    params: dict[str, object] = {"name": args.name, "task": _task_text(args), "command": args.command,
                                 "profile": args.agent, "base": args.base, "wait": not args.no_wait}
    if args.contract:
        from supervisor.client import contract_params

        params.update(contract_params(args.contract))
    if args.isolation is not None:
        params["isolation"] = args.isolation
    if args.host is not None:
        params["host"] = args.host
    if args.best_of is not None:
        params["best_of"] = args.best_of
        contest = call("start", params)
        if args.json:
            print_json(contest)
            return 0
        for agent in contest["candidates"]:
            _report_started(args, agent, bool(params["task"]))
        print(f"compare them with `supervisor compare {args.name}`; merging one removes the others")
        return 0
    agent = call("start", params)
    return _report_started(args, agent, bool(params["task"]))


def cmd_run(args: argparse.Namespace) -> int:
    path = Path(args.plan).absolute()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the plan {path}: {getattr(exc, 'strerror', None) or exc}") from None
    result = call("run", {"text": text, "path": str(path), "dry_run": args.dry_run})
    if args.json:
        print_json(result)
        return 0
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    merging = "merged by themselves once finished" if result["merge"] == "auto" else "merged by you"
    verb = "would start" if args.dry_run else "queued"
    print(f"{verb} {len(result['sessions'])} session(s) on {result['target']}, {merging}:")
    hosts = any(session.get("host", "local") != "local" for session in result["sessions"])
    for session in result["sessions"]:
        after = f"after {', '.join(session['after'])}" if session["after"] else "starts now"
        where = f"on {session['host']:<12} " if hosts else ""
        print(f"  {session['name']:<20} {where}{after}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    result = call("compare", {"name": args.name, "check": not args.no_check}, timeout=None)
    if args.json:
        print_json(result)
        return 0
    rows = result["candidates"]
    header = ["", *(row["name"] for row in rows)]
    table = [header,
             ["state", *(row["state"] + (" (merged)" if row["merged"] else "") for row in rows)],
             ["commits", *(str(row["commits"]) for row in rows)],
             ["uncommitted", *(str(row["uncommitted"]) for row in rows)],
             ["files", *(str(len(row["files"])) for row in rows)],
             ["lines", *(f"+{row['added']} -{row['removed']}" for row in rows)]]
    if result["check_command"]:
        table.append([f"check `{result['check_command']}`", *(_verdict(row["check"]) for row in rows)])
    paths = sorted({path for row in rows for path in row["files"]})
    if paths:
        table.append(["", *("" for _ in rows)])
    for path in paths:
        cells = [f"+{row['files'][path][0]} -{row['files'][path][1]}" if path in row["files"] else "·"
                 for row in rows]
        table.append([path, *cells])
    print(f"{args.name}: {len(rows)} candidates against {result['target']}")
    print(text_table([[*row, ""] for row in table]))
    print("\nmerge the best with `supervisor merge NAME`; the others are then stopped and removed")
    return 0


def _verdict(check: dict[str, Any] | None) -> str:
    if not check:
        return "-"
    if check.get("error"):
        return str(check["error"])[:40]
    if check["passed"]:
        return f"passed ({check['seconds']:.0f}s)"
    return f"FAILED (exit {check['exit_code']})" if check["exit_code"] is not None else "FAILED (timeout)"


def _report_started(args: argparse.Namespace, agent: dict[str, Any], has_task: bool) -> int:
    if args.json:
        print_json(agent)
        return 0
    delivered = " (task delivered)" if has_task and not args.no_wait else ""
    if agent["state"] == "waiting":
        delivered = f" — it needs you first: {agent['waiting_reason']}; the task follows once its prompt shows " \
                    f"(`supervisor attach {agent['name']}`)"
    where = f" on host {agent['host']}" if agent.get("host", "local") != "local" else ""
    print(f"{agent['name']}: {agent['state']} in {agent['worktree']}{where} on {agent['branch']}{delivered}")
    return 0


def cmd_helper(args: argparse.Namespace) -> int:
    task = _task_text(args)
    params = {"name": args.name, "role": args.role, "task": task, "paths": args.paths or None,
              "parent": args.parent, "wait": not args.no_wait}
    agent = call("helper", params)
    return _report_started(args, agent, bool(task))


def cmd_merge(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"name": args.agent}
    if args.confirm_contract:
        params["confirm_contract"] = True
    if args.accept_tamper:
        params["accept_tamper"] = True
    result = call("merge", params)
    if args.json:
        print_json(result)
        return 0
    if result["already_merged"]:
        print(f"{args.agent}: nothing to merge; {result['into']} already has all of it")
        return 0
    how = "fast-forward" if result["fast_forward"] else f"merge commit {result['commit'][:10]}"
    where = f"; updated {result['updated_worktree']}" if result["updated_worktree"] else ""
    print(f"{args.agent}: merged {result['commits']} commit(s) into {result['into']} ({how}){where}")
    if result["uncommitted"]:
        print(f"note: {args.agent} has {result['uncommitted']} uncommitted change(s), which were not merged",
              file=sys.stderr)
    return 0
