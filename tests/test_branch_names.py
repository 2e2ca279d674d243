"""Agent branches live in a folder of their own (`agent/NAME/work`); branches and records of the old form
(`agent/NAME`) are renamed when the engine starts, a live agent's included."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from supervisor.git.refs import agent_branch, agent_of_branch, agent_ref_folder
from tests.conftest import DEMO_AGENT, Sandbox, wait_until
from tests.test_helpers import SV, events, in_pane, start_session
from tests.test_store_faults import FIXTURES, _stop_engine


def test_an_agent_branch_is_a_folder_of_its_own() -> None:
    assert agent_branch("auth") == "agent/auth/work"
    assert agent_branch("auth.t") == "agent/auth.t/work"
    assert agent_ref_folder("auth") == "refs/heads/agent/auth"
    assert agent_of_branch("agent/auth/work") == "auth"
    assert agent_of_branch("refs/heads/agent/auth.t/work") == "auth.t"
    for other in ("agent/auth", "agent/auth/other", "agent/a/b/work", "main", "agentx/a/work", "agent//work"):
        assert agent_of_branch(other) is None, other


def _old_form(sandbox: Sandbox, db: Path, names: list[str], targets: dict[str, str]) -> None:
    """Make the repository and store look as an earlier version left them: branches `agent/NAME`."""
    for name in names:
        sandbox.git("branch", "-m", f"agent/{name}/work", f"agent/{name}")
    with sqlite3.connect(db) as conn:
        for name in names:
            conn.execute("UPDATE agents SET data = json_set(data, '$.branch', ?) WHERE name = ?",
                         (f"agent/{name}", name))
        for name, target in targets.items():
            conn.execute("UPDATE agents SET data = json_set(data, '$.target', ?) WHERE name = ?", (target, name))


@pytest.mark.timeout(180)
def test_old_branches_packed_or_loose_are_renamed_and_a_live_agent_keeps_working(sandbox: Sandbox) -> None:
    # Agents on branches of the old form were started before the sandbox (which binds an agent's ref folder as
    # it was at launch): the live one here runs as they did.
    sandbox.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\nlimits:\n  idle_after: 1s\n"
                         "isolation: none\n")
    auth = start_session(sandbox)
    in_pane(sandbox, "auth", f"{SV} helper t --role test-agent --task 'add tests'")
    helper = sandbox.wait_state("auth.t", "idle", "working")
    sandbox.sv("start", "done", "--task", "work")
    sandbox.wait_state("done", "idle", "working")
    sandbox.sv("stop", "done")
    db = _stop_engine(sandbox)
    _old_form(sandbox, db, ["auth", "auth.t", "done"], {"auth.t": "agent/auth"})
    sandbox.git("pack-refs", "--all")  # `done` and the helper's branch packed...
    worktree = Path(auth["worktree"])
    sandbox.git("commit", "-q", "--allow-empty", "-m", "before", cwd=worktree)  # ...the parent's loose again
    assert (sandbox.root / ".git/refs/heads/agent/auth").is_file()
    assert sandbox.git("rev-parse", "--abbrev-ref", "HEAD", cwd=worktree) == "agent/auth"

    agents = sandbox.ls()  # starts the engine
    assert {n: (a["branch"], a["target"]) for n, a in agents.items()} == {
        "auth": ("agent/auth/work", "main"), "auth.t": ("agent/auth.t/work", "agent/auth/work"),
        "done": ("agent/done/work", "main")}
    assert agents["auth"]["state"] in ("idle", "working") and agents["auth"]["pane"] == auth["pane"]
    assert sandbox.git("for-each-ref", "--format=%(refname:short)", "refs/heads/agent/").split() == [
        "agent/auth.t/work", "agent/auth/work", "agent/done/work"]
    assert sandbox.git("rev-parse", "--abbrev-ref", "HEAD", cwd=worktree) == "agent/auth/work"
    assert sandbox.git("rev-parse", "--abbrev-ref", "HEAD", cwd=Path(helper["worktree"])) == "agent/auth.t/work"
    assert "before" in sandbox.git("log", "-1", "--format=%s", "agent/auth/work")
    renamed = [e for e in events(sandbox, "auth") if e["kind"] == "branch_renamed"]
    assert renamed and renamed[0]["was"] == {"branch": "agent/auth", "target": "main"}

    # The live agent commits on its renamed branch, and the audit (watching its folder) sees the commit.
    in_pane(sandbox, "auth", "mkdir -p src/vendor && echo x > src/vendor/x.py && git add -A && "
                             "git commit -q --no-verify -m 'outside'")
    assert sandbox.git("log", "-1", "--format=%s", "agent/auth/work") == "outside"
    wait_until(lambda: events(sandbox, "auth", "boundary"), 30, message="the audit of the renamed branch")

    # Nothing is left to do at the next start.
    _stop_engine(sandbox)
    assert sandbox.agent("auth")["branch"] == "agent/auth/work"
    reflog = sandbox.git("reflog", "--format=%gs", "agent/auth/work").splitlines()
    assert [line for line in reflog if "renamed" in line] == [
        "Branch: renamed refs/heads/agent/auth to refs/heads/agent/auth/work",  # by the engine
        "Branch: renamed refs/heads/agent/auth/work to refs/heads/agent/auth"]  # by this test


def test_an_older_store_s_records_follow_even_without_their_branches(sandbox: Sandbox) -> None:
    """A store of an earlier version names `agent/NAME` branches that may be gone: the records follow."""
    db = Path(sandbox.paths.db_path)
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "v1.db", db)
    agents = sandbox.ls()
    assert {n: (a["branch"], a["target"]) for n, a in agents.items()} == {
        "auth": ("agent/auth/work", "main"), "auth.tests": ("agent/auth.tests/work", "main"),
        "billing": ("agent/billing/work", "main")}, json.dumps(agents, indent=1)
