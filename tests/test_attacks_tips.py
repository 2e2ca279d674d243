"""Who moved a branch, judged from inside real agent panes (sandboxed, as agents run by default): moves made while
the engine was down are judged when it adopts the agents again, a reset onto another agent's commits is
`tamper` whatever the agent wrote into its worktree's `.git` file, and the human's pulls and fetches into the
base branch never are."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEMO_AGENT, Sandbox, wait_until
from tests.test_helpers import events, in_pane

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (apt-get install bubblewrap)")


def _configure(box: Sandbox, isolation: str | None = None) -> None:
    box.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\nlimits:\n  idle_after: 1s\n"
                     + (f"isolation: {isolation}\n" if isolation else ""))


def _tamper(box: Sandbox, agent: str) -> list[dict[str, Any]]:
    return [e for e in events(box, agent, "trigger") if e.get("trigger") == "tamper"]


def _judged(box: Sandbox, commit: str) -> bool:
    """Whether the engine has judged the move to `commit`: once judged, it takes the agent's objects into the
    shared store, where the user's own git (no alternates) finds them."""
    found = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=box.root, env=box.env,
                           capture_output=True, check=False)
    return found.returncode == 0


def _commit_in(box: Sandbox, agent: str, name: str) -> str:
    """A commit of the agent's own, made in its pane, once the engine has judged it."""
    in_pane(box, agent, f"echo {name} > {name}.txt && git add {name}.txt && git commit -q -m {name}")
    tip = box.git("rev-parse", f"agent/{agent}/work")
    wait_until(lambda: _judged(box, tip), 30, message=f"{agent}'s commit judged")
    return tip


def _waiting(box: Sandbox, tmp: Path, name: str, command: str) -> tuple[Path, Path]:
    """Start agent `name` whose first turn waits for a `go` file, runs `command` in its pane and leaves `done`."""
    go, done = tmp / f"{name}.go", tmp / f"{name}.done"
    steps = [f"while [ ! -e {go} ]; do sleep 0.1; done", f"{command} > {done}.part 2>&1; mv {done}.part {done}"]
    script = tmp / f"{name}.yaml"
    script.write_text(json.dumps({"turns": [[*({"run": step} for step in steps), {"quiet": "600s"}]]}))
    box.sv("start", name, "--task", "go", "--command", f"{DEMO_AGENT} --script {script}")
    box.wait_state(name, "working")
    return go, done


def _while_the_engine_is_down(box: Sandbox, go: Path, done: Path, *first: Path) -> None:
    """Stop the engine, then let the agents waiting for `first` and `go` run their commands; an engine again once
    `done` is there."""
    box.sv("engine", "stop")
    for other in first:
        other.touch()
    go.touch()
    wait_until(done.exists, 60, message="the agent's commands, run while the engine was down")
    box.sv("ls")  # an engine again, which adopts the agents and judges their branches


def test_a_commit_made_while_the_engine_was_down_is_its_own(sandbox: Sandbox, tmp_path: Path) -> None:
    _configure(sandbox)
    go, done = _waiting(sandbox, tmp_path, "worker",
                        "echo w > w.txt && git add w.txt && git commit -q -m while-down")
    _while_the_engine_is_down(sandbox, go, done)
    tip = sandbox.git("rev-parse", "agent/worker/work")
    assert sandbox.git("log", "-1", "--format=%s", tip) == "while-down"
    wait_until(lambda: _judged(sandbox, tip), 30, message="the commit judged on adoption")
    assert _tamper(sandbox, "worker") == []
    assert "merged 1 commit(s) into main" in sandbox.sv("merge", "worker").stdout


def test_its_branch_moved_onto_another_agent_s_commit_while_the_engine_was_down_is_tamper(
        sandbox: Sandbox, tmp_path: Path) -> None:
    _configure(sandbox)
    sandbox.sv("start", "victim")
    sandbox.wait_state("victim", "idle", "working")
    go, done = _waiting(sandbox, tmp_path, "rogue", "git update-ref refs/heads/agent/rogue/work agent/victim/work")
    theirs = _commit_in(sandbox, "victim", "theirs")
    _while_the_engine_is_down(sandbox, go, done)
    assert sandbox.git("rev-parse", "agent/rogue/work") == theirs
    found = wait_until(lambda: _tamper(sandbox, "rogue"), 30, message="the tamper alert on adoption")
    assert [(e["ref"], e["new"]) for e in found] == [("refs/heads/agent/rogue/work", theirs)]
    refused = sandbox.sv("merge", "rogue", check=False)
    assert refused.returncode != 0 and "tamper: refs/heads/agent/rogue/work moved" in refused.stderr


