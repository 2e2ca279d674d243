"""An agent's worktree and commits on a host (SPEC §12), against real sshd hosts (tests/sshd.py): its worktree made
from the base commit pushed over the link, SESSION.md and the guard there, its setup run there; its commits come
home into a private ref, where `diff`, the audit and `merge` read them; a `--no-verify` commit outside its contract
is caught at home and its merge refused; `rm` leaves nothing on the host.

Launching an agent on a host belongs to the host's panes (not here yet), so the agent is made through the engine's
own code paths in this process (the launcher's worktree step, the Host's `write_session`, the setup step) and
recorded as stopped; the real engine then runs in its own process, as a user's does."""

from __future__ import annotations

import posixpath
import shlex
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.core.contract import Contract
from supervisor.core.model import State
from supervisor.engine import commits_home
from supervisor.engine.engine import Engine
from supervisor.engine.helpers import with_terms
from supervisor.errors import SupervisorError
from supervisor.git.audit import branch_tips
from supervisor.hosts.commands import STOPPED, TIMED_OUT
from supervisor.hosts.remote.host import RemoteHost
from tests.conftest import Sandbox, wait_until
from tests.sshd import SshHosts

PRIVATE = "refs/supervisor/hosts/box1/heads/agent/far/work"
IDENTITY = ("-c", "user.name=Far Agent", "-c", "user.email=far@example.com")


def configure(sandbox: Sandbox, ssh_hosts: SshHosts, *setup: str) -> str:
    folder = ssh_hosts.fresh_dir("box1")
    lines = "".join(f"    - {shlex.quote(command)}\n" for command in setup)
    sandbox.write_config("agent:\n  profile: generic\n  command: sleep 600\n"
                         + (f"worktrees:\n  setup:\n{lines}" if setup else "")
                         + f"hosts:\n  box1:\n    ssh: box1\n    ssh_config: {ssh_hosts.config}\n    dir: {folder}\n")
    return folder


