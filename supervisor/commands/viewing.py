"""`ls`, `show`, `usage`, `log` and `attach`: seeing the agents, one or all, and their panes."""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import time
from typing import Any

from supervisor.commands.common import Add, call, print_json, repo_paths, warn_store_notices
from supervisor.errors import SupervisorError, UsageError
from supervisor.hostside.texts import age
from supervisor.hostside.texts import table as text_table


def register(add: Add) -> None:
    p = add("ls", cmd_ls, "list all agents as a tree")
    p.add_argument("--all", action="store_true", help="every repository of yours with a running engine")
    p.add_argument("--json", action="store_true")
    p = add("show", cmd_show, "one agent in full")
    p.add_argument("agent")
    p.add_argument("--json", action="store_true")
    p = add("usage", cmd_usage, "tokens, cost and context per agent, tree, plan or day (from the CLIs' records)")
    p.add_argument("--since", metavar="DURATION", help="only what was spent in the last DURATION (e.g. 1d, 12h)")
    p.add_argument("--by", choices=("agent", "tree", "plan", "day"), default="agent",
                   help="how to group (default agent)")
    p.add_argument("--json", action="store_true")
    p = add("log", cmd_log, "the agent's pane transcript, and its screen now")
    p.add_argument("agent")
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing lines as the agent shows them, each once")
    p.add_argument("--raw", action="store_true", help="keep colours")
    p = add("attach", cmd_attach, "attach the terminal to the agent's pane")
    p.add_argument("agent")


def cmd_ls(args: argparse.Namespace) -> int:
    if args.all:
        from supervisor.commands.everywhere import ls_all

        return ls_all(args, agents_table)
    agents = call("ls")
    warn_store_notices()
    if args.json:
        print_json(agents)
        return 0
    if not agents:
        print("no agents; start one with `supervisor start NAME --task TEXT`")
        return 0
    print(agents_table(agents))
    return 0


def agents_table(agents: list[dict[str, Any]]) -> str:
    """`ls` as text: the agents as a tree, one line each."""
    hosts = any(agent.get("host", "local") != "local" for agent in agents)  # a HOST column while one is elsewhere
    rows = [["NAME", "ROLE", "STATE", *(["HOST"] if hosts else []), "FOR", "CPU", "MEM", "LAST", "TASK"]]
    merged = {agent["name"] for agent in agents if agent.get("merged")}
    for agent in agents:
        indent = "  " * (agent["level"] - 1) + ("└ " if agent["level"] > 1 else "")
        state = agent["state"]
        if agent.get("exit_code") is not None:
            state += f" ({agent['exit_code']})"
        waits = [name for name in agent.get("after") or [] if name not in merged]
        if state == "queued" and waits:
            state += f" (after {', '.join(waits)})"
        elif agent.get("merged"):
            state += " (merged)"
        elif agent.get("restorable"):
            state += " (restorable)"  # its pane went with the tmux server: `supervisor restore --all`
        elif agent.get("last_state"):
            state += f" ({agent['last_state']})"  # unreachable: what it was doing when its host went out of reach
        cpu = f"{agent['cpu_percent']:.0f}%" if agent.get("cpu_percent") is not None else "-"
        task = (agent.get("task") or "").splitlines()[0][:60] if agent.get("task") else ""
        if agent.get("waiting_reason"):  # what needs a human (or what it waits for: a limit's reset) comes first
            task = f"{'' if agent['state'] == 'limited' else 'needs you: '}{agent['waiting_reason'][:80]}"
        rows.append([indent + agent["name"], agent.get("role") or "-", state,
                     *([agent.get("host") or "local"] if hosts else []), age(agent["state_since"]), cpu,
                     _mem(agent.get("rss_bytes")), age(agent.get("last_activity_at")), task])
    return text_table(rows)


