"""The dashboard under load: 100 agents changing state every second, in a real terminal.

    .venv/bin/python bench/ui.py [--agents 100] [--seconds 10] [--presses 60] [--only cells|naive|still]

Runs the real dashboard (on an in-memory stand-in for the engine whose agents all change state, CPU and
memory every second, each change an event on the long poll) in a tmux pane, and measures from outside:
  cpu        the dashboard process's CPU over SECONDS, as a percentage of one core
  latency    from a key press (Down, sent with `tmux send-keys`) to the screen showing its effect (the next
             agent's name in the preview's title, read with `capture-pane` every 5 ms), PRESSES times
The same run with naive tables is the baseline: Textual's DataTable used as documented, cleared and filled
again on every refresh, every row drawn cell by cell through Rich, and a row added or removed (a line logged)
laying the whole screen out. The same dashboard without churn is the floor (Textual, tmux and the capture
loop themselves). The machine is often shared: compare runs by their ratios to the baseline of the same run.
Targets: a key's effect on screen within 100 ms, whatever the churn, for the median and for the 95th
percentile (the slow tail is what a user notices), and the dashboard's own CPU under churn within 3% of a
core; the exit code is 1 when the dashboard misses one.

BENCH_PROFILE=DIR runs each dashboard under cProfile (all its threads, from 3 s on: DIR/ui-MODE.prof, for
`python -m pstats`); BENCH_PROFILE=DIR:threads writes only DIR/ui-MODE.threads, each thread's CPU, unprofiled.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TARGET_MS = 100.0
TARGET_CPU = 3.0  # percent of one core, under churn
STATES = ("working", "idle", "working", "waiting", "working", "stalled")


def names(count: int) -> list[str]:
    """Sessions with helpers and sub-helpers: s00, s00.h1, s00.h1.d, s00.h2, s01, …"""
    result: list[str] = []
    session = 0
    while len(result) < count:
        base = f"s{session:02d}"
        result += [base, f"{base}.h1", f"{base}.h1.d", f"{base}.h2"]
        session += 1
    return sorted(result[:count], key=lambda n: tuple(n.split(".")))


def child(args: argparse.Namespace) -> int:
    """The dashboard itself, on a churning fake engine."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from supervisor.ui.app import SupervisorApp
    from supervisor.ui.fake import FakeSource, agent
    from supervisor.ui.tables import SyncTable

    now = time.time()
    agents = [agent(name, "working", since=5, task=f"task of {name}", cpu=10.0, now=now) for name in names(args.agents)]
    source = FakeSource(agents, screens={a["name"]: f"{a['name']}: working…" for a in agents}, now=now)
    stop = threading.Event()

    def churn() -> None:
        rng = random.Random(1)
        tick = 0
        while not stop.wait(1.0):
            tick += 1
            source.now = time.time()
            for record in list(source.agents.values()):
                state = STATES[(tick + hash(record["name"])) % len(STATES)]
                source.set_state(record["name"], state, cpu_percent=round(rng.uniform(0, 80), 1),
                                 rss_bytes=rng.randrange(20_000_000, 400_000_000))

    if args.mode == "naive":
        def rebuild(self: SyncTable, rows: Any) -> None:
            """The baseline: every refresh clears the table and adds every row again."""
            selected = self.current_key
            self.clear()
            self._shown = {}
            shown = self.shown_columns  # the columns the screen has room for, as the real table shows
            for key, cells in rows:
                self.add_row(*[cells[c] for c in shown], key=key)
                self._shown[key] = cells
            if selected is not None and selected in self._shown:
                self.move_cursor(row=self.get_row_index(selected), animate=False)

        SyncTable.sync = rebuild  # type: ignore[method-assign]
        stock(SyncTable)

    if args.mode != "still":
        threading.Thread(target=churn, name="bench-churn", daemon=True).start()
    passes = collections()
    app = SupervisorApp(source)
    folder, _, kind = os.environ.get("BENCH_PROFILE", "").partition(":")
    if folder:
        profiled(app, Path(folder) / f"ui-{args.mode}", cprofile=kind != "threads")
    else:
        app.run()
    stop.set()
    Path(args.stats).write_text(json.dumps({"sync_ms": [s * 1000 for s in app.sync_seconds], "gc": passes}))
    return 0


