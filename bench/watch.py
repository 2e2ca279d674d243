"""What watching costs: AGENTS agents supervised for SECONDS, against the tmux server alone and a naive watcher.

    .venv/bin/python bench/watch.py [--agents 10,100,300] [--seconds 60] [--baseline-seconds 20] [--quiet]

For each count in --agents, in turn: starts that many sessions of light fake agents (a quarter print a line a
second, a quarter work in bursts and go idle between them, half stay silent; with --quiet all stay silent)
and lets the engine watch them (and write their transcripts) for SECONDS, in turns of 20 s watched and 20 s
with the engine stopped (the agents run on), so that what else the machine does weighs on both alike. It
measures the CPU of every process of ours: the engine, the processes it runs (git…) and the one it keeps (the
tmux control-mode client), and the tmux server, whose CPU over the unwatched turns is what watching adds to it
(what it costs in those turns is what the agents' own output costs it). Then it measures latencies through the
client API (from a hook event to the new state, and from a screen change to the new state), and a naive
watcher over the same panes for BASELINE_SECONDS: libtmux's `pane.capture_pane()` for every pane once a
second.

What supervising adds is the engine with every process it runs or keeps, plus the server's CPU over the turns
with no supervisor; per agent it is given in µs of CPU per agent-second (1% of a core at 100 agents is
100 µs). Targets: what supervising adds <= 1.5% of a core at 100 agents and <= 150 µs per agent-second at any
count; <= 1 s from a hook; <= one tick from a screen. The agents' own output costs the tmux server the same
under any supervisor, or none: tmux polls every pane's terminal each time one of them prints, so that share
grows with the square of the agents (more agents printing, each wake-up polling more terminals).

BENCH_PROFILE=DIR runs each engine the bench starts under cProfile in every thread (bench/profiled.py), its
profile written to DIR/engine-AGENTS-N.prof when it stops, from SETTLE_SECONDS after it answered: where the
time goes, not how much (profiling slows Python code several times over). The first engine of each count starts
the agents; the next ones (N >= 2, with --seconds over 20) only watch them. BENCH_PROFILE=DIR:threads instead
writes DIR/engine-AGENTS-N.threads: the CPU each of its threads used once it answered, unprofiled.
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
from dataclasses import dataclass
from pathlib import Path

import libtmux
import psutil

# A working agent prints more often than idle_after (5 s); some change state now and then.
CHATTY = "i=0; while :; do i=$((i+1)); echo \"step $i: editing module_$i.py\"; sleep 1; done"
# Each bursty agent starts at its own point of the 25 s cycle, so any window sees the same share of bursts.
BURSTY = "sleep {offset}; while :; do for i in 1 2 3 4 5; do echo \"burst $i\"; sleep 1; done; sleep 20; done"
SILENT = "exec sleep 100000"
TURN_SECONDS = 20.0  # each turn watched, then not
SETTLE_SECONDS = 8.0  # after an engine starts: it adopts the agents, and looks at every pane once
PER_AGENT_TARGET = 150.0  # µs of CPU per agent-second
AT_100_TARGET = 1.5  # % of a core, at 100 agents


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


class Tree:
    """CPU of a process and all its descendants, the live ones (the control-mode client) as well as the reaped
    ones: each process is counted by its own time, and what ended in between by its parent's children times."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.start = self._read()

    def _read(self) -> dict[tuple[int, float], tuple[str, float, float]]:
        found: dict[tuple[int, float], tuple[str, float, float]] = {}
        try:
            root = psutil.Process(self.root)
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            return found
        for process in processes:
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    label = self.kind(process.pid, process.cmdline())
                    found[(process.pid, process.create_time())] = (
                        label, times.user + times.system, times.children_user + times.children_system)
            except psutil.Error:
                pass
        return found

    def kind(self, pid: int, command: list[str]) -> str:
        """Which figure a process of the tree counts in (a subclass may tell more kinds apart)."""
        if pid == self.root:
            return "engine"
        return "control client" if command[:1] == ["tmux"] and "-C" in command else "other"

    def since(self) -> dict[str, float]:
        """CPU seconds since the start by kind: `engine` (its own threads), `control client` (tmux -C),
        `other` (every other process it runs, ended or not)."""
        now = self._read()
        spent = {"engine": 0.0, "control client": 0.0, "other": 0.0}
        for key, (label, own, reaped) in now.items():
            before = self.start.get(key)
            own_delta = own - (before[1] if before else 0.0)
            reaped_delta = reaped - (before[2] if before else 0.0)
            spent[label] = spent.get(label, 0.0) + own_delta
            spent["other"] += reaped_delta
        return spent


