"""Helpers, contracts and boundaries end to end: real engine, real tmux, real git worktrees.

Agents act from inside their panes the way a real CLI's shell tool would: a prompt starting with `!` makes
the demo agent run it as a shell command in its pane (Claude Code's shell mode), so `supervisor helper`,
`supervisor msg` and `git commit` run as that agent, with its environment and process ancestry."""

from __future__ import annotations

import itertools
import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PYTHON, Sandbox, wait_until

SV = f"{shlex.quote(PYTHON)} -m supervisor"

CONTRACT = """\
# What This Session Can Do
- Modify: src/**, docs/**
- Don't touch: src/vendor/**
- Can spawn helpers: yes
- Max helpers: 2

# Helper Permissions
- refactor-agent: src/**
- test-agent: src/tests/**

# What We're Building
- The auth module is refactored
"""


def contract_file(sandbox: Sandbox, text: str = CONTRACT, name: str = "contract.md") -> Path:
    path = sandbox.root.parent / name
    path.write_text(text)
    return path


_runs = itertools.count()


def in_pane(sandbox: Sandbox, agent: str, command: str) -> None:
    """Have the agent run `command` in its pane, and wait until the command has finished."""
    marker = f"ran-{next(_runs)}-"
    sandbox.sv("send", agent, f"!{command}; echo {marker}'end'")  # the typed text never reads `{marker}end`
    wait_until(lambda: f"{marker}end" in transcript(sandbox, agent), 60, message=f"{agent} ran {command!r}")


def guard_refuses(sandbox: Sandbox, agent: str, command: str) -> str:
    """Have the agent run a committing `command`; its transcript once the guard's refusal shows in it."""
    in_pane(sandbox, agent, command)
    wait_until(lambda: "commit refused" in transcript(sandbox, agent), message=f"the guard's refusal in {agent}")
    return transcript(sandbox, agent)


def events(sandbox: Sandbox, agent: str, kind: str | None = None) -> list[dict[str, Any]]:
    found = json.loads(sandbox.sv("show", agent, "--json").stdout)["events"]
    return [e for e in found if kind is None or e["kind"] == kind]


def transcript(sandbox: Sandbox, agent: str) -> str:
    """What `supervisor log` shows: the transcript, then what is on the agent's screen now."""
    done = sandbox.sv("log", agent, check=False)
    return done.stdout if done.returncode == 0 else ""


def start_session(sandbox: Sandbox, name: str = "auth", contract: str = CONTRACT) -> dict[str, Any]:
    sandbox.sv("start", name, "--contract", str(contract_file(sandbox, contract, f"{name}.md")))
    return sandbox.wait_state(name, "idle")


