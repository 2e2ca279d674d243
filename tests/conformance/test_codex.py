"""OpenAI Codex CLI, the real CLI at its pinned version, offline against tests/fixtures/codex/responses_api.py."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.conformance.conftest import FIXTURES, ZONE, Run, StateTrail, limited_by_the_stand_in
from tests.conftest import process_gone, wait_until
from tests.test_pane_identity import kill_tmux_server

API_KEY = "sk-test-conformance-0123456789"
SLOW_SECONDS = 15.0  # responses_api.py's "slow": a token every 0.5 s for about 15 s


def codex_home(run: Run, *, trusted: bool = True) -> Path:
    """The user's own ~/.codex/config.toml, as a user of a custom provider has it; the repository trusted (or,
    `trusted=False`, never asked about). The model nudge is not answered in it: supervisor settles it in each
    agent's copy."""
    trust = f'\n[projects."{run.box.root}"]\ntrust_level = "trusted"\n' if trusted else ""
    config = run.box.home / ".codex" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'''model = "gpt-5.5"
model_provider = "local"
approval_policy = "on-request"
sandbox_mode = "workspace-write"

[model_providers.local]
name = "local"
base_url = "{run.api.url}/v1"
env_key = "OPENAI_API_KEY"
wire_api = "responses"
{trust}''')
    return config


@pytest.fixture
def codex(real_cli: Callable[..., Run]) -> Run:
    run = real_cli("codex", FIXTURES / "codex" / "responses_api.py", env={"OPENAI_API_KEY": API_KEY})
    codex_home(run)
    return run


def agent_state(run: Run, name: str) -> Path:
    return run.box.root / ".git" / "supervisor" / "agents" / name


def daemons(run: Run, name: str) -> list[psutil.Process]:
    """The `codex app-server` processes running on the agent's CODEX_HOME."""
    home = str(agent_state(run, name))
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "app-server" in (proc.info["cmdline"] or []) and proc.environ().get("CODEX_HOME") == home:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_a_task_streamed_for_seconds_is_working_throughout_then_idle(codex: Run) -> None:
    box = codex.box
    trail = StateTrail(box, "x1")
    box.sv("start", "x1", "--task", "write slowly please")
    box.wait_state("x1", "working", timeout=60)
    codex.record("x1", "conformance_working_streaming")
    box.wait_state("x1", "idle", timeout=60)
    seen = trail.stop()
    codex.record("x1", "conformance_done_turn")
    asked = [r for r in codex.api.requests() if r.get("answer") == "slow"]
    assert len(asked) == 1, codex.api.requests()
    first_idle = next(t for t, state in trail.seen if state == "idle")
    assert first_idle >= asked[0]["t"] + SLOW_SECONDS - 1, (seen, asked[0]["t"], first_idle)
    assert seen[:1] == ["starting"] and "working" in seen, seen
    assert seen[seen.index("working"):] == ["working", "idle"], seen  # no false idle, no flap
    # No first-run screen: the worktree was trusted and the model nudge settled in the agent's own CODEX_HOME.
    config = tomllib.loads((agent_state(codex, "x1") / "config.toml").read_text())
    assert config["projects"][box.ls()["x1"]["worktree"]]["trust_level"] == "trusted"
    assert "notice" not in tomllib.loads((box.home / ".codex" / "config.toml").read_text())


def test_stopping_one_agent_ends_its_daemon_and_not_the_others(codex: Run) -> None:
    box = codex.box
    for name in ("x1", "x4"):
        box.sv("start", name, "--task", "say hello")
    for name in ("x1", "x4"):
        box.wait_state(name, "idle", timeout=60)
    first = wait_until(lambda: daemons(codex, "x1"), timeout=30, message="x1's app-server")
    other = wait_until(lambda: daemons(codex, "x4"), timeout=30, message="x4's app-server")
    assert {p.pid for p in first}.isdisjoint(p.pid for p in other)
    box.sv("stop", "x1")
    wait_until(lambda: all(process_gone(p.pid) for p in first), message="x1's app-server ended")
    assert all(p.is_running() for p in other)
    box.sv("send", "x4", "say hello again")
    box.wait_state("x4", "working", "idle", timeout=30)
    box.wait_state("x4", "idle", timeout=60)


