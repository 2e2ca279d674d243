"""What a hostile agent tries from inside its own pane, and the sandbox stops: each probe runs as a `run:` step of
a real agent in a real pane. The same probes succeed with `isolation: none` (the control below), so each
assertion tells the sandbox's work from what the machine allows anyway."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import DEMO_AGENT, TEST_FOLDER_WRITABLE, Sandbox, wait_until

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (apt-get install bubblewrap)")

PROBE = r"""probe() { if sh -c "$2" >/dev/null 2>&1; then echo "PROBE $1=yes"; else echo "PROBE $1=no"; fi; }
"""
PROBES = r"""
probe store "cat '{state}/state.db'"
probe transcripts "ls '{state}/logs' | grep -q victim"
probe other_worktree "cat '{victim}/SESSION.md'"
probe main_worktree "cat '{root}/README.md'"
probe ssh_key "cat '{home}/.ssh/id_ed25519'"
probe tmux "sh '{tmux_attack}'"
probe victim_env "cat /proc/[0-9]*/environ | tr '\0' '\n' | grep -q SUPERVISOR_AGENT=victim"
probe shared_config "echo '[filter \"x\"]' >> '{common}/config'"
probe shared_hooks "echo 'touch /tmp/owned' > '{common}/hooks/post-merge'"
probe commit "git commit -q --allow-empty --no-verify -m own-work"
probe move_main "git update-ref refs/heads/main HEAD"
probe move_victim "git update-ref refs/heads/agent/victim/work HEAD"
"""


# Typed into the victim's pane through any tmux server the rogue can find: the one its own pane's $TMUX names, the
# engine's (at its path in the runtime folder), tmux's default one. `!`: the demo agent runs the rest as a shell
# command, as Claude Code's shell mode does; what it prints shows the victim ran it.
TYPED = "!echo typed-by-rogue-$((6 * 7))"
TMUX_ATTACK = r"""for server in "${{TMUX%%,*}}" '{runtime}/tmux.sock' "${{TMUX_TMPDIR:-/tmp}}/tmux-$(id -u)/default"; do
  [ -n "$server" ] && tmux -S "$server" send-keys -t '{pane}' '{typed}' Enter && exit 0