def test_three_level_tree_from_panes_with_limits(sandbox: Sandbox) -> None:
    noted = f"Auth refactor: read docs/auth.md first.\n\n{CONTRACT}Keep the public API as it is.\n"
    auth = start_session(sandbox, contract=noted)
    session_md = (Path(auth["worktree"]) / "SESSION.md").read_text()
    assert "- Modify: src/**, docs/**" in session_md and "- refactor-agent: src/**" in session_md
    # The user's notes reach the agent, where they wrote them.
    assert "\nAuth refactor: read docs/auth.md first.\n\n# What This Session Can Do\n" in session_md
    assert session_md.endswith("- The auth module is refactored\nKeep the public API as it is.\n")

    in_pane(sandbox, "auth", f"{SV} helper lib --role refactor-agent --paths 'src/lib/**' --task 'tidy src/lib'")
    lib = sandbox.wait_state("auth.lib", "idle", "working")
    assert lib["parent"] == "auth" and lib["level"] == 2 and lib["role"] == "refactor-agent"
    assert lib["branch"] == "agent/auth.lib/work"
    assert Path(lib["worktree"]) == Path(auth["worktree"]) / ".sub-agents" / "lib"
    lib_md = (Path(lib["worktree"]) / "SESSION.md").read_text()
    assert "- Modify: src/lib/**" in lib_md and "- Don't touch: src/vendor/**" in lib_md
    assert "supervisor report --waiting-for" in lib_md and "supervisor report --waiting-for" in session_md
    # Beside its parent, in the session's tmux window.
    panes = sandbox.tmux("list-panes", "-a", "-F", "#{pane_id} #{session_name} #{window_id}").stdout.split("\n")
    where = {line.split()[0]: line.split()[1:] for line in panes if line}
    assert where[lib["pane"]] == where[auth["pane"]]
    # Its branch forks from the parent's.
    assert sandbox.git("merge-base", "agent/auth/work", "agent/auth.lib/work") == \
        sandbox.git("rev-parse", "agent/auth/work")

    in_pane(sandbox, "auth.lib", f"{SV} helper t --role test-agent --task 'cover src/lib'")
    sub = sandbox.wait_state("auth.lib.t", "idle", "working")
    assert sub["level"] == 3 and sub["parent"] == "auth.lib"
    assert Path(sub["worktree"]) == Path(lib["worktree"]) / ".sub-agents" / "t"

    # Level 4 is refused, and says why, in the pane that asked.
    in_pane(sandbox, "auth.lib.t", f"{SV} helper deeper --role test-agent")
    wait_until(lambda: "level 4" in transcript(sandbox, "auth.lib.t"), message="the level-4 refusal")
    # An agent cannot start helpers under another agent.
    in_pane(sandbox, "auth.lib", f"{SV} helper other --role test-agent --parent auth")
    wait_until(lambda: "only under itself" in transcript(sandbox, "auth.lib"), message="the parent refusal")
    assert set(sandbox.ls()) == {"auth", "auth.lib", "auth.lib.t"}

    # Max helpers: 2 (auth.lib and one more), from the human's side with --parent.
    sandbox.sv("helper", "second", "--role", "test-agent", "--parent", "auth")
    third = sandbox.sv("helper", "third", "--role", "test-agent", "--parent", "auth", check=False)
    assert third.returncode == 1 and "Max helpers" in third.stderr, third.stderr
    not_listed = sandbox.sv("helper", "x", "--role", "docs-agent", "--parent", "auth", check=False)
    assert not_listed.returncode == 2 and "not listed" in not_listed.stderr
    wider = sandbox.sv("helper", "x", "--role", "test-agent", "--parent", "auth", "--paths", "docs/**", check=False)
    assert wider.returncode == 2 and "widen" in wider.stderr

    # status.yaml in each parent's worktree.
    def status(worktree: str) -> dict[str, Any]:
        path = Path(worktree) / ".sub-agents" / "status.yaml"
        return dict(yaml.safe_load(path.read_text())["helpers"]) if path.exists() else {}

    wait_until(lambda: set(status(auth["worktree"])) == {"auth.lib", "auth.second"}, message="auth's status.yaml")
    assert status(auth["worktree"])["auth.lib"]["role"] == "refactor-agent"
    wait_until(lambda: "auth.lib.t" in status(lib["worktree"]), message="auth.lib's status.yaml")

    # Stopping the parent stops its whole tree.
    pids = [sandbox.ls()[name]["pid"] for name in ("auth", "auth.lib", "auth.lib.t", "auth.second")]
    sandbox.sv("stop", "auth")
    agents = sandbox.ls()
    assert {agents[n]["state"] for n in agents} == {"stopped"}
    assert "its parent auth was stopped" in agents["auth.lib.t"]["reason"]
    assert not any(_alive(pid) for pid in pids)
    wait_until(lambda: status(auth["worktree"])["auth.lib"]["state"] == "stopped", message="status after stop")

    # rm removes the tree: worktrees and branches.
    sandbox.sv("rm", "auth", "--force")
    assert sandbox.ls() == {}
    assert not sandbox.git("branch", "--list", "agent/*")


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.both_isolations
def test_guard_audit_and_merge(sandbox: Sandbox) -> None:
    secret = sandbox.root / "src" / "vendor" / "lib.py"
    secret.parent.mkdir(parents=True)
    secret.write_text("VENDORED = 1\n")
    sandbox.git("add", "-A")
    sandbox.git("commit", "-q", "-m", "vendor a library")
    auth = start_session(sandbox)
    worktree = Path(auth["worktree"])
    assert sandbox.agent("auth")["isolation"] == sandbox.isolation  # (marked: run sandboxed and without)

    # The guard rejects a commit outside the contract, naming the path and the contract line.
    log = guard_refuses(sandbox, "auth", "echo x > README.md && git add README.md && "
                                         "git commit -q -m 'edit the readme'")
    assert "README.md" in log and "Modify: src/**, docs/**" in log
    assert sandbox.git("rev-parse", "agent/auth/work") == auth["base"]

    # The same commit with --no-verify: the audit catches it, and merge refuses.
    in_pane(sandbox, "auth", "git commit -q --no-verify -m 'edit the readme'")
    bad = sandbox.git("rev-parse", "agent/auth/work")
    assert bad != auth["base"]
    found = wait_until(lambda: events(sandbox, "auth", "boundary"), message="a boundary event")
    assert sandbox.ls()["auth"]["boundary_violations"] == 1
    assert found[0]["commit"] == bad and any("README.md" in p for p in found[0]["paths"])
    trigger = [e for e in events(sandbox, "auth", "trigger") if e["trigger"] == "boundary"]
    assert trigger and "README.md" in trigger[0]["summary"]
    refused = sandbox.sv("merge", "auth", check=False)
    assert refused.returncode == 1
    assert bad[:10] in refused.stderr and "README.md" in refused.stderr

    # A rename out of a forbidden folder is caught on its source side.
    in_pane(sandbox, "auth", "git reset -q --hard HEAD~1 && git mv src/vendor/lib.py src/lib.py && "
                             "git commit -q --no-verify -m 'move vendored code'")
    moved = sandbox.git("rev-parse", "agent/auth/work")
    wait_until(lambda: any(e["commit"] == moved for e in events(sandbox, "auth", "boundary")),
               message="the rename's boundary event")
    rename = next(e for e in events(sandbox, "auth", "boundary") if e["commit"] == moved)
    assert any("src/vendor/lib.py" in p for p in rename["paths"])

    # Clean work (a path with spaces and non-ASCII characters) merges into main without touching the
    # user's uncommitted change there.
    in_pane(sandbox, "auth", "git reset -q --hard HEAD~1 && mkdir -p 'src/dossier é' && "
                             "echo bonjour > 'src/dossier é/ça va.txt' && git add -A && git commit -q -m 'add ça va'")
    assert "commit refused" not in transcript(sandbox, "auth").split("add ça va")[-1]
    # With the offending commits gone from its branch, its record is clean again.
    wait_until(lambda: sandbox.ls()["auth"]["boundary_violations"] == 0, message="violations cleared")
    (sandbox.root / "README.md").write_text("# my local edit\n")
    merged = sandbox.sv("merge", "auth")
    assert "merged 1 commit(s) into main" in merged.stdout
    assert (sandbox.root / "src" / "dossier é" / "ça va.txt").read_text() == "bonjour\n"
    assert (sandbox.root / "README.md").read_text() == "# my local edit\n"
    assert sandbox.git("status", "--porcelain") == "M README.md"
    assert sandbox.git("rev-parse", "main") == sandbox.git("rev-parse", "agent/auth/work")
    assert worktree.is_dir()