def test_approve_runs_the_call_once_and_grants_nothing_more(codex: Run) -> None:
    box = codex.box
    box.sv("start", "x1", "--task", "run: touch approved.txt")
    waiting = box.wait_state("x1", "waiting", timeout=60)
    codex.record("x1", "conformance_approval_prompt")
    assert waiting["waiting_reason"] == "Would you like to run the following command?", waiting
    box.sv("approve", "x1")
    worktree = Path(box.ls()["x1"]["worktree"])
    wait_until(lambda: (worktree / "approved.txt").exists(), timeout=30, message="the approved command ran")
    box.wait_state("x1", "idle", timeout=60)
    # "Yes, proceed" once: no standing rule in the agent's rules, none in the user's.
    for rules in (agent_state(codex, "x1") / "rules", box.home / ".codex" / "rules"):
        assert not any("prefix_rule" in f.read_text() for f in rules.glob("*.rules")) if rules.exists() else True


def test_deny_refuses_the_call(codex: Run) -> None:
    box = codex.box
    box.sv("start", "x1", "--task", "run: touch denied.txt")
    box.wait_state("x1", "waiting", timeout=60)
    box.sv("deny", "x1")
    box.wait_state("x1", "idle", timeout=60)
    assert not (Path(box.ls()["x1"]["worktree"]) / "denied.txt").exists()


def test_a_hung_request_becomes_stalled_never_idle(codex: Run) -> None:
    box = codex.box
    trail = StateTrail(box, "x1")
    box.sv("start", "x1", "--task", "hang")
    box.wait_state("x1", "stalled", timeout=60)
    codex.record("x1", "conformance_working_hung")
    assert "idle" not in trail.stop()


def test_the_trust_dialog_of_an_untrusted_repository_waits_and_the_task_arrives_after_a_human(
        real_cli: Callable[..., Run]) -> None:
    run = real_cli("codex", FIXTURES / "codex" / "responses_api.py", env={"OPENAI_API_KEY": API_KEY})
    codex_home(run, trusted=False)
    box = run.box
    box.sv("start", "x1", "--task", "say hello", "--no-wait")
    waiting = box.wait_state("x1", "waiting", timeout=60)
    run.record("x1", "conformance_trust_prompt")
    assert waiting["waiting_reason"] == "Trust this folder?", run.capture("x1")
    assert not [r for r in run.api.requests() if r.get("user") == "say hello"]
    box.tmux("send-keys", "-t", box.ls()["x1"]["pane"], "Enter")  # the human trusts it (option 1)
    wait_until(lambda: [r for r in run.api.requests() if r.get("user") == "say hello"], timeout=60,
               message="the task reached the model")
    box.wait_state("x1", "idle", timeout=60)


def test_restart_resumes_the_agents_own_conversation(codex: Run) -> None:
    """`codex resume <id>`, the id of the agent's own conversation (its CODEX_HOME holds only its own sessions),
    whatever other sessions ran in the same folder."""
    box = codex.box
    box.sv("start", "x1", "--task", "remember the word pelican")
    box.sv("start", "x2", "--task", "remember the word walrus")
    box.wait_state("x1", "idle", timeout=60)
    box.wait_state("x2", "idle", timeout=60)
    box.sv("restart", "x1")
    assert codex.events("x1", "launched")[-1]["command"] == f"{codex.binary} resume -- {box.agent('x1')['session_id']}"
    codex.wait_screen("x1", lambda s: "pelican" in s and "Ask Codex" in s, timeout=60, message="the resumed one")
    box.wait_state("x1", "idle", timeout=60)
    box.sv("send", "x1", "which word?")
    wait_until(lambda: [r for r in codex.api.requests() if r.get("user") == "which word?"], timeout=60,
               message="the question reached the model")
    box.wait_state("x1", "idle", timeout=60)
    assert "walrus" not in codex.capture("x1")
    assert not [e for e in codex.events("x1", "trigger") if e.get("trigger") == "errors"]


def test_a_model_nudge_left_over_waits_and_the_task_arrives_after_a_human(real_cli: Callable[..., Run]) -> None:
    """Where supervisor cannot settle the nudge (no `codex` on the engine's PATH to read the model catalog
    from), it is the human's: `waiting` with its text, the task typed only once the human answered."""
    run = real_cli("codex", FIXTURES / "codex" / "responses_api.py", env={"OPENAI_API_KEY": API_KEY})
    codex_home(run)
    run.box.env["PATH"] = run.box.env["PATH"].split(":", 1)[1]  # the harness put the CLI's folder first
    box = run.box
    box.sv("start", "x1", "--task", "say hello", "--no-wait")
    waiting = box.wait_state("x1", "waiting", timeout=60)
    run.record("x1", "conformance_model_nudge")
    assert "Meet " in (waiting["waiting_reason"] or ""), run.capture("x1")
    assert not [r for r in run.api.requests() if r.get("user") == "say hello"]
    box.tmux("send-keys", "-t", box.ls()["x1"]["pane"], "2")  # the human keeps the model
    wait_until(lambda: [r for r in run.api.requests() if r.get("user") == "say hello"], timeout=60,
               message="the task reached the model")
    box.wait_state("x1", "idle", timeout=60)
    asked = [r for r in run.api.requests() if r.get("user") == "say hello"]
    assert len(asked) == 1, asked


