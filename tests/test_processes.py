"""Process trees from one scan, CPU per tree, and killing whole trees with real processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

from supervisor.engine import subreaper
from supervisor.engine.processes import CpuMeter, TreeUsage, kill_tree, scan
from supervisor.engine.watcher import CPU_BUSY_PERCENT
from tests.conftest import wait_until

BUSY = "import time\nend = time.time() + 30\nwhile time.time() < end: pass\n"


def _spawn_tree(*, ignore_term: bool) -> subprocess.Popen[bytes]:
    """A shell with a sleeping child and a CPU-burning grandchild."""
    trap = "trap '' TERM; " if ignore_term else ""
    script = f"{trap}sleep 300 & {sys.executable} -c '{BUSY}' & wait"
    return subprocess.Popen(["/bin/sh", "-c", script])


def test_scan_builds_trees_and_meters_cpu() -> None:
    root = _spawn_tree(ignore_term=False)
    try:
        wait_until(lambda: len(scan().tree(root.pid)) == 3, message="tree of three")
        meter = CpuMeter()
        meter.usage(scan(), [root.pid])
        time.sleep(0.5)  # the interval CPU is measured over, not a wait for a condition
        usage = meter.usage(scan(), [root.pid])[root.pid]
        assert len(usage.pids) == 3
        assert usage.cpu_percent > CPU_BUSY_PERCENT  # the busy grandchild makes the tree count as working
        assert usage.rss_bytes > 1_000_000
    finally:
        kill_tree(root.pid, 0)
        root.wait()


def test_each_tree_is_metered_since_its_own_last_look() -> None:
    """The watcher reads busy trees every tick and quiet ones every few ticks: a tree's CPU is the average
    since that tree was last measured, whatever was measured in between."""
    busy, quiet = _spawn_tree(ignore_term=False), subprocess.Popen(["sleep", "300"])
    try:
        wait_until(lambda: len(scan().tree(busy.pid)) == 3, message="tree of three")
        meter = CpuMeter()
        meter.measure(scan([busy.pid, quiet.pid]), busy.pid)
        meter.measure(scan([quiet.pid]), quiet.pid)
        for _ in range(3):
            time.sleep(0.2)  # the interval CPU is measured over, not a wait for a condition
            assert meter.measure(scan([busy.pid]), busy.pid).cpu_percent > CPU_BUSY_PERCENT
        usage = meter.measure(scan([quiet.pid]), quiet.pid)
        assert usage.pids == (quiet.pid,) and usage.cpu_percent < CPU_BUSY_PERCENT
        time.sleep(0.2)
        tools = meter.measure(scan([busy.pid]), busy.pid)
        assert tools.tools_percent(["python3", "python"]) < CPU_BUSY_PERCENT < tools.cpu_percent  # python burns
        meter.forget([quiet.pid])
        time.sleep(0.2)
        assert meter.measure(scan([busy.pid]), busy.pid).cpu_percent == 0.0  # forgotten: no previous look
    finally:
        kill_tree(busy.pid, 0)
        busy.wait()
        quiet.kill()
        quiet.wait()


def test_a_child_gone_between_its_parents_listing_and_its_own_read_leaves_the_tree_measured() -> None:
    """A process that exits after its parent's children file listed it and before its own stat was read is in
    the snapshot's children and not in its processes: the tree is measured without it (this failed the whole
    tick, every agent's, when a tool exited at that moment)."""
    root = _spawn_tree(ignore_term=False)
    try:
        wait_until(lambda: len(scan([root.pid]).tree(root.pid)) == 3, message="tree of three")
        snapshot = scan([root.pid])
        gone = snapshot.children[root.pid][0]
        del snapshot.procs[gone]  # what the scan keeps of a child whose stat could no longer be read
        usage = CpuMeter().measure(snapshot, root.pid)
        assert len(usage.pids) == 2 and gone not in usage.pids
    finally:
        kill_tree(root.pid, 0)
        root.wait()