@pytest.fixture
def engine(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A real Engine object in this process with only its host links running (no watcher, no socket)."""
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    made = Engine(sandbox.paths)
    made.hostlinks.start()
    try:
        yield made
    finally:
        made.hostlinks.stop()
        made.store.close()


def remote(engine: Engine) -> RemoteHost:
    """box1 as the engine sees it (supervisor.yaml read again), once its link is up."""
    engine.reload_config_if_changed()
    wait_until(lambda: engine.hostlinks.link("box1"), timeout=60, interval=0.2, message="box1 up")
    probe = engine.launcher.new_session("probe", None, "sleep 600", "generic", "HEAD", engine.config)
    probe.host = "box1"
    host = engine.host_of(probe)
    assert isinstance(host, RemoteHost)
    return host


def place(engine: Engine, name: str, contract: Contract) -> str:
    """Agent `name` on box1, made as the launcher makes one (worktree, SESSION.md and guard, setup), then
    recorded as stopped; its worktree on the host."""
    agent = engine.launcher.new_session(name, None, "sleep 600", "generic", "HEAD", engine.config)
    agent.host = "box1"
    host = engine.host_of(agent)
    assert isinstance(host, RemoteHost)
    agent.worktree = host.layout().worktree(name)
    with_terms(agent, contract, engine.contracts.seal)
    with engine.agent_lock(name):
        engine.store.add_agent(agent)
        engine.launcher._make_worktree(agent)
        host.write_session(agent, agent.extra["contract"])
        engine.launcher._setup_worktree(agent, engine.config)
        assert agent.state == State.STARTING, agent.reason
        engine.set_state(agent, State.STOPPED, "stopped")  # launched by the host's panes, once they are there
    return agent.worktree


def on_host(ssh_hosts: SshHosts, script: str) -> str:
    done = ssh_hosts.ssh("box1", "sh", "-c", script, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_commits_on_a_host_come_home_are_audited_merged_and_removed(sandbox: Sandbox, ssh_hosts: SshHosts,
                                                                    engine: Engine) -> None:
    configure(sandbox, ssh_hosts, "echo set up there > notes.txt")
    host = remote(engine)
    base = sandbox.git("rev-parse", "HEAD")
    worktree = place(engine, "far", Contract(modify=("src/**",)))
    layout = host.layout()
    engine.hostlinks.stop()
    engine.store.close()

    # The worktree on the host: its branch at the base, SESSION.md, the guard's hook, the setup's work.
    wt = shlex.quote(worktree)
    assert on_host(ssh_hosts, f"git -C {wt} rev-parse HEAD; git -C {wt} symbolic-ref HEAD") == \
        f"{base}\nrefs/heads/agent/far/work"
    assert "src/**" in on_host(ssh_hosts, f"cat {wt}/SESSION.md")
    hooks = on_host(ssh_hosts, f"git -C {wt} config --worktree core.hooksPath")
    assert hooks == posixpath.join(layout.root, "hooks")
    assert "guard" in on_host(ssh_hosts, f"test -x {hooks}/pre-commit && cat {hooks}/pre-commit")
    assert on_host(ssh_hosts, f"cat {wt}/notes.txt") == "set up there"
    assert on_host(ssh_hosts, f"git -C {wt} status --porcelain") == "?? notes.txt"  # SESSION.md is excluded

    sandbox.sv("engine", "start")
    # A commit on the host comes home into the private ref, never into the user's own branches. (Made from a
    # shell of the host user's, not the agent's pane: its guard would find no socket of the agent's there and
    # refuse, as it should; the audit at home judges the commit either way.)
    made = on_host(ssh_hosts, f"cd {wt} && mkdir -p src && echo 'print(1)' > src/app.py && git add src/app.py && "
                              f"git {shlex.join(IDENTITY)} commit -q --no-verify -m 'app' && git rev-parse HEAD")
    wait_until(lambda: _ref(sandbox, PRIVATE) == made, timeout=30, interval=0.2, message="the commit came home")
    assert sandbox.git("branch", "--list", "agent/*", plain=True) == ""
    diff = sandbox.sv("diff", "far").stdout
    assert "+print(1)" in diff and "src/app.py" in diff  # its commit, read at home
    assert "notes.txt" in diff and "+set up there" in diff  # what is uncommitted on the host, asked there
    wait_until(lambda: sandbox.ls()["far"]["ahead"] == 1, timeout=30, message="its commit counted")
    assert not sandbox.ls()["far"]["ready_to_merge"], "notes.txt, uncommitted there, would be left behind"
    on_host(ssh_hosts, f"rm {wt}/notes.txt")
    listed = wait_until(lambda: (row := sandbox.ls()["far"])["ready_to_merge"] and row, timeout=30,
                        message="audited and ready once nothing is uncommitted there")
    assert (listed["host"], listed["ahead"]) == ("box1", 1)

    merged = sandbox.sv("merge", "far").stdout
    assert "far" in merged
    assert sandbox.git("show", "main:src/app.py", plain=True) == "print(1)"  # in the user's repository
    assert sandbox.git("merge-base", "--is-ancestor", made, "main", plain=True) == ""

    # A commit outside its contract, past the guard: caught by the audit at home, its merge refused.
    bad = on_host(ssh_hosts, f"cd {wt} && echo changed >> README.md && git add README.md && "
                             f"git {shlex.join(IDENTITY)} commit -q --no-verify -m 'sneak' && git rev-parse HEAD")
    wait_until(lambda: _ref(sandbox, PRIVATE) == bad, timeout=30, interval=0.2, message="the bad commit came home")
    wait_until(lambda: any(event["kind"] == "boundary" and event.get("commit") == bad
                           for event in sandbox.agent("far")["events"]), timeout=30, message="the audit's finding")
    refused = sandbox.sv("merge", "far", check=False)
    assert refused.returncode == 1
    assert "outside its contract" in refused.stderr and "README.md" in refused.stderr and bad[:10] in refused.stderr
    assert "changed" not in sandbox.git("show", "main:README.md", plain=True)

    # Removed: nothing of it is left on the host, nor its private ref at home.
    sandbox.sv("rm", "--force", "far")
    left = on_host(ssh_hosts, f"ls -A {wt} 2>&1; git --git-dir={shlex.quote(layout.clone)} for-each-ref; "
                              f"ls -A {shlex.quote(layout.state('far'))} 2>&1; true")
    assert "agent/far" not in left and "bases" not in left
    assert left.count("No such file or directory") == 2
    assert _ref(sandbox, PRIVATE) is None


def test_a_worktree_that_cannot_be_made_there_leaves_nothing(sandbox: Sandbox, ssh_hosts: SshHosts,
                                                             engine: Engine) -> None:
    configure(sandbox, ssh_hosts)
    host = remote(engine)
    place(engine, "one", Contract(modify=("**",)))
    clone = shlex.quote(host.layout().clone)
    refs = f"git --git-dir={clone} for-each-ref --format='%(refname)'"
    before = on_host(ssh_hosts, refs)
    assert before.split() == ["refs/heads/agent/one/work", "refs/supervisor/bases/agent/one/work"]

    # Its folder there is taken: said, and the base commit pushed for it is not kept.
    two = engine.launcher.new_session("two", None, "sleep 600", "generic", "HEAD", engine.config)
    two.host, two.worktree = "box1", host.layout().worktree("two")
    on_host(ssh_hosts, f"mkdir -p {shlex.quote(two.worktree)} && echo mine > {shlex.quote(two.worktree)}/keep")
    with pytest.raises(SupervisorError, match=r"cannot make two's worktree on host box1: .*two already exists and "
                                              r"is not empty"):
        host.make_worktree(two, two.base, None)
    assert on_host(ssh_hosts, refs) == before
    assert on_host(ssh_hosts, f"cat {shlex.quote(two.worktree)}/keep") == "mine"  # never touched

    # Its branch exists there already: said before anything is sent.
    again = engine.get("one")
    again.worktree = host.layout().worktree("one-again")
    with pytest.raises(SupervisorError, match="branch agent/one/work already exists there"):
        host.make_worktree(again, again.base, None)
    assert on_host(ssh_hosts, refs) == before
    assert on_host(ssh_hosts, f"ls -A {shlex.quote(again.worktree)} 2>&1 || true").endswith(
        "No such file or directory")


def test_commands_run_there_are_cut_at_their_timeout_or_stop(sandbox: Sandbox, ssh_hosts: SshHosts,
                                                             engine: Engine) -> None:
    configure(sandbox, ssh_hosts)
    host = remote(engine)
    worktree = place(engine, "cmd", Contract(modify=("**",)))
    agent = engine.get("cmd")
    done = host.run_isolated(agent, 'pwd; for i in 1 2 3; do echo "line $i"; done; echo oops >&2; exit 3',
                             worktree, {"SUPERVISOR_AGENT": "cmd", "PATH": "/nowhere"}, keep=3)
    assert (done.exit_code, done.lines, done.cut) == (3, ("line 2", "line 3", "oops"), None)
    done = host.run_isolated(agent, 'echo "$SUPERVISOR_AGENT $PWD"', worktree, {"SUPERVISOR_AGENT": "cmd"})
    assert done.lines == (f"cmd {worktree}",)  # its identity; the host's own PATH (git, sh) kept

    cut = host.run_isolated(agent, "echo started; sleep 6011 & sleep 6011", worktree, {}, timeout=1)
    assert (cut.exit_code, cut.cut, cut.lines) == (None, TIMED_OUT, ("started",))
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    cut = host.run_isolated(agent, "echo stopping; sleep 6012 & sleep 6012", worktree, {}, stop=stop)
    assert (cut.exit_code, cut.cut, cut.lines) == (None, STOPPED, ("stopping",))
    # Nothing of either command survives on the host.
    assert on_host(ssh_hosts, "ps -o args= -u \"$(id -u)\" | grep -c '^sleep 601[12]' || true") == "0"


def test_a_pass_with_nothing_moved_on_the_host_reads_nothing_at_home(sandbox: Sandbox, ssh_hosts: SshHosts,
                                                                     engine: Engine,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Every few seconds the engine asks each host for its branch tips; while none moved, it does not read its
    own refs again (a git process per host per pass, for nothing), and a commit there still comes home."""
    configure(sandbox, ssh_hosts)
    host = remote(engine)
    worktree = place(engine, "far", Contract(modify=("src/**",)))
    reads: list[str] = []

    def counted(root: Path, prefix: str = "refs/heads/agent/") -> dict[str, str]:
        reads.append(prefix)
        return branch_tips(root, prefix)

    monkeypatch.setattr(commits_home, "branch_tips", counted)
    home = commits_home.CommitsHome(engine)
    far = [engine.get("far")]
    home.bring_home("box1", far)  # its branch as made there: its private ref set at home, read once
    assert home.bring_home("box1", far) == [] and home.bring_home("box1", far) == []
    assert len(reads) == 1
    made = on_host(ssh_hosts, f"cd {shlex.quote(worktree)} && echo x > x.txt && git add x.txt && "
                              f"git {shlex.join(IDENTITY)} commit -q --no-verify -m x && git rev-parse HEAD")
    assert home.bring_home("box1", far) == [PRIVATE]
    assert _ref(sandbox, PRIVATE) == made and host.name == "box1"
    assert len(reads) == 2


def test_push_and_pr_of_an_agent_on_a_host_send_the_commits_that_came_home(sandbox: Sandbox, ssh_hosts: SshHosts,
                                                                           engine: Engine, tmp_path: Path) -> None:
    """The user's repository has no branch of an agent on a host: `push` and `pr` take its commits from where the
    engine fetched them home, to its branch's name on the remote."""
    configure(sandbox, ssh_hosts)
    remote(engine)
    worktree = place(engine, "far", Contract(modify=("src/**",)))
    engine.hostlinks.stop()
    engine.store.close()
    sandbox.sv("engine", "start")
    made = on_host(ssh_hosts, f"cd {shlex.quote(worktree)} && mkdir -p src && echo 'print(2)' > src/app.py && "
                              f"git add src/app.py && git {shlex.join(IDENTITY)} commit -q --no-verify -m 'Far app' "
                              "&& git rev-parse HEAD")
    wait_until(lambda: _ref(sandbox, PRIVATE) == made, timeout=30, interval=0.2, message="the commit came home")
    bare = tmp_path / "remote.git"
    sandbox.git("init", "-q", "--bare", str(bare))
    sandbox.git("remote", "add", "origin", str(bare))

    pushed = sandbox.sv("push", "far")
    assert pushed.stdout.strip() == f"far: pushed agent/far/work to origin ({bare})"
    assert sandbox.git("rev-parse", "refs/heads/agent/far/work", cwd=bare) == made
    assert sandbox.git("branch", "--list", "agent/*", plain=True) == ""  # no branch of it made at home

    from supervisor.commands.review import pr_text

    _, body = pr_text(sandbox.agent("far"), sandbox.root)
    assert f"- {made[:7]}" in body and " Far app" in body, body


def _ref(sandbox: Sandbox, ref: str) -> str | None:
    try:
        return sandbox.git("rev-parse", "--verify", "--quiet", ref, plain=True) or None
    except Exception:
        return None
