"""The `supervisor` command: argument parsing and output only; the work happens in the engine.

Imports stay light at module level (the CLI runs often, also from agents' hooks); a command imports what
it needs when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from supervisor import __version__
from supervisor.commands import down, hosts, many, restoring, review
from supervisor.commands.parsing import INTERNAL_COMMANDS, Parser, refuse_unknown
from supervisor.errors import SupervisorError, UsageError
from supervisor.hostside import taskboard
from supervisor.hostside.texts import age as _age
from supervisor.hostside.texts import table as _table

Command = Callable[[argparse.Namespace], int]


def _paths() -> Any:
    from supervisor.paths import find_repo

    return find_repo()


def _call(method: str, params: dict[str, Any] | None = None, *, autostart: bool = True,
          timeout: float | None = 600) -> Any:
    from supervisor.client import call

    paths = _paths()
    result = call(paths, method, params, autostart=autostart, timeout=timeout)
    _warn_if_config_refused(paths.config_refused)
    _print_notes()
    return result


def _print_notes() -> None:
    """What the engine noted beside its answers (the store cannot be written), once each, on stderr."""
    from supervisor import client

    for note in dict.fromkeys(client.notes):
        print(f"supervisor: warning: {note}", file=sys.stderr)
    client.notes.clear()


@functools.cache
def _warn_if_config_refused(marker: Path) -> None:
    """The running engine did not apply an edit of supervisor.yaml that does not parse: say so on stderr
    (once per command), so that the edit is not thought to be in force. The engine's own verdict (its
    environment, not this shell's, expands `${VAR}`)."""
    try:
        error = marker.read_text().strip()
    except OSError:
        return
    print(f"supervisor: warning: {error}", file=sys.stderr)
    print("hint: the running engine keeps the configuration it read before; it applies the file once it "
          "is fixed", file=sys.stderr)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


# listing ------------------------------------------------------------------------------------------------


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


def _warn_store_notices() -> None:
    """What the running engine found wrong in the store at its start (records set aside, agents rebuilt)."""
    with contextlib.suppress(OSError):
        for line in _paths().store_notice.read_text().splitlines():
            if line.strip():
                print(f"supervisor: warning: {line}", file=sys.stderr)


def cmd_ls(args: argparse.Namespace) -> int:
    if args.all:
        from supervisor.commands.everywhere import ls_all

        return ls_all(args, agents_table)
    agents = _call("ls")
    _warn_store_notices()
    if args.json:
        _print_json(agents)
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
                     *([agent.get("host") or "local"] if hosts else []), _age(agent["state_since"]), cpu,
                     _mem(agent.get("rss_bytes")), _age(agent.get("last_activity_at")), task])
    return _table(rows)


def cmd_usage(args: argparse.Namespace) -> int:
    from supervisor.usage.report import since_time, table

    try:
        since = since_time(args.since)
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    answer = _call("usage", {"since": since, "by": args.by})
    _print_json(answer) if args.json else print(table(answer))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    agent = _call("show", {"name": args.agent})
    if args.json:
        _print_json(agent)
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
        print(f"{'last_event:':<17} {_event_gist(agent['last_event'])}, {_age(agent['last_event']['at'])} ago")
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


# lifecycle ----------------------------------------------------------------------------------------------


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
        contest = _call("start", params)
        if args.json:
            _print_json(contest)
            return 0
        for agent in contest["candidates"]:
            _report_started(args, agent, bool(params["task"]))
        print(f"compare them with `supervisor compare {args.name}`; merging one removes the others")
        return 0
    agent = _call("start", params)
    return _report_started(args, agent, bool(params["task"]))


def cmd_run(args: argparse.Namespace) -> int:
    path = Path(args.plan).absolute()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the plan {path}: {getattr(exc, 'strerror', None) or exc}") from None
    result = _call("run", {"text": text, "path": str(path), "dry_run": args.dry_run})
    if args.json:
        _print_json(result)
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
    result = _call("compare", {"name": args.name, "check": not args.no_check}, timeout=None)
    if args.json:
        _print_json(result)
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
    print(_table([[*row, ""] for row in table]))
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
        _print_json(agent)
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
    agent = _call("helper", params)
    return _report_started(args, agent, bool(task))


