"""Commits between the user's repository and a host's clone, carried as git bundles over the host's link
(git over ssh would open a connection per fetch): the base commit goes out (`push`), agent branches come home
into a private ref namespace (`fetch`), where the audit, the radar and merge read them as commits the engine
holds itself. Only what the other side lacks is sent.

Everything a host says is checked before it is used (an agent on a host may speak for it): every ref name it
gives must be one git itself would accept (`check-ref-format`'s rules), every object name a full hash, a fetch's
answer may name only the refs asked for, and the refs set here are named by the engine alone (`update-ref -z`,
so no value can add a command). A host learns of this repository only the commits it was given: its own
namespace's tips and the bases it was sent.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from supervisor.git import environment
from supervisor.git.worktrees import GitError
from supervisor.hosts.link import Link, LinkError

OUTGOING = "refs/supervisor/outgoing"  # names a bundle going out needs for a moment (git bundles name refs)
TIMEOUT = 300.0
_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock/")


class HostAnswerRefused(LinkError):
    """A host's answer is not one a genuine host program gives: it is refused whole, nothing of it used."""


def valid_ref(name: object) -> bool:
    """Whether `name` is a full ref name git would accept (git check-ref-format's rules, under refs/)."""
    return (isinstance(name, str) and name.startswith("refs/") and len(name) < 4096
            and _REF_FORBIDDEN.search(name) is None and not name.endswith(("/", ".", ".lock")) and name != "refs/@")


def valid_sha(sha: object) -> bool:
    """Whether `sha` is a full object name (SHA-1 or SHA-256, lower case, as git prints it)."""
    return isinstance(sha, str) and _SHA.fullmatch(sha) is not None


def checked_refs(host: str, op: str, refs: object) -> dict[str, str]:
    """`refs` as a host sent them (`{name: sha}`), each name and sha checked; HostAnswerRefused otherwise."""
    if not isinstance(refs, dict):
        raise HostAnswerRefused(f"{host}: {op}: the host's answer holds no refs")
    for name, sha in refs.items():
        if not valid_ref(name) or not valid_sha(sha):
            raise HostAnswerRefused(f"{host}: {op}: the host named a ref or commit no git gives: "
                                    f"{str(name)[:80]!r} {str(sha)[:80]!r}")
    return dict(refs)


Checked = dict[tuple[str, str], dict[str, str]]  # (host, clone) → the refs of its last answer, found good


def heads(link: Link, clone: str, timeout: float, checked: Checked | None = None) -> dict[str, str]:
    """The refs of the host's clone at `clone` (`git_heads`), checked. `checked`: the caller's memo of the last
    answer of each host and clone, with what checking it found: an answer equal to the last one (the same names
    and commits, which are strings then) is not checked again (commits-home asks every 2 s)."""
    answer = link.call("git_heads", repo=clone, timeout=timeout)
    refs = answer.get("refs") if isinstance(answer, dict) else None
    last = checked.get((link.name, clone)) if checked is not None else None
    if last is not None and isinstance(refs, dict) and refs == last:
        return dict(last)
    found = checked_refs(link.name, "git_heads", refs)
    if checked is not None:
        checked[(link.name, clone)] = dict(found)
    return found


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
    theirs = heads(link, clone, TIMEOUT).values()
    known = _commits_known(repo, theirs)
    listed = "".join(f"{sha}\n" for sha in shas.values()) + "".join(f"^{sha}\n" for sha in known)
    if int(_git(repo, "rev-list", "--count", "--stdin", stdin=listed).strip() or 0) == 0:
        return dict(link.call("git_receive", timeout=TIMEOUT, repo=clone, refs=shas))
    temporary = {f"{OUTGOING}/{uuid.uuid4().hex}/{index}": sha for index, sha in enumerate(shas.values())}
    _update_refs(repo, "create", temporary)
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
        _update_refs(repo, "delete", temporary)
    return dict(link.call("git_receive", timeout=TIMEOUT, payload=data, repo=clone, refs=shas))


def local_name(namespace: str, ref: str) -> str:
    """Where host ref `ref` is kept here: `refs/heads/x` → `NAMESPACE/heads/x`."""
    return f"{namespace.rstrip('/')}/{ref.removeprefix('refs/')}"


def fetch(link: Link, repo: Path, clone: str, refs: Iterable[str], namespace: str,
          have: Iterable[str] = ()) -> dict[str, str]:
    """Bring `refs` (full names) of the host's clone home, under `namespace` (e.g. refs/supervisor/hosts/box1):
    the host sends a bundle of what this repository lacks, given the commits it `have`s (and the tips under
    `namespace`: the host is told of no other commit here). The host's answer must name exactly the refs asked
    for, each with a commit; the objects are checked as they come in (fsck), and every ref is set to the commit
    the host named, or none is. → `{local name: sha}`. HostAnswerRefused when the answer is not a genuine one."""
    names = list(dict.fromkeys(refs))
    if not all(valid_ref(name) for name in names):
        raise GitError(f"not a ref name: {next(name for name in names if not valid_ref(name))!r}")
    had = set(have) | set(_git(repo, "for-each-ref", "--format=%(objectname)", namespace).split())
    result, data = link.call_payload("git_send", timeout=TIMEOUT, repo=clone, refs=names,
                                     have=sorted(sha for sha in had if valid_sha(sha)))
    if not isinstance(result, dict) or not isinstance(result.get("bundle"), bool):
        raise HostAnswerRefused(f"{link.name}: git_send: the host's answer is not one of git_send")
    tips = checked_refs(link.name, "git_send", result.get("refs"))
    if set(tips) != set(names):
        raise HostAnswerRefused(f"{link.name}: git_send: the host answered for other refs than those asked for")
    wanted = {local_name(namespace, name): tips[name] for name in names}
    if result["bundle"]:
        descriptor, path = tempfile.mkstemp(prefix="supervisor-fetch-", suffix=".bundle")
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        try:
            listed = _git(repo, "bundle", "list-heads", path).split()
            in_bundle = [name for name in names if name in set(listed[1::2])]
            if in_bundle:
                _git(repo, "-c", "fetch.fsckObjects=true", "-c", "transfer.fsckObjects=true", "fetch", "--quiet",
                     "--no-tags", "--no-write-fetch-head", path,
                     *(f"+{name}:{local_name(namespace, name)}" for name in in_bundle))
        finally:
            os.unlink(path)
    # Every ref is set, those the bundle left out too (their commits were among ours already); a name the host
    # gave that is not a commit here fails the whole update.
    missing = set(wanted.values()) - set(_commits_known(repo, wanted.values()))
    if missing:
        raise HostAnswerRefused(f"{link.name}: git_send: the host named {sorted(missing)[0]}, which is no commit "
                                "it sent or this repository has")
    _update_refs(repo, "update", wanted)
    return wanted


def _update_refs(repo: Path, verb: str, refs: Mapping[str, str]) -> None:
    """One `update-ref` transaction of `verb` (create, update, delete) on each of `refs`, NUL-separated (a
    value can never be read as a command)."""
    if verb == "delete":
        commands = "".join(f"delete {name}\0\0" for name in refs)
    else:
        commands = "".join(f"{verb} {name}\0{sha}\0" + ("\0" if verb == "update" else "")
                           for name, sha in refs.items())
    _git(repo, "update-ref", "-z", "--stdin", stdin=commands)