@pytest.mark.parametrize("forged", [False, True])
def test_a_reset_onto_another_agent_s_commit_is_tamper(sandbox: Sandbox, forged: bool) -> None:
    """Its own worktree moved it (the reset is in its HEAD reflog), but onto a commit another agent made; `forged`:
    it first wrote into its own HEAD reflog (its to write, in the sandbox too) that it made that commit, which
    counts for nothing: the victim's branch held it already when the engine last accepted it."""
    _configure(sandbox)
    for name in ("victim", "rogue"):
        sandbox.sv("start", name)
        sandbox.wait_state(name, "idle", "working")
    theirs = _commit_in(sandbox, "victim", "theirs")
    forge = ("printf '%s %s x <x@x> 1 +0000\\tcommit: mine\\n' $(git rev-parse HEAD agent/victim/work) "
             ">> $(git rev-parse --absolute-git-dir)/logs/HEAD && ") if forged else ""
    in_pane(sandbox, "rogue", f"{forge}git reset -q --hard agent/victim/work")
    assert sandbox.git("rev-parse", "agent/rogue/work") == theirs
    found = wait_until(lambda: _tamper(sandbox, "rogue"), 30, message="the tamper alert")
    assert [(e["ref"], e["new"]) for e in found] == [("refs/heads/agent/rogue/work", theirs)]
    assert "other agents' branches" in found[0]["why"]


def test_a_claim_of_another_agent_s_brand_new_commit_is_tamper_however_fast(sandbox: Sandbox, tmp_path: Path) -> None:
    """The victim commits, and before the engine has looked at either branch (here: while it is down) the rogue
    points its branch at that commit (its ref file is its to write; the commit's objects it cannot even read) and
    writes into its own HEAD reflog that it made it. Both branches are judged from the same refs: the victim's
    branch holds the commit now and its worktree says it made it too, so neither claim is believed."""
    _configure(sandbox)
    victim_go, victim_done = _waiting(sandbox, tmp_path, "victim",
                                      "echo v > v.txt && git add v.txt && git commit -q -m theirs")
    go, done = _waiting(sandbox, tmp_path, "rogue",
                        f"(while [ ! -e {victim_done} ]; do sleep 0.1; done; theirs=$(git rev-parse agent/victim/work)"
                        " && printf '%s %s x <x@x> 1 +0000\\tcommit: mine\\n' $(git rev-parse HEAD) $theirs "
                        ">> $(git rev-parse --absolute-git-dir)/logs/HEAD && "
                        "echo $theirs > $(git rev-parse --git-common-dir)/refs/heads/agent/rogue/work)")
    _while_the_engine_is_down(sandbox, go, done, victim_go)  # the victim commits while it is down too
    theirs = sandbox.git("rev-parse", "agent/victim/work")
    assert sandbox.git("log", "-1", "--format=%s", theirs) == "theirs"
    assert sandbox.git("rev-parse", "agent/rogue/work") == theirs, (done.read_text())
    found = wait_until(lambda: _tamper(sandbox, "rogue"), 30, message="the tamper alert")
    assert [(e["ref"], e["new"]) for e in found] == [("refs/heads/agent/rogue/work", theirs)]
    assert "other agents' branches" in found[0]["why"]
    refused = sandbox.sv("merge", "rogue", check=False)
    assert refused.returncode != 0 and "tamper: refs/heads/agent/rogue/work moved" in refused.stderr
    # Which of the two wrote its reflog cannot be told: the victim's merge waits for a human too.
    assert [e["new"] for e in wait_until(lambda: _tamper(sandbox, "victim"), 30)] == [theirs]