def test_a_tool_named_like_the_cli_still_counts_as_work(tmp_path: Path) -> None:
    """Under a CLI that is itself `node` (Claude Code, Codex, Gemini), a silent `node` test run started
    through its shell tool is work; only the CLI's own processes at the top of the tree are left out."""
    busy = tmp_path / "busy.py"
    busy.write_text(BUSY)
    cli = tmp_path / "cli.py"  # the "CLI": idle itself, it runs a tool through a shell, as a Bash tool does
    cli.write_text(f"import subprocess\nsubprocess.run(['/bin/sh', '-c', '{sys.executable} {busy}'])\n")
    root = subprocess.Popen(["/bin/sh", "-c", f"{sys.executable} {cli}; true"])
    try:
        wait_until(lambda: len(scan().tree(root.pid)) == 4, message="sh, the CLI, its tool shell, the tool")
        pids = scan().tree(root.pid)
        name = scan().procs[pids[1]].name  # the CLI and the tool run the same program
        meter = CpuMeter()
        meter.measure(scan([root.pid]), root.pid)
        time.sleep(0.5)  # the interval CPU is measured over, not a wait for a condition
        usage = meter.measure(scan([root.pid]), root.pid)
        assert usage.names.count(name) == 2
        assert usage.tools_percent([name]) > CPU_BUSY_PERCENT
    finally:
        kill_tree(root.pid, 0)
        root.wait()


def test_kill_tree_terms_then_kills_stubborn_processes() -> None:
    root = _spawn_tree(ignore_term=True)
    wait_until(lambda: len(scan().tree(root.pid)) == 3, message="tree of three")
    members = [psutil.Process(pid) for pid in scan().tree(root.pid)]
    started = time.monotonic()
    survivors = kill_tree(root.pid, grace=0.5)
    root.wait()
    assert survivors == []
    assert time.monotonic() - started < 5
    for proc in members:
        assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE


def test_kill_tree_finds_escaped_processes_by_environment() -> None:
    token = f"tok-{os.getpid()}-{time.time()}"
    env = {**os.environ, "SUPERVISOR_TOKEN": token}
    since = time.time()
    # Double fork: the sleeper is re-parented away from any tree we could walk.
    subprocess.run(["/bin/sh", "-c", "sleep 300 >/dev/null 2>&1 &"], env=env, check=True)
    escaped = wait_until(lambda: [p for p in psutil.process_iter(["environ"])
                                  if (p.info["environ"] or {}).get("SUPERVISOR_TOKEN") == token],
                         message="escaped sleeper")
    assert kill_tree(None, 0, env_key="SUPERVISOR_TOKEN", env_value=token, since=since) == []
    for proc in escaped:
        assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE


def test_kill_tree_does_not_touch_a_reused_pid() -> None:
    """psutil checks a process's start time: a pid that now names another process is left alone."""
    victim = subprocess.Popen(["sleep", "300"])
    stale = psutil.Process(victim.pid)
    victim.kill()
    victim.wait()
    assert not stale.is_running()
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        assert kill_tree(victim.pid, 0) == []
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_walking_only_the_agents_trees_finds_what_a_full_scan_finds() -> None:
    """Children started from any thread (a multi-threaded CLI) are found without reading every process."""
    code = ("import subprocess, threading, time\n"
            "threading.Thread(target=lambda: subprocess.run(['sleep', '30'])).start()\n"
            "time.sleep(30)\n")
    root = subprocess.Popen(["/bin/sh", "-c", f"sleep 30 & {sys.executable} -c \"{code}\" & wait"])
    try:
        wait_until(lambda: len(scan().tree(root.pid)) == 4, message="sh, sleep, python and its thread's sleep")
        assert sorted(scan([root.pid]).tree(root.pid)) == sorted(scan().tree(root.pid))
    finally:
        kill_tree(root.pid, 0)
        root.wait()


