"""The engine's environment is the user's, whoever starts it, and agents see neither its starter's identity nor
the alert channels' secrets (real engine, real tmux, the real alert channels against local stand-ins)."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import psutil

from supervisor.agents import PROFILES
from supervisor.engine.processes import kill_tree
from supervisor.git.integration import run_check
from tests.alert_servers import TOKEN, SlackServer, SmtpServer
from tests.conftest import PYTHON, Sandbox, process_gone, wait_until
from tests.test_pane_identity import kill_tmux_server
from tests.test_watching import config

# What the engine gives each agent: who it is, and where the engine is.
IDENTITY = {"SUPERVISOR_AGENT", "SUPERVISOR_TOKEN", "SUPERVISOR_PORT", "SUPERVISOR_SOCKET", "SUPERVISOR_STATE_DIR",
            "COMPOSE_PROJECT_NAME"}
SECRETS = {"SLACK_BOT_TOKEN": TOKEN, "SMTP_PASSWORD": "smtp-password-4711", "PAGER_KEY": "pager-key-0815"}


def environ(pid: int) -> dict[str, str]:
    return dict(psutil.Process(pid).environ())


def tmux_server_pid(box: Sandbox) -> int:
    return int(box.tmux("display-message", "-p", "#{pid}").stdout.strip())


def test_an_engine_started_from_an_agents_pane_carries_none_of_its_identity(sandbox: Sandbox) -> None:
    config(sandbox)
    sandbox.sv("start", "x")
    x = sandbox.wait_state("x", "idle")
    state = sandbox.paths.agent_state("x")
    # What a command typed into x's pane runs with: x's own environment (here with a Claude agent's folder too).
    inside = {**environ(x["pid"]), "CLAUDE_CONFIG_DIR": str(state)}
    assert inside["SUPERVISOR_AGENT"] == "x"
    sandbox.sv("engine", "stop")
    refused = subprocess.run([PYTHON, "-m", "supervisor", "ls"], cwd=x["worktree"], env=inside, capture_output=True,
                             text=True, timeout=60, check=False)  # an agent never starts the engine
    assert refused.returncode != 0 and "an agent does not start it" in refused.stderr, refused.stderr
    for dropped in ("SUPERVISOR_SOCKET", "SUPERVISOR_AGENT"):  # nor with either of its variables left
        left = {key: value for key, value in inside.items() if key != dropped}
        refused = subprocess.run([PYTHON, "-m", "supervisor", "engine", "start"], cwd=x["worktree"], env=left,
                                 capture_output=True, text=True, timeout=60, check=False)
        assert refused.returncode != 0 and "an agent does not start it" in refused.stderr, refused.stderr
    for key in ("SUPERVISOR_SOCKET", "SUPERVISOR_AGENT", "COMPOSE_PROJECT_NAME"):  # (without an agent's name
        inside.pop(key)  # beside it, COMPOSE_PROJECT_NAME may be the user's own: it would be kept)
    # Outside the agent's tree, with what else an agent's environment holds, one starts: stripped of it.
    done = subprocess.run([PYTHON, "-m", "supervisor", "ls"], cwd=x["worktree"], env=inside, capture_output=True,
                          text=True, timeout=60, check=False)  # no engine runs: this one starts it
    assert done.returncode == 0, done.stderr
    engine = environ(sandbox.engine_pid())
    assert not IDENTITY & set(engine), IDENTITY & set(engine)
    assert "CLAUDE_CONFIG_DIR" not in engine  # it points into the agents' own folders
    assert engine["SUPERVISOR_RUNTIME_DIR"] == sandbox.env["SUPERVISOR_RUNTIME_DIR"]  # the user's own, kept

    kill_tmux_server(sandbox)
    sandbox.wait_state("x", "exited", timeout=10)
    sandbox.sv("restore", "x")  # the tmux server this engine starts now, and x in it
    x = sandbox.wait_state("x", "idle")
    server = tmux_server_pid(sandbox)
    assert not IDENTITY & set(environ(server))
    # The user opens a window of their own in x's session.
    window = sandbox.tmux("new-window", "-d", "-t", "=x:", "-P", "-F", "#{pane_pid}", "sleep 600")
    user = int(window.stdout.strip())
    assert "SUPERVISOR_AGENT" not in environ(user) and "SUPERVISOR_TOKEN" not in environ(user)
    sandbox.sv("start", "bystander")
    bystander = sandbox.wait_state("bystander", "idle")

    sandbox.sv("stop", "x")  # ends what carries x's socket: x's own processes, nothing else
    assert process_gone(x["pid"])
    assert not process_gone(server) and not process_gone(user) and not process_gone(bystander["pid"])
    assert sandbox.state("bystander") == "idle"
    assert sandbox.tmux("has-session", "-t", "=_engine").returncode == 0


def test_agents_never_see_channel_secrets_and_the_channels_still_work(sandbox: Sandbox, tmp_path: Path) -> None:
    slack = SlackServer().start()
    smtp = SmtpServer(login=("bot", SECRETS["SMTP_PASSWORD"])).start()
    told = tmp_path / "told"
    try:
        sandbox.env.update(SECRETS)
        config(sandbox)
        # ${HOME} is named under alerts: too, and is no secret: agents keep it.
        sandbox.write_config((sandbox.root / "supervisor.yaml").read_text() + textwrap.dedent(f"""\
            worktrees:
              setup:
                - printf '%s %s' "$${{TERM:-none}}" "$${{SLACK_BOT_TOKEN:-none}}" > setup.txt
            alerts:
              tmux: false
              group_wait: 0s
              slack: {{token: "${{SLACK_BOT_TOKEN}}", channel: "#agents", base_url: "{slack.base_url}"}}
              email:
                host: 127.0.0.1
                port: {smtp.port}
                security: plain
                username: bot
                password: "${{SMTP_PASSWORD}}"
                sender: supervisor@example.com
                to: [me@example.com]
              command: "printf '%s %s' \\"$$TERM\\" ${{PAGER_KEY}} > {told}; test -d ${{HOME}}"
            """))
        sandbox.sv("start", "a")
        agent = sandbox.wait_state("a", "idle")
        seen = environ(agent["pid"])
        assert not set(SECRETS) & set(seen), set(SECRETS) & set(seen)
        assert seen["HOME"] == str(sandbox.paths.agent_state("a") / "home")  # no secret: its sandbox's own HOME
        assert not set(SECRETS) & set(environ(tmux_server_pid(sandbox)))
        user = int(sandbox.tmux("new-window", "-d", "-P", "-F", "#{pane_pid}", "sleep 600").stdout.strip())
        assert not set(SECRETS) & set(environ(user))
        # worktrees.setup runs as agents do, without a terminal: TERM=dumb, and no secret.
        assert (Path(agent["worktree"]) / "setup.txt").read_text() == "dumb none"

        sandbox.sv("start", "crash", "--command", "sh -c 'exit 3'")  # an alert, on every channel
        wait_until(lambda: slack.posted(), timeout=20, message="the alert on Slack")
        wait_until(lambda: smtp.received(), timeout=20, message="the alert by email")
        wait_until(lambda: told.is_file() and told.read_text(), timeout=20, message="the alert command")
        assert told.read_text() == f"dumb {SECRETS['PAGER_KEY']}"
    finally:
        slack.stop()
        smtp.stop()


def test_a_start_that_fails_before_detaching_says_why_at_once(sandbox: Sandbox, tmp_path: Path) -> None:
    """A broken installation: the engine cannot even be imported. The command says so with the starter's own
    words, not after waiting out its deadline with "the engine did not start"."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "psutil.py").write_text("raise ImportError('psutil is broken in this installation')\n")
    sandbox.env["PYTHONPATH"] = str(broken)  # the CLI itself never imports psutil; the engine does
    done = sandbox.sv("ls", check=False, timeout=60)
    assert done.returncode == 1
    first = done.stderr.splitlines()[0]
    assert first == "supervisor: error: the engine did not start: ImportError: psutil is broken in this installation"
    assert "engine.out" in done.stderr


