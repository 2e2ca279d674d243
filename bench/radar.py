"""What the conflict radar costs: 20 agent branches, then a swarm of 100, on a 2000-file repository, against
a naive radar and the radar without its prefilter in the same run.

    .venv/bin/python bench/radar.py [--branches 20] [--swarm 100] [--files 2000] [--rounds 5] [--workers N]

Part 1, BRANCHES branches: a scratch repository of FILES files and BRANCHES agent branches of three commits
each (five files of their own, and pairs of neighbours editing one file in common: BRANCHES/2 conflicting
pairs), then main moves so that a few branches also conflict with it. For every pair and each branch against
main (190 + 20 trial merges for 20 branches) it times, as the median of ROUNDS (the first four in
interleaved rounds):
  naive        one `git merge-tree --write-tree` per pair, one after the other, nothing cached
  no prefilter `Radar.scan` from an empty cache with its prefilter off: a merge per pair, in the pool
  cold 1       `Radar.scan` from an empty cache, one merge at a time
  cold pool    the same with a pool of WORKERS threads (default: the radar's, min(4, CPUs))
  nothing      a scan with nothing moved (every outcome from the cache: no git process)
  one moved    a scan after one branch got a new commit (only its BRANCHES pairs are looked at again)
  stamp        what the engine does twice a second to learn that nothing moved (a few stat calls)
Target: a cold scan of 20 branches under 1 s.

Part 2, a swarm of SWARM agents (0: skip it), as they run in practice: started one after the other while
main moves on (other work merged, in folders of its own), so their forks differ; each changes files of its
own folder, 8 pairs also edit one file in common on the same line (conflicts) and 4 pairs on different lines
(clean, but only a merge can tell), and at the end main changes a file 4 agents also changed. It times the
cold scan with the prefilter (median of ROUNDS), the same without it (once, and it checks both agree), the
naive radar (timed on a sample of pairs and extrapolated: 5000 merges one after the other take minutes), and
what the engine does when something moves — `for-each-ref` plus a scan — after one agent's commit, after
main moved, and after a new agent started: wall time, CPU (the bench and its git processes), and merges
run against pairs proven clean. From the CPU of one agent's commit it gives what 100 agents committing once a
minute each cost, against the budget of 2% of one core for watching 100 agents.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from itertools import combinations
from pathlib import Path

from supervisor.git.audit import branch_tips
from supervisor.git.radar import Radar, Scan, default_workers
from supervisor.git.refs import refs_stamp

TARGET_SECONDS = 1.0
BUDGET = 0.02  # of one core, for watching 100 agents (DESIGN.md)


def git(root: Path, *args: str, stdin: bytes | None = None, index: Path | None = None) -> str:
    env = {**os.environ, **({"GIT_INDEX_FILE": str(index)} if index else {})}
    done = subprocess.run(["git", *args], cwd=root, input=stdin, capture_output=True, env=env, check=True)
    return done.stdout.decode().strip()


def make_repo(root: Path, files: int, folders: int = 100) -> list[str]:
    """A repository of `files` Python files in `folders` folders, committed on main; their paths (file i is
    in folder i % folders)."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    paths = []
    for index in range(files):
        path = f"pkg{index % folders:03d}/module_{index:04d}.py"
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


def edited(root: Path, path: str, who: str, line: int = 10) -> str:
    """The file with one line changed by `who` (two such edits of one line conflict; of two lines, merge)."""
    lines = (root / path).read_text().splitlines(keepends=True)
    lines[line] = f"VALUE_{line} = {who!r}\n"
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


