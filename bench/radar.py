"""What the conflict radar costs: 20 agent branches on a 2000-file repository, against a naive radar in the
same run.

    .venv/bin/python bench/radar.py [--branches 20] [--files 2000] [--rounds 5] [--workers N]

Builds a scratch repository of FILES files and BRANCHES agent branches of three commits each (five files of
their own, and pairs of neighbours editing one file in common: BRANCHES/2 conflicting pairs), then moves
main so that a few branches also conflict with it. For every pair and each branch against main (190 + 20
trial merges for 20 branches) it times, as the median of ROUNDS (the first three in interleaved rounds):
  naive        one `git merge-tree --write-tree` per pair, one after the other, nothing cached
  cold 1       `Radar.scan` from an empty cache, one merge at a time
  cold pool    the same with a pool of WORKERS threads (default: the radar's, min(4, CPUs))
  nothing      a scan with nothing moved (every outcome from the cache: no git process)
  one moved    a scan after one branch got a new commit (only its BRANCHES pairs run git)
  stamp        what the engine does twice a second to learn that nothing moved (a few stat calls)
Target: a cold scan of 20 branches under 1 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from itertools import combinations
from pathlib import Path

from supervisor.git.audit import branch_tips
from supervisor.git.radar import Radar, default_workers
from supervisor.git.refs import refs_stamp

TARGET_SECONDS = 1.0


def git(root: Path, *args: str, stdin: bytes | None = None, index: Path | None = None) -> str:
    env = {**os.environ, **({"GIT_INDEX_FILE": str(index)} if index else {})}
    done = subprocess.run(["git", *args], cwd=root, input=stdin, capture_output=True, env=env, check=True)
    return done.stdout.decode().strip()


def make_repo(root: Path, files: int) -> list[str]:
    """A repository of `files` Python files in 100 folders, committed on main; their paths."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    paths = []
    for index in range(files):
        path = f"pkg{index % 100:03d}/module_{index:04d}.py"
        (root / path).parent.mkdir(exist_ok=True)
        (root / path).write_text("".join(f"VALUE_{line} = {index}\n" for line in range(20)))
        paths.append(path)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "files")
    return paths


