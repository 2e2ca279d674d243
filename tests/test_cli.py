"""The command line outside the session lifecycle: init, doctor, demo, and errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_demo_creates_a_repository_and_starts_its_sessions(sandbox: Sandbox, tmp_path: Path) -> None:
    target = tmp_path / "demo"
    done = sandbox.sv("demo", str(target), "--no-ui", cwd=tmp_path)
    assert "demo repository" in done.stdout
    demo = Sandbox(root=target, home=sandbox.home, runtime=sandbox.runtime, env=sandbox.env)
    try:
        names = set(demo.ls())
        assert names == {"auth", "auth.tests", "ui", "billing", "api", "docs", "search", "reports"}
        assert demo.ls()["auth.tests"]["role"] == "test-agent"
        assert "- Timeout: 40s" in demo.agent("reports")["contract"]
        # The crasher really crashes, and the committer really commits, inside its contract: ready to merge.
        assert demo.wait_state("search", "exited", "failed")["exit_code"] == 3
        wait_until(lambda: demo.git("rev-list", "--count", "main..agent/api") == "1", message="api's commit")
        # The boundary scenario's commit is refused by the guard, made with --no-verify, caught by the audit.
        wait_until(lambda: demo.ls()["docs"]["boundary_violations"] == 1, 30, message="docs's boundary violation")
        assert demo.sv("merge", "docs", check=False).returncode == 1
        assert "merged 1 commit(s) into main" in demo.sv("merge", "api").stdout
    finally:
        demo.tmux("kill-server")
