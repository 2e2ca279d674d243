"""Attacks on who a caller is, run from inside a real agent's pane (the demo agent's `run:` steps), without a
sandbox: leaving the process tree and dropping variables to act as the human (stop, approve, merge another
agent), using another agent's socket, and reading another agent's identity from its environment or the store.

What stops them here is the engine (the socket a request comes through, and the caller's process lineage), not
a sandbox: every command below can reach every file of the user."""

from __future__ import annotations

import json
import shlex
import sqlite3
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import DEMO_AGENT, PYTHON, Sandbox, process_gone, wait_until
from tests.test_watching import config, events, fake_claude

SV = f"{shlex.quote(PYTHON)} -m supervisor"
ASKS = """
    start: [{write: {path: src/victim.py, content: "print('victim')\\n"}}, {commit: "the victim's work"}]
    turns:
      - [{ask: "rm -rf build"}, {say: after the question}, {quiet: 600s}]
"""


def detached(command: str, out: Path, env: str = "env -u SUPERVISOR_TOKEN") -> str:
    """`command` run the way an agent leaves its tree (`setsid -f`, without its token), its output and exit
    status kept in `out`."""
    inner = f"{command} > {shlex.quote(str(out))}.part 2>&1; echo \"exit=$?\" >> {shlex.quote(str(out))}.part; " \
            f"mv {shlex.quote(str(out))}.part {shlex.quote(str(out))}"
    return f"{env} setsid -f sh -c {shlex.quote(inner)}"


def attacker(box: Sandbox, name: str, steps: list[str], tmp: Path) -> str:
    """Start agent `name`, whose first turn runs each of `steps` in its pane."""
    script = {"turns": [[*({"run": step} for step in steps), {"quiet": "600s"}]]}  # JSON is YAML
    path = tmp / f"{name}.yaml"
    path.write_text(json.dumps(script))
    box.sv("start", name, "--task", "go", "--command", f"{DEMO_AGENT} --script {path}")
    return name


def result(path: Path) -> str:
    return str(wait_until(lambda: path.read_text() if path.exists() else None, timeout=60,
                          message=f"the attack's outcome in {path.name}"))


@pytest.fixture
def victim(sandbox: Sandbox) -> dict[str, Any]:
    """An agent waiting for the human's approval, with a commit of its own on its branch."""
    config(sandbox)
    with (sandbox.root / "supervisor.yaml").open("a") as file:
        file.write("isolation: none\n")  # what holds here is the engine's, not a sandbox's
    sandbox.sv("start", "victim", "--task", "clean", "--command", fake_claude(sandbox, "v", ASKS))
    return sandbox.wait_state("victim", "waiting")


def assert_untouched(box: Sandbox, victim: dict[str, Any], main_tip: str) -> None:
    assert not process_gone(victim["pid"])
    assert box.state("victim") == "waiting"
    assert "approved" not in box.screen("victim")
    assert box.git("rev-parse", "main") == main_tip


# The human's requests an agent tries once it has left its tree, each as `supervisor ARGS`, with the method the
# engine names in its refusal.
HUMAN_ONLY = {"stop": "stop victim", "approve": "approve victim", "merge": "merge victim",
              "rm": "rm --force victim", "shutdown": "engine stop"}


def test_leaving_the_tree_without_the_token_does_not_make_an_agent_the_human(
        sandbox: Sandbox, victim: dict[str, Any], tmp_path: Path) -> None:
    main_tip = sandbox.git("rev-parse", "main")
    engine = sandbox.engine_pid()
    outs = {verb: tmp_path / f"{verb}.out" for verb in HUMAN_ONLY}
    attacker(sandbox, "mallory", [detached(f"{SV} {args}", outs[verb]) for verb, args in HUMAN_ONLY.items()],
             tmp_path)
    for verb, out in outs.items():
        text = result(out)
        assert "exit=1" in text and f"agent mallory may not call {verb}" in text, text
    assert sandbox.engine_pid() == engine  # `engine stop` refused: the same engine still answers
    assert_untouched(sandbox, victim, main_tip)
    # The human still can, from outside every agent's tree.
    sandbox.sv("approve", "victim")
    wait_until(lambda: "approved (by hook)" in sandbox.screen("victim"), message="the human's approval")


