"""The command line outside the session lifecycle: init, doctor, demo, and errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from supervisor.ui.model import Board
from tests.conftest import Sandbox, wait_until


def test_init_writes_a_config_that_loads_and_refuses_to_overwrite(sandbox: Sandbox) -> None:
    (sandbox.root / "supervisor.yaml").unlink()
    out = sandbox.sv("init")
    assert "supervisor.yaml" in out.stdout
    text = (sandbox.root / "supervisor.yaml").read_text()
    assert "stall_after" in text and "#" in text
    again = sandbox.sv("init", check=False)
    assert again.returncode == 2
    assert "refusing to overwrite" in again.stderr
    assert (sandbox.root / "supervisor.yaml").read_text() == text
    doctor = json.loads(sandbox.sv("doctor", "--json", check=False).stdout)
    assert {c["name"]: c["ok"] for c in doctor}["config"] is True


def test_doctor_reports_each_check(sandbox: Sandbox) -> None:
    done = sandbox.sv("doctor", check=False)
    assert "tmux" in done.stdout and "git" in done.stdout and "config" in done.stdout
    checks = {c["name"]: c for c in json.loads(sandbox.sv("doctor", "--json", check=False).stdout)}
    assert checks["tmux"]["ok"] and checks["git"]["ok"]
    assert checks["agent CLI (generic)"]["ok"]  # the demo agent's python is on PATH
    identity = checks["agent identity"]["detail"]  # said plainly: what holds without a sandbox, and what not
    assert "one OS user cannot be kept from another process of the same user" in identity
    assert "tmux run-shell" in identity
    sandbox.write_config("agent:\n  profile: claude\n  command: no-such-claude\n")
    checks = {c["name"]: c for c in json.loads(sandbox.sv("doctor", "--json", check=False).stdout)}
    assert not checks["agent CLI (claude)"]["ok"]
    assert sandbox.sv("doctor", check=False).returncode == 1


def test_outside_a_repository_is_a_clear_error(tmp_path: Path, sandbox: Sandbox) -> None:
    outside = tmp_path / "nowhere"
    outside.mkdir()
    done = sandbox.sv("ls", check=False, cwd=outside)
    assert done.returncode == 2
    assert done.stderr.startswith("supervisor: error: not inside a git repository")
    assert "Traceback" not in done.stderr


def test_unknown_agent_is_a_clear_error(sandbox: Sandbox) -> None:
    for args in (["show", "nobody"], ["stop", "nobody"], ["send", "nobody", "hi"], ["rm", "nobody"]):
        done = sandbox.sv(*args, check=False)
        assert done.returncode == 2, args
        assert "no agent named 'nobody'" in done.stderr


def test_version_and_help() -> None:
    done = subprocess.run([sys.executable, "-m", "supervisor", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for command in ("start", "ls", "show", "log", "send", "attach", "stop", "restart", "rm", "engine", "doctor",
                    "init", "demo"):
        assert command in done.stdout


def test_demo_shows_every_state_and_trigger_it_promises(sandbox: Sandbox, tmp_path: Path) -> None:
    """`supervisor demo`, with its stall and timeout shortened: a three-level tree, and each behaviour for real:
    working, idle, waiting for approval, stalled, timed out, crashed, out of its boundary, ready to merge."""
    target = tmp_path / "demo"
    done = sandbox.sv("demo", str(target), "--no-ui", "--stall-after", "3s", "--timeout", "8s", cwd=tmp_path)
    assert "demo repository" in done.stdout
    demo = Sandbox(root=target, home=sandbox.home, runtime=sandbox.runtime, env=sandbox.env)
    try:
        agents = demo.ls()
        assert set(agents) == {"auth", "auth.tokens", "auth.tokens.tests", "ui", "billing", "api", "docs", "search",
                               "reports"}
        assert [agents[n]["level"] for n in ("auth", "auth.tokens", "auth.tokens.tests")] == [1, 2, 3]
        assert (agents["auth.tokens"]["role"], agents["auth.tokens.tests"]["role"]) == ("refactor-agent", "test-agent")
        assert "profile: demo" in (target / "supervisor.yaml").read_text()
        assert {demo.agent(n)["profile"] for n in ("auth", "auth.tokens")} == {"demo"}  # its screens are read
        assert "- Timeout: 8s" in demo.agent("reports")["contract"]

        def ever(name: str, state: str) -> bool:  # a transition event of the agent's log went to `state`
            return any(e.get("previous") and e.get("state") == state for e in demo.agent(name)["events"])

        wait_until(lambda: ever("auth", "working"), 30, message="auth working")
        waiting = demo.wait_state("ui", "waiting", timeout=30)
        assert "rm -rf build/" in (waiting["waiting_reason"] or "")
        assert demo.wait_state("search", "exited", "failed", timeout=30)["exit_code"] == 3
        stalled = demo.wait_state("billing", "stalled", timeout=30)
        assert stalled["state"] == "stalled" and ever("billing", "working")
        killed = demo.wait_state("reports", "killed", timeout=30)
        assert killed["reason"] == "timed out after 8s"
        # The boundary scenario's commit is refused by the guard, made with --no-verify, caught by the audit.
        wait_until(lambda: demo.ls()["docs"]["boundary_violations"] == 1, 30, message="docs's boundary violation")
        # The committer commits inside its contract and finishes its turn: ready to merge.
        api = wait_until(lambda: (lambda a: a if a["ready_to_merge"] else None)(demo.ls()["api"]), 30,
                         message="api ready to merge")
        assert api["state"] == "idle" and api["ahead"] == 1 and ever("api", "idle")
        assert not demo.ls()["docs"]["ready_to_merge"]  # its commit left its boundary

        # The dashboard's model reads all of it from the same listing and event log.
        board = Board()
        board.set_agents(json.loads(demo.sv("ls", "--json").stdout))
        board.apply_events(json.loads(demo.sv("show", "reports", "--json").stdout)["events"])
        badges = {name: board.badges(name).plain for name in ("ui", "billing", "reports", "search", "docs", "api")}
        assert badges == {"ui": "ASK", "billing": "STALL", "reports": "TIMEOUT", "search": "EXIT",
                          "docs": "BOUNDARY", "api": "READY"}
        assert [item.kind for item in board.attention()] == ["waiting", "boundary", "stalled", "timeout", "exited",
                                                             "ready"]

        assert demo.sv("merge", "docs", check=False).returncode == 1
        assert "merged 1 commit(s) into main" in demo.sv("merge", "api").stdout
        after = demo.ls()["api"]
        assert after["merged"] and not after["ready_to_merge"]
    finally:
        demo.tmux("kill-server")


def test_demo_refuses_a_bad_duration_before_creating_anything(sandbox: Sandbox, tmp_path: Path) -> None:
    done = sandbox.sv("demo", str(tmp_path / "demo"), "--no-ui", "--timeout", "soon", check=False, cwd=tmp_path)
    assert done.returncode == 2 and "--timeout: not a duration: 'soon'" in done.stderr
    assert not (tmp_path / "demo").exists()