def test_a_merge_that_reverts_the_target_is_caught_and_refused(sandbox: Sandbox) -> None:
    """A plumbing merge of an older main that takes README.md (outside the contract) back to its old text:
    no path differs from every parent, yet fast-forwarding main to it would undo main's change."""
    (sandbox.root / "README.md").write_text("# v2\n")
    sandbox.git("commit", "-q", "-am", "main changes the readme")
    worktree = Path(start_session(sandbox)["worktree"])
    (worktree / "src" / "app.py").write_text("print('agent')\n")
    sandbox.git("commit", "-q", "-am", "agent work", cwd=worktree)
    sandbox.git("checkout", "-q", "main~1", "--", "README.md", cwd=worktree)
    tree = sandbox.git("write-tree", cwd=worktree)
    sneaky = sandbox.git("commit-tree", tree, "-p", "HEAD", "-p", "main~1", "-m", "Merge an older main", cwd=worktree)
    sandbox.git("update-ref", "refs/heads/agent/auth/work", sneaky, cwd=worktree)

    found = wait_until(lambda: [e for e in events(sandbox, "auth", "boundary") if e["commit"] == sneaky],
                       message="the revert merge's boundary event")
    assert any("README.md" in p for p in found[0]["paths"])
    main = sandbox.git("rev-parse", "main")
    refused = sandbox.sv("merge", "auth", check=False)
    assert refused.returncode == 1, refused.stdout
    assert f"{sneaky[:10]} Merge an older main" in refused.stderr
    assert "since its merge base with main, its branch changes paths outside its contract" in refused.stderr
    assert "M README.md" in refused.stderr.split("since its merge base")[1]
    assert sandbox.git("rev-parse", "main") == main
    assert (sandbox.root / "README.md").read_text() == "# v2\n"


