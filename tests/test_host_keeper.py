"""The keeper of a host's panes' transcripts (supervisor/hostside/keeper.py) against a real tmux server, and the host
program that stands for the engine there (presence.py), run on this machine through a real link: it deletes no
copy on the engine's return, keeps nothing of the engine's own pane, says a fault and goes on (a full disk
refusing even its log), is started again when it ended and handed over after an upgrade, ends when no tmux server
is left, hands a large copy home in parts without dropping the link, and no lock held by someone else hangs it."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from supervisor.engine.host_transcripts import take_copy
from supervisor.errors import SupervisorError
from supervisor.hosts.hostapp import HostApp, build, host_app
from supervisor.hosts.link import Link, local_argv
from supervisor.hostside import keeper, spoolfiles
from tests.conftest import wait_until
from tests.links import Heard

WORK = "work"


def tmux(socket: str, *words: str) -> str:
    return subprocess.run(["tmux", "-S", socket, *words], capture_output=True, text=True, check=True,
                          timeout=15).stdout


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A tmux server with the engine's own session and two panes of work (`sh`)."""
    socket = str(tmp_path / "tmux.sock")
    tmux(socket, "-f", "/dev/null", "new-session", "-d", "-s", keeper.SESSION, "-x", "80", "-y", "24")
    tmux(socket, "new-session", "-d", "-s", WORK, "-x", "80", "-y", "24", "sh")
    tmux(socket, "split-window", "-t", WORK, "sh")
    try:
        yield socket
    finally:
        subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True, timeout=15)


@pytest.fixture
def root(tmp_path: Path) -> str:
    folder = tmp_path / "repo"
    folder.mkdir()
    return str(folder)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "hosthome"
    folder.mkdir()
    return folder


def open_link(home: Path, app: HostApp | None = None) -> Link:
    chosen = app or host_app()
    link = Link("here", local_argv(chosen, "~/sv"), env={**os.environ, "HOME": str(home)}, on_event=Heard().event,
                on_down=lambda _error: None, app=chosen)
    link.connect()
    return link


def work_panes(socket: str) -> list[str]:
    return tmux(socket, "list-panes", "-t", WORK, "-F", "#{pane_id}").split()


