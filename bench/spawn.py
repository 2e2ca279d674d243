"""How long starting a session costs, against a raw `git worktree add` measured in the same run.

    .venv/bin/python bench/spawn.py [--sessions 20] [--files 2000]

Builds a scratch repository of FILES files, then times:
  baseline   `git worktree add -b BRANCH DIR HEAD`, SESSIONS times
  engine     `supervisor start` through the client API (worktree, excludes, setup, tmux session, transcript,
             store, launch of the demo agent), SESSIONS times
  cli        the same through the `supervisor` command, a few times (adds the Python start-up of the CLI)
  sandbox    the same `supervisor start` with `isolation: sandbox` beside `isolation: none` (one engine, the
             two in turn; wall time and the engine's CPU per start), and the time to run a command in an
             agent's real sandbox (bubblewrap with all its binds) beside running it bare
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

import psutil

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

    from supervisor.client import call, ensure_engine
    paths = find_repo(repo)
    try:
        baseline = []
        for index in range(args.sessions):
            target = scratch / "baseline" / f"b{index}"
            baseline.append(timed(lambda t=target, i=index: subprocess.run(
                ["git", "worktree", "add", "--quiet", "-b", f"baseline/{i}", str(t), "HEAD"],
                cwd=repo, check=True)))

        # One engine, the two isolations started in turn (none, sandbox, sandbox, none, ...): on a machine others
        # load, the load drifts between two blocks of starts, less between neighbours. Besides the wall time, the
        # engine's own CPU (with the git, tmux and bubblewrap processes it waited for) per start.
        configure(repo, "none")
        ensure_engine(paths)  # started once, as it is for a user; not part of a session's cost
        engine_proc = psutil.Process(int(call(paths, "status")["pid"]))
        engine: dict[str, list[float]] = {"none": [], "sandbox": []}
        cpu: dict[str, list[float]] = {"none": [], "sandbox": []}
        for index in range(args.sessions):
            for kind in (("none", "sandbox") if index % 2 == 0 else ("sandbox", "none")):
                used = _cpu(engine_proc)
                engine[kind].append(timed(lambda i=index, k=kind: call(paths, "start", {
                    "name": f"{k}{i}", "wait": False, "isolation": k})))
                cpu[kind].append(_cpu(engine_proc) - used)
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
    paired = [boxed_start - bare_start
              for bare_start, boxed_start in zip(engine["none"], engine["sandbox"], strict=True)]
    bwrap_ms = (statistics.median(boxed) - statistics.median(bare)) * 1000
    sandbox_ms = statistics.median(paired) * 1000 + bwrap_ms
    cli_ms = statistics.median(cli) * 1000
    ratio = engine_ms / base_ms
    print(f"repository: {args.files} files; {args.sessions} sessions")
    print(f"{'':<40}{'median':>10}{'mean':>10}{'max':>10}")
    for label, values in (("git worktree add (baseline)", baseline),
                          ("supervisor start (engine API, none)", engine["none"]),
                          ("supervisor start (engine API, sandbox)", engine["sandbox"]),
                          ("  sandbox - none, start by start", paired),
                          ("  engine CPU per start, none", cpu["none"]),
                          ("  engine CPU per start, sandbox", cpu["sandbox"]),
                          ("supervisor start (CLI process)", cli),
                          ("sh -c true", bare), ("sh -c true in the agent's sandbox", boxed)):
        print(f"{label:<40}{statistics.median(values) * 1000:>8.1f}ms{statistics.mean(values) * 1000:>8.1f}ms"
              f"{max(values) * 1000:>8.1f}ms")
    print(f"ratio engine/baseline: {ratio:.2f}x (target <= {TARGET_RATIO}x) "
          f"{'OK' if ratio <= TARGET_RATIO else 'OVER TARGET'}")
    print(f"CLI overhead over the engine: {cli_ms - engine_ms:.0f}ms (Python start-up of the command)")
    cpu_ms = (statistics.median(cpu["sandbox"]) - statistics.median(cpu["none"])) * 1000
    print(f"sandbox cost per start: {sandbox_ms:.1f}ms (engine side, start by start, + bubblewrap's own start "
          f"{bwrap_ms:.1f}ms; target <= {TARGET_SANDBOX_MS:.0f}ms) "
          f"{'OK' if sandbox_ms <= TARGET_SANDBOX_MS else 'OVER TARGET'}; engine CPU {cpu_ms:+.1f}ms per start")
    print(f"agents launched: {len(states)}, states: {sorted(set(states))}")
    return 0 if ratio <= TARGET_RATIO and sandbox_ms <= TARGET_SANDBOX_MS else 1


def _cpu(process: psutil.Process) -> float:
    """Seconds of CPU the process used so far, with the children it waited for."""
    times = process.cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


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
