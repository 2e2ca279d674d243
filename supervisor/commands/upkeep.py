"""`engine` (start, stop, status, or run it in this terminal) and `doctor`: supervisor's own machinery."""

from __future__ import annotations

import argparse
import time

from supervisor.commands.common import Add, print_json, repo_paths, warn_store_notices
from supervisor.errors import SupervisorError


def register(add: Add) -> None:
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


def cmd_engine(args: argparse.Namespace) -> int:
    from supervisor import client

    if args.foreground:
        return run_engine_foreground(detached=args.detached)
    paths = repo_paths()
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
            print_json({"running": False})
        else:
            print("engine: not running")
        return 1
    if args.json:
        print_json({"running": True, **status})
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
        warn_store_notices()
    client.notes.clear()  # said above
    return 0


def run_engine_foreground(*, detached: bool = False) -> int:
    from supervisor.engine.startup import run_foreground

    return run_foreground(repo_paths(), detached=detached)


def cmd_doctor(args: argparse.Namespace) -> int:
    from supervisor.doctor import run_doctor, run_repair

    return run_repair() if args.repair else run_doctor(json_output=args.json)