def make_swarm(root: Path, paths: list[str], count: int, folders: int) -> dict[str, str | None]:
    """`count` agents started one after the other, main moving on before every other start (two files of the
    folders after the agents' own); agent n changes five files of folder n, and its last commit one more of
    its own, or a file it shares with another agent. Then main changes one file of agents 3, 27, 51, 75."""
    in_folder = [[p for p in paths if int(p[3:6]) == folder] for folder in range(folders)]
    shared: dict[int, tuple[str, int]] = {}  # agent → (file shared with another agent, line it edits)
    for pair in range(12):  # 8 pairs on the same line (conflicts), 4 on different lines (clean merges)
        one, two = (pair * 8) % count, (pair * 8 + 5) % count
        path = in_folder[count + 40 + pair][0]
        shared[one], shared[two] = (path, 10), (path, 10 if pair < 8 else 12)
    branches: dict[str, str | None] = {}
    for number in range(count):
        if number % 2 == 0:
            merged = in_folder[count + number % 40]  # others' work, merged meanwhile
            commit_on(root, "main", "main", {p: edited(root, p, f"merged {number}", 3) for p in merged[:2]},
                      f"merged {number}")
        branch, own = f"agent/s{number:03d}", in_folder[number % folders]
        last = {shared[number][0]: edited(root, shared[number][0], branch, shared[number][1])} \
            if number in shared else {own[5]: edited(root, own[5], branch)}
        tip = git(root, "rev-parse", "main")
        for step, chunk in enumerate(({p: edited(root, p, branch) for p in own[:2]},
                                      {p: edited(root, p, branch) for p in own[2:5]}, last)):
            tip = commit_on(root, branch, tip, chunk, f"step {step}")
        branches[branch] = "main"
    commit_on(root, "main", "main", {in_folder[n][0]: edited(root, in_folder[n][0], "main") for n in (3, 27, 51, 75)},
              "main changes agents' files")
    return branches


def naive(root: Path, pairs: list[tuple[str, str]]) -> int:
    """One `git merge-tree` per pair, one after the other; how many conflict."""
    found = 0
    for one, two in pairs:
        done = subprocess.run(["git", "merge-tree", "--write-tree", "--name-only", "--no-messages", one, two],
                              cwd=root, capture_output=True, check=False)
        found += done.returncode == 1
    return found


def all_pairs(branches: dict[str, str | None]) -> list[tuple[str, str]]:
    return [*combinations(sorted(branches), 2), *((b, t) for b, t in branches.items() if t)]


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


