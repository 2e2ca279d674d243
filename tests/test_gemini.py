"""Gemini CLI as supervisor runs it: a first prompt never typed into the trust dialog it draws a moment after its
input box, its approval dialog answered by meaning (`--always` only when asked), its own home per agent."""

from __future__ import annotations

import json
from pathlib import Path

from supervisor.agents import get_profile
from supervisor.agents.gemini import GEMINI, trusts
from supervisor.agents.screens import Verdict
from tests.conftest import Sandbox, wait_until
from tests.test_watching import config, demo, events

FIXTURES = Path(__file__).parent / "fixtures" / "gemini" / "screens"
QUESTION = "Do you trust the files in this folder?"

# As Gemini CLI 0.61 starts in a folder it does not trust yet: its idle input box, then ~0.5 s later the trust
# dialog; an Enter pressed while the box shows lands in the dialog and picks "Trust folder".
TRUST_FIRST = f"""
    start: [{{box: 0.8s}}, {{trust: "{QUESTION}"}}]
    turns:
      - [{{say: task received}}]
"""


def fake_gemini(sandbox: Sandbox, script: str) -> tuple[str, Path]:
    record = sandbox.root.parent / "prompts.jsonl"
    return f"{demo(sandbox, 'g', script)} --look gemini --record {record}", record


def prompts(record: Path) -> list[str]:
    if not record.exists():
        return []
    return [json.loads(line)["text"] for line in record.read_text().splitlines()]


def test_the_first_prompt_waits_for_the_trust_dialog_a_human_answers(sandbox: Sandbox) -> None:
    config(sandbox)
    command, record = fake_gemini(sandbox, TRUST_FIRST)
    sandbox.sv("start", "g1", "--task", "fix the parser", "--agent", "gemini", "--command", command)
    agent = sandbox.wait_state("g1", "waiting")
    assert agent["waiting_reason"] == QUESTION
    screen = sandbox.screen("g1")
    assert "● 1. Trust folder" in screen and "trusted" not in screen.replace("Trust folder", "")
    assert prompts(record) == []
    sandbox.tmux("send-keys", "-t", agent["pane"], "1")  # the human trusts the folder
    wait_until(lambda: prompts(record) == ["fix the parser"], message="the task arrived once the prompt showed")
    wait_until(lambda: "task received" in sandbox.screen("g1"), message="the turn ran")
    sandbox.wait_state("g1", "idle")
    assert prompts(record) == ["fix the parser"]


ASKS = """
    turns:
      - [{ask: "Run touch x?"}, {say: after the question}]
"""


def _answered(sandbox: Sandbox, verb: str, *args: str) -> dict[str, object]:
    command, _ = fake_gemini(sandbox, ASKS)
    sandbox.sv("start", "g2", "--task", "touch x", "--agent", "gemini", "--command", command)
    assert sandbox.wait_state("g2", "waiting")["waiting_reason"] == "Run touch x?"
    sandbox.sv(verb, "g2", *args)
    return next(e for e in events(sandbox, "g2") if e["kind"] == ("approved" if verb == "approve" else "denied"))


def test_approve_allows_this_call_once(sandbox: Sandbox) -> None:
    config(sandbox)
    assert _answered(sandbox, "approve")["keys"] == "1"
    screen = sandbox.screen("g2")
    assert "approved" in screen and "for this session" not in screen.replace("2. Allow for this session", "")
    wait_until(lambda: "after the question" in sandbox.screen("g2"), message="the call ran")


def test_approve_always_allows_it_for_the_session(sandbox: Sandbox) -> None:
    config(sandbox)
    record = _answered(sandbox, "approve", "--always")
    assert record["keys"] == "2" and record["always"] is True
    wait_until(lambda: "approved for this session" in sandbox.screen("g2"), message="the standing option picked")