done
exit 1
"""


def _probe(box: Sandbox, isolation: str | None) -> dict[str, str]:
    """Start a victim, then a rogue whose start runs every probe; what each probe did (`yes`: it worked)."""
    if isolation is not None:
        _configure(box, isolation)
    (box.home / ".ssh").mkdir()
    (box.home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    box.sv("start", "victim")
    victim = box.wait_state("victim", "idle", "working")
    paths = box.paths
    runtime = box.runtime / paths.runtime_dir.name
    tmux_attack = box.root.parent / "tmux-attack.sh"
    tmux_attack.write_text(TMUX_ATTACK.format(runtime=runtime, pane=victim["pane"], typed=TYPED))
    return _rogue(box, PROBES.format(state=paths.state_dir, victim=victim["worktree"], root=box.root, home=box.home,
                                    runtime=runtime, common=paths.common_dir, tmux_attack=tmux_attack))


def _rogue(box: Sandbox, probes_text: str, name: str = "rogue") -> dict[str, str]:
    """Start agent `name` whose start runs `probes_text` (lines of `probe NAME COMMAND`); what each did."""
    probes = box.root.parent / f"probes-{name}.sh"
    probes.write_text(PROBE + probes_text + "echo PROBES DONE\n")
    script = box.root.parent / f"{name}.yaml"
    script.write_text(f'start:\n  - {{run: "sh {probes}"}}\nturns: []\n')
    box.sv("start", name, "--command", f"{DEMO_AGENT} --script {script}")

    def finished() -> str | None:
        text = box.sv("log", name).stdout
        return text if "PROBES DONE" in text else None

    log = wait_until(finished, timeout=30, message="the probes to finish")
    return dict(re.findall(r"^PROBE (\w+)=(yes|no)", log, re.MULTILINE))


def test_a_sandboxed_agent_sees_and_moves_only_its_own_work(sandbox: Sandbox) -> None:
    main_before = sandbox.git("rev-parse", "main")
    found = _probe(sandbox, None)  # the suite's default: sandboxed
    assert found == {"store": "no", "transcripts": "no", "other_worktree": "no", "main_worktree": "no",
                     "ssh_key": "no", "tmux": "no", "victim_env": "no", "shared_config": "no", "shared_hooks": "no",
                     "commit": "yes", "move_main": "no", "move_victim": "no"}
    assert sandbox.git("rev-parse", "main") == main_before
    assert sandbox.git("rev-parse", "agent/victim/work") == main_before
    victim_saw = sandbox.screen("victim") + sandbox.sv("log", "victim").stdout  # (send-keys returns once typed)
    assert "typed-by-rogue" not in victim_saw
    assert "own-work" in sandbox.git("log", "-1", "--format=%s", sandbox.agent("rogue")["branch"])
    assert "filter" not in (sandbox.paths.common_dir / "config").read_text()


def test_without_the_sandbox_every_probe_gets_through(sandbox: Sandbox) -> None:
    """The control: with `isolation: none` the same commands read, write and move all of it. That includes typing
    into another agent's pane through the tmux server, which without a sandbox nothing stops (README, Security):
    the victim runs what the rogue typed."""
    main_before = sandbox.git("rev-parse", "main")
    found = _probe(sandbox, "none")
    assert set(found.values()) == {"yes"}, found
    assert sandbox.git("rev-parse", "main") != main_before
    wait_until(lambda: "typed-by-rogue-42" in sandbox.sv("log", "victim").stdout, message="the typed command run")


SLEEP = "sleep 987654"


def _configure(box: Sandbox, isolation: str) -> None:
    box.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\nlimits:\n  idle_after: 1s\n"
                     f"isolation: {isolation}\n" + TEST_FOLDER_WRITABLE.format(folder=box.root.parent))


def _escapee_alive() -> list[psutil.Process]:
    alive = []
    for proc in psutil.process_iter(["cmdline"]):
        if " ".join(proc.info["cmdline"] or []) == SLEEP and proc.status() != psutil.STATUS_ZOMBIE:
            alive.append(proc)
    return alive


@pytest.mark.parametrize("isolation", ["sandbox", "none"])
def test_stop_ends_a_process_that_left_the_agents_session_and_identity(sandbox: Sandbox, isolation: str) -> None:
    """`env -u SUPERVISOR_TOKEN setsid -f`: out of the pane's session and process tree, without the agent's token.
    In the sandbox it is still in the agent's PID namespace, which `stop` ends as one; without it, the agent's
    first process is a child subreaper that adopted it (and its cgroup, where the machine allows), so it goes too."""
    _configure(sandbox, isolation)
    script = sandbox.root.parent / "escape.yaml"
    script.write_text(f'start:\n  - {{run: "env -u SUPERVISOR_TOKEN setsid -f {SLEEP} </dev/null >/dev/null 2>&1"}}\n'
                      "turns: []\n")
    sandbox.sv("start", "escaper", "--command", f"{DEMO_AGENT} --script {script}")
    wait_until(_escapee_alive, message="the escaped sleep running")
    sandbox.sv("stop", "escaper")
    try:
        wait_until(lambda: not _escapee_alive(), timeout=10, message=f"the escaped sleep gone ({isolation})")
    finally:
        for proc in _escapee_alive():
            proc.kill()


def test_sandbox_refused_when_bubblewrap_cannot_run(sandbox: Sandbox) -> None:
    """Asked for a sandbox on a machine without a working bubblewrap: the agent is not started, and the reason
    says what to install, never running it unsandboxed."""
    fake = sandbox.root.parent / "nobwrap"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    (fake / "bwrap").chmod(0o755)
    sandbox.env["PATH"] = f"{fake}:{sandbox.env['PATH']}"
    _configure(sandbox, "sandbox")
    done = sandbox.sv("start", "boxed", check=False)
    assert done.returncode != 0
    assert "cannot create namespaces" in done.stderr and "isolation: none" in done.stderr
    assert sandbox.ls()["boxed"]["state"] == "failed"


@contextlib.contextmanager
def _listening(*paths: Path) -> Iterator[None]:
    """Unix sockets listening at `paths` (a user bus, an ssh agent, another repository's tmux)."""
    opened = []
    try:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(str(path))
            server.listen(8)
            opened.append(server)
        yield
    finally:
        for server in opened:
            server.close()


CONNECT = "{python} -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' {path}"


@pytest.mark.parametrize("isolation", ["sandbox", "none"])
def test_a_sandboxed_agent_reaches_no_socket_of_the_users(sandbox: Sandbox, isolation: str) -> None:
    """Other repositories' engine and tmux sockets beside this one's, the user's bus and agents in
    $XDG_RUNTIME_DIR, tmux's own sockets in $TMUX_TMPDIR: connecting needs no write, so hiding them is the only
    way. Outside /tmp (which the sandbox replaces anyway), as on a desktop where they sit in /run/user/UID."""
    base = Path(tempfile.mkdtemp(prefix="svs-", dir="/var/tmp"))
    try:
        old = sandbox.runtime
        sandbox.runtime = base / "sv"
        sandbox.runtime.mkdir()
        shutil.rmtree(old)
        sandbox.env.update(SUPERVISOR_RUNTIME_DIR=str(sandbox.runtime), XDG_RUNTIME_DIR=str(base / "xdg"),
                           TMUX_TMPDIR=str(base / "tmx"))
        _configure(sandbox, isolation)
        sockets = {"other_repo": sandbox.runtime / "0123456789abcdef" / "engine.sock",
                   "user_bus": base / "xdg" / "bus", "ssh_agent": base / "xdg" / "ssh" / "agent.sock",
                   "tmux_tmpdir": base / "tmx" / "tmux-0" / "default"}
        with _listening(*sockets.values()):
            found = _rogue(sandbox, "".join(
                f"probe {name} \"{CONNECT.format(python=sys.executable, path=path)}\"\n"
                for name, path in sockets.items()))
        expected = "no" if isolation == "sandbox" else "yes"
        assert found == dict.fromkeys(sockets, expected)
        if isolation == "sandbox":
            assert sandbox.state("rogue") != "failed"  # its own runtime folder, in the hidden one, given back
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_worktree_git_file_pointing_elsewhere_is_not_bound(sandbox: Sandbox) -> None:
    """The agent writes `gitdir: /` into its worktree's `.git` file; were the next launch to take its writable git
    folder from there, it would bind `/` read-write (and write the shared git config). The engine binds the folder
    git gave it when it made the worktree. (The next launch's own step is a `write`: with `/` bound again without
    `nodev`, no program could even open /dev/null.)"""
    config = sandbox.paths.common_dir / "config"
    script = sandbox.root.parent / "rogue.yaml"
    then = f"start:\\n  - {{write: {{path: {config}, content: OWNED}}}}\\nturns: []\\n"
    found = _rogue(sandbox, f"""probe planted "printf 'gitdir: /\\n' > .git && printf '{then}' > {script}"\n""")
    assert found == {"planted": "yes"}
    sandbox.sv("restart", "rogue", check=False)
    wait_until(lambda: re.search(r"wrote|Read-only file system", sandbox.sv("log", "rogue").stdout)
               or sandbox.state("rogue") == "failed", message="the relaunch done")
    assert "OWNED" not in config.read_text()


def _parent_probes(body: str) -> str:
    """Probes for a parent that starts helper `h` first; its helpers (which run the same script) do nothing."""
    helper = f"{sys.executable} -m supervisor helper h --role test-agent --no-wait"
    return f'case "$SUPERVISOR_AGENT" in *.*) ;; *)\nprobe helper_started "{helper}"\n{body};; esac\n'


def test_a_parent_sees_of_its_later_helpers_only_their_status_and_messages(sandbox: Sandbox) -> None:
    """`.sub-agents/` is hidden in a parent's sandbox whether its helpers came before or after its launch; it
    reads their `status.yaml` (kept current) and writes `messages/`."""
    wait = "timeout 15 sh -c 'until grep -q rogue.h .sub-agents/status.yaml; do sleep 0.1; done'"
    found = _rogue(sandbox, _parent_probes(
        'probe read_helper "cat .sub-agents/h/SESSION.md"\n'
        'probe write_helper "echo x > .sub-agents/h/OWNED && test -f .sub-agents/h/OWNED"\n'
        f'probe status "{wait}"\n'
        'probe message "echo hi > .sub-agents/messages/note"\n'))
    helper = Path(sandbox.agent("rogue.h")["worktree"])
    assert found == {"helper_started": "yes", "read_helper": "no", "write_helper": "no", "status": "yes",
                     "message": "yes"}, found
    assert not (helper / "OWNED").exists()
    assert (helper.parent / "messages" / "note").read_text() == "hi\n"


@pytest.mark.parametrize("isolation", ["sandbox", "none"])
def test_a_planted_sub_agents_link_is_not_followed(sandbox: Sandbox, isolation: str) -> None:
    """`.sub-agents -> ~/.config`: the engine makes the next helper's worktree (and writes status and messages)
    only inside the parent's worktree, never where a link leads."""
    _configure(sandbox, isolation)
    target = sandbox.home / ".config"
    target.mkdir()
    _rogue(sandbox, _parent_probes(
        "").replace('probe helper_started', f'rm -rf .sub-agents; ln -s {target} .sub-agents\nprobe helper_started'))
    assert list(target.iterdir()) == []


def test_a_sandbox_that_cannot_be_made_fails_the_agent_saying_why(sandbox: Sandbox) -> None:
    """bubblewrap works here, but not for this agent's sandbox (a folder it hides is odd): the agent is `failed`
    with bubblewrap's own line and a hint, not a pane that "exited 1 while starting"."""
    real = shutil.which("bwrap")
    fake = sandbox.root.parent / "oddbwrap"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\ncase \"$*\" in *--tmpfs*) echo \"bwrap: Can't mount tmpfs on /x: "
                                f"No such file or directory\" >&2; exit 1;; esac\nexec {real} \"$@\"\n")
    (fake / "bwrap").chmod(0o755)
    sandbox.env["PATH"] = f"{fake}:{sandbox.env['PATH']}"
    _configure(sandbox, "sandbox")
    sandbox.sv("start", "boxed", check=False)
    agent = sandbox.wait_state("boxed", "failed", "exited")
    assert agent["state"] == "failed"
    reason = sandbox.agent("boxed")["reason"]
    assert "sandbox cannot be made (bwrap: Can't mount tmpfs" in reason and "isolation: none" in reason, reason


