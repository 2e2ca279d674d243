"""Who moved a branch on a host, judged as on this machine (tests/test_attacks_tips.py), against the real sshd host
box1 (tests/remotes.py): a reset onto another agent's commit is `tamper` even where the agent wrote into its own
reflog that it made that commit, while a fetch of upstream's work and a reset onto it is not; the base branch made
or moved in the host's clone, which its agents share, is `tamper` as a move of your `main` is here; a helper's
merge into its parent there is the engine's own move, the helper's own move of its parent's branch is not."""

from __future__ import annotations

import shlex

import pytest

from tests.conftest import wait_until
from tests.remotes import HOST, Remote, remote_fixture  # noqa: F401  (the fixture)
from tests.test_remote_trees import start_helper
from tests.test_remote_truth import IDLE, commit_in, fetched, triggers


def start(remote: Remote, *names: str) -> None:
    for name in names:
        remote.request("start", name=name, task="first", command=remote.claude(name, IDLE), profile="claude",
                       host=HOST)
    for name in names:
        remote.sandbox.wait_state(name, "idle", timeout=30)


def commit(remote: Remote, name: str, message: str) -> str:
    """A commit in agent `name`'s worktree on the host (a helper's too), made from its pane."""
    remote.in_pane(name, f"echo {message} > {message}.txt && git add {message}.txt && git commit -q -m {message}")
    return head(remote, name)


def head(remote: Remote, name: str) -> str:
    return remote.on_host("git", "-C", remote.sandbox.agent(name)["worktree"], "rev-parse", "HEAD").strip()


def judged(remote: Remote, name: str, tip: str) -> bool:
    """Whether the engine has judged the move of `name`'s branch to `tip` (and accepted it as its tip)."""
    return bool(remote.engine.get(name).extra.get("tip") == tip)


@pytest.mark.parametrize("forged", [False, True])
def test_a_reset_onto_another_agents_one_commit_on_a_host_is_tamper(remote: Remote, forged: bool) -> None:
    """Its worktree moved it (the reset is in its HEAD reflog there), onto the one commit another agent made: not
    its own. `forged`: it first wrote into its HEAD reflog that it made that commit, which counts for nothing, as
    here: the other agent's branch held it when the engine last accepted it."""
    start(remote, "taker", "giver")
    taker = remote.sandbox.agent("taker")["worktree"]
    theirs = commit_in(remote, "giver", "theirs")
    wait_until(lambda: fetched(remote, "giver") == theirs and judged(remote, "giver", theirs), timeout=30,
               message="the other's commit home and accepted")
    if forged:
        remote.on_host("sh", "-c", 'cd "$1" && printf "%s %s x <x@x> 1 +0000\\tcommit: mine\\n" '
                       '$(git rev-parse HEAD "$2") >> "$(git rev-parse --absolute-git-dir)/logs/HEAD"',
                       "sh", taker, theirs)
    remote.on_host("git", "-C", taker, "reset", "-q", "--hard", theirs)
    found = wait_until(lambda: triggers(remote, "taker", "tamper"), timeout=30, message="the tamper alert")
    assert [(e["ref"], e["new"]) for e in found] == [("refs/heads/agent/taker/work", theirs)]
    assert "commit(s) of other agents' branches" in found[0]["why"], found
    assert not triggers(remote, "giver", "tamper")
    refused = remote.sandbox.sv("merge", "taker", check=False)
    assert refused.returncode != 0 and "tamper: refs/heads/agent/taker/work moved" in refused.stderr


def test_a_claim_of_another_agents_brand_new_commit_on_a_host_is_tamper_however_fast(remote: Remote) -> None:
    """The taker resets onto the giver's commit and writes into its HEAD reflog that it made it before the engine
    has judged either move (here: its judging held until both branches have come home, then one pass, as the
    auditor makes): the giver's branch holds the commit now and its worktree says it made it too, so neither
    claim is believed."""
    start(remote, "taker", "giver")
    taker = remote.sandbox.agent("taker")["worktree"]
    remote.engine.auditor.stop()  # its passes are the test's from here on
    theirs = commit_in(remote, "giver", "theirs")
    remote.on_host("sh", "-c", 'cd "$1" && printf "%s %s x <x@x> 1 +0000\\tcommit: mine\\n" '
                   '$(git rev-parse HEAD "$2") >> "$(git rev-parse --absolute-git-dir)/logs/HEAD" && '
                   'git reset -q --hard "$2"', "sh", taker, theirs)
    wait_until(lambda: fetched(remote, "giver") == theirs and fetched(remote, "taker") == theirs, timeout=30,
               message="both branches home")
    remote.engine.auditor.audit_all()
    found = triggers(remote, "taker", "tamper")
    assert [(e["ref"], e["new"]) for e in found] == [("refs/heads/agent/taker/work", theirs)], found
    assert "giver" in found[0]["why"], found
    assert [e["new"] for e in triggers(remote, "giver", "tamper")] == [theirs]  # which one wrote it: a human says
    refused = remote.sandbox.sv("merge", "taker", check=False)
    assert refused.returncode != 0 and "tamper: refs/heads/agent/taker/work moved" in refused.stderr


