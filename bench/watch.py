"""What watching costs: 100 agents supervised for 60 s, against a naive watcher in the same run.

    .venv/bin/python bench/watch.py [--agents 100] [--seconds 60] [--baseline-seconds 20] [--quiet]

Starts AGENTS sessions of light fake agents (a quarter print a line a second, a quarter work in bursts and
go idle between them, half stay silent; with --quiet all stay silent), lets the engine watch them for
SECONDS (and write their transcripts), and measures the CPU used by the engine and by the tmux server. Then
it stops the engine (the agents keep running) and measures the tmux server with no supervisor: what the
agents' own output costs tmux anyway. Then a naive watcher over the same panes: libtmux's
`pane.capture_pane()` for every pane once a second. Last it measures latencies through the client API: from
a hook event to the new state, and from a screen change to the new state.

Targets: engine + tmux server <= 2% of one core at 100 agents; <= 1 s from a hook; <= one tick from a
screen. The agents' own output costs the tmux server the same under any supervisor, or none (tmux polls
every pane's terminal each time one of them prints): its share depends only on how much they print, so
what supervising adds (the engine, plus the server's CPU over what it costs with no supervisor) is judged
as well.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import libtmux
import psutil

# A working agent prints more often than idle_after (5 s); some change state now and then.
CHATTY = "i=0; while :; do i=$((i+1)); echo \"step $i: editing module_$i.py\"; sleep 1; done"
# Each bursty agent starts at its own point of the 25 s cycle, so any window sees the same share of bursts.
BURSTY = "sleep {offset}; while :; do for i in 1 2 3 4 5; do echo \"burst $i\"; sleep 1; done; sleep 20; done"
SILENT = "exec sleep 100000"


def cpu_seconds(pids: list[int], *, children: bool = True) -> float:
    """CPU time of the processes, with their reaped children's unless `children` is False (the tmux
    server's children are the panes and the engine itself: their CPU is not the server's)."""
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
            if children:
                total += times.children_user + times.children_system
        except psutil.Error:
            pass
    return total


def tmux_server_pid(socket: Path) -> int:
    out = subprocess.run(["tmux", "-S", str(socket), "display-message", "-p", "#{pid}"], capture_output=True,
                         text=True, check=True).stdout
    return int(out.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--baseline-seconds", type=float, default=20)
    parser.add_argument("--quiet", action="store_true",
                        help="every agent silent (waiting for its human): the tmux server has nothing of theirs to do")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="sv-bench-watch-"))
    runtime = Path(tempfile.mkdtemp(prefix="svw-", dir="/tmp"))
    os.environ.update({"HOME": str(scratch), "SHELL": "/bin/sh", "SUPERVISOR_RUNTIME_DIR": str(runtime)})
    repo = scratch / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    (repo / "README.md").write_text("bench\n")
    demo = f"{shlex.quote(sys.executable)} -m supervisor.demo.agent"
    (repo / "supervisor.yaml").write_text(f"agent:\n  profile: generic\n  command: {demo}\n  stagger: 0s\n"
                                          "limits:\n  idle_after: 5s\n  stall_after: 1h\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "init"], cwd=repo,
                   check=True)

    from supervisor.client import call, ensure_engine, request_at
    from supervisor.paths import find_repo
    from supervisor.tmux.server import Tmux

    paths = find_repo(repo)
    tmux = Tmux(paths.tmux_socket, paths.tmux_conf)
    try:
        ensure_engine(paths)
        print(f"starting {args.agents} agents…", flush=True)
        for index in range(args.agents):
            mix = (SILENT,) if args.quiet else (CHATTY, SILENT, BURSTY, SILENT)
            command = f"sh -c {shlex.quote(mix[index % len(mix)].format(offset=index % 25))}"
            call(paths, "start", {"name": f"a{index:03d}", "command": command, "wait": False})
        # Two demo agents probe the latencies (their screens carry markers).
        call(paths, "start", {"name": "probe-hook", "command": f"{demo} --scenario gentle", "wait": False})
        asker = scratch / "asker.yaml"
        asker.write_text("turns:\n" + "  - [{ask: 'Proceed?'}]\n" * 6)
        call(paths, "start", {"name": "probe-screen", "command": f"{demo} --script {asker}", "wait": False})
        time.sleep(10)  # let start-up settle before measuring (start-up costs are bench/spawn.py's business)

        engine_pid = int(call(paths, "status")["pid"])
        server_pid = tmux_server_pid(paths.tmux_socket)
        print(f"measuring the engine for {args.seconds:.0f} s…", flush=True)
        start_engine = cpu_seconds([engine_pid])
        start_engine_own = cpu_seconds([engine_pid], children=False)
        start_server = cpu_seconds([server_pid], children=False)
        started = time.monotonic()
        time.sleep(args.seconds)
        elapsed = time.monotonic() - started
        engine_cpu = 100.0 * (cpu_seconds([engine_pid]) - start_engine) / elapsed
        engine_own_cpu = 100.0 * (cpu_seconds([engine_pid], children=False) - start_engine_own) / elapsed
        engine_children_cpu = engine_cpu - engine_own_cpu
        server_cpu = 100.0 * (cpu_seconds([server_pid], children=False) - start_server) / elapsed
        written = sum(p.stat().st_size for p in paths.logs_dir.glob("*.log"))
        tick = call(paths, "status").get("tick_seconds")

        hook_latency = probe_hook(paths, request_at)
        screen_latency = probe_screen(paths, tmux)

        call(paths, "shutdown", autostart=False)
        time.sleep(1)
        server = libtmux.Server(socket_path=str(paths.tmux_socket))
        panes = [p for p in server.panes if p.session_name != "_engine"]

        def naive(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                started = time.monotonic()
                for pane in panes:
                    pane.capture_pane()
                time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))

        def server_alone(seconds: float) -> float:
            start, started = cpu_seconds([server_pid], children=False), time.monotonic()
            time.sleep(seconds)
            return 100.0 * (cpu_seconds([server_pid], children=False) - start) / (time.monotonic() - started)

        # The same agents with nobody watching: what their own output costs the tmux server anyway.
        print(f"measuring the tmux server with no supervisor for {args.baseline_seconds:.0f} s…", flush=True)
        bare_cpu = server_alone(args.baseline_seconds)

        print(f"measuring the naive watcher for {args.baseline_seconds:.0f} s…", flush=True)
        def naive_cpu() -> float:
            return cpu_seconds([os.getpid()]) + cpu_seconds([server_pid], children=False)

        base_start = naive_cpu()
        started = time.monotonic()
        naive(args.baseline_seconds)
        baseline_cpu = 100.0 * (naive_cpu() - base_start) / (time.monotonic() - started)
    finally:
        with contextlib.suppress(Exception):  # stopped already, unless a step failed: it runs apart from tmux
            call(paths, "shutdown", autostart=False)
        tmux.kill_server()
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)

    ours = engine_cpu + server_cpu
    added = engine_cpu + max(0.0, server_cpu - bare_cpu)
    print()
    print(f"agents watched:                      {args.agents} (+2 probes)")
    print(f"engine CPU:                          {engine_cpu:6.2f}% of one core (last tick {tick}s)")
    print(f"  of which processes it ran (git…):  {engine_children_cpu:6.2f}%")
    print(f"tmux server CPU (engine running):    {server_cpu:6.2f}%")
    print(f"tmux server CPU (no supervisor):     {bare_cpu:6.2f}%   (the agents' own output)")
    print(f"transcripts written:                 {written / 1024:6.0f} KiB")
    print(f"engine + server:                     {ours:6.2f}%   (target <= 2%)  {'OK' if ours <= 2 else 'OVER'}"
          f"   (of which {bare_cpu:.2f}% the agents cost tmux anyway)")
    print(f"what supervising adds:               {added:6.2f}%   (target <= 2%)  {'OK' if added <= 2 else 'OVER'}"
          "   (engine + server over no supervisor)")
    print(f"naive watcher + server (libtmux capture_pane per pane per second): {baseline_cpu:6.2f}%")
    print(f"ratio naive / ours:                  {baseline_cpu / ours if ours else float('inf'):6.1f}x")
    print(f"hook event -> state via client API:  median {statistics.median(hook_latency) * 1000:6.0f} ms, "
          f"max {max(hook_latency) * 1000:6.0f} ms   (target <= 1000 ms)")
    print(f"screen change -> state via client:   median {statistics.median(screen_latency) * 1000:6.0f} ms, "
          f"max {max(screen_latency) * 1000:6.0f} ms   (target <= one tick)")
    return 0 if added <= 2 else 1


def _state(paths: object, name: str) -> str:
    from supervisor.client import call

    return str(call(paths, "show", {"name": name, "events": 0})["state"])  # type: ignore[arg-type]


def _until(predicate: object, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(0.01)


def probe_hook(paths: object, request_at: object) -> list[float]:
    """Latency from a hook event (sent as the agent would) to the state the client API shows."""
    from supervisor.client import call
    from supervisor.core.store import Store

    latencies = []
    token = Store(paths.db_path).get_agent("probe-hook").token  # type: ignore[attr-defined, union-attr]
    os.environ["SUPERVISOR_TOKEN"] = token
    try:
        for round_ in range(5):
            # agent_needs_input, not permission_prompt: the probe has no dialog on screen, and a permission
            # prompt with none there is taken as one already answered.
            for event, expected in (({"hook_event_name": "Notification", "notification_type": "agent_needs_input",
                                      "message": f"probe {round_}"}, "waiting"),
                                    ({"hook_event_name": "UserPromptSubmit", "prompt": "go"}, "working")):
                started = time.monotonic()
                request_at(paths.engine_socket, "hook", {"event": event}, 5)  # type: ignore[attr-defined, operator]
                _until(lambda e=expected: _state(paths, "probe-hook") == e, what=f"probe-hook {expected}")
                latencies.append(time.monotonic() - started)
    finally:
        del os.environ["SUPERVISOR_TOKEN"]
        call(paths, "ping")  # type: ignore[arg-type]
    return latencies


def probe_screen(paths: object, tmux: object) -> list[float]:
    """Latency from a dialog appearing on a screen to `waiting` through the client API."""
    from supervisor.client import call

    latencies = []
    pane = call(paths, "show", {"name": "probe-screen", "events": 0})["pane"]  # type: ignore[arg-type]
    for _round in range(5):
        _until(lambda: _state(paths, "probe-screen") == "idle", what="probe-screen idle")
        tmux.paste(pane, "go")  # type: ignore[attr-defined]
        tmux.send_keys(pane, "Enter")  # type: ignore[attr-defined]
        _until(lambda: "Esc to cancel" in tmux.capture(pane), what="the dialog")  # type: ignore[attr-defined]
        shown = time.monotonic()
        _until(lambda: _state(paths, "probe-screen") == "waiting", what="probe-screen waiting")
        latencies.append(time.monotonic() - shown)
        tmux.send_keys(pane, "2")  # type: ignore[attr-defined]
    return latencies


if __name__ == "__main__":
    sys.exit(main())