def test_another_agents_socket_gives_no_more_than_its_own(
        sandbox: Sandbox, victim: dict[str, Any], tmp_path: Path) -> None:
    """Without a sandbox the victim's socket file is reachable. Through it a caller is the victim, an agent: no
    human request; and a process of another agent's tree is refused outright (its lineage says who it is)."""
    main_tip = sandbox.git("rev-parse", "main")
    stop, hook = tmp_path / "stop.out", tmp_path / "hook.out"
    # The victim's socket, as its environment names it (what any process of the user can read).
    theirs = f"$(tr '\\0' '\\n' < /proc/{victim['pid']}/environ | sed -n 's/^SUPERVISOR_SOCKET=//p')"
    event = shlex.quote('{"hook_event_name": "UserPromptSubmit", "prompt": "forged"}')
    attacker(sandbox, "mallory", [
        detached(f"{SV} stop victim", stop, env=f"env -u SUPERVISOR_TOKEN SUPERVISOR_SOCKET=\"{theirs}\""),
        # The hook never fails its agent: what it was told goes to stderr of the engine's answer, kept here.
        f"echo {event} | SUPERVISOR_SOCKET=\"{theirs}\" {PYTHON} -c "
        f"{shlex.quote(_HOOK_AS_CLIENT)} > {hook}.part 2>&1; mv {hook}.part {hook}",
    ], tmp_path)
    text = result(stop)  # left its tree, but adopted by mallory's first process: mallory's, not the victim's
    assert "exit=1" in text and "a process of agent mallory may not use the socket of agent victim" in text, text
    told = result(hook)
    assert "a process of agent mallory may not use the socket of agent victim" in told, told
    assert_untouched(sandbox, victim, main_tip)


# What `supervisor hook` sends, with the engine's answer shown (the hook itself says nothing to its agent).
_HOOK_AS_CLIENT = ("import json, os, sys\nfrom supervisor.client import request_at\n"
                   "try:\n    request_at(os.environ['SUPERVISOR_SOCKET'], 'hook', "
                   "{'event': json.loads(sys.stdin.read())}, 10)\nexcept Exception as exc:\n    print(exc)\n")


def test_dropping_the_socket_inside_the_tree_still_acts_as_the_agent(
        sandbox: Sandbox, victim: dict[str, Any], tmp_path: Path) -> None:
    """Without its own socket (or any of its variables) a process of the agent's tree reaches the human's
    socket; its lineage ties it to the agent, and the human's requests are refused with the reason."""
    main_tip = sandbox.git("rev-parse", "main")
    out = tmp_path / "stop.out"
    attacker(sandbox, "mallory", [
        f"env -i PATH=\"$PATH\" HOME=\"$HOME\" SUPERVISOR_RUNTIME_DIR=\"$SUPERVISOR_RUNTIME_DIR\" "
        f"{SV} stop victim > {out}.part 2>&1; echo \"exit=$?\" >> {out}.part; mv {out}.part {out}",
    ], tmp_path)
    text = result(out)
    assert "exit=1" in text and "agent mallory may not call stop" in text and "process tree" in text, text
    assert_untouched(sandbox, victim, main_tip)


def test_leaving_the_tree_and_dropping_the_socket_is_still_the_agent(
        sandbox: Sandbox, victim: dict[str, Any], tmp_path: Path) -> None:
    main_tip = sandbox.git("rev-parse", "main")
    engine = sandbox.engine_pid()
    outs = {verb: tmp_path / f"{verb}.out" for verb in HUMAN_ONLY}
    bare = "env -u SUPERVISOR_TOKEN -u SUPERVISOR_SOCKET"
    attacker(sandbox, "mallory", [detached(f"{SV} {args}", outs[verb], env=bare) for verb, args in HUMAN_ONLY.items()],
             tmp_path)
    for verb, out in outs.items():
        text = result(out)
        assert "exit=1" in text and f"agent mallory may not call {verb}" in text, text
    assert sandbox.engine_pid() == engine
    assert_untouched(sandbox, victim, main_tip)