def test_a_worktree_off_its_branch_is_reported(sandbox: Sandbox) -> None:
    """Only agent branches are audited: a worktree that leaves its branch is a boundary event at once."""
    worktree = Path(start_session(sandbox)["worktree"])
    head = sandbox.git("rev-parse", "HEAD", cwd=worktree)

    def off_branch(where: str) -> list[dict[str, Any]]:
        return [e for e in events(sandbox, "auth", "boundary") if e.get("off_branch") and e["head"] == where]

    sandbox.git("checkout", "-q", "--detach", cwd=worktree)
    found = wait_until(lambda: off_branch(head), message="the detached HEAD's boundary event")
    assert f"left its branch agent/auth/work (HEAD is detached at {head[:12]})" in found[0]["summary"]
    assert any(e["trigger"] == "boundary" and "left its branch" in e["summary"] and e["active"]
               for e in events(sandbox, "auth", "trigger"))
    sandbox.git("checkout", "-q", "agent/auth/work", cwd=worktree)
    wait_until(lambda: events(sandbox, "auth", "on_branch"), message="back on its branch")
    sandbox.git("checkout", "-q", "-b", "elsewhere", cwd=worktree)
    found = wait_until(lambda: off_branch("refs/heads/elsewhere"), message="another branch's boundary event")
    assert "(HEAD is on elsewhere)" in found[0]["summary"]
    assert len(off_branch(head)) == 1  # once per departure

def test_messages_and_helper_done_reach_the_parent(sandbox: Sandbox) -> None:
    auth = start_session(sandbox)
    sandbox.sv("helper", "t", "--role", "test-agent", "--parent", "auth")
    sandbox.wait_state("auth.t", "idle")
    in_pane(sandbox, "auth.t", f"{SV} msg parent 'the tests are green'")
    folder = Path(auth["worktree"]) / ".sub-agents" / "messages"
    files = wait_until(lambda: list(folder.glob("*.yaml")), message="the message file")
    message = yaml.safe_load(files[0].read_text())
    assert message["from"] == "auth.t" and message["to"] == "auth" and message["text"] == "the tests are green"
    wait_until(lambda: "Message from auth.t" in transcript(sandbox, "auth"), message="the message typed into auth")
    assert "the tests are green" in transcript(sandbox, "auth")

    # A helper's finished turn goes to its parent (alerts.helper_done: parent, the default).
    wait_until(lambda: "Your helper auth.t finished its turn" in transcript(sandbox, "auth"),
               message="the helper's done reaching its parent")

    # Only from a pane, and only within the tree.
    outside = sandbox.sv("msg", "auth", "hello", check=False)
    assert outside.returncode == 2 and "inside an agent's pane" in outside.stderr


def test_bad_contract_is_refused_before_anything_starts(sandbox: Sandbox) -> None:
    bad = contract_file(sandbox, CONTRACT.replace("- Max helpers: 2", "- Max helperz: 2"))
    done = sandbox.sv("start", "auth", "--contract", str(bad), check=False)
    assert done.returncode == 2
    assert f"{bad}:5" in done.stderr and "Max helperz" in done.stderr
    assert not (sandbox.root.parent / "repo-worktrees" / "auth").exists()
    status = subprocess.run([PYTHON, "-m", "supervisor", "engine", "status"], cwd=sandbox.root, env=sandbox.env,
                            capture_output=True, text=True)
    assert status.returncode != 0  # the engine was never started for it