def test_a_send_while_working_arrives_once_and_it_stays_working_to_the_end(codex: Run) -> None:
    box = codex.box
    box.sv("start", "x1", "--task", "write slowly please")
    box.wait_state("x1", "working", timeout=60)
    wait_until(lambda: [r for r in codex.api.requests() if r.get("answer") == "slow"], timeout=30,
               message="the slow answer started")
    trail = StateTrail(box, "x1")
    box.sv("send", "x1", "then say hello")
    box.wait_state("x1", "idle", timeout=90)
    seen = trail.stop()
    asked = [r for r in codex.api.requests() if r.get("user") == "then say hello"]
    assert len(asked) == 1, codex.api.requests()
    assert seen[seen.index("working") if "working" in seen else 0:] == ["working", "idle"], seen


def test_exit_is_recorded_with_its_code(codex: Run) -> None:
    box = codex.box
    box.sv("start", "x1", "--task", "say hello")
    box.wait_state("x1", "idle", timeout=60)
    box.sv("send", "x1", "/exit")
    exited = box.wait_state("x1", "exited", timeout=30)
    assert exited["exit_code"] == 0, exited


def rollouts(run: Run, name: str) -> list[Path]:
    return sorted((agent_state(run, name) / "sessions").glob("*/*/*/rollout-*.jsonl"))


def test_restore_after_the_tmux_server_died_resumes_its_conversation_by_the_id_codex_keeps(codex: Run) -> None:
    """Codex writes its rollout (sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl) from the first prompt on; the engine
    reads the id there, and `restore` runs `codex resume <id>`: the conversation is back, the task not sent again."""
    box = codex.box
    assert rollouts(codex, "x1") == []
    box.sv("start", "x1", "--task", "remember the word pelican")
    box.wait_state("x1", "idle", timeout=60)
    session = wait_until(lambda: box.agent("x1").get("session_id"), timeout=30, message="x1's conversation id")
    (rollout,) = rollouts(codex, "x1")
    assert rollout.name.endswith(f"-{session}.jsonl")
    codex.keep(f"sessions/{rollout.name}", trimmed_rollout(rollout))
    kill_tmux_server(box)
    box.wait_state("x1", "exited")

    box.sv("restore", "--all")
    codex.wait_screen("x1", lambda s: "pelican" in s and "Ask Codex" in s, timeout=60, message="the resumed one")
    box.wait_state("x1", "idle", timeout=60)
    launched = codex.events("x1", "launched")
    assert launched[-1]["command"] == f"{codex.binary} resume -- {session}"
    assert len([r for r in codex.api.requests() if r.get("user") == "remember the word pelican"]) == 1
    assert rollouts(codex, "x1") == [rollout]  # it goes on in the same conversation
    assert box.agent("x1")["session_id"] == session


def trimmed_rollout(rollout: Path) -> str:
    """The rollout as Codex wrote it, its first line's model instructions (about 50 KB) cut to a stub."""
    import json

    lines = rollout.read_text().splitlines()
    first = json.loads(lines[0])
    first["payload"]["base_instructions"] = {"text": "(Codex's model instructions, cut from the fixture)"}
    return "\n".join([json.dumps(first, separators=(",", ":")), *lines[1:]]) + "\n"


def test_a_usage_limit_is_limited_until_its_reset(codex: Run) -> None:
    """A ChatGPT plan's usage limit (429 `usage_limit_reached` with `resets_at`): Codex 0.171.0 says `You’ve hit
    your usage limit. … try again at 7:07 PM.`, in the local zone, wrapped over two rows."""
    box = codex.box
    box.env["TZ"] = ZONE
    box.sv("start", "x1", "--task", "usage limit 3600")
    limited_by_the_stand_in(codex, "x1", "limit", 3600)
