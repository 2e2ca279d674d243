"""How long starting a session costs, against a raw `git worktree add` measured in the same run.

    .venv/bin/python bench/spawn.py [--sessions 20] [--files 2000]

Builds a scratch repository of FILES files, then times:
  baseline   `git worktree add -b BRANCH DIR HEAD`, SESSIONS times
  engine     `supervisor start` through the client API (worktree, excludes, setup, tmux session, transcript,
             store, launch of the demo agent), SESSIONS times
  cli        the same through the `supervisor` command, a few times (adds the Python start-up of the CLI)
  sandbox    the same `supervisor start` with `isolation: sandbox` beside `isolation: none`, and the time
             to run a command in an agent's real sandbox (bubblewrap with all its binds) beside running it bare
and prints the time per session and the ratio engine / baseline (target: at most 1.5), and the sandbox's cost
per start (target: at most 50 ms more).
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

from supervisor.paths import RepoPaths, find_repo
from supervisor.tmux.server import Tmux

TARGET_RATIO = 1.5
TARGET_SANDBOX_MS = 50.0


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

    from supervisor.client import call, engine_running, ensure_engine
    paths = find_repo(repo)
    try:
        baseline = []
        for index in range(args.sessions):
            target = scratch / "baseline" / f"b{index}"
            baseline.append(timed(lambda t=target, i=index: subprocess.run(
                ["git", "worktree", "add", "--quiet", "-b", f"baseline/{i}", str(t), "HEAD"],
                cwd=repo, check=True)))

        engine: dict[str, list[float]] = {}
        for isolation in ("none", "sandbox"):
            with contextlib.suppress(Exception):
                call(paths, "shutdown", autostart=False)
            deadline = time.monotonic() + 20
            while engine_running(paths) and time.monotonic() < deadline:
                time.sleep(0.05)
            configure(repo, isolation)
            ensure_engine(paths)  # started once, as it is for a user; not part of a session's cost
            engine[isolation] = [timed(lambda i=index, kind=isolation: call(paths, "start", {"name": f"{kind}{i}",
                                                                              "wait": False}))
                                 for index in range(args.sessions)]
        bare, boxed = exec_cost(paths, repo, "sandbox0", args.sessions)
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
    engine_ms = statistics.median(engine["none"]) * 1000
    sandbox_ms = statistics.median(engine["sandbox"]) * 1000 - engine_ms + (statistics.median(boxed)
                                                                            - statistics.median(bare)) * 1000
    cli_ms = statistics.median(cli) * 1000
    ratio = engine_ms / base_ms
    print(f"repository: {args.files} files; {args.sessions} sessions")
    print(f"{'':<40}{'median':>10}{'mean':>10}{'max':>10}")
    for label, values in (("git worktree add (baseline)", baseline),
                          ("supervisor start (engine API, none)", engine["none"]),
                          ("supervisor start (engine API, sandbox)", engine["sandbox"]),
                          ("supervisor start (CLI process)", cli),
                          ("sh -c true", bare), ("sh -c true in the agent's sandbox", boxed)):
        print(f"{label:<40}{statistics.median(values) * 1000:>8.1f}ms{statistics.mean(values) * 1000:>8.1f}ms"
              f"{max(values) * 1000:>8.1f}ms")
    print(f"ratio engine/baseline: {ratio:.2f}x (target <= {TARGET_RATIO}x) "
          f"{'OK' if ratio <= TARGET_RATIO else 'OVER TARGET'}")
    print(f"CLI overhead over the engine: {cli_ms - engine_ms:.0f}ms (Python start-up of the command)")
    print(f"sandbox cost per start: {sandbox_ms:.1f}ms (engine side + bubblewrap's own start; target <= "
          f"{TARGET_SANDBOX_MS:.0f}ms) {'OK' if sandbox_ms <= TARGET_SANDBOX_MS else 'OVER TARGET'}")
    print(f"agents launched: {len(states)}, states: {sorted(set(states))}")
    return 0 if ratio <= TARGET_RATIO and sandbox_ms <= TARGET_SANDBOX_MS else 1


def configure(repo: Path, isolation: str) -> None:
    """supervisor.yaml with `isolation`, for the engine started next."""
    agent = f"{shlex.quote(sys.executable)} -m supervisor.demo.agent"
    (repo / "supervisor.yaml").write_text(f"agent:\n  profile: generic\n  command: {agent}\nisolation: {isolation}\n")


def exec_cost(paths: RepoPaths, repo: Path, name: str, count: int) -> tuple[list[float], list[float]]:
    """Seconds to run `sh -c true` bare, and inside agent `name`'s sandbox as the engine builds it."""
    from supervisor.config import load_config
    from supervisor.hosts import isolation, sandbox
    from supervisor.hosts.local import SHELL, LocalHost

    host = LocalHost(paths, Tmux(paths.tmux_socket, paths.tmux_conf), None, lambda: load_config(repo))  # type: ignore[arg-type]
    from supervisor.core.store import Store

    agent = Store(paths.db_path).get_agent(name)
    assert agent is not None and isolation.sandboxing().bwrap is not None
    spec = host.spec(agent, os.environ)
    argv = sandbox.argv(spec, [SHELL, "-c", "true"], isolation.sandboxing().bwrap or "bwrap")
    bare = [timed(lambda: subprocess.run([SHELL, "-c", "true"], check=True)) for _ in range(count)]
    boxed = [timed(lambda: subprocess.run(argv, check=True)) for _ in range(count)]
    return bare, boxed


if __name__ == "__main__":
    sys.exit(main())