def cmd_msg(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    sent = _call("msg", {"to": args.to, "text": text})
    print(f"to {sent['to']}: saved in {sent['file']}; delivered {sent['delivered']}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"name": args.agent}
    if args.confirm_contract:
        params["confirm_contract"] = True
    if args.accept_tamper:
        params["accept_tamper"] = True
    result = _call("merge", params)
    if args.json:
        _print_json(result)
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


def cmd_attach(args: argparse.Namespace) -> int:
    import subprocess

    from supervisor.tmux.attach import plan_attach, plan_remote, show_pane

    info = _call("attach_info", {"name": args.agent})
    if info.get("ssh"):  # on a host: the user's own ssh, with a terminal, to its pane there
        plan = plan_remote(shlex.split(info["ssh"]))
        if plan.how != "popup" and not sys.stdin.isatty():
            raise SupervisorError("attach needs a terminal", hint=f"run it in a terminal: {info['ssh']}")
        if plan.how == "popup":
            return subprocess.run(plan.argv, check=False).returncode
        os.execvpe(plan.argv[0], plan.argv, plan.env)
    socket = Path(info["socket"])
    plan = plan_attach(socket, info["pane"], info["session"])  # see supervisor.tmux.attach
    show_pane(socket, info["pane"])
    if plan.how == "switch":
        return subprocess.run(plan.argv, check=False).returncode
    if not sys.stdin.isatty():
        raise SupervisorError("attach needs a terminal", hint=f"run it in a terminal: {' '.join(plan.argv)}")
    os.execvpe(plan.argv[0], plan.argv, plan.env)


def cmd_log(args: argparse.Namespace) -> int:
    """The transcript (what scrolled off the agent's screen, each run's last screen), then what its screen shows
    beyond it, as the engine last wrote it down (brought up to this moment first when an engine runs); `-f`
    follows both (supervisor.engine.follow)."""
    from supervisor.engine.follow import Follower
    from supervisor.engine.livescreen import shown
    from supervisor.engine.screentext import strip_ansi

    paths = _paths()
    path = paths.transcript(args.agent)
    if not path.exists():
        from supervisor.suggest import did_you_mean

        known = [found.stem for found in path.parent.glob("*.log")]  # every agent's, a removed one's too
        raise UsageError(f"no transcript for {args.agent!r}",
                         hint=did_you_mean(args.agent, known) or "`supervisor ls` lists the agents")
    with contextlib.suppress(SupervisorError):  # without an engine, the files are all there is
        _call("unwritten", {"name": args.agent}, autostart=False)
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


# agents' own commands -----------------------------------------------------------------------------------


def cmd_hook(args: argparse.Namespace) -> int:
    """Run by agent-CLI hooks: hand the event on stdin to the engine and return at once. It never fails
    the agent: with no engine running, the event is spooled for the next engine to read."""
    socket_path = os.environ.get("SUPERVISOR_SOCKET")
    agent = os.environ.get("SUPERVISOR_AGENT")
    if not socket_path or not agent:
        return 0  # not an agent supervisor started
    from supervisor.engine.hooks import HOOK_INPUT, fit, unread

    raw = sys.stdin.buffer.read(HOOK_INPUT + 1)  # a prompt can be megabytes (a pasted task)
    try:
        event = unread(raw) if len(raw) > HOOK_INPUT else json.loads(raw or b"{}")
    except ValueError:
        event = {"hook_event_name": "unparsable", "raw": raw[:200].decode(errors="replace")}
    if not isinstance(event, dict):
        event = {"hook_event_name": "unparsable"}
    if isinstance(event.get("prompt"), str):
        event["prompt"] = event["prompt"][:4096]  # the engine keeps none of it: the CLI's transcript has it
    event = fit(event)  # whatever its size, it reaches the engine (or the spool)
    from supervisor.client import EngineGone, EngineNotRunning, EngineTimeout, request_at

    # A permission request is held until a human answers (the engine lets go after approval.timeout).
    held = event.get("hook_event_name") == "PermissionRequest"
    at = time.time()
    key = f"{at:.6f}-{os.getpid()}"  # the event's id, in the request and in its spooled copy alike
    try:
        result = request_at(socket_path, "hook", {"event": event, "at": at, "key": key},
                            timeout=None if held else 5)
        if isinstance(result, dict) and result.get("output"):
            print(json.dumps(result["output"]))
    except (SupervisorError, OSError) as exc:
        if isinstance(exc, SupervisorError) and not isinstance(exc, EngineNotRunning | EngineGone | EngineTimeout):
            return 0  # the engine answered (e.g. refused a caller that is no agent): nothing to keep
        from supervisor.engine.hooks import spool
        from supervisor.engine.spools import spool_of

        folder = spool_of(socket_path)  # the agent's own: it says whose the event is
        if folder is not None:
            with contextlib.suppress(OSError):
                spool(folder, event, at=at, key=key)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    agent = _call("report", {"waiting_for": args.waiting_for})
    waits = ", ".join(args.waiting_for) or "nobody"
    print(f"{agent['name']}: waiting for {waits}")
    return 0


# task board ---------------------------------------------------------------------------------------------


def cmd_task(args: argparse.Namespace) -> int:
    """`supervisor task add|ls|claim|done|release`: the task board for swarms of fresh sessions (its words are
    shared with the client in an agent's pane on a host: supervisor/hostside/taskboard.py)."""
    from supervisor.hostside import taskboard

    try:
        return taskboard.run(args, _call)
    except taskboard.BadInput as exc:
        raise UsageError(str(exc)) from None


# engine, init, doctor -----------------------------------------------------------------------------------


def cmd_engine(args: argparse.Namespace) -> int:
    from supervisor import client

    if args.foreground:
        return run_engine_foreground(detached=args.detached)
    paths = _paths()
    if args.action == "start":
        client.ensure_engine(paths)
        status = client.call(paths, "status", autostart=False)
        print(f"engine running (pid {status['pid']})")
        return 0
    if args.action == "stop":
        if not client.engine_running(paths):
            print("engine: not running")
            return 0
        pid = client.call(paths, "status", autostart=False)["pid"]
        client.call(paths, "shutdown", autostart=False)
        deadline = time.monotonic() + 10
        # Stopped means ended: its socket gone and its lock let go (it finishes writing after it stops answering),
        # so a start right after is never refused by an engine still on its way out.
        while (client.engine_running(paths) or client.engine_lock_held(paths)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if client.engine_running(paths) or client.engine_lock_held(paths):
            raise SupervisorError(f"the engine (pid {pid}) did not stop within 10 s",
                                  hint=f"see {paths.engine_log}; `kill {pid}` stops it")
        print("engine stopped (agents keep running)")
        return 0
    # status
    try:
        status = client.call(paths, "status", autostart=False)
    except client.EngineNotRunning:
        if args.json:
            _print_json({"running": False})
        else:
            print("engine: not running")
        return 1
    if args.json:
        _print_json({"running": True, **status})
    else:
        print(f"engine: running, pid {status['pid']}, since {status['started_at']}, "
              f"{status['live']} live of {status['agents']} agents")
        if status.get("tick_seconds") is not None:
            print(f"watching: {status['ticks']} ticks, the last took {status['tick_seconds'] * 1000:.0f} ms")
        tmux = f"tmux -S {status['tmux_socket']} ls" if status.get("tmux_running", True) \
            else "not running (the next start starts it)"
        print(f"store: {status['store']}\nlog: {status.get('log', paths.engine_log)}\ntmux: {tmux}")
        if status.get("unwritten"):
            print(f"not written: {status['unwritten']}")
        _warn_store_notices()
    client.notes.clear()  # said above
    return 0


def run_engine_foreground(*, detached: bool = False) -> int:
    from supervisor.engine.startup import run_foreground

    return run_foreground(_paths(), detached=detached)


def cmd_init(args: argparse.Namespace) -> int:
    from supervisor.config import write_init

    path = write_init(_paths().root)
    print(f"wrote {path}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from supervisor.doctor import run_doctor, run_repair

    return run_repair() if args.repair else run_doctor(json_output=args.json)


def cmd_demo(args: argparse.Namespace) -> int:
    from supervisor.core.durations import parse_duration
    from supervisor.demo.run import run_demo

    for option, value in (("--stall-after", args.stall_after), ("--timeout", args.timeout)):
        try:
            parse_duration(value)  # a bad one is a usage error before anything is created
        except ValueError as exc:
            raise UsageError(f"{option}: {exc}") from None
    return int(run_demo(Path(args.dir) if args.dir else None, open_ui=not args.no_ui, stall_after=args.stall_after,
                        timeout=args.timeout))


def cmd_ui(args: argparse.Namespace) -> int:
    from supervisor import client

    if getattr(args, "all", False):
        from supervisor.commands.everywhere import ui_all

        return ui_all(args, agents_table)
    paths = _paths()
    client.ensure_engine(paths)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("supervisor: the dashboard needs a terminal; here is the listing instead", file=sys.stderr)
        return cmd_ls(argparse.Namespace(json=False, all=False))
    from supervisor.ui.app import run_dashboard  # Textual is imported only here: the CLI stays light

    return run_dashboard(paths)


def cmd_alerts(args: argparse.Namespace) -> int:
    """`supervisor alerts test|ls|snooze|unsnooze|silences` (alert channels, history and silences)."""
    action = args.alerts_action
    if action == "test":
        result = _call("alerts_test")
        if args.json:
            _print_json(result)
            return 0 if result["ok"] else 1
        if not result["channels"]:
            raise SupervisorError("no alert channel is configured",
                                  hint="add alerts.slack, alerts.email or alerts.command to supervisor.yaml")
        for item in result["channels"]:
            print(f"{'ok  ' if item['ok'] else 'FAIL'} {item['channel']:<8} {item['detail']} ({item['seconds']:.2f}s)")
        return 0 if result["ok"] else 1
    if action == "ls":
        alerts = _call("alerts", {"name": args.agent, "limit": args.limit})
        if args.json:
            _print_json(alerts)
            return 0
        if not alerts:
            print("no alerts")
            return 0
        rows = [["ID", "AGE", "ABOUT", "STATUS", "TRIGGERS", "DELIVERY"]]
        for alert in reversed(alerts):
            triggers = ",".join(item["trigger"] for item in alert["items"])
            deliveries = ", ".join(
                f"{d['channel']} {d['status']}" + (f" ({d['attempts']} tries: {d['last_error']})"
                                                   if d["status"] == "pending" and d["last_error"] else "")
                for d in alert["deliveries"]) or ("to " + alert["route"] if alert["route"] != "human" else "-")
            about = alert["agent"] or f"{alert['subject']} ({', '.join(alert['agents'])})"
            rows.append([str(alert["id"]), _age(alert["created"]), about[:60], alert["status"], triggers,
                         deliveries[:120]])
        print(_table(rows))
        return 0
    if action == "snooze":
        silence = _call("snooze", {"name": args.agent, "trigger": args.trigger, "duration": args.duration})
        what = " ".join(part for part in (silence["agent"], silence["trigger"]) if part)
        print(f"snoozed {what} for {silence['remaining']} (until {silence['until']}, silence {silence['id']})")
        return 0
    if action == "unsnooze":
        removed = _call("unsnooze", {"name": args.agent, "trigger": args.trigger, "id": args.id})["removed"]
        print(f"removed {removed} silence(s); alerts they held back go out now if still true")
        return 0
    found = _call("silences")
    if args.json:
        _print_json(found)
    elif not found:
        print("no silences")
    else:
        rows = [["ID", "ABOUT", "TRIGGER", "REMAINING", "UNTIL"]]
        rows += [[str(s["id"]), s["agent"] or "*", s["trigger"] or "*", s["remaining"], s["until"]] for s in found]
        print(_table(rows))
    return 0


def cmd_guard(args: argparse.Namespace) -> int:
    """Run by the pre-commit hook installed in each agent worktree: refuse a commit outside the contract."""
    from supervisor.git.guard import main as guard_main

    return guard_main(Path.cwd())


# parser -------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="supervisor", description="Run many AI coding agents in parallel on one repository.")
    parser.add_argument("--version", action="version", version=f"supervisor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(func=func)
        return command

    p = add("ui", cmd_ui, "open the dashboard (starts the engine if needed)")
    p.add_argument("--all", action="store_true", help="every repository of yours with a running engine, in one "
                   "dashboard (starts no engine)")
    p = add("demo", cmd_demo, "a scratch repository with demo agents")
    p.add_argument("dir", nargs="?", help="where to create the scratch repository (default: a temp dir)")
    p.add_argument("--no-ui", action="store_true", help="only start the demo; do not open the dashboard")
    p.add_argument("--stall-after", default="1m", metavar="DURATION",
                   help="silence that makes a working agent stalled (default 1m)")
    p.add_argument("--timeout", default="40s", metavar="DURATION",
                   help="how long the `reports` session may run before it is killed (default 40s)")
    add("init", cmd_init, "write a commented supervisor.yaml (never overwrites)")

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
    p.add_argument("name", help="its short name; the full name becomes PARENT.NAME")
    p.add_argument("--role", required=True, help="a role listed under the parent's Helper Permissions")
    task = p.add_mutually_exclusive_group()
    task.add_argument("--task", help="the first prompt")
    task.add_argument("--task-file", help="read the first prompt from a file")
    p.add_argument("--paths", nargs="+", metavar="GLOB", help="narrow the role's paths (never widen them)")
    p.add_argument("--parent", help="the parent agent (default: the agent whose pane runs this)")
    p.add_argument("--no-wait", action="store_true", help="return once launched; deliver the task meanwhile")
    p.add_argument("--json", action="store_true")
    p = add("merge", cmd_merge, "audit the agent's commits and merge its branch into its parent's")
    p.add_argument("agent")
    p.add_argument("--confirm-contract", action="store_true",
                   help="you read the agent's contract (`supervisor show`) and confirm it: needed once for an agent "
                        "rebuilt from its SESSION.md")
    p.add_argument("--accept-tamper", action="store_true",
                   help="you looked at a branch that moved by someone else's hand (a `tamper` alert) and accept it")
    p.add_argument("--json", action="store_true")
    p = add("msg", cmd_msg, "from inside a pane: leave a message for another agent of the same tree")
    p.add_argument("to", help="the recipient's full name, or 'parent'")
    p.add_argument("text", help="the message ('-' reads stdin)")

    taskboard.register(sub, cmd_task)

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
    many.register(add)  # send, stop, restart, rm, approve, deny: one agent or many
    review.register(add)  # diff, push, pr
    down.register(add)
    hosts.register(add)  # hosts, hosts check
    restoring.register(add)

    p = add("engine", cmd_engine, "manage the engine")
    p.add_argument("action", nargs="?", choices=["start", "stop", "status"], default="status")
    p.add_argument("--foreground", action="store_true", help="run the engine in this terminal")
    p.add_argument("--detached", action="store_true", help=argparse.SUPPRESS)  # how commands start it
    p.add_argument("--json", action="store_true")
    p = add("doctor", cmd_doctor, "check tmux, git, the config, the store and the agent CLIs")
    p.add_argument("--json", action="store_true")
    p.add_argument("--repair", action="store_true",
                   help="repair a damaged or empty store: the file is kept aside, what can be read of it is "
                        "carried over and the agents are rebuilt from tmux and git (with the engine stopped)")
    p = add("alerts", cmd_alerts, "alert channels, recent alerts and silences")
    actions = p.add_subparsers(dest="alerts_action", metavar="ACTION", required=True)
    a = actions.add_parser("test", help="send a test alert on every configured channel and report each result")
    a.add_argument("--json", action="store_true")
    a = actions.add_parser("ls", help="recent alerts and their delivery on each channel")
    a.add_argument("agent", nargs="?", help="only alerts about this agent (or naming it), or a subject such as tmux:")
    a.add_argument("--limit", type=int, default=20)
    a.add_argument("--json", action="store_true")
    a = actions.add_parser("snooze", help="hold back alerts about an agent and/or a trigger for a while")
    a.add_argument("agent", nargs="?", help="the agent, or another subject such as tmux: (default: every one; "
                   "then --trigger is needed)")
    a.add_argument("--trigger", help="only this trigger: waiting, stalled, done, exited, ...")
    a.add_argument("--for", dest="duration", default="1h", help="how long, e.g. 30m or 2h (default 1h)")
    a = actions.add_parser("unsnooze", help="end a silence (by AGENT/--trigger, or --id)")
    a.add_argument("agent", nargs="?")
    a.add_argument("--trigger")
    a.add_argument("--id", type=int, help="the silence's id from `supervisor alerts silences`")
    a = actions.add_parser("silences", help="the silences in force")
    a.add_argument("--json", action="store_true")
    p = add("report", cmd_report, "from inside a pane: say which agents this one waits for (deadlock detection)")
    p.add_argument("--waiting-for", nargs="*", default=[], metavar="AGENT", help="none clears it")
    # Internal: without a `help`, a command is left out of every listing (`help=SUPPRESS` printed "==SUPPRESS==").
    p = sub.add_parser("hook")  # what agent-CLI hooks run
    p.set_defaults(func=cmd_hook)
    p = sub.add_parser("guard")  # what the installed pre-commit hook runs
    p.set_defaults(func=cmd_guard)
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
        func: Command = getattr(args, "func", cmd_ui)
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
