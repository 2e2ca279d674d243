"""An engine run under a profiler, for bench/watch.py's BENCH_PROFILE switch.

    python bench/profiled.py OUT.prof          (in the repository, as `supervisor engine --foreground` runs)
    python bench/profiled.py OUT.threads       each thread's CPU once it answers, by thread name

`.prof`: each thread gets a cProfile profiler of its own when it first runs Python (cProfile follows one thread
only), timed by that thread's own CPU time (waiting costs nothing); when the engine stops they are merged into
OUT.prof, for `python -m pstats OUT.prof`. The watch loop's steady cost is under `Watcher.run`, each service's
under its `run`, the start's under `take_over`. Profiling slows Python code several times and system calls not
at all: read it for where the time goes, not for how much there is.

`.threads`: no profiler, so the figures are true: the CPU each thread used from the moment the engine answered
(its start left out) until it stopped, read from /proc, with what threads that ended meanwhile used (requests).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import threading
import time
from pathlib import Path
from typing import Any

_profilers: list[cProfile.Profile] = []
_guard = threading.Lock()


def _first_call(frame: Any, event: str, arg: Any) -> None:
    """Installed for every new thread: replaces itself by a profiler of the thread's own."""
    profiler = cProfile.Profile(time.thread_time)
    with _guard:
        _profilers.append(profiler)
    profiler.enable()


def dump(out: str) -> None:
    stats: pstats.Stats | None = None
    with _guard:
        for profiler in _profilers:
            profiler.snapshot_stats()  # not create_stats: that would stop only this thread's profiler
            if not getattr(profiler, "stats", None):
                continue
            if stats is None:
                stats = pstats.Stats(profiler)
            else:
                stats.add(profiler)
    if stats is not None:
        stats.dump_stats(out)


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each live thread, by name (names made unique), and of the whole process (`*process`)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        name = f"{thread.name}#{thread.native_id}"
        found[name] = (int(fields[11]) + int(fields[12])) / ticks
    times = os.times()
    found["*process"] = times.user + times.system
    return found


def main() -> int:
    out = sys.argv[1]
    from supervisor.engine.startup import run_foreground
    from supervisor.paths import find_repo

    paths = find_repo(Path(os.getcwd()))
    if out.endswith(".threads"):
        start: dict[str, float] = {}

        def answered() -> None:
            while not paths.engine_socket.exists() or paths.engine_starting.exists():
                time.sleep(0.05)
            start.update(thread_cpu())

        threading.Thread(target=answered, name="bench-threads", daemon=True).start()
        stopping = threading.Event()

        def last_look() -> None:  # the watch loop has ended when serve returns: read the threads before that
            end = thread_cpu()
            lines = [f"{end[name] - start.get(name, 0.0):8.3f} {name}" for name in sorted(end)]
            ended = (end["*process"] - start.get("*process", 0.0)) - sum(
                end[name] - start.get(name, 0.0) for name in end if name != "*process")
            Path(out).write_text("\n".join([*lines, f"{ended:8.3f} (threads that ended meanwhile)"]) + "\n")
            stopping.set()

        from supervisor.engine.engine import Engine

        original = Engine.handle

        def handle(self: Engine, method: str, params: dict[str, Any], peer: Any) -> Any:
            if method == "shutdown" and not stopping.is_set():
                last_look()
            return original(self, method, params, peer)

        Engine.handle = handle  # type: ignore[method-assign]
        return run_foreground(paths)

    threading.setprofile(_first_call)
    main_profiler = cProfile.Profile(time.thread_time)
    with _guard:
        _profilers.append(main_profiler)
    main_profiler.enable()
    try:
        return run_foreground(paths)
    finally:
        main_profiler.disable()
        dump(out)


if __name__ == "__main__":
    sys.exit(main())
