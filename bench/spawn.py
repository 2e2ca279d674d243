"""How long starting a session costs, against a raw `git worktree add` measured in the same run.

    .venv/bin/python bench/spawn.py [--sessions 20] [--files 2000]

Builds a scratch repository of FILES files, then times:
  baseline   `git worktree add -b BRANCH DIR HEAD`, SESSIONS times
  engine     `supervisor start` through the client API (worktree, excludes, setup, tmux session, transcript,
             store, launch of the demo agent), SESSIONS times
  cli        the same through the `supervisor` command, a few times (adds the Python start-up of the CLI)
and prints the time per session and the ratio engine / baseline (target: at most 1.5).
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
from collections.abc import Callable
from pathlib import Path

TARGET_RATIO = 1.5


def make_repo(root: Path, files: int) -> None:
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    for index in range(files):
        path = root / f"pkg{index % 100:03d}" / f"module_{index:04d}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"VALUE = {index}\n" * 20)
    agent = f"{shlex.quote(sys.executable)} -m supervisor.demo.agent"
    (root / "supervisor.yaml").write_text(f"agent:\n  profile: generic\n  command: {agent}\n")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "files"],
                   cwd=root, check=True)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="sv-bench-spawn-"))
    runtime = Path(tempfile.mkdtemp(prefix="svb-", dir="/tmp"))
    os.environ.update({"HOME": str(scratch), "SHELL": "/bin/sh", "SUPERVISOR_RUNTIME_DIR": str(runtime)})
    repo = scratch / "repo"
    make_repo(repo, args.files)

    from supervisor.client import call, ensure_engine
    from supervisor.paths import find_repo
    from supervisor.tmux.server import Tmux

    paths = find_repo(repo)
    try:
        baseline = []
        for index in range(args.sessions):
            target = scratch / "baseline" / f"b{index}"
            baseline.append(timed(lambda t=target, i=index: subprocess.run(
                ["git", "worktree", "add", "--quiet", "-b", f"baseline/{i}", str(t), "HEAD"],
                cwd=repo, check=True)))

        ensure_engine(paths)  # started once, as it is for a user; not part of a session's cost
        engine = [timed(lambda i=index: call(paths, "start", {"name": f"s{i}", "wait": False}))
                  for index in range(args.sessions)]
        cli = []
        for index in range(3):
            cli.append(timed(lambda i=index: subprocess.run(
                [sys.executable, "-m", "supervisor", "start", f"cli{i}", "--no-wait"], cwd=repo, check=True,
                capture_output=True)))
        states = [agent["state"] for agent in call(paths, "ls")]
    finally:
        with contextlib.suppress(Exception):  # the engine runs apart from tmux: it is stopped on its own
            call(paths, "shutdown", autostart=False)
        Tmux(paths.tmux_socket, paths.tmux_conf).kill_server()
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)

    base_ms = statistics.median(baseline) * 1000
    engine_ms = statistics.median(engine) * 1000
    cli_ms = statistics.median(cli) * 1000
    ratio = engine_ms / base_ms
    print(f"repository: {args.files} files; {args.sessions} sessions")
    print(f"{'':<34}{'median':>10}{'mean':>10}{'max':>10}")
    for label, values in (("git worktree add (baseline)", baseline), ("supervisor start (engine API)", engine),
                          ("supervisor start (CLI process)", cli)):
        print(f"{label:<34}{statistics.median(values) * 1000:>8.1f}ms{statistics.mean(values) * 1000:>8.1f}ms"
              f"{max(values) * 1000:>8.1f}ms")
    print(f"ratio engine/baseline: {ratio:.2f}x (target <= {TARGET_RATIO}x) "
          f"{'OK' if ratio <= TARGET_RATIO else 'OVER TARGET'}")
    print(f"CLI overhead over the engine: {cli_ms - engine_ms:.0f}ms (Python start-up of the command)")
    print(f"agents launched: {len(states)}, states: {sorted(set(states))}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