def collections() -> dict[str, list[list[float]]]:
    """Each pass of the garbage collector from now on, young (generations 0 and 1) or full: [when, CPU ms]."""
    passes: dict[str, list[list[float]]] = {"young": [], "full": []}
    started: list[float] = []

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[:] = [time.thread_time()]
        elif started:
            passes["full" if info["generation"] == 2 else "young"].append(
                [time.monotonic(), (time.thread_time() - started[0]) * 1000])

    gc.callbacks.append(timed)
    return passes


def stock(table: Any) -> None:
    """The baseline's tables and event log drawn and laid out as Textual's own are: every row drawn cell by cell
    through Rich, and a row added or removed (a line logged) laying the whole screen out."""
    from supervisor.ui.steady import SteadyLog

    table.draw_by_value = False
    table.steady = SteadyLog.steady = False


def profiled(app: Any, out: Path, *, cprofile: bool = True, after: float = 3.0) -> None:
    """Run `app` with its threads under cProfile (bench/profiled.py) from `after` seconds on (the start left
    out): OUT.prof, for `python -m pstats`; and OUT.threads, the CPU each thread used meanwhile (with cProfile,
    its own cost included: read it for shares, not totals). Threads started before then (the churn) are not
    profiled, only timed. Without `cprofile`, only OUT.threads, true figures."""
    import cProfile

    import profiled as tools  # bench/profiled.py, beside this file

    out.parent.mkdir(parents=True, exist_ok=True)
    main_profiler = cProfile.Profile(time.thread_time)
    start: dict[str, float] = {}

    def begin() -> None:
        start.update(tools.thread_cpu())
        if cprofile:
            with tools._guard:
                tools._profilers.append(main_profiler)
            threading.setprofile(tools._first_call)
            main_profiler.enable()

    threading.Timer(after, lambda: app.call_from_thread(begin)).start()
    try:
        app.run()
    finally:
        main_profiler.disable()
        end = tools.thread_cpu()
        ended = (end["*process"] - start.get("*process", 0.0)) - sum(
            end[name] - start.get(name, 0.0) for name in end if name != "*process")
        out.with_suffix(".threads").write_text("".join(
            f"{end[name] - start.get(name, 0.0):8.3f} {name}\n" for name in sorted(end))
            + f"{ended:8.3f} (threads that ended meanwhile)\n")
        if cprofile:
            tools.dump(str(out.with_suffix(".prof")), None)