def test_deny_picks_no_and_the_dialog_goes(sandbox: Sandbox) -> None:
    config(sandbox)
    assert _answered(sandbox, "deny", "--reason", "not that file")["keys"] == "3"
    wait_until(lambda: "denied" in sandbox.screen("g2"), message="the dialog answered No")
    wait_until(lambda: "not that file" in sandbox.screen("g2"), message="the reason sent as the next prompt")


def test_answer_keys_pick_the_standing_option_only_with_always() -> None:
    screen = (FIXTURES / "approval_prompt.txt").read_text()
    gemini = get_profile("gemini")
    assert gemini.answer_keys(screen, True) == "1"
    assert gemini.answer_keys(screen, True, always=True) == "2"
    assert gemini.answer_keys(screen, False, always=True) == "3"
    codex = "› 1. Yes, proceed (y)\n  2. Yes, and don't ask again for `touch` (p)\n  3. No, and tell Codex (esc)\n"
    assert gemini.answer_keys(codex, True) == "1" and gemini.answer_keys(codex, True, always=True) == "2"
    assert gemini.answer_keys("● 1. Allow once\n  3. No\n", True, always=True) is None


def test_each_agent_gets_its_own_gemini_home_seeded_from_the_users(tmp_path: Path) -> None:
    home, repo, worktree = tmp_path / "home", tmp_path / "repo", tmp_path / "worktrees" / "a1"
    (home / ".gemini").mkdir(parents=True)
    repo.mkdir()
    worktree.mkdir(parents=True)
    settings = {"security": {"auth": {"selectedType": "oauth-personal"}, "folderTrust": {"enabled": True}}}
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    (home / ".gemini" / "oauth_creds.json").write_text('{"token": "t"}')
    (home / ".gemini" / "trustedFolders.json").write_text(json.dumps({str(repo): "TRUST_FOLDER"}))
    state = tmp_path / "state"
    env = GEMINI.prepare_state(state, home, repo, worktree, "supervisor hook")
    own = state / ".gemini"
    assert env["GEMINI_CLI_HOME"] == str(state)
    assert json.loads((own / "settings.json").read_text()) == settings
    assert (own / "oauth_creds.json").read_text() == '{"token": "t"}'
    assert (own / "oauth_creds.json").stat().st_mode & 0o777 == 0o400
    trusted = json.loads(Path(env["GEMINI_CLI_TRUSTED_FOLDERS_PATH"]).read_text())
    assert trusted == {str(repo): "TRUST_FOLDER", str(worktree): "TRUST_FOLDER"}
    assert json.loads((home / ".gemini" / "trustedFolders.json").read_text()) == {str(repo): "TRUST_FOLDER"}
    # a restart seeds it again over the read-only copies
    GEMINI.prepare_state(state, home, repo, worktree, "supervisor hook")


def test_an_untrusted_repository_gives_its_worktree_no_trust(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    assert not trusts({}, repo)
    assert trusts({str(repo / "sub"): "TRUST_PARENT"}, repo)
    assert not trusts({str(tmp_path): "TRUST_FOLDER", str(repo): "DO_NOT_TRUST"}, repo / "sub")
    env = GEMINI.prepare_state(tmp_path / "state", tmp_path / "home", repo, tmp_path / "wt", "supervisor hook")
    assert json.loads(Path(env["GEMINI_CLI_TRUSTED_FOLDERS_PATH"]).read_text()) == {}


def test_a_dialog_left_above_the_new_input_box_is_over() -> None:
    """Gemini restarts after its trust dialog is answered and leaves the dialog on screen above its new box."""
    dialog = (FIXTURES / "trust_prompt.txt").read_text().rstrip()
    idle = (FIXTURES / "startup_idle.txt").read_text()
    screen = f"{dialog}\n Gemini CLI is restarting to apply the trust changes...\n{idle}"
    assert GEMINI.read(dialog).verdict == Verdict.WAITING
    assert GEMINI.read(screen).verdict == Verdict.IDLE
