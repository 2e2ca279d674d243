"""The agent's own code the engine runs for it outside its pane: `worktrees.setup` in a new worktree (a helper's
is forked from its parent's branch, so the parent wrote what it runs) and `merge.check` on what merging its
branch would give. Each runs sandboxed like the agent: the folder it works on read-write, and neither the store,
the runtime folders, other worktrees nor the user's credentials. With `isolation: none` the same probes get
through (the control), so each assertion tells the sandbox's work from what the machine allows anyway."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_AGENT, TEST_FOLDER_WRITABLE, Sandbox, wait_until

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (apt-get install bubblewrap)")

PROBE = r"""probe() { if sh -c "$2" >/dev/null 2>&1; then echo "PROBE $1=yes"; else echo "PROBE $1=no"; fi; }
"""
PROBES = r"""probe store "cat '{state}/state.db'"
probe ssh_key "cat '{home}/.ssh/id_ed25519'"
probe main_worktree "cat '{root}/README.md'"
probe other_worktree "cat '{other}/SESSION.md'"
probe tmux "test -S '{runtime}/tmux.sock'"
probe engine_socket "test -S '{runtime}/engine.sock'"
probe write_main "echo owned > '{root}/OWNED'"
probe write_hooks "echo 'touch /tmp/owned' > '{common}/hooks/post-merge'"
probe write_here "echo mine > wrote-here.txt && test -s wrote-here.txt"
"""
EVERYTHING = {"store", "ssh_key", "main_worktree", "other_worktree", "tmux", "engine_socket", "write_hooks",
              "write_here"}  # and write_main, which lands (if anywhere) in what hides the main worktree: see _traces


def _configure(box: Sandbox, isolation: str, extra: str) -> None:
    box.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\n  stagger: 0s\nlimits:\n  idle_after: 1s\n"
                     f"isolation: {isolation}\n" + TEST_FOLDER_WRITABLE.format(folder=box.root.parent) + extra)
    (box.home / ".ssh").mkdir()
    (box.home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")


def _probes(box: Sandbox, name: str) -> Path:
    """The probes as a file in the test's folder (the agent copies it into its branch)."""
    paths = box.paths
    path = box.root.parent / f"probes-{name}.sh"
    path.write_text(PROBE + PROBES.format(state=paths.state_dir, home=box.home, root=box.root,
                                          other=box.ls()[name]["worktree"],
                                          runtime=box.runtime / paths.runtime_dir.name, common=paths.common_dir))
    return path


def _found(text: str) -> dict[str, str]:
    found = dict(re.findall(r"^PROBE (\w+)=(yes|no)", text, re.MULTILINE))
    assert set(found) == EVERYTHING | {"write_main"}, text
    found.pop("write_main")
    return found


def _traces(box: Sandbox) -> list[str]:
    """What the probes left outside: the files they wrote where they may not."""
    return [str(path) for path in (box.root / "OWNED", box.paths.common_dir / "hooks" / "post-merge") if path.exists()]


@pytest.mark.parametrize("isolation", ["sandbox", "none"])
def test_setup_code_a_parent_committed_runs_in_its_helpers_sandbox(sandbox: Sandbox, isolation: str) -> None:
    """The parent commits a setup script and starts a helper: the helper's worktree (forked from the parent's
    branch) runs it as its `worktrees.setup`, seeing only that worktree."""
    _configure(sandbox, isolation, "worktrees:\n  setup:\n    - \"test ! -f setup.sh || sh setup.sh > probes.txt\"\n")
    sandbox.sv("start", "idler")  # its worktree shows where the sessions' worktrees are
    sandbox.wait_state("idler", "idle", "working")
    probes = _probes(sandbox, "idler")
    helper = f"{sys.executable} -m supervisor helper h --role test-agent --no-wait"
    script = sandbox.root.parent / "parent.yaml"
    script.write_text("start:\n  - {run: \"case $SUPERVISOR_AGENT in *.*) ;; *) "
                      f"cp {probes} setup.sh && git add setup.sh && git commit -qm setup && {helper};; esac\"}}\n"
                      "turns: []\n")
    sandbox.sv("start", "parent", "--command", f"{DEMO_AGENT} --script {script}")
    agent = sandbox.wait_state("parent.h", "idle", "working", "failed", timeout=40)
    assert agent["state"] != "failed", sandbox.agent("parent.h")["reason"]
    found = _found((Path(agent["worktree"]) / "probes.txt").read_text())
    assert (Path(agent["worktree"]) / "wrote-here.txt").read_text() == "mine\n"
    if isolation == "none":
        assert set(found.values()) == {"yes"} and len(_traces(sandbox)) == 2, found
        return
    assert found == {**{probe: "no" for probe in EVERYTHING}, "write_here": "yes"}, found
    assert _traces(sandbox) == []


@pytest.mark.parametrize("isolation", ["sandbox", "none"])
def test_a_merge_check_the_agent_committed_runs_in_its_sandbox(sandbox: Sandbox, isolation: str) -> None:
    """`merge.check` is `sh check.sh`, and each candidate of a best-of-N commits its own check.sh: `compare` runs
    it on the merged result, sandboxed like the candidate; the check still passes."""
    _configure(sandbox, isolation, "merge:\n  check: \"sh check.sh\"\n")
    sandbox.sv("start", "idler")
    sandbox.wait_state("idler", "idle", "working")
    probes = _probes(sandbox, "idler")
    script = sandbox.root.parent / "cand.json"
    script.write_text(json.dumps({"turns": [[{"run": f"cp {probes} check.sh"}, {"commit": "my check"}]]}))
    sandbox.sv("start", "fix", "--best-of", "2", "--task", "fix it", "--command", f"{DEMO_AGENT} --script {script}")
    for name in ("fix-1", "fix-2"):
        wait_until(lambda n=name: sandbox.ls()[n]["state"] == "idle" and  # type: ignore[misc]
                   sandbox.git("rev-list", "--count", f"main..agent/{n}/work") == "1", 30, message=f"{name} committed")
    rows = json.loads(sandbox.sv("compare", "fix", "--json").stdout)["candidates"]
    for row in rows:
        check = row["check"]
        assert check["passed"], check
        found = _found("\n".join(check["output"]))
        if isolation == "none":
            assert set(found.values()) == {"yes"}, found
            continue
        assert found == {**{probe: "no" for probe in EVERYTHING}, "write_here": "yes"}, found
    assert len(_traces(sandbox)) == (2 if isolation == "none" else 0)
    assert "check-" not in sandbox.git("worktree", "list")