def test_another_agents_identity_cannot_be_read_from_its_environment_or_the_store(
        sandbox: Sandbox, victim: dict[str, Any], tmp_path: Path) -> None:
    environ, store = tmp_path / "environ.out", tmp_path / "store.out"
    db = sandbox.root / ".git" / "supervisor" / "state.db"
    read_store = ("import sqlite3, sys\n"
                  "print('\\n'.join(r[0] for r in sqlite3.connect(sys.argv[1]).execute('SELECT data FROM agents')))")
    attacker(sandbox, "mallory", [
        f"tr '\\0' '\\n' < /proc/{victim['pid']}/environ > {environ}.part; mv {environ}.part {environ}",
        f"{PYTHON} -c {shlex.quote(read_store)} {db} > {store}.part 2>&1; mv {store}.part {store}",
    ], tmp_path)
    seen = dict(line.split("=", 1) for line in result(environ).splitlines() if "=" in line)
    assert "SUPERVISOR_TOKEN" not in seen and "SUPERVISOR_STATE_DIR" not in seen
    records = result(store)
    assert '"name": "victim"' in records and '"token":' not in records
    assert seen["SUPERVISOR_AGENT"] == "victim"  # its name and its socket's path: no secret, and no key
    assert seen["SUPERVISOR_SOCKET"] == str(sandbox.agent_runtime("victim") / "engine.sock")
    # What an agent could still read is a path; used from another agent's tree it is refused (see above).
    assert "SUPERVISOR_TOKEN" not in psutil.Process(victim["pid"]).environ()
    with sqlite3.connect(db) as conn:
        assert all('"token":' not in row[0] for row in conn.execute("SELECT data FROM agents"))


def test_in_the_sandbox_a_caller_without_its_socket_starts_no_engine_of_its_own(
        sandbox: Sandbox, victim: dict[str, Any], tmp_path: Path) -> None:
    """In its sandbox the human's socket is out of sight: a caller that dropped its own socket finds no engine,
    and must not start one in there (it would answer about a world of its own: `victim: stopped`)."""
    main_tip = sandbox.git("rev-parse", "main")
    text = (sandbox.root / "supervisor.yaml").read_text().replace("isolation: none\n", "")
    sandbox.write_config(text)  # the attacker in the sandbox (the victim started outside one: no matter here)
    out = tmp_path / "stop.out"
    attacker(sandbox, "mallory", [
        f"env -i PATH=\"$PATH\" HOME=\"$HOME\" SUPERVISOR_RUNTIME_DIR=\"$SUPERVISOR_RUNTIME_DIR\" "
        f"{SV} stop victim > {out}.part 2>&1; echo \"exit=$?\" >> {out}.part; mv {out}.part {out}",
    ], tmp_path)
    told = result(out)
    assert "exit=1" in told and "the engine cannot be reached from inside an agent's sandbox" in told, told
    assert_untouched(sandbox, victim, main_tip)


# Connect, hand the connection to a child, exit: the process the kernel names as the peer is gone when the
# child sends. argv: the socket, the method.
FORK_AND_SEND = r'''
import json, os, socket, sys, time
from supervisor.engine import unixpath
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
unixpath.connect(sock, sys.argv[1])
connector = os.getpid()
if os.fork():
    os._exit(0)
while os.getppid() == connector:
    time.sleep(0.01)
sock.sendall((json.dumps({"method": sys.argv[2], "params": {"name": "victim"}}) + "\n").encode())
print(sock.recv(65536).decode())
'''


def human_socket(box: Sandbox) -> Path:
    return box.runtime / box.paths.runtime_dir.name / "engine.sock"


def test_a_connection_whose_connecting_process_exited_is_nobody(
        sandbox: Sandbox, victim: dict[str, Any], tmp_path: Path) -> None:
    main_tip = sandbox.git("rev-parse", "main")
    human, own = tmp_path / "human.out", tmp_path / "own.out"
    send = f"{shlex.quote(PYTHON)} -c {shlex.quote(FORK_AND_SEND)}"
    attacker(sandbox, "mallory", [
        f"{send} {human_socket(sandbox)} stop > {human}.part 2>&1; mv {human}.part {human}",
        f"{send} \"$SUPERVISOR_SOCKET\" ls > {own}.part 2>&1; mv {own}.part {own}",
    ], tmp_path)
    text = result(human)
    assert "refused: the process that connected" in text and "is gone" in text and "only reads" in text, text
    text = result(own)
    assert "refused: the process that connected to agent mallory's socket" in text, text
    assert_untouched(sandbox, victim, main_tip)