def test_an_ending_spares_what_it_is_told_to_spare(tmp_path: Path) -> None:
    """kill_tree by a carried variable: a process in `spare` (the tmux server, its `_engine` pane) stays."""
    env = {**os.environ, "CARRIED": "t0ken"}
    kept = subprocess.Popen(["sleep", "600"], env=env)
    taken = subprocess.Popen(["sleep", "600"], env=env)
    try:
        assert kill_tree(None, 0.0, env_key="CARRIED", env_value="t0ken", spare={kept.pid}) == []
        taken.wait(timeout=10)
        assert kept.poll() is None
    finally:
        kept.kill()
        taken.kill()
        kept.wait()


def test_each_profile_declares_every_variable_it_gives_an_agent(tmp_path: Path) -> None:
    """What an engine started from an agent's pane leaves out of its own environment (`state_vars`) covers
    everything `prepare_state` sets."""
    home, worktree = tmp_path / "home", tmp_path / "wt"
    home.mkdir()
    worktree.mkdir()
    for profile in PROFILES.values():
        state = tmp_path / "state" / profile.name
        state.mkdir(parents=True)
        given = profile.prepare_state(state, home, tmp_path, worktree, "supervisor hook")
        assert set(given) <= profile.state_vars, (profile.name, set(given) - profile.state_vars)


def test_merge_check_runs_without_a_terminal_as_term_dumb(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.git("checkout", "-q", "-b", "agent/x/work")
    (sandbox.root / "new.txt").write_text("new\n")
    sandbox.git("add", "new.txt")
    sandbox.git("commit", "-q", "-m", "new")
    sandbox.git("checkout", "-q", "main")
    seen = tmp_path / "term"
    env = {key: value for key, value in sandbox.env.items() if key != "TERM"}  # as the engine has it
    result = run_check(sandbox.root, "agent/x/work", "main", f"printf %s \"$TERM\" > {seen}", timeout=60,
                       scratch=tmp_path / "checks", env=env)
    assert result is not None and result.passed
    assert seen.read_text() == "dumb"


def test_a_tmux_server_an_earlier_engine_started_with_secrets_hands_none_to_new_agents(sandbox: Sandbox) -> None:
    config(sandbox)
    sandbox.tmux_socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    earlier = {**sandbox.env, **SECRETS, "SUPERVISOR_TOKEN": "an-agents-token"}
    subprocess.run(["tmux", "-S", str(sandbox.tmux_socket), "-f", "/dev/null", "new-session", "-d", "-s", "_engine",
                    "sleep 600"], env=earlier, check=True)
    sandbox.sv("start", "a")
    seen = environ(sandbox.wait_state("a", "idle")["pid"])
    assert "SLACK_BOT_TOKEN" not in seen and "SMTP_PASSWORD" not in seen
    assert "SUPERVISOR_TOKEN" not in seen  # an agent's identity is its socket: no token, from anywhere