@dataclass
class Run:
    agents: int
    seconds: float
    engine: float  # % of a core, each
    control: float
    helpers: float
    server: float
    bare: float  # the server with no supervisor at all, in turns with the watched ones
    naive: float
    tick: object
    written: int
    hook_latency: list[float]
    screen_latency: list[float]
    load: tuple[float, float, float]

    @property
    def added(self) -> float:
        return self.engine + self.control + self.helpers + max(0.0, self.server - self.bare)

    @property
    def per_agent(self) -> float:
        """µs of CPU per agent-second."""
        return self.added / 100 * 1e6 / self.agents


def per_agent(percent: float, agents: int) -> float:
    return percent / 100 * 1e6 / agents


def measure(count: int, args: argparse.Namespace) -> Run:
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
    # The screen probe's script, in the repository: a sandboxed agent sees its worktree, not the bench's folder.
    (repo / "asker.yaml").write_text("turns:\n" + "  - [{ask: 'Proceed?'}]\n" * 6)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "init"], cwd=repo,
                   check=True)

    from supervisor.client import call, request_at
    from supervisor.paths import find_repo
    from supervisor.tmux.server import Tmux

    paths = find_repo(repo)
    tmux = Tmux(paths.tmux_socket, paths.tmux_conf)
    try:
        start_engine(paths, count)
        print(f"[{count}] starting {count} agents…", flush=True)
        for index in range(count):
            mix = (SILENT,) if args.quiet else (CHATTY, SILENT, BURSTY, SILENT)
            command = f"sh -c {shlex.quote(mix[index % len(mix)].format(offset=index % 25))}"
            call(paths, "start", {"name": f"a{index:03d}", "command": command, "wait": False})
        # Two demo agents probe the latencies (their screens carry markers).
        call(paths, "start", {"name": "probe-hook", "command": f"{demo} --scenario gentle", "wait": False})
        call(paths, "start", {"name": "probe-screen", "command": f"{demo} --script asker.yaml", "wait": False})
        time.sleep(10)  # let start-up settle before measuring (start-up costs are bench/spawn.py's business)
        server_pid = tmux_server_pid(paths.tmux_socket)

        def server_alone(seconds: float) -> float:
            start, started = cpu_seconds([server_pid], children=False), time.monotonic()
            time.sleep(seconds)
            return 100.0 * (cpu_seconds([server_pid], children=False) - start) / (time.monotonic() - started)

        # Watched and unwatched (the engine stopped, its agents running on) in turns, so that what else the
        # machine does at the time weighs on both alike: the server's CPU over the unwatched turns is what
        # watching adds to it. Each turn starts with a new engine, let settle first (it adopts the agents).
        turns = max(1, round(args.seconds / TURN_SECONDS))
        print(f"[{count}] measuring {turns} turns of {TURN_SECONDS:.0f} s watched and {TURN_SECONDS:.0f} s "
              "with no supervisor…", flush=True)
        watched = server_watched = server_bare = 0.0
        used = {"engine": 0.0, "control client": 0.0, "other": 0.0}
        for turn in range(turns):
            if turn:
                start_engine(paths, count)
                time.sleep(SETTLE_SECONDS)
            tree = Tree(int(call(paths, "status")["pid"]))
            start_server, started = cpu_seconds([server_pid], children=False), time.monotonic()
            time.sleep(TURN_SECONDS)
            watched += time.monotonic() - started
            server_watched += cpu_seconds([server_pid], children=False) - start_server
            for kind, seconds in tree.since().items():
                used[kind] += seconds
            tick = call(paths, "status").get("tick_seconds")
            stop_engine(paths)
            server_bare += server_alone(TURN_SECONDS) / 100 * TURN_SECONDS
        spent = {kind: 100.0 * seconds / watched for kind, seconds in used.items()}
        server_cpu = 100.0 * server_watched / watched
        bare_cpu = 100.0 * server_bare / (turns * TURN_SECONDS)
        load = os.getloadavg()
        written = sum(p.stat().st_size for p in paths.logs_dir.glob("*.log"))

        start_engine(paths, count)
        hook_latency = probe_hook(paths, request_at)
        screen_latency = probe_screen(paths, tmux)

        stop_engine(paths)

        server = libtmux.Server(socket_path=str(paths.tmux_socket))
        panes = [p for p in server.panes if p.session_name != "_engine"]

        def naive(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                started = time.monotonic()
                for pane in panes:
                    pane.capture_pane()
                time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))

        print(f"[{count}] measuring the naive watcher for {args.baseline_seconds:.0f} s…", flush=True)

        def naive_cpu() -> float:
            return cpu_seconds([os.getpid()]) + cpu_seconds([server_pid], children=False)

        base_start = naive_cpu()
        started = time.monotonic()
        naive(args.baseline_seconds)
        naive_added = 100.0 * (naive_cpu() - base_start) / (time.monotonic() - started) - bare_cpu
    finally:
        with contextlib.suppress(Exception):  # stopped already, unless a step failed: it runs apart from tmux
            call(paths, "shutdown", autostart=False)
        tmux.kill_server()
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)
    return Run(count, watched, spent["engine"], spent["control client"], spent["other"], server_cpu, bare_cpu,
               max(0.0, naive_added), tick, written, hook_latency, screen_latency, load)