def planting(out: Path, planted: Path, victim_files: Path) -> str:
    """Run 1: replace its socket by a folder and its spool by a link to a folder of the user's. Run 2 (after
    a restart): say which socket it was given, and ask to stop the victim through it."""
    return (f'if [ -e {planted} ]; then echo "socket $SUPERVISOR_SOCKET" > {out}.part; '
            f'{SV} stop victim >> {out}.part 2>&1; echo "exit=$?" >> {out}.part; mv {out}.part {out}; '
            f'else own=$(dirname "$SUPERVISOR_SOCKET"); '
            f'{{ rm -f "$SUPERVISOR_SOCKET" && mkdir "$SUPERVISOR_SOCKET" && touch "$SUPERVISOR_SOCKET/x" && '
            f'rm -rf "$own/spool" && ln -s {victim_files} "$own/spool"; }} > {planted}.part 2>&1; '
            f'echo "planted=$?" >> {planted}.part; mv {planted}.part {planted}; fi')


@pytest.mark.parametrize("isolation", ["none", "sandbox"])
def test_a_planted_socket_path_never_gets_an_agent_the_humans_socket(
        sandbox: Sandbox, victim: dict[str, Any], tmp_path: Path, isolation: str) -> None:
    main_tip = sandbox.git("rev-parse", "main")
    if isolation == "sandbox":  # the attacker in the sandbox (the victim started outside one: no matter here)
        sandbox.write_config((sandbox.root / "supervisor.yaml").read_text().replace("isolation: none\n", ""))
    victim_files = tmp_path / "precious"
    victim_files.mkdir()
    (victim_files / "package.json").write_text('{"name": "precious"}')
    out, planted = tmp_path / "stop.out", tmp_path / "planted.out"
    attacker(sandbox, "mallory", [planting(out, planted, victim_files)], tmp_path)
    told = result(planted)
    own = sandbox.agent_runtime("mallory") / "engine.sock"
    if isolation == "sandbox":  # its runtime folder is the engine's: read-only in there
        assert "planted=1" in told and "Read-only file system" in told, told
    else:
        assert "planted=0" in told, told
    sandbox.sv("stop", "mallory")
    sandbox.sv("restart", "mallory")
    text = result(out)
    assert f"socket {own}" in text, text  # its own socket again, never the human's
    assert "exit=1" in text and "agent mallory may not call stop" in text, text
    assert own.is_socket() and (own.parent / "spool").is_dir() and not (own.parent / "spool").is_symlink()
    assert (victim_files / "package.json").read_text() == '{"name": "precious"}'
    assert_untouched(sandbox, victim, main_tip)


def test_what_an_agent_leaves_in_spools_never_keeps_the_engine_from_starting(
        sandbox: Sandbox, tmp_path: Path) -> None:
    """Spool files that are not events (a JSON list, a FIFO, a link to a file of the user's, one too large), a
    spool folder of a made-up agent that is a link to a folder of the user's, and a folder where a stopped
    agent's socket was: the engine starts, reads past them, and touches nothing of the user's."""
    config(sandbox)
    with (sandbox.root / "supervisor.yaml").open("a") as file:
        file.write("isolation: none\n")  # the spool folder itself within the agent's reach
    (tmp_path / "gone.yaml").write_text(json.dumps({"turns": [[{"exit": 0}]]}))
    sandbox.sv("start", "gone", "--task", "go", "--command", f"{DEMO_AGENT} --script {tmp_path / 'gone.yaml'}")
    sandbox.wait_state("gone", "exited")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "package.json").write_text('{"name": "precious"}')
    (precious / "settings.json").write_text('{"editor.fontSize": 14}')
    done = tmp_path / "done"
    spool = '"$(dirname "$SUPERVISOR_SOCKET")/spool"'
    agents = '"$(dirname "$(dirname "$SUPERVISOR_SOCKET")")"'
    attacker(sandbox, "mallory", [
        f"printf '[]' > {spool}/list.json",
        f"mkfifo {spool}/fifo.json",
        f"ln -s {precious}/package.json {spool}/link.json",
        f"head -c 3000000 /dev/zero | tr '\\0' ' ' > {spool}/big.json; echo '{{}}' >> {spool}/big.json",
        f"mkdir -p {agents}/eve && ln -s {precious} {agents}/eve/spool",
        f"rm -f {agents}/gone/engine.sock; mkdir -p {agents}/gone/engine.sock/x",
        f"touch {done}",
    ], tmp_path)
    wait_until(done.exists, timeout=60, message="the attacker's spool files")
    sandbox.sv("engine", "stop")
    listed = sandbox.sv("ls", check=False)  # starts an engine, which reads every spool first
    assert listed.returncode == 0, listed.stderr
    assert sorted(p.name for p in precious.iterdir()) == ["package.json", "settings.json"]
    assert (precious / "package.json").read_text() == '{"name": "precious"}'
    left = sorted(p.name for p in (sandbox.agent_runtime("mallory") / "spool").iterdir())
    assert left == [], left
    assert not (sandbox.agent_runtime("gone") / "engine.sock").exists()