def keepers(root: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        line = process.info["cmdline"] or []
        if "keep" in line and root in line:
            found.append(process)
    return found


def end_keepers(root: str) -> None:
    for process in keepers(root):
        process.kill()


def test_the_engine_back_deletes_no_copy(server: str, root: str) -> None:
    """The keeper's look while the engine is here leaves every copy: only the engine knows what it lacks."""
    pane = work_panes(server)[0]
    held = keeper.Keeper(root, server)
    try:
        tmux(server, "send-keys", "-t", pane, "seq -f 'AWAY-%g' 1 60", "Enter")
        wait_until(lambda: "AWAY-60" in tmux(server, "capture-pane", "-p", "-t", pane), message="printed")
        held.away(held.panes())
        engines = tmux(server, "list-panes", "-t", keeper.SESSION, "-F", "#{pane_id}").split()
        assert not set(engines) & set(held.panes())  # the engine's own pane is nobody's transcript
        assert sorted(found for _, found in spoolfiles.kept_panes(root)) == sorted(work_panes(server))
        copy = spoolfiles.take(root, held.server, pane)
        assert copy is not None and "AWAY-1" in copy["rows"]
        held.here(held.panes())  # the engine is back
        assert spoolfiles.take(root, held.server, pane) == copy
        # Away again before the engine took it: the copy goes on, never begun anew.
        tmux(server, "send-keys", "-t", pane, "seq -f 'AGAIN-%g' 1 60", "Enter")
        wait_until(lambda: "AGAIN-60" in tmux(server, "capture-pane", "-p", "-t", pane), message="printed again")
        held.away(held.panes())
        again = spoolfiles.take(root, held.server, pane)
        assert again is not None and again["start"] == copy["start"] and "AWAY-1" in again["rows"] \
            and "AGAIN-1" in again["rows"]
    finally:
        held.close()


def start_keeper(root: str, socket: str, app_path: Path, stderr: int | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-I", "-S", str(app_path), "keep", root, socket],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)


@pytest.fixture
def app_path(tmp_path: Path) -> Path:
    path = tmp_path / "host.pyz"
    path.write_bytes(host_app().data)
    return path


def test_a_fault_is_said_and_the_keeper_goes_on_even_when_its_log_cannot_grow(server: str, root: str,
                                                                             app_path: Path) -> None:
    first, second = work_panes(server)
    with open("/dev/full", "wb") as full:  # its log refuses every byte, as on a full disk
        process = start_keeper(root, server, app_path, stderr=full.fileno())
    try:
        wait_until(lambda: len(spoolfiles.kept_panes(root)) == 2, message="both panes kept")
        server_id = spoolfiles.kept_panes(root)[0][0]
        screen = spoolfiles.paths(root, server_id, first)[2]
        Path(screen).unlink(missing_ok=True)
        os.makedirs(os.path.join(screen, "in-the-way"))  # its screen cannot be written any more
        tmux(server, "send-keys", "-t", first, "seq -f 'FIRST-%g' 1 60", "Enter")
        rows = spoolfiles.paths(root, server_id, first)[1]
        wait_until(lambda: os.path.exists(rows) and "FIRST-1\n" in Path(rows).read_text(errors="replace"),
                   message="its rows kept, its screen refused right after")
        tmux(server, "send-keys", "-t", second, "echo SECOND-$((6*7))", "Enter")
        shown = spoolfiles.paths(root, server_id, second)[2]
        wait_until(lambda: os.path.exists(shown) and "SECOND-42" in Path(shown).read_text(errors="replace"),
                   message="the other pane still kept")
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()


def test_the_keeper_ends_when_no_tmux_server_is_left_even_with_the_engine_here(server: str, root: str,
                                                                              app_path: Path) -> None:
    home = spoolfiles.lock_file(root, ".home")
    fcntl.flock(home, fcntl.LOCK_SH)  # the engine is here
    process = start_keeper(root, server, app_path)
    try:
        wait_until(lambda: keepers(root), message="the keeper running")
        tmux(server, "kill-server")
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(home)


def test_a_keeper_is_started_whatever_the_engine_asked_first_and_again_when_it_ended(server: str, root: str,
                                                                                    home: Path) -> None:
    link = open_link(home)
    try:
        pane = work_panes(server)[0]
        assert link.call("transcript_take", root=root, server="1:2", pane=pane, timeout=10) is None
        answer = link.call("transcripts_keep", root=root, socket=server, timeout=10)
        assert answer["keeper"] == "started"
        first = wait_until(lambda: keepers(root), message="a keeper")[0]
        first.send_signal(signal.SIGKILL)
        wait_until(lambda: [found for found in keepers(root) if found.pid != first.pid], timeout=30,
                   message="a keeper started again by the host program")
    finally:
        link.close()
        end_keepers(root)


def test_the_keeper_of_an_older_host_program_hands_over(server: str, root: str, home: Path) -> None:
    older = open_link(home)
    try:
        older.call("transcripts_keep", root=root, socket=server, timeout=10)
        wait_until(lambda: keepers(root), message="the older program's keeper")
    finally:
        older.close()
    newer_app = build(extra={"upgrade.txt": b"a newer engine"})
    newer = open_link(home, newer_app)
    try:
        newer.call("transcripts_keep", root=root, socket=server, timeout=10)

        def only_the_newer() -> bool:
            found = keepers(root)
            return bool(found) and all(any(newer_app.version in word for word in process.cmdline())
                                       for process in found)

        wait_until(only_the_newer, timeout=30, message="the newer program's keeper alone")
    finally:
        newer.close()
        end_keepers(root)


def test_no_keeper_for_a_repository_that_never_used_the_host(tmp_path: Path, server: str, home: Path) -> None:
    never = str(tmp_path / "never-used")
    link = open_link(home)
    try:
        answer = link.call("transcripts_keep", root=never, socket=server, timeout=10)
        assert answer["keeper"] == "no folder" and not os.path.exists(never) and not keepers(never)
    finally:
        link.close()


def test_a_large_copy_comes_home_in_parts_and_the_link_stays(root: str, home: Path) -> None:
    """Rows of colours and non-ASCII text: JSON writes each escape in 6 bytes and each such character in 6 or 12,
    so 8 MiB of them in one answer would pass the link's 16 MiB line limit."""
    server_id, pane = "99:1", "%7"
    row = "\x1b[1;31m€é\x1b[0m" * 8
    count = (spoolfiles.ROWS_CAP // len((row + "\n").encode())) - 10
    spoolfiles.begin(root, server_id, pane, 0)
    with open(spoolfiles.paths(root, server_id, pane)[1], "wb") as handle:
        handle.write(f"{row}\n".encode() * count)
    spoolfiles.add_rows(root, server_id, pane, [], 0, count)
    link = open_link(home)
    try:
        copy = take_copy(link, root, server_id, pane)
        assert copy is not None and copy.start == 0 and copy.end == count and len(copy.rows) == count
        assert copy.rows[0] == row and copy.rows[-1] == row
        assert link.up and link.call("transcript_take", root=root, server="0:0", pane="%0", timeout=10) is None
    finally:
        link.close()


def test_someone_else_holding_the_lock_hangs_nothing(server: str, root: str, home: Path) -> None:
    """A process of the host user (an agent without a sandbox) holds `.home` exclusively: an op that needs it says
    so within seconds, and the program answers everything else."""
    holder = spoolfiles.lock_file(root, ".home")
    fcntl.flock(holder, fcntl.LOCK_EX)
    link = open_link(home)
    try:
        with pytest.raises(SupervisorError, match="held by another process"):
            link.call("transcript_take", root=root, server="1:2", pane="%1", timeout=10)
        assert link.call("transcripts_keep", root=str(Path(root) / "nothing"), socket=server,
                         timeout=10)["keeper"] == "no folder"
    finally:
        link.close()
        os.close(holder)
        shutil.rmtree(Path(root) / "spool", ignore_errors=True)