def commit_on(root: Path, branch: str, start: str, edits: dict[str, str], message: str) -> str:
    """Commit `edits` (path → new text) on `branch` from `start`, with plumbing (no worktree)."""
    index = root / ".git" / "bench-index"
    git(root, "read-tree", start, index=index)
    for path, text in edits.items():
        blob = git(root, "hash-object", "-w", "--stdin", stdin=text.encode())
        git(root, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", index=index)
    tip = git(root, "commit-tree", git(root, "write-tree", index=index), "-p", start, "-m", message)
    git(root, "update-ref", f"refs/heads/{branch}", tip)
    return tip


def edited(root: Path, path: str, who: str) -> str:
    """The file with its middle line changed by `who` (two such edits of one file conflict)."""
    lines = (root / path).read_text().splitlines(keepends=True)
    lines[10] = f"VALUE_10 = {who!r}\n"
    return "".join(lines)


def make_branches(root: Path, paths: list[str], count: int) -> dict[str, str | None]:
    """`count` agent branches of three commits each; neighbours (0 and 1, 2 and 3, …) edit one file in
    common. Then main edits a file of every fifth branch."""
    base = git(root, "rev-parse", "main")
    branches: dict[str, str | None] = {}
    for number in range(count):
        branch = f"agent/a{number:02d}"
        own = [paths[(number * 37 + k * 101) % len(paths)] for k in range(5)]
        shared = paths[-1 - number // 2]  # the file this branch shares with its neighbour
        tip = base
        for step, chunk in enumerate((own[:2], own[2:], [shared])):
            tip = commit_on(root, branch, tip, {p: edited(root, p, branch) for p in chunk}, f"step {step}")
        branches[branch] = "main"
    moved = {paths[(number * 37) % len(paths)]: edited(root, paths[(number * 37) % len(paths)], "main")
             for number in range(0, count, 5)}
    commit_on(root, "main", base, moved, "main moves on")
    return branches


def naive(root: Path, branches: dict[str, str | None]) -> int:
    """Every pair and every branch against its target, one `git merge-tree` after the other; conflicts."""
    pairs = [*combinations(sorted(branches), 2), *((b, t) for b, t in branches.items() if t)]
    found = 0
    for one, two in pairs:
        done = subprocess.run(["git", "merge-tree", "--write-tree", "--name-only", "--no-messages", one, two],
                              cwd=root, capture_output=True, check=False)
        found += done.returncode == 1
    return found


def interleaved(rounds: int, actions: list[Callable[[], object]]) -> list[float]:
    """The median time of each action, running them in turn, `rounds` times."""
    times: list[list[float]] = [[] for _ in actions]
    for _ in range(rounds):
        for action, spent in zip(actions, times, strict=True):
            started = time.perf_counter()
            action()
            spent.append(time.perf_counter() - started)
    return [statistics.median(spent) for spent in times]


def median_of(rounds: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--branches", type=int, default=20)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=default_workers(), help="threads of the pool")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="sv-bench-radar-"))
    os.environ.update({"HOME": str(scratch), "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "b",
                       "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"})
    try:
        root = scratch / "repo"
        print(f"building {args.files} files and {args.branches} branches…", flush=True)
        paths = make_repo(root, args.files)
        branches = make_branches(root, paths, args.branches)
        tips = branch_tips(root, "refs/heads/")
        merges = len(list(combinations(branches, 2))) + len(branches)

        check = Radar(root).scan(branches, tips)
        pairs = sum(len(found) for found in check.conflicts.values())  # each pair counted from both sides
        against_main = sum(1 for found in check.conflicts.values() for c in found if c.other == "main")
        print(f"{len(branches)} branches: {merges} trial merges per cold scan; {(pairs - against_main) // 2} "
              f"conflicting pairs, {against_main} branches conflicting with main "
              f"(naive radar agrees: {naive(root, branches) == (pairs - against_main) // 2 + against_main})")

        workers = args.workers
        # Interleaved rounds, so that other load on the machine weighs on all three alike.
        naive_s, cold_one, cold_pool = interleaved(args.rounds, [
            lambda: naive(root, branches),
            lambda: Radar(root, workers=1).scan(branches, tips),
            lambda: Radar(root, workers=workers).scan(branches, tips),
        ])
        warm = Radar(root)
        warm.scan(branches, tips)
        nothing = median_of(args.rounds, lambda: warm.scan(branches, tips))

        moved_times, moved_merges = [], 0
        for round_number in range(args.rounds):
            tip = commit_on(root, "agent/a07", tips["agent/a07"],
                            {paths[7]: edited(root, paths[7], f"round {round_number}")}, "one more")
            tips = {**tips, "agent/a07": tip}
            started = time.perf_counter()
            moved_merges = warm.scan(branches, tips).merges
            moved_times.append(time.perf_counter() - started)
        one_moved = statistics.median(moved_times)
        common = root / ".git"
        stamp = median_of(args.rounds * 100, lambda: refs_stamp(common, ["refs/heads/agent", "refs/heads"]))
        for_each_ref = median_of(args.rounds, lambda: branch_tips(root, "refs/heads/"))

        rows = [
            ("naive (sequential, uncached)", naive_s, merges),
            ("cold scan, 1 at a time", cold_one, merges),
            (f"cold scan, pool of {workers}", cold_pool, merges),
            ("nothing moved (cache)", nothing, 0),
            ("one branch moved", one_moved, moved_merges),
        ]
        print(f"\n{'':32} {'time':>9} {'merges':>7} {'per merge':>10} {'vs naive':>9}")
        for label, seconds, count in rows:
            per = f"{1000 * seconds / count:.1f} ms" if count else "-"
            print(f"{label:32} {1000 * seconds:7.1f}ms {count:7d} {per:>10} {naive_s / seconds:8.1f}x")
        print(f"\nrefs stamp (each look, nothing moved): {1e6 * stamp:.1f} µs; for-each-ref when something did: "
              f"{1000 * for_each_ref:.1f} ms")
        print(f"pool of {workers} on {os.cpu_count()} CPUs: {cold_one / cold_pool:.2f}x faster than one at a time")
        verdict = "OK" if cold_pool < TARGET_SECONDS else "OVER TARGET"
        print(f"target: cold scan of {len(branches)} branches < {TARGET_SECONDS:.0f} s: {1000 * cold_pool:.0f} ms "
              f"{verdict}")
        return 0 if cold_pool < TARGET_SECONDS else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
