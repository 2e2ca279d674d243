"""The shared object store from inside a sandboxed agent's pane (the demo agent's `!COMMAND`): the agent's git
writes into an object folder of its own; the packs and objects main needs are read-only to it, and what it wrote
reaches the shared store only checked."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Sandbox, wait_until
from tests.test_helpers import events, in_pane, start_session

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (apt-get install bubblewrap)")

OBJECTS = '"$(git rev-parse --git-common-dir)/objects"'  # the repository's objects/, as the agent's git sees it


def _plain_git(box: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    """The user's own git in the main worktree: the shared store alone."""
    return subprocess.run(["git", *args], cwd=box.root, env=box.env, capture_output=True, text=True, check=False)


def _store(box: Sandbox) -> dict[str, str]:
    """Every file of the shared object store, with a digest of its bytes."""
    shared = box.paths.common_dir / "objects"
    return {str(path.relative_to(shared)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(shared.rglob("*")) if path.is_file()}


def _sound(box: Sandbox) -> None:
    """The user's own `git fsck` finds nothing wrong (every ref, reflog and worktree index: all in the store)."""
    done = _plain_git(box, "fsck", "--strict", "--no-dangling")
    assert done.returncode == 0 and "error" not in done.stderr, done.stderr


def _taken_in(box: Sandbox, commit: str) -> None:
    wait_until(lambda: _plain_git(box, "cat-file", "-e", f"{commit}^{{tree}}").returncode == 0, 30,
               message=f"{commit[:12]} in the shared store")


def test_an_agent_cannot_overwrite_truncate_or_remove_what_main_needs(sandbox: Sandbox) -> None:
    # main's history in a pack, and a newer commit of main loose
    sandbox.git("repack", "-a", "-d", "-q")
    (sandbox.root / "README.md").write_text("# test repo, again\n")
    sandbox.git("commit", "-q", "-am", "loose")
    shared = sandbox.paths.common_dir / "objects"
    pack = next((shared / "pack").glob("pack-*.pack"))
    commit = sandbox.git("rev-parse", "main")
    loose = shared / commit[:2] / commit[2:]
    assert loose.is_file()
    old = sandbox.git("rev-parse", "main~1:README.md")  # packed, and not in the agent's HEAD: it may plant it
    before = _store(sandbox)
    start_session(sandbox, "rogue")

    # The shared store where the agent finds it: named by its objects/' alternates (its own folder is at the
    # shared store's path); without a folder of its own, at that path itself.
    view = f'"$(head -n1 {OBJECTS}/info/alternates 2>/dev/null || echo {OBJECTS})"'
    loose_name = f"{commit[:2]}/{commit[2:]}"
    attempts = {  # in turn: in a store that takes writes, each would find the one before done
        "truncate_pack": f"truncate -s 0 {view}/pack/{pack.name}",
        "overwrite_pack": f"chmod u+w {view}/pack/{pack.name}; printf junk > {view}/pack/{pack.name}",
        "rename_pack": f"mv {view}/pack/{pack.name} {view}/pack/x.pack",
        "new_pack_in_shared": f"cp {view}/pack/x.pack {view}/pack/{pack.name}",
        "overwrite_loose": f"chmod u+w {view}/{loose_name}; printf junk > {view}/{loose_name}",
        "remove_loose": f"rm -f {view}/{loose_name}; test ! -e {view}/{loose_name}",
        "remove_pack": f"rm -f {view}/pack/*.pack; test ! -e {view}/pack/{pack.name}",
        "planted_at_main_s_name": f"mkdir -p {OBJECTS}/{old[:2]} && printf junk > {OBJECTS}/{old[:2]}/{old[2:]}",
    }
    probes = "; ".join(f"if sh -c '{command}' >/dev/null 2>&1; then echo PROBE {name}=yes; "
                       f"else echo PROBE {name}=no; fi" for name, command in attempts.items())
    in_pane(sandbox, "rogue", probes)
    found = dict(line.removeprefix("PROBE ").split("=") for line in sandbox.sv("log", "rogue").stdout.splitlines()
                 if line.startswith("PROBE ") and line.endswith(("=yes", "=no")))
    # Every write at the shared store failed; a file at main's object's name went to its own folder only.
    assert found == {**{name: "no" for name in attempts}, "planted_at_main_s_name": "yes"}
    assert _store(sandbox) == before
    assert (sandbox.paths.agent_objects("rogue") / old[:2] / old[2:]).read_bytes() == b"junk"

    # Its own git still works; the engine still reads main's objects first, and merges it whole.
    in_pane(sandbox, "rogue", "echo ok > src/ok.py && git add src/ok.py && git commit -q -m ok")
    sandbox.sv("merge", "rogue")
    assert sandbox.git("show", "main:src/ok.py", plain=True) == "ok"
    assert sandbox.git("log", "-2", "--format=%s", "main", plain=True).splitlines() == ["ok", "loose"]
    assert sandbox.git("show", "main~2:README.md", plain=True) == "# test repo"
    _sound(sandbox)


def test_its_own_commits_go_to_its_own_folder_and_audit_diff_and_merge_as_before(sandbox: Sandbox) -> None:
    start_session(sandbox, "auth")  # Modify: src/**, docs/**; Don't touch: src/vendor/**
    branch = sandbox.agent("auth")["branch"]
    in_pane(sandbox, "auth", "mkdir -p src/vendor && echo lib > src/vendor/lib.py && echo new > src/new.py && "
                             "git add src && git commit -q --no-verify -m work")
    tip = sandbox.git("rev-parse", branch)
    assert (sandbox.paths.agent_objects("auth") / tip[:2] / tip[2:]).is_file()  # written into its own folder

    # the audit read its commit (the forbidden path is a violation), and `diff` shows its work
    wait_until(lambda: sandbox.ls()["auth"]["boundary_violations"] == 1, 30, message="the audit's violation")
    refused = sandbox.sv("merge", "auth", check=False)
    assert refused.returncode != 0 and "src/vendor/lib.py" in refused.stderr, refused.stderr
    diff = sandbox.sv("diff", "auth", "--stat").stdout
    assert "src/new.py" in diff and "src/vendor/lib.py" in diff

    # the engine takes its objects in, checked: the user's own git sees the commit
    _taken_in(sandbox, tip)
    assert _plain_git(sandbox, "log", "-1", "--format=%s", branch).stdout.strip() == "work"

    in_pane(sandbox, "auth", "git reset -q --hard HEAD~1 && echo new > src/new.py && git add src && "
                             "git commit -q -m again")
    sandbox.sv("merge", "auth")
    assert sandbox.git("show", "main:src/new.py", plain=True) == "new"
    _sound(sandbox)

    sandbox.sv("stop", "auth")
    sandbox.sv("rm", "auth")  # its branch merged and gone: its folder goes too, and main needs nothing of it
    assert not sandbox.paths.agent_objects("auth").exists()
    _sound(sandbox)


def test_a_corrupt_object_in_its_own_folder_is_refused_at_merge(sandbox: Sandbox) -> None:
    start_session(sandbox, "auth")
    main = sandbox.git("rev-parse", "main")
    # The blob of src/bad.py is planted as junk first: `git add` finds an object of that name and writes none.
    in_pane(sandbox, "auth", f"echo bad > src/bad.py && h=$(git hash-object src/bad.py) && "
                             f"d={OBJECTS}/$(echo $h | cut -c1-2) && mkdir -p $d && "
                             f"printf junk > $d/$(echo $h | cut -c3-) && git add src/bad.py && git commit -q -m bad")
    blob = sandbox.git("hash-object", str(Path(sandbox.agent("auth")["worktree"]) / "src" / "bad.py"))

    refused = sandbox.sv("merge", "auth", check=False)
    assert refused.returncode != 0
    said = refused.stdout + refused.stderr
    assert "corrupt" in said and blob in said, said
    assert sandbox.git("rev-parse", "main", plain=True) == main
    assert _plain_git(sandbox, "cat-file", "-e", blob).returncode != 0  # never taken in
    wait_until(lambda: events(sandbox, "auth", "objects_refused"), 30, message="the refusal in its log")
    done = _plain_git(sandbox, "fsck", "--strict", "--no-dangling", "main")
    assert done.returncode == 0, done.stderr