def start_engine(paths: object, count: int) -> None:
    """An engine for the repository, as any command starts one; under cProfile with BENCH_PROFILE."""
    from supervisor.client import engine_running, ensure_engine

    folder, _, kind = os.environ.get("BENCH_PROFILE", "").partition(":")
    if not folder:
        ensure_engine(paths)  # type: ignore[arg-type]
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    suffix = ".threads" if kind == "threads" else ".prof"
    out = Path(folder) / f"engine-{count}-{len(list(Path(folder).glob(f'engine-{count}-*{suffix}'))) + 1}{suffix}"
    out.touch()  # the next engine's number counts it already
    steady = [] if kind == "threads" else ["--steady", str(SETTLE_SECONDS)]  # its settling left out
    subprocess.Popen([sys.executable, str(Path(__file__).with_name("profiled.py")), str(out), *steady],
                     cwd=paths.root, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,  # type: ignore[attr-defined]
                     stderr=subprocess.DEVNULL, start_new_session=True)
    _until(lambda: engine_running(paths), timeout=600, what="the profiled engine")  # type: ignore[arg-type]


def stop_engine(paths: object) -> None:
    """Stop the engine (its agents keep running) and wait until its process and tmux client are gone."""
    from supervisor.client import call

    pid = int(call(paths, "status")["pid"])  # type: ignore[arg-type]
    call(paths, "shutdown", autostart=False)  # type: ignore[arg-type]
    _until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
           what="the engine to stop")


def tmux_server_pid(socket: Path) -> int:
    out = subprocess.run(["tmux", "-S", str(socket), "display-message", "-p", "#{pid}"], capture_output=True,
                         text=True, check=True).stdout
    return int(out.strip())


