"""The folders the watch loop looks at every tick (ref folders, spool folders) are told changed by the kernel:
every change is seen once, a folder not there yet is left to the caller's own stat, one gone or moved is watched
again where it was, a link planted in its place is not followed, an overflow tells every folder changed, and
without inotify the caller is told to look itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.core.store import Store
from supervisor.engine.changes import RefWatch
from supervisor.engine.folderwatch import FolderWatch


@pytest.fixture
def watch() -> FolderWatch:
    found = FolderWatch()
    if found.changed("probe", []) is None:
        pytest.skip("no inotify here")
    return found


def test_each_change_is_told_once_and_a_quiet_folder_never(watch: FolderWatch, tmp_path: Path) -> None:
    quiet, busy = tmp_path / "quiet", tmp_path / "busy"
    quiet.mkdir()
    busy.mkdir()
    folders = [str(quiet), str(busy)]
    assert watch.changed("g", folders) == ({str(quiet), str(busy)}, set())  # unknown before: read once
    assert watch.changed("g", folders) == (set(), set())
    (busy / "event.json.tmp").write_text("{}")
    os.rename(busy / "event.json.tmp", busy / "event.json")  # as a hook spools, or git moves a ref
    assert watch.changed("g", folders) == ({str(busy)}, set())
    assert watch.changed("g", folders) == (set(), set())
    (busy / "event.json").unlink()
    assert watch.changed("g", folders) == ({str(busy)}, set())


def test_a_folder_not_there_yet_is_left_to_the_caller_until_it_is(watch: FolderWatch, tmp_path: Path) -> None:
    later = tmp_path / "later"
    assert watch.changed("g", [str(later)]) == (set(), {str(later)})
    later.mkdir()
    assert watch.changed("g", [str(later)]) == ({str(later)}, set())
    assert watch.changed("g", [str(later)]) == (set(), set())


def test_a_folder_made_again_is_told_and_watched_again(watch: FolderWatch, tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    folder.mkdir()
    watch.changed("g", [str(folder)])
    folder.rmdir()
    assert watch.changed("g", [str(folder)]) == ({str(folder)}, {str(folder)})
    folder.mkdir()
    assert watch.changed("g", [str(folder)]) == ({str(folder)}, set())
    (folder / "x").write_text("")
    assert watch.changed("g", [str(folder)]) == ({str(folder)}, set())


def test_each_group_is_told_of_a_change_on_its_own(watch: FolderWatch, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    assert watch.changed("refs", [str(shared)]) == ({str(shared)}, set())
    assert watch.changed("spools", [str(shared)]) == ({str(shared)}, set())  # watched already, but new to this group
    (shared / "x").write_text("")
    assert watch.changed("refs", [str(shared)]) == ({str(shared)}, set())
    assert watch.changed("refs", [str(shared)]) == (set(), set())  # told once to this group
    assert watch.changed("spools", [str(shared)]) == ({str(shared)}, set())  # and once to the other
    watch.changed("refs", [])  # dropped by one group: still watched for the other, so nothing new to tell it
    assert watch.changed("spools", [str(shared)]) == (set(), set())
    (shared / "y").write_text("")
    assert watch.changed("spools", [str(shared)]) == ({str(shared)}, set())


def test_a_folder_moved_away_is_watched_again_where_it_was(watch: FolderWatch, tmp_path: Path) -> None:
    folder, moved = tmp_path / "spool", tmp_path / "moved"
    folder.mkdir()
    watch.changed("g", [str(folder)])
    folder.rename(moved)
    assert watch.changed("g", [str(folder)]) == ({str(folder)}, {str(folder)})
    folder.mkdir()
    assert watch.changed("g", [str(folder)]) == ({str(folder)}, set())
    (moved / "x").write_text("")  # the folder that went away is no longer watched
    assert watch.changed("g", [str(folder)]) == (set(), set())
    (folder / "x").write_text("")  # the one in its place is
    assert watch.changed("g", [str(folder)]) == ({str(folder)}, set())


def test_a_link_planted_in_place_of_a_folder_is_not_followed(watch: FolderWatch, tmp_path: Path) -> None:
    folder, elsewhere = tmp_path / "spool", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    watch.changed("g", [str(folder)])
    folder.rmdir()
    folder.symlink_to(elsewhere)
    assert watch.changed("g", [str(folder)]) == ({str(folder)}, {str(folder)})  # gone, and left to the caller
    (elsewhere / "x").write_text("")  # written through the link's target: not this folder's change
    assert watch.changed("g", [str(folder)]) == (set(), {str(folder)})


def test_an_overflow_tells_every_folder_changed(watch: FolderWatch, tmp_path: Path) -> None:
    """More events than the kernel queues (its own limit, read from /proc) are lost: every folder may have changed."""
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if limit > 1_000_000:
        pytest.skip(f"the inotify queue holds {limit} events here: too many to overflow in a test")
    quiet, busy = tmp_path / "quiet", tmp_path / "busy"
    quiet.mkdir()
    busy.mkdir()
    folders = [str(quiet), str(busy)]
    watch.changed("g", folders)
    (busy / "a").write_text("")
    assert watch.changed("g", folders) == ({str(busy)}, set())
    for _ in range(limit // 4 + 1):  # each rename queues two events, never merged (each has its own cookie)
        os.rename(busy / "a", busy / "b")
        os.rename(busy / "b", busy / "a")
    assert watch.changed("g", folders) == ({str(quiet), str(busy)}, set())
    assert watch.changed("g", folders) == (set(), set())  # watched as before


def test_the_inotify_instance_is_let_go_at_close(watch: FolderWatch, tmp_path: Path) -> None:
    def instances() -> int:
        return sum(os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify" for fd in os.listdir("/proc/self/fd")
                   if os.path.exists(f"/proc/self/fd/{fd}"))

    watch.changed("g", [str(tmp_path)])
    before = instances()
    watch.close()
    assert instances() == before - 1
    assert watch.changed("g", [str(tmp_path)]) is None


def test_without_an_inotify_instance_the_caller_is_told_to_look_itself(tmp_path: Path) -> None:
    """No file descriptor left for one (as with no instance left for the user): None, said once in the log."""
    script = """