def test_a_helpers_commit_outside_its_paths(sandbox: Sandbox) -> None:
    """The helper's own boundaries, narrower than its parent's: the guard, the audit and merge."""
    start_session(sandbox)
    sandbox.sv("helper", "t", "--role", "test-agent", "--parent", "auth")
    helper = sandbox.wait_state("auth.t", "idle")
    log = guard_refuses(sandbox, "auth.t", "echo changed > src/app.py && "
                                           "git commit -q -am 'fix the app while testing'")
    assert "src/app.py" in log and "Modify: src/tests/**" in log
    assert sandbox.git("rev-parse", "agent/auth.t/work") == helper["base"]

    in_pane(sandbox, "auth.t", "git commit -q --no-verify -am 'fix the app while testing'")
    bad = sandbox.git("rev-parse", "agent/auth.t/work")
    wait_until(lambda: events(sandbox, "auth.t", "boundary"), message="the helper's boundary event")
    refused = sandbox.sv("merge", "auth.t", check=False)
    assert refused.returncode == 1 and bad[:10] in refused.stderr and "src/app.py" in refused.stderr

    # Without that commit, its work merges into its parent's branch and worktree.
    in_pane(sandbox, "auth.t", "git reset -q --hard HEAD~1 && mkdir -p src/tests && echo 'def test(): pass' > "
                               "src/tests/test_app.py && git add -A && git commit -q -m 'test the app'")
    merged = sandbox.sv("merge", "auth.t")
    assert "into agent/auth/work" in merged.stdout
    parent_worktree = Path(sandbox.ls()["auth"]["worktree"])
    assert (parent_worktree / "src" / "tests" / "test_app.py").exists()
    assert sandbox.git("rev-parse", "agent/auth/work") == sandbox.git("rev-parse", "agent/auth.t/work")
    assert sandbox.git("status", "--porcelain", cwd=parent_worktree) == ""



def test_a_helper_restarts_only_within_its_parents_limits(sandbox: Sandbox) -> None:
    config = (sandbox.root / "supervisor.yaml").read_text()  # limits: is no longer the file's last section
    sandbox.write_config(config.replace("limits:\n", "limits:\n  restart: on-failure\n"))
    start_session(sandbox, contract=CONTRACT.replace("- Max helpers: 2", "- Max helpers: 1"))
    sandbox.sv("helper", "a", "--role", "test-agent", "--parent", "auth")
    sandbox.wait_state("auth.a", "idle")
    sandbox.sv("stop", "auth.a")
    sandbox.sv("helper", "b", "--role", "test-agent", "--parent", "auth")  # a's place was free
    refused = sandbox.sv("restart", "auth.a", check=False)
    assert refused.returncode == 1, refused.stdout
    assert "auth.a cannot be restarted: auth already has 1 live helper(s) (auth.b)" in refused.stderr
    assert "Max helpers" in refused.stderr and sandbox.state("auth.a") == "stopped"
    sandbox.sv("stop", "auth.b")
    sandbox.sv("restart", "auth.a")
    sandbox.wait_state("auth.a", "idle")

    # The restart policy does not bring a helper back under a parent that has ended.
    sandbox.sv("send", "auth", "/exit")  # exit 0: on-failure leaves it exited
    sandbox.wait_state("auth", "exited")
    sandbox.sv("send", "auth.a", "!kill $PPID")  # the agent dies of SIGTERM: a failure, due for a restart
    refusal = wait_until(lambda: events(sandbox, "auth.a", "not_restarted"), message="the refused restart")
    assert refusal[0]["why"] == "its parent auth is exited"
    helper = sandbox.ls()["auth.a"]
    assert helper["state"] == "exited" and "not restarted: its parent auth is exited" in helper["reason"]
    assert any(e["trigger"] == "exited" for e in events(sandbox, "auth.a", "trigger"))
    refused = sandbox.sv("restart", "auth.a", check=False)
    assert refused.returncode == 1 and "its parent auth is exited" in refused.stderr
    assert "`supervisor restart auth` first" in refused.stderr


def test_status_yaml_empties_when_the_last_helper_goes(sandbox: Sandbox) -> None:
    auth = start_session(sandbox)
    path = Path(auth["worktree"]) / ".sub-agents" / "status.yaml"

    def helpers() -> dict[str, Any] | None:
        return dict(yaml.safe_load(path.read_text())["helpers"]) if path.exists() else None

    sandbox.sv("helper", "t", "--role", "test-agent", "--parent", "auth")
    wait_until(lambda: "auth.t" in (helpers() or {}), message="auth.t in status.yaml")
    sandbox.sv("rm", "auth.t", "--force")
    wait_until(lambda: helpers() == {}, message="an empty status.yaml")

