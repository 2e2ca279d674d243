"""The host program's process trees (supervisor/hostside/procs.py `ps`), read from /proc as the engine's watch asks for
them on every host tick: every process under the roots, children of every thread, each with its own working
directory, and nothing of a process that ended."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from supervisor.hostside import procs
from supervisor.hostside.calls import Call
from tests.conftest import wait_until

# A process of several threads whose second thread starts the child (a CLI's tool run from a worker thread): its
# children file is that thread's, not the main thread's.
THREADED = textwrap.dedent("""\
    import subprocess, sys, threading, time
    def worker():
        subprocess.Popen(["sleep", "301"], cwd=sys.argv[1])
        time.sleep(300)
    threading.Thread(target=worker, daemon=True).start()
    threading.Thread(target=time.sleep, args=(300,), daemon=True).start()
    print("ready", flush=True)
    time.sleep(300)
""")


class _Outlet:
    def send(self, message: dict[str, object]) -> None:
        raise AssertionError("ps sends nothing ahead of its answer")

    def take_stream(self, name: str) -> str:
        raise AssertionError("ps takes no upload")


def ps(**args: object) -> list[object]:
    return procs.ps(Call(_Outlet(), 1, dict(args)))


def expected(root: int) -> dict[int, tuple[int, str, str]]:
    """pid → (ppid, name, working directory) of the tree under `root`, as psutil reads it."""
    found = {}
    top = psutil.Process(root)
    for process in [top, *top.children(recursive=True)]:
        found[process.pid] = (process.ppid(), process.name(), process.cwd())
    return found


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    inner, deep = tmp_path / "inner", tmp_path / "deep"
    inner.mkdir()
    deep.mkdir()
    script = tmp_path / "threaded.py"
    script.write_text(THREADED)
    shell = f"cd {deep} && sleep 302 & {sys.executable} {script} {inner} & wait"
    process = subprocess.Popen(["sh", "-c", shell], cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(expected(process.pid)) == 4 and all(
            name != "sh" for pid, (_, name, _) in expected(process.pid).items() if pid != process.pid),
            message="the shell, its sleep, the threaded python and its sleep")
        yield process
    finally:
        os.killpg(process.pid, 9)
        process.wait()


def test_a_tree_is_read_whole_with_each_processs_own_working_directory(tree: subprocess.Popen[bytes],
                                                                      tmp_path: Path) -> None:
    want = expected(tree.pid)
    rows = ps(pids=[tree.pid], brief=True, cwd=True)
    got = {row[0]: (row[1], row[3], row[7]) for row in rows}  # type: ignore[index]
    assert got == want
    assert rows[0][0] == tree.pid  # type: ignore[index]  # the root first, then level by level
    assert sorted(cwd for _, _, cwd in want.values()) == sorted(
        str(path) for path in (tmp_path, tmp_path / "deep", tmp_path, tmp_path / "inner"))
    # The child of the second thread is there with or without working directories, and in the long form too.
    assert {row[0] for row in ps(pids=[tree.pid], brief=True)} == set(want)  # type: ignore[index]
    long = ps(pids=[tree.pid])
    assert {info["pid"]: (info["ppid"], info["name"]) for info in long} == {  # type: ignore[index]
        pid: (ppid, name) for pid, (ppid, name, _) in want.items()}
    assert all("cwd" not in info and isinstance(info["argv"], list) for info in long)  # type: ignore[operator,index]


def test_a_process_that_ended_tells_nothing(tmp_path: Path) -> None:
    process = subprocess.Popen(["sleep", "300"], cwd=tmp_path)
    folder = os.open(f"/proc/{process.pid}", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert os.readlink("cwd", dir_fd=folder) == str(tmp_path)
        process.kill()
        process.wait()
        # Read through the folder opened while it ran (as a tree's reading holds it), nothing of it comes back,
        # whatever process its pid names next.
        with pytest.raises(ProcessLookupError):
            os.readlink("cwd", dir_fd=folder)
    finally:
        os.close(folder)
    assert procs._read(process.pid, procs._boot_time(), cwd=True, children=True) is None
    assert ps(pids=[process.pid], brief=True, cwd=True) == []


def test_a_process_read_again_shows_what_changed_since(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The watch reads the same processes every few seconds (their files kept open between reads, a stat text that
    did not change not parsed again): a process that changed its name, its folder and its children since is seen
    as it is now."""
    later = tmp_path / "later"
    later.mkdir()
    process = subprocess.Popen(["sh", "-c", f"read line; cd {later}; sleep 301 & exec sleep 300"], cwd=tmp_path,
                               stdin=subprocess.PIPE, start_new_session=True)
    assert process.stdin is not None
    try:
        wait_until(lambda: (rows := ps(pids=[process.pid], brief=True, cwd=True)) and rows[0][2] == "S"  # type: ignore[index]
                   and rows == ps(pids=[process.pid], brief=True, cwd=True), message="the shell waiting for a line")
        first = ps(pids=[process.pid], brief=True, cwd=True)
        assert [(row[0], row[3], row[7]) for row in first] == [  # type: ignore[index]
            (process.pid, "sh", str(tmp_path))]
        parsed: list[int] = []
        real = procs._parsed

        def counted(pid: int, raw: bytes, cmdline: bytes, boot: float) -> dict[str, object]:
            parsed.append(pid)
            return real(pid, raw, cmdline, boot)

        monkeypatch.setattr(procs, "_parsed", counted)
        assert ps(pids=[process.pid], brief=True, cwd=True) == first  # a shell waiting: nothing of it changed
        assert parsed == []  # nor parsed again
        process.stdin.write(b"go\n")
        process.stdin.flush()

        def moved() -> list[tuple[object, ...]]:
            return [(row[1], row[3], row[7]) for row in ps(pids=[process.pid], brief=True, cwd=True)]  # type: ignore[index]
        wait_until(lambda: moved() == [(os.getpid(), "sleep", str(later)), (process.pid, "sleep", str(later))],
                   message="the shell now sleep in its new folder, with its child")
    finally:
        os.killpg(process.pid, 9)
        process.wait()
    assert ps(pids=[process.pid], brief=True, cwd=True) == []  # ended: nothing of it, though its files were kept


