"""Bringing a sandboxed agent's objects into the repository's shared store, checked, and the check a merge makes
before main may reference an agent's commits.

`take_in(root, folder)`: the objects in an agent's own folder (supervisor/git/object_folders.py) that the shared
store lacks are packed, read through that folder, and indexed by the shared store's own `git index-pack`
(`unpack-objects` for a few, as `receive-pack` does), which computes every object's name from its content: what
lands is what it is named, whatever the agent wrote. An object that cannot be read (a corrupt file) stops it,
named; so does one that is not what its name says (it lands under its true name, and the named one is still
missing). The engine does this as each agent branch moves, so the user's own git sees the agent's commits within
a moment of them, and before a merge.

`check_merge(root, tip, known)`: every object `tip` reaches and `known` does not is in the shared store alone, and
passes git's strict checks (`index-pack --strict`: each object well formed and each link present; a tree that
names `.git` refused) - before a merge may make main reference it.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from supervisor.git import environment, object_folders
from supervisor.git.refs import agent_of_branch
from supervisor.git.worktrees import GitError
from supervisor.paths import RepoPaths

__all__ = ["check_merge", "contents", "folder_of", "missing", "take_in", "take_in_branches"]

TIMEOUT = 300.0  # seconds for one git process (an agent's folder may hold anything)
UNPACK_LIMIT = 100  # fewer objects than this are written loose (git's own transfer.unpackLimit)
_HEX = frozenset("0123456789abcdef")
_NAMED = re.compile(r"\b[0-9a-f]{40}([0-9a-f]{24})?\b")


def folder_of(root: Path, branch: str) -> Path | None:
    """The object folder of the agent whose branch `branch` is; None for any other branch."""
    name = agent_of_branch(branch)
    common = environment.common_dir(root)
    if name is None or common is None:
        return None
    return RepoPaths(root=root, common_dir=common).agent_objects(name)


def take_in_branches(root: Path, branches: Iterable[str]) -> int:
    """`take_in` the folder of each agent whose branch is among `branches`; how many objects came in."""
    count = 0
    for branch in branches:
        folder = folder_of(root, branch)
        if folder is not None:
            count += take_in(root, folder)
    return count


def take_in(root: Path, folder: Path) -> int:
    """Copy the objects of `folder` that the shared store of the repository at `root` lacks into it, each
    verified by its content; how many. GitError naming an object that cannot be read or is not what its name
    says (nothing of it is taken in then)."""
    wanted = missing(root, contents(root, folder))
    if not wanted:
        return 0
    receiver = ("unpack-objects", "-q") if len(wanted) < UNPACK_LIMIT else ("index-pack", "--stdin")
    with tempfile.TemporaryFile() as pack:
        _pack(root, wanted, pack, {object_folders.VARIABLE: str(folder)}, folder)
        pack.seek(0)
        done = _git(root, receiver, stdin=pack)
        if done.returncode != 0:
            raise GitError(f"the objects of {folder} cannot be taken in: {_last(done)}")
    astray = missing(root, wanted)
    if astray:
        raise GitError(f"object {astray[0]} in {folder} is not what its name says (corrupt)",
                       hint="the agent's git can rewrite it (`git hash-object -w` on the right content) or "
                            "drop the commits that need it")
    return len(wanted)


def check_merge(root: Path, tip: str, known: Sequence[str]) -> None:
    """GitError unless every object `tip` reaches and `known` do not is in the shared store itself and passes
    git's strict checks. Writes nothing into the repository."""
    listed = environment.run(root, "rev-list", "--objects", "--no-object-names", tip, "--not", *known,
                             "--", shared_only=True)
    if listed.returncode != 0:
        raise GitError(f"{tip[:12]} needs objects the repository does not have: {_last(listed)}",
                       hint="the agent's objects were not all taken in; `supervisor log` says why")
    ids = listed.stdout.decode("ascii", "replace").split()
    if not ids:
        return
    with tempfile.TemporaryDirectory(prefix="supervisor-check-") as scratch:
        pack = Path(scratch) / "check.pack"
        with pack.open("w+b") as out:
            _pack(root, ids, out, None, None)
        done = _git(root, ("index-pack", "--strict", "-o", str(pack.with_suffix(".idx")), str(pack)))
        if done.returncode != 0:
            raise GitError(f"{tip[:12]} holds objects git's checks refuse: {_last(done)}",
                           hint="the agent can make the commits again without them")


