"""Git through the link's own connection (git over ssh would open one per fetch): the host's clone takes
bundles from home (`receive`) and gives home bundles of what it lacks (`send`).

The clone is a bare repository at `repo` (made on first use; worktrees are added from it). Its hooks and
configuration are writable by the agents on the host, so these git calls run no hook, no fsmonitor and no
auto gc, and read no system or global configuration.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from typing import Any

from .calls import Call, OpError

_LOCATION_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY",
                  "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT")
_FIXED = ("-c", f"core.hooksPath={os.devnull}", "-c", "core.fsmonitor=false", "-c", "gc.auto=0",
          "-c", "maintenance.auto=false")


def _env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _LOCATION_VARS}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


def git(repo: str, *args: str, stdin: str | None = None) -> str:
    """`git ARGS` in `repo`; its output, or OpError with git's own message."""
    try:
        done = subprocess.run(["git", *_FIXED, *args], cwd=repo, env=_env(), input=stdin, capture_output=True,
                              text=True, check=False)
    except OSError as exc:
        raise OpError(f"git cannot run on this host: {exc.strerror or exc}") from None
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        raise OpError(f"git {args[0]} failed in {repo}: {said[-1] if said else f'exit {done.returncode}'}")
    return done.stdout


def _repo(call: Call) -> str:
    return os.path.expanduser(str(call.arg("repo", str)))


def _exists(repo: str) -> bool:
    return os.path.isfile(os.path.join(repo, "HEAD")) and os.path.isdir(os.path.join(repo, "objects"))


def _refs(repo: str) -> dict[str, str]:
    lines = git(repo, "for-each-ref", "--format=%(objectname) %(refname)").splitlines()
    return {name: sha for sha, _, name in (line.partition(" ") for line in lines)}


# `heads` is asked every 2 s per host; git is run again only when what holds the clone's refs changed on disk, and
# at least every RECHECK_SECONDS whatever it looks like (a file written in place through a shared mapping keeps its
# times; a ref naming an object that arrives later is listed once it is there).
RECHECK_SECONDS = 60.0
_listed: dict[str, tuple[object, float, dict[str, str]]] = {}  # repo → (its refs' storage, when, its refs then)
_listed_lock = threading.Lock()


def _storage(repo: str) -> object:
    """What the refs of `repo` are kept in, as it stands on disk: every file and folder under `refs/`, `packed-refs`
    and `reftable/`, each with its inode, size, modification and change times (a ref git moves is a file renamed
    into place: a new inode; a file written in place has a new change time, which its writer cannot set back).
    None when it cannot be told (a file went while it was being read)."""
    found: list[tuple[str, int, int, int, int]] = []
    folders = [os.path.join(repo, "refs"), os.path.join(repo, "reftable")]
    for path in (os.path.join(repo, "packed-refs"), *folders):
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        found.append((path, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
    while folders:
        try:
            entries = list(os.scandir(folders.pop()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                return None
            found.append((entry.path, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
    found.sort()
    return found


def _current_refs(repo: str) -> dict[str, str]:
    """The clone's refs: as last listed while their storage stays the same (for RECHECK_SECONDS at most), else
    listed by git now."""
    storage = _storage(repo)  # before git reads them: a change after this is seen next time
    now = time.monotonic()
    with _listed_lock:
        last = _listed.get(repo)
    if storage is not None and last is not None and last[0] == storage and now - last[1] < RECHECK_SECONDS:
        return dict(last[2])
    refs = _refs(repo)
    with _listed_lock:
        _listed[repo] = (storage, now, dict(refs))
    return refs


def heads(call: Call) -> dict[str, Any]:
    """The clone's refs (`{name: sha}`), and whether it exists yet."""
    repo = _repo(call)
    if not _exists(repo):
        return {"exists": False, "refs": {}}
    return {"exists": True, "refs": _current_refs(repo)}


def receive(call: Call) -> dict[str, Any]:
    """Set the clone's `refs` (`{name: sha}`) after taking the objects of the bundle uploaded as `stream`
    (none when the host has them all already); the clone is made on first use. The home side's refs win
    (the engine names only refs it owns, such as the base commit). → created, refs (as they are now)."""
    repo = _repo(call)
    wanted = call.arg("refs", dict)
    stream = call.arg("stream", str, None)
    created = False
    bundle = call.take_stream(stream) if stream is not None else None
    try:
        if not _exists(repo):
            os.makedirs(repo, exist_ok=True)
            git(repo, "init", "--quiet", "--bare")
            created = True
        if bundle is not None:
            git(repo, "bundle", "unbundle", bundle)  # checks the bundle's prerequisites, then writes its objects
    finally:
        if bundle is not None:
            os.unlink(bundle)
    if wanted:
        commands = "".join(f"update {name} {sha}\n" for name, sha in wanted.items())
        git(repo, "update-ref", "--stdin", stdin=commands)  # one transaction; an object missing fails it whole
    now = _refs(repo)
    return {"created": created, "refs": {name: now.get(name) for name in wanted}}


def send(call: Call) -> dict[str, Any]:
    """A bundle of `refs` (full names) without what the home side `have`s (commits: those the host knows are
    left out of the bundle), streamed back in chunks; none when home has everything already. → refs
    (`{name: sha}` as they are here), bundle (whether one was sent)."""
    repo = _repo(call)
    names = call.strings("refs")
    have = call.strings("have", [])
    if not _exists(repo):
        raise OpError(f"no clone at {repo} on this host")
    current = _refs(repo)
    missing = [name for name in names if name not in current]
    if missing:
        raise OpError(f"no such ref on the host: {', '.join(missing)}")
    tips = {name: current[name] for name in names}
    known = []
    if have:
        checked = git(repo, "cat-file", "--batch-check=%(objectname) %(objecttype)", stdin="\n".join(have) + "\n")
        known = [line.split()[0] for line in checked.splitlines() if line.endswith(" commit")]
    listed = "".join(f"{name}\n" for name in names) + "".join(f"^{sha}\n" for sha in known)
    if int(git(repo, "rev-list", "--count", "--stdin", stdin=listed).strip() or 0) == 0:
        return {"refs": tips, "bundle": False}
    descriptor, path = tempfile.mkstemp(prefix="supervisor-send-", suffix=".bundle")
    os.close(descriptor)
    try:
        git(repo, "bundle", "create", "--quiet", path, "--stdin", stdin=listed)
        with open(path, "rb") as handle:
            call.send_bytes(handle.read())
    finally:
        os.unlink(path)
    return {"refs": tips, "bundle": True}
