"""Git-level attacks from inside an agent's pane: the agent's commands run in its own shell (the demo agent's
`!COMMAND`), then the human merges it. The engine's own git must run none of what the agent wrote into the
shared repository (filter drivers, merge drivers, hooks, fsmonitor)."""

from __future__ import annotations

import shlex
from pathlib import Path

from supervisor.git import environment
from tests.conftest import Sandbox, wait_until
from tests.test_helpers import events, in_pane

COMMON = "$(git rev-parse --git-common-dir)"  # the shared .git folder, as seen from the agent's worktree


def _start(sandbox: Sandbox, name: str = "evil") -> Path:
    """Start agent `name` without a sandbox: in one, the shared config, hooks and other refs are out of its
    reach (tests/test_attacks_sandbox.py); what holds here is the engine's own."""
    config = sandbox.root / "supervisor.yaml"
    if "isolation:" not in config.read_text():
        with config.open("a") as file:
            file.write("isolation: none\n")
    sandbox.sv("start", name, "--task", "work")
    return Path(sandbox.wait_state(name, "idle", "working")["worktree"])


def test_a_filter_driver_the_agent_configured_is_not_run_by_merge(sandbox: Sandbox, tmp_path: Path) -> None:
    marker = tmp_path / "filter-ran"
    ran = shlex.quote(f"touch {marker}; cat")
    worktree = _start(sandbox)
    in_pane(sandbox, "evil", f"git config -f {COMMON}/config filter.evil.smudge {ran} && "
                             f"git config -f {COMMON}/config filter.evil.clean {ran} && "
                             f"echo '* filter=evil' >> {COMMON}/info/attributes && "
                             "echo work > work.txt && git add work.txt && git commit -q -m work")
    marker.unlink(missing_ok=True)  # the agent's own commit ran its own filter: that is its business
    assert (worktree / "work.txt").exists()

    merged = sandbox.sv("merge", "evil")
    assert "merged 1 commit(s) into main" in merged.stdout
    assert (sandbox.root / "work.txt").read_text() == "work\n"  # checked out in the main worktree, unfiltered
    assert not marker.exists(), "the engine's merge ran the agent's filter driver"


def test_hooks_the_agent_wrote_into_the_shared_hooks_folder_are_not_run_by_merge(sandbox: Sandbox,
                                                                                  tmp_path: Path) -> None:
    _start(sandbox)
    hooks = ("post-merge", "reference-transaction", "post-checkout", "post-index-change")
    script = "; ".join(
        f"printf '#!/bin/sh\\ntouch {tmp_path}/{hook}-ran\\n' > {COMMON}/hooks/{hook} && chmod +x {COMMON}/hooks/{hook}"
        for hook in hooks)
    in_pane(sandbox, "evil", f"{script}; echo work > work.txt && git add work.txt && git commit -q -m work")
    for hook in hooks:
        (tmp_path / f"{hook}-ran").unlink(missing_ok=True)  # what the agent's own commit ran

    merged = sandbox.sv("merge", "evil")
    assert "merged 1 commit(s) into main" in merged.stdout
    assert (sandbox.root / "work.txt").read_text() == "work\n"
    ran = [hook for hook in hooks if (tmp_path / f"{hook}-ran").exists()]
    assert ran == [], f"the engine's merge ran the agent's hooks: {ran}"


def test_config_the_agent_wrote_is_overridden_and_the_listing_is_cached(tmp_path: Path) -> None:
    import subprocess

    root = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    config = root / ".git" / "config"
    included = tmp_path / "more.cfg"
    included.write_text("")
    with config.open("a") as out:
        out.write(f'[filter "a"]\n\tsmudge = evil\n[merge "m"]\n\tdriver = evil\n[include]\n\tpath = {included}\n')
    found = environment.overrides(root)
    assert "filter.a.smudge=" in found and "filter.a.required=false" in found and "merge.m.driver=false" in found
    assert f"core.hooksPath={Path('/dev/null')}" in found and "core.fsmonitor=false" in found
    assert environment.overrides(root) == found  # nothing changed: the same (from the cache)
    included.write_text('[filter "b"]\n\tprocess = evil\n')  # a file named by an include, empty before
    assert "filter.b.process=" in environment.overrides(root)


def _tamper_triggers(sandbox: Sandbox, agent: str) -> list[dict[str, object]]:
    return [e for e in events(sandbox, agent, "trigger") if e.get("trigger") == "tamper"]


def test_update_ref_of_another_agent_s_branch_is_tamper_and_merge_refuses(sandbox: Sandbox) -> None:
    _start(sandbox, "victim")
    _start(sandbox)
    in_pane(sandbox, "victim", "echo mine > mine.txt && git add mine.txt && git commit -q -m mine")
    in_pane(sandbox, "evil", "mkdir -p secret && echo s > secret/key && git add secret && git commit -q -m s && "
                             "git update-ref refs/heads/agent/victim/work HEAD")
    sneaky = sandbox.git("rev-parse", "agent/evil/work")
    assert sandbox.git("rev-parse", "agent/victim/work") == sneaky
    found = wait_until(lambda: _tamper_triggers(sandbox, "victim"), 30, message="the tamper alert")
    assert len(found) == 1 and found[0]["ref"] == "refs/heads/agent/victim/work" and found[0]["new"] == sneaky
    assert not _tamper_triggers(sandbox, "evil")  # its own commit is its own

    before = sandbox.git("rev-parse", "main")
    refused = sandbox.sv("merge", "victim", check=False)
    assert refused.returncode != 0 and "tamper: refs/heads/agent/victim/work moved" in refused.stderr
    assert "--accept-tamper" in refused.stderr
    assert sandbox.git("rev-parse", "main") == before
    assert "merged" in sandbox.sv("merge", "victim", "--accept-tamper").stdout  # a human looked


def test_update_ref_of_main_from_an_agent_pane_is_tamper_but_the_human_s_commits_are_not(
        sandbox: Sandbox) -> None:
    _start(sandbox)
    in_pane(sandbox, "evil", "echo work > work.txt && git add work.txt && git commit -q -m work")
    sandbox.git("commit", "-q", "--allow-empty", "-m", "the human's own commit")  # in the main worktree
    wait_until(lambda: "merged" in sandbox.sv("merge", "evil").stdout, 30, message="a clean merge")
    in_pane(sandbox, "evil", "git update-ref refs/heads/main $(git commit-tree main^{tree} -p main -m sneaky)")
    sneaky = sandbox.git("rev-parse", "main")
    found = wait_until(lambda: _tamper_triggers(sandbox, "evil"), 30, message="the tamper alert")
    assert [(e["ref"], e["new"]) for e in found] == [("refs/heads/main", sneaky)]
    in_pane(sandbox, "evil", "echo more > more.txt && git add more.txt && git commit -q -m more")
    refused = sandbox.sv("merge", "evil", check=False)
    assert refused.returncode != 0 and "tamper: refs/heads/main moved" in refused.stderr
