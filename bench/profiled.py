"""An engine run under cProfile in every thread, for bench/watch.py's BENCH_PROFILE switch.

    python bench/profiled.py OUT.prof          (in the repository, as `supervisor engine --foreground` runs)

Each thread gets a profiler of its own when it first runs Python (cProfile follows one thread only), timed by
that thread's own CPU time (waiting costs nothing); when the engine stops they are merged into OUT.prof, for
`python -m pstats OUT.prof`. The watch loop's steady cost is under `Watcher.run`, each service's under its `run`,
the start's under `take_over`. Profiling slows Python code several times and system calls not at all: read it
for where the time goes, not for how much there is.
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


def main() -> int:
    out = sys.argv[1]
    from supervisor.engine.startup import run_foreground
    from supervisor.paths import find_repo

    threading.setprofile(_first_call)
    main_profiler = cProfile.Profile(time.thread_time)
    with _guard:
        _profilers.append(main_profiler)
    main_profiler.enable()
    try:
        return run_foreground(find_repo(Path(os.getcwd())))
    finally:
        main_profiler.disable()
        dump(out)


if __name__ == "__main__":
    sys.exit(main())