def measure(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    import psutil

    scratch = Path(tempfile.mkdtemp(prefix="svb-ui-", dir="/tmp"))
    socket = scratch / "term.sock"
    stats = scratch / "stats.json"
    base = ["tmux", "-S", str(socket), "-f", "/dev/null"]
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--agents", str(args.agents),
               "--stats", str(stats), "--mode", mode]
    subprocess.run([*base, "new-session", "-d", "-s", "b", "-x", "160", "-y", "50",
                    " ".join(shlex.quote(part) for part in command)], check=True,
                   env={**os.environ, "TERM": "xterm-256color"})
    order = names(args.agents)

    def screen() -> str:
        return subprocess.run([*base, "capture-pane", "-p", "-t", "b"], capture_output=True, text=True).stdout

    try:
        deadline = time.monotonic() + 30
        while f"─ {order[0]} — " not in screen():
            if time.monotonic() > deadline:
                raise SystemExit("the dashboard did not show up:\n" + screen())
            time.sleep(0.05)
        pid = int(subprocess.run([*base, "display-message", "-p", "-t", "b", "#{pane_pid}"], capture_output=True,
                                 text=True, check=True).stdout)
        process = psutil.Process(pid)
        time.sleep(2.0)  # let the churn reach its steady state: this is the interval measured, not a wait
        before, started = process.cpu_times(), time.monotonic()
        cpu_from = started
        time.sleep(args.seconds)
        after, ended = process.cpu_times(), time.monotonic()
        cpu = 100 * ((after.user - before.user) + (after.system - before.system)) / (ended - started)
        latencies = []
        for index in range(1, min(args.presses, len(order) - 1) + 1):
            expected = f"─ {order[index]} — "
            sent = time.perf_counter()
            subprocess.run([*base, "send-keys", "-t", "b", "Down"], check=True)
            while expected not in screen():
                if time.perf_counter() - sent > 5:
                    raise SystemExit(f"no {expected!r} on screen after 5 s")
                time.sleep(0.005)  # each capture is a tmux client process: do not starve the dashboard
            latencies.append((time.perf_counter() - sent) * 1000)
        subprocess.run([*base, "send-keys", "-t", "b", "q"], check=True)
        deadline = time.monotonic() + 10
        found: dict[str, Any] = {}
        while time.monotonic() < deadline:  # (the file may be there before what is written in it)
            try:
                found = json.loads(stats.read_text())
                break
            except (OSError, ValueError):
                time.sleep(0.05)
        sync_ms = found.get("sync_ms", [])
        # The collector's passes while the CPU was measured (the child's monotonic clock is this one's).
        window = (cpu_from, cpu_from + args.seconds)
        gc_ms = {kind: [ms for at, ms in found.get("gc", {}).get(kind, []) if window[0] <= at <= window[1]]
                 for kind in ("young", "full")}
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True, check=False)
        shutil.rmtree(scratch, ignore_errors=True)
    return {"cpu": cpu, "latency": latencies, "sync_ms": sync_ms, "gc_ms": gc_ms, "seconds": args.seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--presses", type=int, default=60)
    parser.add_argument("--only", choices=["cells", "naive", "still"],
                        help="run one of the three (for a profile: BENCH_PROFILE=DIR writes DIR/ui-MODE.prof)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="cells", help=argparse.SUPPRESS)
    parser.add_argument("--stats", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    print(f"{args.agents} agents, every one changing state, CPU and memory every second; {os.cpu_count()} cores")
    labels = {"cells": "cell by cell", "naive": "naive rebuild", "still": "no churn"}
    results = {label: measure(args, mode) for mode, label in labels.items() if args.only in (None, mode)}
    for label, result in results.items():
        lat = result["latency"]
        sync = result["sync_ms"]
        print(f"{label:>14}: CPU {result['cpu']:5.1f}% of a core | key to screen median "
              f"{statistics.median(lat):5.1f} ms, p95 {p95(lat):5.1f} ms, max {max(lat):5.1f} ms | "
              f"table refresh median {statistics.median(sync) if sync else float('nan'):.1f} ms")
        young, full = result["gc_ms"]["young"], result["gc_ms"]["full"]
        print(f"{'':>14}  garbage collector while CPU was measured: {sum(young) / result['seconds']:.1f} ms/s in "
              f"{len(young)} young passes, {len(full)} full ({max(full, default=0):.0f} ms the longest)")
    if args.only:
        return 0
    ours, naive = results["cell by cell"], results["naive rebuild"]
    median = {label: statistics.median(result["latency"]) for label, result in results.items()}
    print(f"naive / ours: CPU {naive['cpu'] / max(ours['cpu'], 0.01):.2f}x, "
          f"key to screen {median['naive rebuild'] / median['cell by cell']:.2f}x median, "
          f"{p95(naive['latency']) / p95(ours['latency']):.2f}x p95")
    print(f"churn / no churn: key to screen {median['cell by cell'] / median['no churn']:.2f}x "
          f"(the cost of 100 changes a second on the keys)")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    quick = median["cell by cell"] <= TARGET_MS and p95(ours["latency"]) <= TARGET_MS
    print(f"target: key to screen within {TARGET_MS:.0f} ms, median and p95: "
          f"{'ok' if quick else 'SLOWER THAN TARGET'}")
    light = ours["cpu"] <= TARGET_CPU
    print(f"target: CPU under churn within {TARGET_CPU:.0f}% of a core: {'ok' if light else 'ABOVE TARGET'}")
    return 0 if quick and light else 1


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank): 95% of the values are at most this."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] if ordered else float("nan")


if __name__ == "__main__":
    sys.exit(main())