def report(run: Run) -> bool:
    n = run.agents
    over = max(0.0, run.server - run.bare)
    ok = run.per_agent <= PER_AGENT_TARGET and (n != 100 or run.added <= AT_100_TARGET)
    print()
    print(f"agents watched:                      {n} (+2 probes); load average after: "
          f"{run.load[0]:.2f} {run.load[1]:.2f} {run.load[2]:.2f}")
    print(f"engine CPU (its own threads):        {run.engine:6.2f}% of one core (last tick {run.tick}s)")
    print(f"tmux control-mode client:            {run.control:6.2f}%")
    print(f"other processes of the engine (git…):{run.helpers:6.2f}%")
    print(f"tmux server CPU (engine watching):   {run.server:6.2f}%")
    print(f"tmux server CPU (no supervisor):     {run.bare:6.2f}%   (the agents' own output, in turns with the "
          "watched ones)")
    print(f"transcripts written:                 {run.written / 1024:6.0f} KiB")
    print(f"what supervising adds:               {run.added:6.2f}% = {run.per_agent:4.0f} µs per agent-second"
          f"   (engine {run.engine + run.control + run.helpers:.2f}% with its processes, server +{over:.2f}%)"
          f"   (target <= {PER_AGENT_TARGET:.0f} µs{', <= 1.5% at 100' if n == 100 else ''})"
          f"  {'OK' if ok else 'OVER'}")
    print(f"naive watcher adds (libtmux capture_pane per pane per second, with the server over no supervisor): "
          f"{run.naive:6.2f}% = {per_agent(run.naive, n):5.0f} µs per agent-second"
          f"   ({run.naive / run.added if run.added else float('inf'):.1f}x ours)")
    print(f"hook event -> state via client API:  median {statistics.median(run.hook_latency) * 1000:6.0f} ms, "
          f"max {max(run.hook_latency) * 1000:6.0f} ms   (target <= 1000 ms)")
    print(f"screen change -> state via client:   median {statistics.median(run.screen_latency) * 1000:6.0f} ms, "
          f"max {max(run.screen_latency) * 1000:6.0f} ms   (target <= one tick)")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", default="100", help="agent counts, comma-separated, measured in turn: 10,100,300")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--baseline-seconds", type=float, default=20, help="how long the naive watcher runs")
    parser.add_argument("--quiet", action="store_true",
                        help="every agent silent (waiting for its human): the tmux server has nothing of theirs to do")
    args = parser.parse_args()
    try:
        counts = [int(n) for n in args.agents.split(",")]
    except ValueError:
        parser.error(f"--agents: comma-separated counts, like 10,100,300 (got {args.agents!r})")
    if not counts or min(counts) < 1:
        parser.error("--agents: counts of at least 1")
    runs, verdicts = [], []
    for count in counts:  # each count's figures as soon as it is measured: a later count may fail
        runs.append(measure(count, args))
        verdicts.append(report(runs[-1]))
    if len(runs) > 1:
        print()
        print("| agents | engine + its processes | server over no supervisor | server alone | what supervising adds "
              "| per agent-second | naive watcher adds |")
        print("|---|---|---|---|---|---|---|")
        for run in runs:
            print(f"| {run.agents} | {run.engine + run.control + run.helpers:.2f}% | "
                  f"+{max(0.0, run.server - run.bare):.2f}% | {run.bare:.2f}% | **{run.added:.2f}%** | "
                  f"**{run.per_agent:.0f} µs** | {run.naive:.1f}% ({per_agent(run.naive, run.agents):.0f} µs) |")
    return 0 if all(verdicts) else 1


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

    latencies = []
    socket = paths.agent_socket("probe-hook")  # type: ignore[attr-defined]  # the agent is known by its own socket
    try:
        for round_ in range(5):
            # agent_needs_input, not permission_prompt: the probe has no dialog on screen, and a permission
            # prompt with none there is taken as one already answered.
            for event, expected in (({"hook_event_name": "Notification", "notification_type": "agent_needs_input",
                                      "message": f"probe {round_}"}, "waiting"),
                                    ({"hook_event_name": "UserPromptSubmit", "prompt": "go"}, "working")):
                started = time.monotonic()
                request_at(socket, "hook", {"event": event}, 5)  # type: ignore[operator]
                _until(lambda e=expected: _state(paths, "probe-hook") == e, what=f"probe-hook {expected}")
                latencies.append(time.monotonic() - started)
    finally:
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