def test_a_rewritten_git_file_does_not_make_another_agent_s_commits_its_own(sandbox: Sandbox, tmp_path: Path) -> None:
    """While the engine is down (the victim's commit not yet accepted on its branch), the rogue points its `.git`
    file at the victim's git folder, whose HEAD reflog has the victim's commit, and resets onto it: the engine
    reads the git folder it recorded when it made the rogue's worktree, where the reset made no commit.
    Unsandboxed: in a sandbox the victim's new objects are out of the rogue's sight until the engine accepts them."""
    _configure(sandbox, isolation="none")
    victim_go, victim_done = _waiting(sandbox, tmp_path, "victim",
                                      "echo v > v.txt && git add v.txt && git commit -q -m theirs")
    victim_git = sandbox.git("rev-parse", "--absolute-git-dir", cwd=Path(sandbox.agent("victim")["worktree"]))
    go, done = _waiting(sandbox, tmp_path, "rogue",
                        f"while [ ! -e {victim_done} ]; do sleep 0.1; done; own=$(git rev-parse --absolute-git-dir) "
                        f"&& echo 'gitdir: {victim_git}' > .git && "
                        "GIT_DIR=$own GIT_WORK_TREE=. git reset -q --hard agent/victim/work")
    _while_the_engine_is_down(sandbox, go, done, victim_go)  # the victim commits while it is down too
    theirs = sandbox.git("rev-parse", "agent/victim/work")
    assert sandbox.git("rev-parse", "agent/rogue/work") == theirs
    found = wait_until(lambda: _tamper(sandbox, "rogue"), 30, message="the tamper alert")
    assert [(e["ref"], e["new"]) for e in found] == [("refs/heads/agent/rogue/work", theirs)]
    assert _tamper(sandbox, "victim") == []


def _meta(box: Sandbox, key: str) -> dict[str, Any]:
    """A record the engine keeps in the store's meta (read only)."""
    db = sqlite3.connect(f"file:{box.paths.db_path}?mode=ro", uri=True, timeout=30)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    finally:
        db.close()
    return dict(json.loads(row[0])) if row else {}


def _base_tip(box: Sandbox, branch: str) -> str | None:
    """The tip of `branch` the engine last accepted."""
    return _meta(box, "base_tips").get(branch)


def test_the_human_s_pull_and_fetch_into_the_base_branch_are_never_tamper(sandbox: Sandbox, tmp_path: Path) -> None:
    _configure(sandbox)
    remote, other = tmp_path / "remote.git", tmp_path / "other"
    subprocess.run(["git", "clone", "-q", "--bare", str(sandbox.root), str(remote)], env=sandbox.env, check=True)
    subprocess.run(["git", "clone", "-q", str(remote), str(other)], env=sandbox.env, check=True)
    sandbox.git("remote", "add", "origin", str(remote))
    sandbox.git("fetch", "-q", "origin")
    sandbox.sv("start", "worker")
    sandbox.wait_state("worker", "idle", "working")
    wait_until(lambda: _base_tip(sandbox, "main") == sandbox.git("rev-parse", "main"), 30,
               message="main's tip first seen")

    def upstream(message: str) -> str:
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", message], cwd=other, env=sandbox.env,
                       check=True)
        subprocess.run(["git", "push", "-q", "origin", "main"], cwd=other, env=sandbox.env, check=True)
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=other, env=sandbox.env, check=True,
                              capture_output=True, text=True).stdout.strip()

    pulled = upstream("pulled")
    sandbox.git("pull", "-q", "--ff-only", "origin", "main")  # main checked out in the main worktree
    wait_until(lambda: _base_tip(sandbox, "main") == pulled, 30, message="the pull judged")
    fetched = upstream("fetched")
    sandbox.git("switch", "-q", "-c", "side")  # main is checked out nowhere now
    sandbox.git("fetch", "-q", "origin", "main:main")
    assert sandbox.git("rev-parse", "main") == fetched
    wait_until(lambda: _base_tip(sandbox, "main") == fetched, 30, message="the fetch judged")
    assert [e for e in events(sandbox, "worker") if e["kind"] == "tamper" or e.get("trigger") == "tamper"] == []
    assert _meta(sandbox, "base_tamper") == {}
