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
from tests.test_watching import config, fake_claude

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


def test_leaving_the_tree_without_the_token_does_not_make_an_agent_the_human(
        sandbox: Sandbox, victim: dict[str, Any], tmp_path: Path) -> None:
    main_tip = sandbox.git("rev-parse", "main")
    outs = {verb: tmp_path / f"{verb}.out" for verb in ("stop", "approve", "merge", "rm")}
    attacker(sandbox, "mallory", [
        detached(f"{SV} stop victim", outs["stop"]),
        detached(f"{SV} approve victim", outs["approve"]),
        detached(f"{SV} merge victim", outs["merge"]),
        detached(f"{SV} rm --force victim", outs["rm"]),
    ], tmp_path)
    for verb, out in outs.items():
        text = result(out)
        assert "exit=1" in text and f"agent mallory may not call {verb}" in text, text
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
    out = tmp_path / "stop.out"
    attacker(sandbox, "mallory", [detached(f"{SV} stop victim", out,
                                           env="env -u SUPERVISOR_TOKEN -u SUPERVISOR_SOCKET")], tmp_path)
    text = result(out)
    assert "exit=1" in text and "agent mallory may not call stop" in text, text
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
    assert "exit=1" in told and "does not start inside an agent's sandbox" in told, told
    assert_untouched(sandbox, victim, main_tip)