def test_a_sandbox_that_cannot_be_made_after_others_started_fails_the_agent_saying_why(sandbox: Sandbox) -> None:
    """The trial before a launch runs once bubblewrap has never made a sandbox here; an agent whose own sandbox
    cannot be made later (its pane ends while starting) is tried then: `failed` with bubblewrap's line and the
    hint, not "exited 1 while starting", and not restarted."""
    real = shutil.which("bwrap")
    fake = sandbox.root.parent / "oddbwrap"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\ncase \"$*\" in *agents/odd*) echo \"bwrap: Can't bind mount /odd: "
                                f"Permission denied\" >&2; exit 1;; esac\nexec {real} \"$@\"\n")
    (fake / "bwrap").chmod(0o755)
    sandbox.env["PATH"] = f"{fake}:{sandbox.env['PATH']}"
    _configure(sandbox, "sandbox")
    sandbox.sv("start", "fine")
    assert sandbox.wait_state("fine", "idle", "working")["isolation"] == "sandbox"
    sandbox.sv("start", "odd", check=False)
    agent = sandbox.wait_state("odd", "failed", "exited")
    assert agent["state"] == "failed", agent
    reason = sandbox.agent("odd")["reason"]
    assert "sandbox cannot be made (bwrap: Can't bind mount /odd" in reason and "isolation: none" in reason, reason
    assert sandbox.agent("odd")["restarts"] == 0


