"""A conversation id reaches the CLI's command line at restart and restore: only a UUID is kept or used, and it
is put where no option can start; an id is told by the agent's own CLI only (its launch's SessionStart, or a
`/clear`), never by a nested `claude -p` nor by an agent without hooks; and a conversation is resumed only when
it holds a prompt (else the CLI exits 1, "No conversation found")."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from supervisor.agents import get_profile
from supervisor.agents.session_files import codex_session, gemini_session
from supervisor.agents.session_ids import claude_conversation_held, valid
from supervisor.engine.hooks import told_session
from tests.test_session_files import (
    CHAT,
    CODEX_BEGAN,
    CODEX_ID,
    GEMINI_BEGAN,
    GEMINI_ID,
    ROLLOUT,
    WORKTREE,
    codex_home,
    gemini_home,
    rewritten,
)

ID = "3158878b-e079-4f57-8087-6d60c793935b"
OPTIONS = ["--dangerously-skip-permissions", "--dangerously-bypass-approvals-and-sandbox", "--yolo", "-y",
           f"{ID} --yolo", f"{ID}\n", f"-{ID[1:]}", "-" * 36, "latest", "", "x" * 36]


@pytest.mark.parametrize("bad", OPTIONS)
def test_an_id_that_is_not_a_uuid_never_reaches_a_command_line(bad: str, tmp_path: Path) -> None:
    assert valid(bad) is None
    conversation(tmp_path, bad, "a prompt")
    for profile in ("claude", "codex", "gemini"):
        assert get_profile(profile).resume_line(profile, bad, tmp_path) is None, profile


def test_each_cli_gets_the_id_where_no_option_can_start(tmp_path: Path) -> None:
    """Forms checked against the pinned CLIs' parsers: Claude Code 2.1.332 (commander) and Gemini CLI 0.61 (yargs)
    take `--resume=VALUE` as the value whatever it looks like; Codex 0.171 (clap) reads `resume -- VALUE` as the
    session id positional."""
    conversation(tmp_path, ID, "remember the word pineapple")
    assert get_profile("claude").resume_line("claude --model x", ID, tmp_path) == f"claude --model x --resume={ID}"
    assert get_profile("codex").resume_line("codex -m x", ID, tmp_path) == f"codex -m x resume -- {ID}"
    assert get_profile("gemini").resume_line("gemini", ID, tmp_path) == f"gemini --resume={ID}"


def test_claude_is_resumed_only_once_its_conversation_holds_a_prompt(tmp_path: Path) -> None:
    """SessionStart tells the id before any prompt: no file yet, then one with the CLI's own records only."""
    assert get_profile("claude").resume_line("claude", ID, tmp_path) is None
    path = tmp_path / "projects" / "-home-user-project-worktrees-c1" / f"{ID}.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"type": "mode", "mode": "normal", "sessionId": ID}) + "\n" +
                    json.dumps({"type": "user", "isMeta": True, "message": {"role": "user", "content": "x"}}) + "\n")
    assert not claude_conversation_held(tmp_path, ID)
    assert get_profile("claude").resume_line("claude", ID, tmp_path) is None
    fixture = Path(__file__).parent / "fixtures" / "claude" / "usage" / "session.jsonl"  # recorded from 2.1.332
    path.write_text(fixture.read_text())
    assert get_profile("claude").resume_line("claude", ID, tmp_path) == f"claude --resume={ID}"
    assert get_profile("claude").resume_line("claude", str(uuid.uuid4()), tmp_path) is None  # another's: none


def test_the_id_is_taken_from_the_agents_own_session_start_only() -> None:
    other = str(uuid.uuid4())
    start = {"hook_event_name": "SessionStart", "source": "startup", "session_id": ID}
    assert told_session(True, None, start) == ID  # the launch's first
    assert told_session(False, None, start) is None  # an agent whose CLI has no hooks says so itself
    assert told_session(True, None, {**start, "session_id": "--dangerously-skip-permissions"}) is None
    for event in ("UserPromptSubmit", "Stop", "PreToolUse", "Notification"):  # a nested run's events: never
        assert told_session(True, None, {**start, "hook_event_name": event}) is None
    for source in ("startup", "resume", "compact"):  # a nested `claude -p` (or a compaction) later in the launch
        assert told_session(True, ID, {**start, "source": source, "session_id": other}) is None
    assert told_session(True, ID, {**start, "source": "clear", "session_id": other}) == other  # `/clear`


def conversation(config: Path, session: str, prompt: str) -> None:
    """A Claude Code conversation file with one prompt, where the CLI keeps it (if the id can name a file)."""
    if not session or "/" in session or "\n" in session:
        return
    folder = config / "projects" / "-work"
    folder.mkdir(parents=True, exist_ok=True)
    record = {"type": "user", "message": {"role": "user", "content": prompt}, "sessionId": session}
    (folder / f"{session}.jsonl").write_text(json.dumps(record) + "\n")


def test_an_id_written_into_the_clis_own_files_is_read_only_as_a_uuid(tmp_path: Path) -> None:
    """The agent can write its CLI's files: a chat or rollout naming an option as its id is not told."""
    lines = CHAT.read_text().splitlines()
    first = json.loads(lines[0])
    assert gemini_session(gemini_home(tmp_path, (CHAT.name, CHAT.read_text())), GEMINI_BEGAN - 5) == GEMINI_ID
    forged = "\n".join([json.dumps({**first, "sessionId": "--yolo"}), *lines[1:]]) + "\n"
    assert gemini_session(gemini_home(tmp_path / "f", (CHAT.name, forged)), GEMINI_BEGAN - 5) is None
    dashes = "-" * 36
    name = ROLLOUT.name.replace(CODEX_ID, dashes)
    home = codex_home(tmp_path, (name, rewritten(ROLLOUT.read_text(), id=dashes)))
    assert codex_session(home, WORKTREE, since=CODEX_BEGAN - 5) is None