def test_parent_timeout_kills_its_helpers(sandbox: Sandbox) -> None:
    start_session(sandbox, contract=CONTRACT.replace("- Max helpers: 2", "- Max helpers: 2\n- Timeout: 6s"))
    sandbox.sv("helper", "t", "--role", "test-agent", "--parent", "auth")
    # Launched once the command returns; it may still be starting when the parent's 6 s run out.
    pid = sandbox.ls()["auth.t"]["pid"]
    assert isinstance(pid, int)
    agents = wait_until(lambda: (a := sandbox.ls()) and a["auth"]["state"] == "killed" and a, 30,
                        message="the session's timeout")
    assert agents["auth.t"]["state"] == "killed"
    assert agents["auth.t"]["reason"] == "its parent auth timed out"
    assert agents["auth"]["reason"].startswith("timed out after")
    assert not _alive(pid)


def test_a_helper_started_while_its_parent_stops_does_not_outlive_it(sandbox: Sandbox) -> None:
    # Without a sandbox: in one, what outlasts the SIGTERM ends with the agent's own process (its PID namespace
    # goes), so nothing holds the parent live through the stop's grace period for a helper to start in.
    config = (sandbox.root / "supervisor.yaml").read_text()  # limits: is no longer the file's last section
    sandbox.write_config(config.replace("limits:\n", "limits:\n  stop_grace: 60s\n") + "isolation: none\n")
    start_session(sandbox)
    sandbox.sv("helper", "early", "--role", "test-agent", "--parent", "auth")
    sandbox.sv("stop", "auth.early")
    termed, release = sandbox.root.parent / "termed", sandbox.root.parent / "release"
    # A process of auth's that outlasts SIGTERM (and the hangup when its pane closes) until released:
    # auth stays live through the stop's grace period until then.
    in_pane(sandbox, "auth", f"(trap 'touch {termed}' TERM; trap '' HUP; while [ ! -e {release} ]; do sleep 0.1; "
                             "done) >/dev/null 2>&1 & true")
    stopping = subprocess.Popen([PYTHON, "-m", "supervisor", "stop", "auth"], cwd=sandbox.root, env=sandbox.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(termed.exists, message="the stop's SIGTERM")
        # auth is still live: a new helper is let in, and a stopped one may start again.
        sandbox.sv("helper", "late", "--role", "test-agent", "--parent", "auth")
        sandbox.sv("restart", "auth.early")
        pids = [sandbox.ls()[name]["pid"] for name in ("auth.late", "auth.early")]
    finally:
        release.touch()
        _, err = stopping.communicate(timeout=60)
    assert stopping.returncode == 0, err
    agents = sandbox.ls()
    assert agents["auth"]["state"] == "stopped"
    for name in ("auth.late", "auth.early"):
        assert agents[name]["state"] == "stopped", agents[name]
        assert agents[name]["reason"] == "its parent auth was stopped"
    assert not any(_alive(pid) for pid in pids)


def test_helpers_get_a_window_of_their_own_when_the_parents_is_full(sandbox: Sandbox) -> None:
    auth = start_session(sandbox, contract=CONTRACT.replace("- Max helpers: 2", "- Max helpers: 5"))
    for name in ("a", "b", "c", "d"):
        sandbox.sv("helper", name, "--role", "test-agent", "--parent", "auth", "--no-wait")
    agents = sandbox.ls()
    listing = sandbox.tmux("list-panes", "-s", "-t", "=auth", "-F", "#{pane_id} #{window_id} #{pane_width}").stdout
    window = {line.split()[0]: line.split()[1] for line in listing.splitlines()}
    width = {line.split()[0]: int(line.split()[2]) for line in listing.splitlines()}
    assert set(window) == {agents[n]["pane"] for n in ("auth", "auth.a", "auth.b", "auth.c", "auth.d")}
    first = window[auth["pane"]]
    beside = [n for n in ("auth.a", "auth.b", "auth.c", "auth.d") if window[agents[n]["pane"]] == first]
    elsewhere = [n for n in ("auth.a", "auth.b", "auth.c", "auth.d") if window[agents[n]["pane"]] != first]
    assert beside and elsewhere, listing
    assert all(width[p] >= 40 for p, w in window.items() if w == first)