def cmd_usage(args: argparse.Namespace) -> int:
    from supervisor.usage.report import since_time, table

    try:
        since = since_time(args.since)
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    answer = call("usage", {"since": since, "by": args.by})
    print_json(answer) if args.json else print(table(answer))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    agent = call("show", {"name": args.agent})
    if args.json:
        print_json(agent)
        return 0
    fields = ["name", "role", "state", "state_since", "reason", "waiting_reason", "exit_code", "task", "profile",
              "command", "isolation", "worktree", "branch", "base", "target", "merged", "merge_note", "plan", "after",
              "best_of", "pane", "pid", "port", "started_at", "last_activity_at", "cpu_percent", "rss_bytes",
              "restarts", "transcript"]
    for key in fields:
        value = agent.get(key)
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        if value is None or value == "":
            continue
        text = str(value).replace("\n", "\n" + " " * 18)
        print(f"{key + ':':<17} {text}")
    from supervisor.usage.report import show_lines

    for line in show_lines(agent.get("usage") or {}):
        print(line)
    if agent.get("last_event"):
        print(f"{'last_event:':<17} {_event_gist(agent['last_event'])}, {age(agent['last_event']['at'])} ago")
    for violation in agent.get("violations") or []:
        print(f"boundary:         {violation['commit'][:10]} {violation['subject']}")
        for path in violation["paths"]:
            print(f"                    {path}")
    check = agent.get("check")
    if check:
        verdict = "passed" if check["passed"] else f"failed (exit {check['exit_code']})" \
            if check["exit_code"] is not None else "did not finish"
        print(f"{'check:':<17} `{check['command']}` {verdict} in {check['seconds']}s on {check['branch_tip'][:10]}")
    for conflict in agent.get("conflicts") or []:
        other = conflict["with"] if conflict.get("branch") in (None, conflict["with"]) else \
            f"{conflict['with']} ({conflict['branch']})"
        print(f"conflict:         with {other}")
        for path in conflict.get("files") or []:
            print(f"                    {path}")
    if agent.get("contract_unverified"):
        source = agent["contract_unverified"].get("source")
        print(f"\ncontract: UNVERIFIED (rebuilt from {source}; `supervisor merge {agent['name']} --confirm-contract` "
              "confirms it)")
    if agent.get("contract_tampered"):
        print(f"\ncontract: TAMPERED ({agent['contract_tampered'].get('why')}; read it below, then "
              f"`supervisor merge {agent['name']} --confirm-contract` confirms it)")
    if agent.get("contract"):
        print("\ncontract (SESSION.md):")
        for line in _without_comments(agent["contract"]):
            print(f"  {line}")
    if agent.get("screen"):
        print("\nscreen:")
        for line in agent["screen"]:
            print(f"  │ {line}")
    if agent.get("events"):
        from supervisor.core.eventtext import clock, describe

        print("\nevents:")
        for event in agent["events"]:
            at = _iso_seconds(event["ts"])
            print(f"  {clock(at) if at is not None else event['ts']}  {describe(event)}"[:200])
    return 0


def _event_gist(event: dict[str, Any]) -> str:
    """`hook PreToolUse`, `stalled began`, `idle (was working)`: an event in a few words."""
    from supervisor.core.eventtext import describe

    return describe(event)[:100]


def _mem(rss: int | None) -> str:
    if rss is None:
        return "-"
    for unit in ("B", "K", "M", "G"):
        if rss < 1024 or unit == "G":
            return f"{rss:.0f}{unit}" if unit == "B" else f"{rss:.1f}{unit}"
        rss /= 1024  # type: ignore[assignment]
    return "-"


def _iso_seconds(iso: str) -> float | None:
    from datetime import datetime

    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _without_comments(text: str) -> list[str]:
    lines, inside = [], False
    for line in text.splitlines():
        if line.strip().startswith("<!--"):
            inside = "-->" not in line
            continue
        if inside:
            inside = "-->" not in line
            continue
        if line.strip():
            lines.append(line)
    return lines


def cmd_log(args: argparse.Namespace) -> int:
    """The transcript (what scrolled off the agent's screen, each run's last screen), then what its screen shows
    beyond it, as the engine last wrote it down (brought up to this moment first when an engine runs); `-f`
    follows both (supervisor.engine.follow)."""
    from supervisor.engine.follow import Follower
    from supervisor.engine.livescreen import shown
    from supervisor.engine.screentext import strip_ansi

    paths = repo_paths()
    path = paths.transcript(args.agent)
    if not path.exists():
        from supervisor.suggest import did_you_mean

        known = [found.stem for found in path.parent.glob("*.log")]  # every agent's, a removed one's too
        raise UsageError(f"no transcript for {args.agent!r}",
                         hint=did_you_mean(args.agent, known) or "`supervisor ls` lists the agents")
    with contextlib.suppress(SupervisorError):  # without an engine, the files are all there is
        call("unwritten", {"name": args.agent}, autostart=False)
    out = sys.stdout.buffer

    def show(text: str) -> None:
        if text:
            out.write((text if args.raw else strip_ansi(text)).encode(errors="replace"))
            out.flush()

    if not args.follow:
        show(shown(path).decode(errors="replace"))
        return 0
    follower = Follower(path)
    show(follower.start())
    try:
        while True:
            time.sleep(0.25)
            show(follower.poll())
    except KeyboardInterrupt:
        return 0


def cmd_attach(args: argparse.Namespace) -> int:
    import subprocess

    from supervisor.tmux.attach import plan_for

    info = call("attach_info", {"name": args.agent})
    plan = plan_for(info)  # on a host: the user's own ssh, with a terminal, to its pane there (tmux/attach.py)
    if plan.how in ("switch", "popup"):  # the user's tmux shows it: this process needs no terminal
        return subprocess.run(plan.argv, check=False).returncode
    if not sys.stdin.isatty():
        raise SupervisorError("attach needs a terminal", hint=f"run it in a terminal: {shlex.join(plan.argv)}")
    os.execvpe(plan.argv[0], plan.argv, plan.env)
