"""The folders the watch loop looks at every tick (ref folders, spool folders) are told changed by the kernel:
every change is seen once, a folder not there yet is left to the caller's own stat, one gone is watched again."""

from __future__ import annotations

import os
import subprocess
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
    watch.changed("refs", [str(shared)])
    watch.changed("spools", [str(shared)])
    (shared / "x").write_text("")
    assert watch.changed("refs", [str(shared)])[0] == {str(shared)}  # type: ignore[index]
    watch.changed("refs", [])  # dropped by one group: still watched for the other
    (shared / "y").write_text("")
    assert watch.changed("spools", [str(shared)])[0] == {str(shared)}  # type: ignore[index]


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
