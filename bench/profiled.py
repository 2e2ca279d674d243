"""An engine run under a profiler, for bench/watch.py's BENCH_PROFILE switch.

    python bench/profiled.py OUT.prof          (in the repository, as `supervisor engine --foreground` runs)
    python bench/profiled.py OUT.prof --steady SECONDS    only what it did from SECONDS after it answered
    python bench/profiled.py OUT.threads       each thread's CPU once it answers, by thread name

`.prof`: each thread gets a cProfile profiler of its own when it first runs Python (cProfile follows one thread
only), timed by that thread's own CPU time (waiting costs nothing); when the engine stops they are merged into
OUT.prof, for `python -m pstats OUT.prof`. The watch loop's steady cost is under `Watcher.run`, each service's
under its `run`, the start's under `take_over`. Profiling slows Python code several times and system calls not
at all: read it for where the time goes, not for how much there is.

`.threads`: no profiler, so the figures are true: the CPU each thread used from the moment the engine answered
(its start left out) until it stopped, read from /proc in nanoseconds (schedstat, where stat counts clock ticks),
with what threads that ended meanwhile used (requests); in seconds, and in ms per second watched.
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


def merged() -> dict[Any, Any]:
    """Every thread's profile so far, merged: pstats' raw table (function → counts, times, callers)."""
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
    return {} if stats is None else dict(stats.stats)  # type: ignore[attr-defined]


def since(now: dict[Any, Any], before: dict[Any, Any]) -> dict[Any, Any]:
    """What the profile `now` gained over `before` (both `merged`)."""

    def minus(a: tuple[Any, ...], b: tuple[Any, ...] | None) -> tuple[Any, ...]:
        return a if b is None else tuple(x - y for x, y in zip(a, b, strict=True))

    table = {}
    for func, (cc, nc, tt, ct, callers) in now.items():
        old = before.get(func)
        if old is not None:
            cc, nc, tt, ct = minus((cc, nc, tt, ct), old[:4])
            callers = {caller: minus(counts, old[4].get(caller)) for caller, counts in callers.items()}
            callers = {caller: counts for caller, counts in callers.items() if counts[1] > 0}
        if nc > 0:
            table[func] = (cc, nc, tt, ct, callers)
    return table


def dump(out: str, before: dict[Any, Any] | None) -> None:
    table = merged() if before is None else since(merged(), before)
    if table:
        stats = pstats.Stats()
        stats.stats = table  # type: ignore[attr-defined]
        stats.dump_stats(out)


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each live thread, by name (names made unique), and of the whole process (`*process`)."""
    found: dict[str, float] = {}
    for thread in threading.enumerate():
        try:  # its time on a CPU in nanoseconds (stat's user and system times count whole clock ticks)
            ran = int(Path(f"/proc/self/task/{thread.native_id}/schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue
        found[f"{thread.name}#{thread.native_id}"] = ran / 1e9
    found["*process"] = time.process_time()  # every thread, ended ones too, in nanoseconds
    return found


def main() -> int:
    out = sys.argv[1]
    steady = float(sys.argv[3]) if sys.argv[2:3] == ["--steady"] else None
    from supervisor.engine.startup import run_foreground
    from supervisor.paths import find_repo

    paths = find_repo(Path(os.getcwd()))
    if out.endswith(".threads"):
        start: dict[str, float] = {}
        began: list[float] = []

        def answered() -> None:
            while not paths.engine_socket.exists() or paths.engine_starting.exists():
                time.sleep(0.05)
            start.update(thread_cpu())
            began.append(time.monotonic())

        threading.Thread(target=answered, name="bench-threads", daemon=True).start()
        stopping = threading.Event()

        def last_look() -> None:  # the watch loop has ended when serve returns: read the threads before that
            end = thread_cpu()
            seconds = time.monotonic() - began[0] if began else float("nan")

            def row(spent: float, name: str) -> str:  # CPU seconds, and ms of CPU per second watched
                return f"{spent:8.3f} {1000 * spent / seconds:7.2f} ms/s  {name}"

            lines = [row(end[name] - start.get(name, 0.0), name) for name in sorted(end)]
            ended = (end["*process"] - start.get("*process", 0.0)) - sum(
                end[name] - start.get(name, 0.0) for name in end if name != "*process")
            Path(out).write_text("\n".join([f"{seconds:8.1f} s watched", *lines,
                                            row(ended, "(threads that ended meanwhile)")]) + "\n")
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
    before: list[dict[Any, Any]] = []
    if steady is not None:
        def mark() -> None:  # what the engine did until then is left out of the profile
            while not paths.engine_socket.exists() or paths.engine_starting.exists():
                time.sleep(0.05)
            time.sleep(steady)
            before.append(merged())

        threading.Thread(target=mark, name="bench-mark", daemon=True).start()
    try:
        return run_foreground(paths)
    finally:
        main_profiler.disable()
        dump(out, before[0] if before else None)


if __name__ == "__main__":
    sys.exit(main())
