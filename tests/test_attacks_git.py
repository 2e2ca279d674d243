"""Git-level attacks from inside an agent's pane: the agent's commands run in its own shell (the demo agent's
`!COMMAND`), then the human merges it. The engine's own git must run none of what the agent wrote into the
shared repository (filter drivers, merge drivers, hooks, fsmonitor)."""

from __future__ import annotations

import shlex
from pathlib import Path

from supervisor.git import environment
from tests.conftest import Sandbox
from tests.test_helpers import in_pane

COMMON = "$(git rev-parse --git-common-dir)"  # the shared .git folder, as seen from the agent's worktree


def _start(sandbox: Sandbox, name: str = "evil") -> Path:
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
