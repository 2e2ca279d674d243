"""The trees' /proc files kept open between scans: read again without being opened, never trusted for another
process, and a tree's changes still seen."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from supervisor.engine.processes import scan
from supervisor.engine.procfiles import ProcFiles
from tests.conftest import wait_until


def _held(pid: int) -> set[str]:
    """The /proc files of `pid` this process holds open."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(f"/proc/{pid}/"):
            found.add(target)
    return found


def _opened(files: ProcFiles, pid: int) -> int:
    """How many files are opened anew when `pid`'s stat and children are read (counted as the kernel sees them:
    descriptors held before and after)."""
    before = len(os.listdir("/proc/self/fd"))
    files.stat(pid)
    files.children(pid, 1)
    return len(os.listdir("/proc/self/fd")) - before


def test_a_tree_scanned_again_is_read_through_the_files_kept_open() -> None:
    root = subprocess.Popen(["/bin/sh", "-c", "sleep 300 & wait"], start_new_session=True)
    try:
        snapshot = wait_until(lambda: (found := scan([root.pid])) and len(found.procs) == 2 and found,
                              message="the shell and its sleep")
        child = next(pid for pid in snapshot.procs if pid != root.pid)
        assert {f"/proc/{root.pid}/stat", f"/proc/{root.pid}/task/{root.pid}/children"} <= _held(root.pid)
        assert f"/proc/{child}/stat" in _held(child)
        held = _held(root.pid) | _held(child)
        again = scan([root.pid])
        assert set(again.procs) == {root.pid, child}
        assert _held(root.pid) | _held(child) == held  # nothing opened anew
    finally:
        os.killpg(root.pid, signal.SIGKILL)
        root.wait()


def test_a_child_started_after_a_scan_is_found_and_one_that_ended_is_gone() -> None:
    files = ProcFiles()
    root = subprocess.Popen(["/bin/sh", "-c", "trap 'sleep 300 & wait' USR1; sleep 300 & wait; wait"],
                            start_new_session=True)
    try:
        first = wait_until(lambda: len(scan([root.pid]).procs) == 2 and scan([root.pid]),
                           message="the shell and its first sleep")
        assert _opened(files, root.pid) == 2
        assert _opened(files, root.pid) == 0  # its stat and children read again through the same files
        os.kill(root.pid, signal.SIGUSR1)  # a second sleep under the same shell
        wait_until(lambda: len(scan([root.pid]).procs) == 3, message="the second sleep, found under the shell")
        old = next(pid for pid in first.procs if pid != root.pid)
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: old not in scan([root.pid]).procs, message="the ended sleep out of the tree")
        assert len(files.children(root.pid, 1)) == 1
    finally:
        os.killpg(root.pid, signal.SIGKILL)
        root.wait()
        files.close()


def test_the_files_of_an_ended_process_are_not_read_for_its_pid() -> None:
    files = ProcFiles()
    process = subprocess.Popen(["/bin/sh", "-c", "sleep 300 & wait"], start_new_session=True)
    try:
        assert files.stat(process.pid) is not None
        # The shell forks its sleep after Popen returns: wait for it rather than race the fork.
        wait_until(lambda: len(files.children(process.pid, 1)) == 1, message="the shell's sleep")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    # Ended and reaped: its open stat file fails, and its pid's files are let go rather than read as another's.
    assert files.stat(process.pid) is None
    assert files.children(process.pid, 1) == []
    assert not _held(process.pid)
    files.close()


def test_a_process_that_did_not_run_is_not_parsed_again_and_one_that_ran_is() -> None:
    """A scan parses a process's stat only when its text changed since the last scan: most of a tree did not run
    in between (a shell waiting, a sleeping tool). A process that ran is read anew, its CPU as it is now."""
    files = ProcFiles()
    parsed: list[int] = []

    def parse(pid: int, data: bytes) -> float:
        parsed.append(pid)
        fields = data[data.rfind(b")") + 2:].split()
        return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks

    quiet = subprocess.Popen(["sleep", "300"])
    busy = subprocess.Popen(["/bin/sh", "-c", "while :; do :; done"])
    try:
        wait_until(lambda: Path(f"/proc/{quiet.pid}/stat").read_text().split(") ")[1][0] == "S", message="asleep")
        files.parsed(quiet.pid, parse)
        assert files.parsed(quiet.pid, parse) == files.parsed(quiet.pid, parse)
        assert parsed == [quiet.pid]
        first = files.parsed(busy.pid, parse)
        assert first is not None
        wait_until(lambda: (files.parsed(busy.pid, parse) or 0) > first, message="its CPU read anew")
        assert parsed.count(busy.pid) >= 2
    finally:
        for proc in (quiet, busy):
            proc.kill()
            proc.wait()
    assert files.parsed(busy.pid, parse) is None  # ended: nothing to parse
    files.close()
