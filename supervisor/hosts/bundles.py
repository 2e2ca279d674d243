"""Commits between the user's repository and a host's clone, carried as git bundles over the host's link
(git over ssh would open a connection per fetch): the base commit goes out (`push`), agent branches come home
into a private ref namespace (`fetch`), where the audit, the radar and merge read them as commits the engine
holds itself. Only what the other side lacks is sent.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from supervisor.git import environment
from supervisor.git.worktrees import GitError
from supervisor.hosts.link import Link

OUTGOING = "refs/supervisor/outgoing"  # names a bundle going out needs for a moment (git bundles name refs)
TIMEOUT = 300.0


def _git(repo: Path, *args: str, stdin: str | None = None) -> str:
    done = environment.run(repo, *args, stdin=None if stdin is None else stdin.encode())
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed: {said[-1] if said else f'exit {done.returncode}'}")
    return done.stdout.decode("utf-8", "surrogateescape")


def _commits_known(repo: Path, shas: Iterable[str]) -> list[str]:
    """Those of `shas` that are commits in `repo`."""
    listed = "".join(f"{sha}\n" for sha in shas)
    if not listed:
        return []
    checked = _git(repo, "cat-file", "--batch-check=%(objectname) %(objecttype)", stdin=listed)
    return [line.split()[0] for line in checked.splitlines() if line.endswith(" commit")]


def push(link: Link, repo: Path, clone: str, refs: Mapping[str, str]) -> dict[str, Any]:
    """Set `refs` (`{name on the host: commit or ref here}`) in the host's clone at `clone` (made on first
    use), sending a bundle of the commits the host lacks. → the host's answer (created, refs)."""
    shas = {name: _git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}").strip() for name, rev in refs.items()}
    theirs = link.call("git_heads", repo=clone)["refs"].values()
    known = _commits_known(repo, theirs)
    listed = "".join(f"{sha}\n" for sha in shas.values()) + "".join(f"^{sha}\n" for sha in known)
    if int(_git(repo, "rev-list", "--count", "--stdin", stdin=listed).strip() or 0) == 0:
        return dict(link.call("git_receive", timeout=TIMEOUT, repo=clone, refs=shas))
    temporary = {f"{OUTGOING}/{uuid.uuid4().hex}/{index}": sha for index, sha in enumerate(shas.values())}
    _git(repo, "update-ref", "--stdin", stdin="".join(f"create {name} {sha}\n" for name, sha in temporary.items()))
    try:
        descriptor, path = tempfile.mkstemp(prefix="supervisor-push-", suffix=".bundle")
        os.close(descriptor)
        try:
            _git(repo, "bundle", "create", "--quiet", path, "--stdin",
                 stdin="".join(f"{name}\n" for name in temporary) + "".join(f"^{sha}\n" for sha in known))
            data = Path(path).read_bytes()
        finally:
            os.unlink(path)
    finally:
        _git(repo, "update-ref", "--stdin", stdin="".join(f"delete {name}\n" for name in temporary))
    return dict(link.call("git_receive", timeout=TIMEOUT, payload=data, repo=clone, refs=shas))


def local_name(namespace: str, ref: str) -> str:
    """Where host ref `ref` is kept here: `refs/heads/x` → `NAMESPACE/heads/x`."""
    return f"{namespace.rstrip('/')}/{ref.removeprefix('refs/')}"


def fetch(link: Link, repo: Path, clone: str, refs: Iterable[str], namespace: str,
          have: Iterable[str] | None = None) -> dict[str, str]:
    """Bring `refs` (full names) of the host's clone home, under `namespace` (e.g. refs/supervisor/hosts/box1):
    the host sends a bundle of what this repository lacks, given the commits it `have`s (default: the tips
    under `namespace` and of every local branch). The objects are checked as they come in (fsck), and every
    ref is set to the commit the host named, or nothing is. → `{local name: sha}`."""
    names = list(refs)
    if have is None:
        have = _git(repo, "for-each-ref", "--format=%(objectname)", namespace, "refs/heads").split()
    result, data = link.call_payload("git_send", timeout=TIMEOUT, repo=clone, refs=names, have=sorted(set(have)))
    tips: dict[str, str] = result["refs"]
    wanted = {local_name(namespace, name): sha for name, sha in tips.items()}
    if result["bundle"]:
        descriptor, path = tempfile.mkstemp(prefix="supervisor-fetch-", suffix=".bundle")
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        try:
            listed = _git(repo, "bundle", "list-heads", path).split()
            in_bundle = [name for name in listed[1::2] if name in tips]
            if in_bundle:
                _git(repo, "-c", "fetch.fsckObjects=true", "-c", "transfer.fsckObjects=true", "fetch", "--quiet",
                     "--no-tags", "--no-write-fetch-head", path,
                     *(f"+{name}:{local_name(namespace, name)}" for name in in_bundle))
        finally:
            os.unlink(path)
    # Every ref is set, those the bundle left out too (their commits were among ours already); a commit the
    # host named that is not here fails the whole update.
    _git(repo, "update-ref", "--stdin", stdin="".join(f"update {name} {sha}\n" for name, sha in wanted.items()))
    return wanted