def cpu() -> float:
    """CPU seconds of this process and of its finished children (the git processes)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def part_one(root: Path, args: argparse.Namespace) -> bool:
    print(f"building {args.files} files and {args.branches} branches…", flush=True)
    paths = make_repo(root, args.files)
    branches = make_branches(root, paths, args.branches)
    tips = branch_tips(root, "refs/heads/")
    pairs = all_pairs(branches)
    merges = len(pairs)

    check = Radar(root).scan(branches, tips)
    found = sum(len(found) for found in check.conflicts.values())  # each pair counted from both sides
    against_main = sum(1 for found in check.conflicts.values() for c in found if c.other == "main")
    agrees = naive(root, pairs) == (found - against_main) // 2 + against_main
    print(f"{len(branches)} branches: {merges} pairs per cold scan; {(found - against_main) // 2} "
          f"conflicting pairs, {against_main} branches conflicting with main (naive radar agrees: {agrees})")

    workers = args.workers
    # Interleaved rounds, so that other load on the machine weighs on all of them alike.
    naive_s, plain, cold_one, cold_pool = interleaved(args.rounds, [
        lambda: naive(root, pairs),
        lambda: Radar(root, workers=workers, prefilter=False).scan(branches, tips),
        lambda: Radar(root, workers=1).scan(branches, tips),
        lambda: Radar(root, workers=workers).scan(branches, tips),
    ])
    warm = Radar(root)
    warm.scan(branches, tips)
    nothing = median_of(args.rounds, lambda: warm.scan(branches, tips))

    moved_times, moved = [], Scan({})
    for round_number in range(args.rounds):
        tip = commit_on(root, "agent/a07", tips["agent/a07"],
                        {paths[7]: edited(root, paths[7], f"round {round_number}")}, "one more")
        tips = {**tips, "agent/a07": tip}
        started = time.perf_counter()
        moved = warm.scan(branches, tips)
        moved_times.append(time.perf_counter() - started)
    one_moved = statistics.median(moved_times)
    common = root / ".git"
    stamp = median_of(args.rounds * 100, lambda: refs_stamp(common, ["refs/heads/agent", "refs/heads"]))
    for_each_ref = median_of(args.rounds, lambda: branch_tips(root, "refs/heads/"))

    rows = [
        ("naive (sequential, uncached)", naive_s, merges, 0),
        (f"no prefilter, pool of {workers}", plain, merges, 0),
        ("cold scan, 1 at a time", cold_one, check.merges, check.skipped),
        (f"cold scan, pool of {workers}", cold_pool, check.merges, check.skipped),
        ("nothing moved (cache)", nothing, 0, 0),
        ("one branch moved", one_moved, moved.merges, moved.skipped),
    ]
    print(f"\n{'':32} {'time':>9} {'merges':>7} {'skipped':>8} {'vs naive':>9}")
    for label, seconds, count, skipped in rows:
        print(f"{label:32} {1000 * seconds:7.1f}ms {count:7d} {skipped:8d} {naive_s / seconds:8.1f}x")
    print(f"\nrefs stamp (each look, nothing moved): {1e6 * stamp:.1f} µs; for-each-ref when something did: "
          f"{1000 * for_each_ref:.1f} ms")
    print(f"pool of {workers} on {os.cpu_count()} CPUs: {cold_one / cold_pool:.2f}x faster than one at a time")
    verdict = "OK" if cold_pool < TARGET_SECONDS else "OVER TARGET"
    print(f"target: cold scan of {len(branches)} branches < {TARGET_SECONDS:.0f} s: {1000 * cold_pool:.0f} ms "
          f"{verdict}")
    return cold_pool < TARGET_SECONDS


def part_two(root: Path, args: argparse.Namespace) -> None:
    count, workers = args.swarm, args.workers
    print(f"\nbuilding {args.files} files and a swarm of {count} agents…", flush=True)
    folders = max(200, count + 60)
    paths = make_repo(root, args.files, folders)
    branches = make_swarm(root, paths, count, folders)
    tips = branch_tips(root, "refs/heads/")
    pairs = all_pairs(branches)

    started = time.perf_counter()
    plain_radar = Radar(root, workers=workers, prefilter=False)
    plain = plain_radar.scan(branches, tips)
    plain_s, plain_merges = time.perf_counter() - started, plain.merges
    agent = f"agent/s{count // 3:03d}"
    commit_on(root, agent, tips[agent], {paths[count // 3]: edited(root, paths[count // 3], "again", 16)}, "more")
    before, started = cpu(), time.perf_counter()
    tips = branch_tips(root, "refs/heads/")
    without = plain_radar.scan(branches, tips)
    without_row = ("one agent committed, no prefilter (once)", time.perf_counter() - started, cpu() - before,
                   without.merges, without.skipped)
    plain = plain_radar.scan(branches, tips)  # all from the cache, to compare with
    cold_times, cold_cpu = [], []
    for _ in range(args.rounds):
        radar, before, started = Radar(root, workers=workers), cpu(), time.perf_counter()
        cold = radar.scan(branches, tips)
        cold_times.append(time.perf_counter() - started)
        cold_cpu.append(cpu() - before)
    forks = len({git(root, "merge-base", branch, "main") for branch in branches})
    conflicting = sum(len(found) for found in cold.conflicts.values())
    with_main = sum(1 for found in cold.conflicts.values() for c in found if c.other == "main")
    print(f"{count} agents: {len(pairs)} pairs per cold scan; {(conflicting - with_main) // 2} conflicting pairs, "
          f"{with_main} agents conflicting with main; the prefilter agrees with a merge per pair: "
          f"{cold.conflicts == plain.conflicts and not cold.failures and not plain.failures}")
    sample = random.Random(7).sample(pairs, min(len(pairs), 150))
    naive_s = median_of(3, lambda: naive(root, sample)) / len(sample) * len(pairs)

    def engine_look(label: str, rows: list[tuple[str, float, float, int, int]]) -> None:
        """What the engine does when the refs moved: read the tips, scan."""
        nonlocal tips
        before, started = cpu(), time.perf_counter()
        tips = branch_tips(root, "refs/heads/")
        scan = radar.scan(branches, tips)
        rows.append((label, time.perf_counter() - started, cpu() - before, scan.merges, scan.skipped))

    moves: list[tuple[str, float, float, int, int]] = []
    mains: list[tuple[str, float, float, int, int]] = []
    for round_number in range(4 * args.rounds):  # agents in turn (a quarter of them share a file), main now and then
        number = (round_number * 37 + 3) % count
        agent, own = f"agent/s{number:03d}", paths[number]
        commit_on(root, agent, tips[agent], {own: edited(root, own, f"round {round_number}", 15)}, "one more")
        engine_look("one agent committed", moves)
        if round_number % 4 == 3:
            merged = paths[count + 60 + round_number // 4]  # a folder of its own
            commit_on(root, "main", tips["main"], {merged: edited(root, merged, f"round {round_number}", 15)},
                      "merged")
            engine_look("main moved", mains)
    started_agent: list[tuple[str, float, float, int, int]] = []
    fresh = paths[count + 55]
    commit_on(root, "agent/fresh", tips["main"], {fresh: edited(root, fresh, "fresh", 16)}, "fresh")
    branches["agent/fresh"] = "main"
    engine_look("an agent started", started_agent)

    def median_row(rows: list[tuple[str, float, float, int, int]]) -> tuple[str, float, float, int, int]:
        return (rows[0][0], statistics.median(r[1] for r in rows), statistics.median(r[2] for r in rows),
                max(r[3] for r in rows), max(r[4] for r in rows))

    print(f"({forks} distinct forks; medians of {args.rounds} rounds, {4 * args.rounds} agents' commits, unless said)")
    print(f"\n{'':40} {'time':>9} {'CPU':>9} {'merges':>7} {'skipped':>8}")
    table = [
        (f"naive, {len(pairs)} merges one by one*", naive_s, float("nan"), len(pairs), 0),
        (f"no prefilter, pool of {workers} (once)", plain_s, float("nan"), plain_merges, 0),
        (f"cold scan, pool of {workers}", statistics.median(cold_times), statistics.median(cold_cpu),
         cold.merges, cold.skipped),
        median_row(moves), median_row(mains), started_agent[0], without_row,
    ]
    for label, seconds, spent, merges, skipped in table:
        shown = "-" if math.isnan(spent) else f"{1000 * spent:.1f}ms"
        print(f"{label:40} {1000 * seconds:7.1f}ms {shown:>9} {merges:7d} {skipped:8d}")
    print(f"* timed on {len(sample)} sampled pairs and extrapolated; merges and skipped: the most of any round")
    per_commit, per_commit_before = statistics.mean(r[2] for r in moves), without_row[2]
    share, share_before = per_commit * count / 60, per_commit_before * count / 60
    print(f"\n{count} agents committing once a minute each: {100 * share:.2f}% of one core ({1000 * per_commit:.1f} ms "
          f"of CPU per commit, the mean of {len(moves)}; without the prefilter: {100 * share_before:.1f}%); budget "
          f"for watching 100 agents: {100 * BUDGET:.0f}%")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--branches", type=int, default=20)
    parser.add_argument("--swarm", type=int, default=100, help="agents of part 2 (0: skip it)")
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=default_workers(), help="threads of the pool")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="sv-bench-radar-"))
    os.environ.update({"HOME": str(scratch), "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "b",
                       "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"})
    try:
        ok = part_one(scratch / "repo", args)
        if args.swarm:
            part_two(scratch / "swarm", args)
        return 0 if ok else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