def test_a_subreapers_orphans_stay_in_its_tree_and_a_fork_loop_cannot_outrun_the_kill() -> None:
    """The agent's first process is a child subreaper (no cgroup here): a double fork and `setsid -f` leave
    their sleepers to it rather than to init, a loop forks sleepers away from itself, and one kill_tree ends
    them all."""
    orphan, looped = f"900.{os.getpid()}", f"901.{os.getpid()}"
    escapes = (f"env -i setsid -f sleep {orphan}; env -i sh -c '(sleep {orphan} &) &'; "
               f"env -i sh -c 'while :; do (sleep {looped} &); sleep 0.02; done' & exec sleep 300")
    script = Path(subreaper.__file__)
    root = subprocess.Popen([sys.executable, "-I", "-S", str(script), subreaper.NO_CGROUP, "/bin/sh", escapes],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def in_tree(length: str) -> list[psutil.Process]:
        tree = scan([root.pid])
        found = []
        for pid in tree.tree(root.pid):
            with contextlib.suppress(psutil.Error):  # the loop's own `sleep 0.02`s come and go
                if tree.procs[pid].name == "sleep" and (proc := psutil.Process(pid)).cmdline() == ["sleep", length]:
                    found.append(proc)
        return found

    def anywhere() -> list[psutil.Process]:
        return [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] in (["sleep", orphan],
                                                                                  ["sleep", looped])]

    try:
        wait_until(lambda: len(in_tree(orphan)) == 2 and len(in_tree(looped)) >= 3, message="the sleepers in its tree")
        orphans = in_tree(orphan)
        assert [p.ppid() for p in orphans] == [root.pid, root.pid]  # not init's
        assert kill_tree(root.pid, 0) == []
        root.wait()
        assert [p for p in anywhere() if p.status() != psutil.STATUS_ZOMBIE] == []
    finally:
        for proc in anywhere():
            with contextlib.suppress(psutil.Error):
                proc.kill()


def test_a_term_ignoring_orphan_does_not_escape_when_the_first_process_exits_on_term() -> None:
    """The agent's first process (a child subreaper, no cgroup) exits on SIGTERM: the orphan it adopted, which
    ignores SIGTERM, would go to init and out of any tree walked after; kill_tree still ends it."""
    length = f"902.{os.getpid()}"
    line = subreaper.command_line(f"setsid -f sh -c 'trap \"\" TERM; exec sleep {length}'; sleep {length}")
    root = subprocess.Popen(["/bin/sh", "-c", line], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def sleepers() -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                if proc.info["cmdline"] == ["sleep", length] and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
        return found

    try:
        planted = wait_until(lambda: len(found := sleepers()) == 2 and found, message="both sleepers running")
        assert {p.ppid() for p in planted} == {root.pid}  # the orphan was adopted by the first process
        assert kill_tree(root.pid, grace=2.0) == []
        root.wait()
        assert sleepers() == []
    finally:
        for proc in sleepers():
            with contextlib.suppress(psutil.Error):
                proc.kill()


def test_the_sandbox_between_a_pane_and_its_cli_is_the_clis_own_but_a_tool_under_it_is_work() -> None:
    """A sandboxed pane runs tmux's `sh`, then bwrap and the init of its PID namespace, then the `sh` that runs
    the command, then the CLI: a spinner of the CLI is no progress there either; a shell the CLI runs a tool in
    (and the tool) is."""
    def usage(names: list[str], parents: list[int], cpu: list[float]) -> TreeUsage:
        pids = tuple(range(1, len(names) + 1))
        return TreeUsage(pids=pids, cpu_percent=sum(cpu), rss_bytes=0, per_pid=dict(zip(pids, cpu, strict=True)),
                         names=tuple(names), parents=tuple(parents))

    wrapped = usage(["sh", "bwrap", "bwrap", "sh", "node"], [0, 1, 2, 3, 4], [0, 0, 0, 0, 40.0])
    assert wrapped.tools_percent(["node", "claude"]) == 0.0
    working = usage(["sh", "bwrap", "bwrap", "sh", "node", "bash", "node"], [0, 1, 2, 3, 4, 5, 6],
                    [0, 0, 0, 0, 5.0, 1.0, 60.0])
    assert working.tools_percent(["node", "claude"]) == 61.0  # jest under the Bash tool's shell
    bare = usage(["node", "bash", "sleep"], [0, 1, 2], [30.0, 20.0, 0.0])  # no sandbox: the CLI is the root
    assert bare.tools_percent(["node"]) == 20.0