def test_a_fetch_of_upstreams_main_and_a_reset_onto_it_on_a_host_is_not_tamper(remote: Remote) -> None:
    """Commits its worktree did not make but no other agent's branch holds (the project's upstream, fetched there):
    its worktree moved it, as on this machine."""
    start(remote, "puller", "bystander")
    puller = remote.sandbox.agent("puller")["worktree"]
    upstream, scratch = f"{remote.host_dir}/upstream.git", f"{remote.host_dir}/upstream-work"
    remote.on_host("sh", "-c", 'git clone -q --bare "$1" "$2" && git clone -q "$2" "$3" && cd "$3" && '
                   'git commit -q --allow-empty -m upstream && git push -q origin HEAD:refs/heads/main',
                   "sh", puller, upstream, scratch)
    theirs = remote.on_host("git", "-C", scratch, "rev-parse", "HEAD").strip()
    commit_in(remote, "bystander", "elsewhere")  # another agent's branch, which holds none of upstream's commits
    remote.in_pane("puller", f"git fetch -q {shlex.quote(upstream)} main && git reset -q --hard FETCH_HEAD")
    wait_until(lambda: fetched(remote, "puller") == theirs and judged(remote, "puller", theirs), timeout=30,
               message="the move judged")
    assert not triggers(remote, "puller", "tamper")
    assert remote.engine.get("puller").extra.get("tamper") is None


def test_the_base_branch_made_or_moved_in_a_hosts_clone_is_tamper_and_merge_refuses(remote: Remote) -> None:
    """The agents on a host share its clone's refs, where the engine never keeps `main`: an agent's `git branch
    main` there, then its `update-ref` of it, are each a `tamper` naming the ref and the host, as an agent's move of
    your `main` is here; `merge` refuses the host's agents merging into it until a human accepts it."""
    box = remote.sandbox
    start(remote, "mover")
    mine = commit_in(remote, "mover", "mine")
    wait_until(lambda: fetched(remote, "mover") == mine, timeout=30, message="its commit home")
    home_main = box.git("rev-parse", "main")
    remote.in_pane("mover", "git branch main HEAD")

    def base_tamper() -> list[dict[str, object]]:
        return [e for e in triggers(remote, "mover", "tamper") if e.get("ref") == "refs/heads/main"]

    found = wait_until(base_tamper, timeout=30, message="the tamper alert for main on the host")
    assert (found[0]["host"], found[0]["old"], found[0]["new"]) == (HOST, "0" * 40, mine), found
    assert found[0]["subject"] == f"host:{HOST}" and f"on host {HOST}" in str(found[0]["summary"])
    assert box.git("rev-parse", "main") == home_main  # your main is untouched
    assert remote.engine.get("mover").extra.get("tamper") is None  # its own branch moved by its worktree
    refused = box.sv("merge", "mover", check=False)
    assert refused.returncode != 0 and f"refs/heads/main on host {HOST} moved" in refused.stderr, refused.stderr

    assert "merged" in box.sv("merge", "mover", "--accept-tamper").stdout  # a human looked
    remote.in_pane("mover", "git update-ref refs/heads/main HEAD~1")
    found = wait_until(lambda: base_tamper()[1:], timeout=30, message="the second move's tamper alert")
    assert (found[0]["old"], found[0]["new"]) == (mine, home_main), found
    refused = box.sv("merge", "mover", check=False)
    assert refused.returncode != 0 and f"refs/heads/main on host {HOST} moved" in refused.stderr, refused.stderr


def test_a_helpers_merge_into_its_parent_on_a_host_is_the_engines_own_move_not_the_helpers(remote: Remote) -> None:
    """`merge HELPER` moves its parent's branch in the parent's worktree there: not tamper, nor is the parent's own
    commit after it; the helper moving its parent's branch itself (an `update-ref` from its own worktree, not
    through the merge) is, and the parent's merge is refused until a human accepts it."""
    box = remote.sandbox
    start(remote, "far")
    start_helper(remote, "far", "scout")
    far = box.agent("far")
    helper_tip = commit(remote, "far.scout", "found")
    wait_until(lambda: fetched(remote, "far.scout") == helper_tip, timeout=30, message="the helper's commit home")

    merged = box.sv("merge", "far.scout")
    assert f"into {far['branch']}" in merged.stdout, merged.stdout
    tip = head(remote, "far")
    wait_until(lambda: fetched(remote, "far") == tip and judged(remote, "far", tip), timeout=30,
               message="the merge's tip accepted as the parent's")
    own = commit(remote, "far", "after")
    wait_until(lambda: fetched(remote, "far") == own and judged(remote, "far", own), timeout=30,
               message="the parent's own commit after the merge judged")
    assert not triggers(remote, "far", "tamper") and not triggers(remote, "far.scout", "tamper")

    sneaked = commit(remote, "far.scout", "sneaked")
    remote.in_pane("far.scout", f"git merge -q --no-edit {far['branch']} && "
                                f"git update-ref refs/heads/{far['branch']} HEAD")
    moved = head(remote, "far.scout")
    assert moved != sneaked and head(remote, "far") == moved
    found = wait_until(lambda: triggers(remote, "far", "tamper"), timeout=30, message="the parent's tamper alert")
    assert [(e["ref"], e["new"]) for e in found] == [(f"refs/heads/{far['branch']}", moved)], found
    assert "is not a commit its worktree" in found[0]["why"]
    refused = box.sv("merge", "far", check=False)
    assert refused.returncode != 0 and f"tamper: refs/heads/{far['branch']} moved" in refused.stderr