import logging, os, resource, sys
logging.basicConfig(level=logging.INFO, format="%(message)s")
from supervisor.engine.folderwatch import FolderWatch
FolderWatch().close()  # everything loaded while descriptors can still be had
free = os.open(os.devnull, os.O_RDONLY)
os.close(free)
resource.setrlimit(resource.RLIMIT_NOFILE, (free, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
watch = FolderWatch()
print(watch.changed("g", [sys.argv[1]]), watch.changed("g", [sys.argv[1]]))
"""
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "None"]
    said = [line for line in done.stderr.splitlines() if "no inotify instance to be had" in line]
    assert len(said) == 1 and "folders are looked at with stat instead" in said[0], done.stderr


def test_a_branch_moved_by_git_wakes_the_services(watch: FolderWatch, tmp_path: Path) -> None:
    """The ref watch of the watch loop sees a commit on an agent's branch through its folder's watch."""
    from supervisor.core.model import Agent, State

    repo = tmp_path / "repo"
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "init"], check=True)
    subprocess.run([*git, "branch", "agent/a1/work"], check=True)
    store = Store(tmp_path / "store.db")
    refs = RefWatch(store, repo / ".git", watch)
    agent = Agent(name="a1", profile="generic", command="sh", worktree=str(tmp_path / "wt"), branch="agent/a1/work",
                  base="main", target="main", state=State.WORKING)
    assert not refs.look([agent])  # the first look takes the stamp
    while refs.look([agent]):  # the branch was made within the last second: told again until it is settled
        pass
    changes = store.changes
    subprocess.run([*git, "update-ref", "refs/heads/agent/a1/work", "HEAD"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "more"], check=True)
    subprocess.run([*git, "update-ref", "refs/heads/agent/a1/work", "HEAD"], check=True)
    assert refs.look([agent])
    assert store.changes != changes
    store.close()