def test_an_agent_that_left_a_dangling_home_link_starts_again(sandbox: Sandbox) -> None:
    """Its HOME is a folder of its own it can write the parent of; a dangling link left in its place must not stop
    its next start."""
    _rogue(sandbox, 'probe home "rm -rf \\"$HOME\\" && ln -s /nonexistent/home \\"$HOME\\""\n')
    sandbox.sv("restart", "rogue")
    wait_until(lambda: sandbox.sv("log", "rogue").stdout.count("PROBES DONE") == 2, message="the second start")
    assert sandbox.agent("rogue")["isolation"] == "sandbox"


def test_isolation_per_session_and_helpers_never_less_isolated(sandbox: Sandbox) -> None:
    """`start --isolation none` runs that session unsandboxed while the others are; a sandboxed parent's helper
    stays sandboxed even once supervisor.yaml says `isolation: none`."""
    _configure(sandbox, "sandbox")
    sandbox.sv("start", "plain", "--isolation", "none")
    sandbox.sv("start", "boxed")
    assert sandbox.wait_state("plain", "idle", "working")["isolation"] == "none"
    assert sandbox.wait_state("boxed", "idle", "working")["isolation"] == "sandbox"
    assert sandbox.agent("plain")["isolation"] == "none"
    _configure(sandbox, "none")
    sandbox.sv("helper", "h", "--role", "test-agent", "--parent", "boxed")
    assert sandbox.wait_state("boxed.h", "idle", "working")["isolation"] == "sandbox"
    sandbox.sv("helper", "h", "--role", "test-agent", "--parent", "plain")
    assert sandbox.wait_state("plain.h", "idle", "working")["isolation"] == "none"
    refused = sandbox.sv("start", "odd", "--isolation", "docker", check=False)
    assert refused.returncode == 2 and "'docker' is not one of sandbox, none" in refused.stderr
