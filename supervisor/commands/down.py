"""`supervisor down`: end everything of this repository — every agent (with its whole process tree), the engine
and the tmux server. Outside `down` the server stays up when it is empty (it is cheap, and attached clients keep
their place); after `down`, no process of this repository's run is left."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable

from supervisor.commands.common import Add
from supervisor.errors import SupervisorError

WAIT = 10.0  # seconds for the engine and the tmux server to go once told to


def register(add: Add) -> None:
    p = add("down", cmd_down, "stop every agent, the engine and the tmux server of this repository")
    p.add_argument("--kill", action="store_true", help="kill the agents at once, without the grace period")


def cmd_down(args: argparse.Namespace) -> int:
    from supervisor import client
    from supervisor.commands.many import act
    from supervisor.paths import find_repo

    paths = find_repo()
    server_pid = _tmux_pid(str(paths.tmux_socket))
    engine = client.engine_running(paths)
    if not engine and server_pid is None:
        print("nothing runs for this repository")
        return 0
    # The engine stops the agents (it knows their process trees); started for it if only tmux is left.
    code = act("stop", [], argparse.Namespace(all=True, state=[], host=[], kill=args.kill), {"kill": args.kill})
    if client.engine_running(paths):
        pid = client.call(paths, "status", autostart=False)["pid"]
        client.call(paths, "shutdown", autostart=False)
        if not _until(lambda: not client.engine_running(paths) and not client.engine_lock_held(paths)):
            raise SupervisorError(f"the engine (pid {pid}) did not stop within {WAIT:.0f} s",
                                  hint=f"see {paths.engine_log}; `kill {pid}` stops it")
        print("engine stopped")
    server_pid = _tmux_pid(str(paths.tmux_socket))
    if server_pid is not None:
        subprocess.run(["tmux", "-S", str(paths.tmux_socket), "kill-server"], capture_output=True, check=False)
        if not _until(lambda: not _alive(server_pid)):
            raise SupervisorError(f"the tmux server (pid {server_pid}) did not end", hint=f"`kill {server_pid}`")
        print("tmux server ended")
    if code:
        print("supervisor: warning: some agents did not stop cleanly (above); their processes were ended with the "
              "tmux server", file=sys.stderr)
    return code


def _tmux_pid(socket: str) -> int | None:
    done = subprocess.run(["tmux", "-S", socket, "display-message", "-p", "#{pid}"], capture_output=True, text=True,
                          check=False)
    text = done.stdout.strip()
    return int(text) if done.returncode == 0 and text.isdigit() else None


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _until(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True