def test_processes_past_what_may_be_kept_open_are_read_all_the_same(tree: subprocess.Popen[bytes],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    want = ps(pids=[tree.pid], brief=True, cwd=True)
    monkeypatch.setattr(procs, "_KEPT", procs._Kept())
    monkeypatch.setattr(procs._KEPT, "_limit", 1)  # one process kept, the others read once each
    assert [row[:4] + row[5:] for row in ps(pids=[tree.pid], brief=True, cwd=True)] == [  # type: ignore[index,operator]
        row[:4] + row[5:] for row in want]  # type: ignore[index,operator]
    assert list(procs._KEPT._open) == [tree.pid]


def test_kept_files_stay_within_the_descriptors_allowed_whatever_the_threads(tree: subprocess.Popen[bytes],
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A process keeps a children file per thread: the limit counts files, not processes, so a tree of many-threaded
    CLIs (node keeps about a dozen threads) cannot take the host program past its descriptors (then every read,
    socket and command of it failed), and every process is still found."""
    want = ps(pids=[tree.pid], brief=True, cwd=True)
    kept = procs._Kept()
    monkeypatch.setattr(procs, "_KEPT", kept)
    monkeypatch.setattr(kept, "_limit", 4)

    def proc_files() -> int:
        found = 0
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                found += os.readlink(f"/proc/self/fd/{fd}").startswith("/proc/")
        return found

    before = proc_files()
    for _ in range(3):
        assert [row[:4] + row[5:] for row in ps(pids=[tree.pid], brief=True, cwd=True)] == [  # type: ignore[index,operator]
            row[:4] + row[5:] for row in want]  # type: ignore[index,operator]
        assert proc_files() - before <= 4
