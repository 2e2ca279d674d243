"""What a host says is attacker input (an agent on a host with `isolation: none` can speak for the host program):
git answers that would move refs the host does not own, or name what no git gives, are refused whole, and the host
is told of no commit of the user's but those it was given. A fake host answers here: the threat is the host."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, cast

import pytest

from supervisor.hosts import bundles
from supervisor.hosts.bundles import HostAnswerRefused
from supervisor.hosts.link import Link
from tests.git_env import isolate_git

NAMESPACE = "refs/supervisor/hosts/evil"
WANTED = "refs/heads/agent/x/work"


class HostileHost:
    """Answers git_heads and git_send as told, and keeps what the engine asked."""

    def __init__(self, heads: Any = None, send: Any = None) -> None:
        self.name = "evil"
        self.heads = heads
        self.send = send
        self.asked: list[tuple[str, dict[str, Any]]] = []

    def call(self, op: str, **args: Any) -> Any:
        return self.call_payload(op, **args)[0]

    def call_payload(self, op: str, **args: Any) -> tuple[Any, bytes]:
        self.asked.append((op, args))
        if op == "git_heads":
            return self.heads, b""
        if op == "git_send":
            return self.send, b""
        raise AssertionError(f"the engine asked {op} of a host whose answer it should have refused")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate_git(monkeypatch, tmp_path)
    folder = tmp_path / "repo"
    folder.mkdir()
    _git(folder, "init", "-q", "-b", "main")
    _git(folder, "commit", "-q", "--allow-empty", "-m", "base")
    _git(folder, "commit", "-q", "--allow-empty", "-m", "evil")
    _git(folder, "branch", "evil")
    _git(folder, "reset", "-q", "--hard", "HEAD~1")
    return folder


def _refs(repo: Path) -> str:
    return _git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


def fetch(host: HostileHost, repo: Path, have: tuple[str, ...] = ()) -> dict[str, str]:
    return bundles.fetch(cast(Link, host), repo, "/clone", [WANTED], NAMESPACE, have=have)


@pytest.mark.parametrize("tips", [
    # a newline in the sha: a second update-ref command moving the user's own branch
    {WANTED: "{evil}\nupdate refs/heads/main {evil}"},
    # a ref not asked for, under the host's namespace or outside it through `..`
    {WANTED: "{evil}", "refs/heads/other": "{evil}"},
    {WANTED: "{evil}", "refs/heads/../../heads/main": "{evil}"},
    # a name no git gives, carrying a command
    {"refs/heads/agent/x/work\0update refs/heads/main {evil}": "{evil}"},
    # fewer refs than asked for, a short sha, not a mapping at all
    {}, {WANTED: "{short}"}, [WANTED, "{evil}"],
])
def test_a_fetch_answer_naming_what_was_not_asked_is_refused_and_moves_nothing(repo: Path, tips: Any) -> None:
    evil = _git(repo, "rev-parse", "evil")
    before = _refs(repo)

    def filled(value: Any) -> Any:
        return value.format(evil=evil, short=evil[:12]) if isinstance(value, str) else value

    answer = {"refs": {filled(k): filled(v) for k, v in tips.items()} if isinstance(tips, dict)
              else [filled(item) for item in tips], "bundle": False}
    with pytest.raises(HostAnswerRefused, match="evil: git_send: "):
        fetch(HostileHost(send=answer), repo)
    assert _refs(repo) == before  # main where it was, nothing under the host's namespace


def test_a_fetch_answer_naming_no_commit_here_is_refused(repo: Path) -> None:
    tree = _git(repo, "rev-parse", "main^{tree}")
    with pytest.raises(HostAnswerRefused, match="no commit it sent or this repository has"):
        fetch(HostileHost(send={"refs": {WANTED: tree}, "bundle": False}), repo)
    with pytest.raises(HostAnswerRefused, match="not one of git_send"):
        fetch(HostileHost(send={"refs": {WANTED: tree}, "bundle": "yes"}), repo)
    assert NAMESPACE not in _refs(repo)


def test_a_genuine_fetch_answer_sets_only_the_hosts_own_ref(repo: Path) -> None:
    evil = _git(repo, "rev-parse", "evil")
    assert fetch(HostileHost(send={"refs": {WANTED: evil}, "bundle": False}), repo) == {
        f"{NAMESPACE}/heads/agent/x/work": evil}
    assert _git(repo, "rev-parse", "main") != evil


def test_the_host_hears_only_of_its_own_tips_and_the_bases_it_was_given(repo: Path) -> None:
    """Asking for a bundle tells the host which commits home has: only those it gave (its namespace's tips) or
    was sent (the agents' bases), never the user's other branches."""
    base = _git(repo, "rev-parse", "main")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "the user's private work")
    _git(repo, "branch", "private")
    _git(repo, "update-ref", f"{NAMESPACE}/heads/agent/y/work", "evil")
    evil = _git(repo, "rev-parse", "evil")
    host = HostileHost(send={"refs": {WANTED: evil}, "bundle": False})
    fetch(host, repo, have=(base,))
    [(op, args)] = host.asked
    assert op == "git_send" and sorted(args["have"]) == sorted([base, evil])


@pytest.mark.parametrize("refs", [
    {"refs/heads/main": "{sha}\nupdate refs/heads/main {sha}"},
    {"refs/heads/a b": "{sha}"},
    {"refs/heads/x.lock": "{sha}"},
    {"HEAD": "{sha}"},
    "refs/heads/main",
])
def test_a_heads_answer_no_git_gives_is_refused_before_anything_is_sent(repo: Path, refs: Any) -> None:
    sha = _git(repo, "rev-parse", "main")
    answer = {"exists": True, "refs": {k: v.format(sha=sha) for k, v in refs.items()} if isinstance(refs, dict)
              else refs}
    host = HostileHost(heads=answer)
    with pytest.raises(HostAnswerRefused, match="evil: git_heads: "):
        bundles.heads(cast(Link, host), "/clone", 5)
    with pytest.raises(HostAnswerRefused):
        bundles.push(cast(Link, host), repo, "/clone", {"refs/supervisor/bases/x": "main"})
    assert [op for op, _ in host.asked] == ["git_heads", "git_heads"]  # no bundle, no git_receive
    assert not _git(repo, "for-each-ref", "refs/supervisor/outgoing")


def test_a_heads_answer_the_same_as_the_last_is_not_checked_again_and_a_changed_one_is(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sha = _git(repo, "rev-parse", "main")
    good = {"exists": True, "refs": {WANTED: sha, "refs/heads/main": sha}}
    host = HostileHost(heads=good)
    checks: list[object] = []
    real = bundles.checked_refs

    def counted(name: str, op: str, refs: object) -> dict[str, str]:
        checks.append(refs)
        return real(name, op, refs)

    monkeypatch.setattr(bundles, "checked_refs", counted)
    memo: bundles.Checked = {}
    for _ in range(3):  # commits-home asks every 2 s: the same answer is checked once
        assert bundles.heads(cast(Link, host), "/clone", 5, memo) == {WANTED: sha, "refs/heads/main": sha}
    assert len(checks) == 1
    # Whatever came before, an answer that changed is checked whole, and refused as any other.
    host.heads = {"exists": True, "refs": {WANTED: sha, "refs/heads/main": f"{sha}\nupdate refs/heads/main {sha}"}}
    with pytest.raises(HostAnswerRefused, match="evil: git_heads: "):
        bundles.heads(cast(Link, host), "/clone", 5, memo)
    host.heads = {"exists": True, "refs": {WANTED: sha, "refs/heads/main": sha, "refs/heads/a b": sha}}
    with pytest.raises(HostAnswerRefused):
        bundles.heads(cast(Link, host), "/clone", 5, memo)
    assert len(checks) == 3
    host.heads = good  # the good one again: as checked before the refused ones
    assert bundles.heads(cast(Link, host), "/clone", 5, memo) == {WANTED: sha, "refs/heads/main": sha}
    assert len(checks) == 3
    assert bundles.heads(cast(Link, host), "/other-clone", 5, memo) and len(checks) == 4  # each clone its own