def test_an_agent_starts_no_engine_even_without_its_variables(sandbox: Sandbox, tmp_path: Path) -> None:
    """An engine started from an agent's pane would live in its tree (and cgroup): the human's `stop` of the
    agent would end it."""
    config(sandbox)
    with (sandbox.root / "supervisor.yaml").open("a") as file:
        file.write("isolation: none\n")
    go = tmp_path / "go"
    outs = {how: tmp_path / f"{how}.out" for how in ("start", "foreground", "ui")}
    commands = {"start": "engine start", "foreground": "engine --foreground", "ui": "ui"}
    wait = f"while [ ! -e {go} ]; do sleep 0.1; done"
    attacker(sandbox, "mallory", [wait, *(
        f"env -u SUPERVISOR_SOCKET -u SUPERVISOR_AGENT timeout 30 {SV} {commands[how]} > {out}.part 2>&1 "
        f"</dev/null; echo \"exit=$?\" >> {out}.part; mv {out}.part {out}" for how, out in outs.items())], tmp_path)
    sandbox.wait_state("mallory", "working")
    sandbox.sv("engine", "stop")
    go.touch()
    for how, out in outs.items():
        text = result(out)
        assert "exit=1" in text and "an agent does not start it" in text and "mallory" in text, (how, text)
    status = sandbox.sv("engine", "status", "--json", check=False)
    assert json.loads(status.stdout) == {"running": False}


def test_an_orphan_that_outlived_its_agent_is_still_the_agent(
        sandbox: Sandbox, victim: dict[str, Any], tmp_path: Path) -> None:
    """Its first process exited, so the orphan went to init: out of every agent's tree. The agent's cgroup
    still holds it (where the machine gives agents one; without, README says lineage cannot catch this)."""
    from supervisor.engine.confinement import cgroup_base

    if cgroup_base()[0] is None:
        pytest.skip("no writable cgroup v2 here: lineage alone cannot catch this (README, Security)")
    main_tip = sandbox.git("rev-parse", "main")
    go, out = tmp_path / "go", tmp_path / "stop.out"
    inner = f"while [ ! -e {go} ]; do sleep 0.1; done; {SV} stop victim > {out}.part 2>&1; " \
            f"echo \"exit=$?\" >> {out}.part; mv {out}.part {out}"
    script = tmp_path / "mallory.yaml"
    script.write_text(json.dumps({"turns": [[
        {"run": f"env -u SUPERVISOR_SOCKET setsid -f sh -c {shlex.quote(inner)} >/dev/null 2>&1 </dev/null"},
        {"exit": 0}]]}))
    sandbox.sv("start", "mallory", "--task", "go", "--command", f"{DEMO_AGENT} --script {script}")
    sandbox.wait_state("mallory", "exited")
    if events(sandbox, "mallory", "cgroup_join_failed"):  # (a machine too busy to let it join within 2 s)
        pytest.skip(f"mallory ran in no cgroup: {events(sandbox, 'mallory', 'cgroup_join_failed')}")
    go.touch()
    text = result(out)
    assert "exit=1" in text and "agent mallory may not call stop" in text, text
    assert_untouched(sandbox, victim, main_tip)