def contents(root: Path, folder: Path) -> list[str]:
    """The names of the objects in `folder` itself (loose and packed), not those of its alternates."""
    names: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        if len(entry.name) == 2 and set(entry.name) <= _HEX and entry.is_dir(follow_symlinks=False):
            try:
                with os.scandir(entry.path) as leaves:  # regular files only: a fifo would hold a reader
                    names += [entry.name + leaf.name for leaf in leaves if len(leaf.name) in (38, 62)
                              and set(leaf.name) <= _HEX and leaf.is_file(follow_symlinks=False)]
            except OSError:
                continue
    pack_dir = folder / "pack"
    try:
        indexes = sorted(p for p in pack_dir.iterdir() if p.suffix == ".idx" and _regular(p)
                         and _regular(p.with_suffix(".pack")))
    except OSError:
        indexes = []
    for index in indexes:
        with index.open("rb") as handle:
            done = _git(root, ("show-index",), stdin=handle)
        if done.returncode != 0:
            raise GitError(f"the pack index {index} cannot be read: {_last(done)}")
        names += [line.split()[1].decode("ascii", "replace") for line in done.stdout.splitlines()
                  if len(line.split()) > 1]
    return sorted(set(names))


def _regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def missing(root: Path, names: Sequence[str]) -> list[str]:
    """Those of `names` that the shared store itself does not have."""
    if not names:
        return []
    done = environment.run(root, "cat-file", "--batch-check=%(objectname)", stdin="".join(
        f"{name}\n" for name in names).encode(), shared_only=True)
    if done.returncode != 0:
        raise GitError(f"git cat-file failed: {_last(done)}")
    return [line.split()[0].decode("ascii") for line in done.stdout.splitlines() if line.endswith(b" missing")]


def _pack(root: Path, ids: Sequence[str], out: IO[bytes], env: dict[str, str] | None, folder: Path | None) -> None:
    """`git pack-objects` of `ids` into `out`, reading the shared store (and `env`'s alternates)."""
    argv, environ = environment.command(root, ("pack-objects", "--stdout", "-q"), env, shared_only=True)
    try:
        done = subprocess.run(argv, cwd=root, input="".join(f"{i}\n" for i in ids).encode(), stdout=out,
                              stderr=subprocess.PIPE, env=environ, check=False, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:  # a file the agent made that blocks a reader (a fifo named as an object)
        raise GitError(f"reading the objects{' in ' + str(folder) if folder else ''} did not finish within "
                       f"{TIMEOUT:.0f}s") from None
    if done.returncode != 0:
        where = f" in {folder}" if folder is not None else ""
        raise GitError(f"an object{where} cannot be read (corrupt): {_last(done)}",
                       hint="the agent's git can write it again, or drop the commits that need it")


def _git(root: Path, args: Sequence[str],
         stdin: IO[bytes] | int = subprocess.DEVNULL) -> subprocess.CompletedProcess[bytes]:
    argv, environ = environment.command(root, args, shared_only=True)
    try:
        return subprocess.run(argv, cwd=root, stdin=stdin, capture_output=True, env=environ, check=False,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} did not finish within {TIMEOUT:.0f}s") from None


def _last(done: subprocess.CompletedProcess[bytes]) -> str:
    """What git said went wrong: its first line that names an object, else its last line."""
    lines = (done.stderr or b"").decode("utf-8", "replace").strip().splitlines()
    naming = [line for line in lines if _NAMED.search(line)]
    return naming[0] if naming else lines[-1] if lines else f"exit status {done.returncode}"
