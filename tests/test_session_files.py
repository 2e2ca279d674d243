"""Codex's and Gemini CLI's conversation ids, read from files as the real CLIs write them: tests/fixtures/codex/sessions
and tests/fixtures/gemini/chats were recorded from Codex 0.171.0 and Gemini CLI 0.61.0 under the real engine by
tests/conformance (`Run.keep`; paths as /home/user/project, Codex's ~30 KB of model instructions cut to a stub)."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from supervisor.agents import get_profile
from supervisor.agents.session_files import codex_session, gemini_session

FIXTURES = Path(__file__).parent / "fixtures"
WORKTREE = Path("/home/user/project-worktrees/x1")  # where the recorded Codex conversation ran
(ROLLOUT,) = sorted((FIXTURES / "codex" / "sessions").glob("rollout-*.jsonl"))
(CHAT,) = sorted((FIXTURES / "gemini" / "chats").glob("session-*.jsonl"))
CODEX_ID = json.loads(ROLLOUT.read_text().splitlines()[0])["payload"]["id"]
GEMINI_ID = json.loads(CHAT.read_text().splitlines()[0])["sessionId"]


def began(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


CODEX_BEGAN = began(json.loads(ROLLOUT.read_text().splitlines()[0])["payload"]["timestamp"])
GEMINI_BEGAN = began(json.loads(CHAT.read_text().splitlines()[0])["startTime"])


def codex_home(tmp_path: Path, *rollouts: tuple[str, str]) -> Path:
    """A CODEX_HOME holding rollouts (file name, text) in their day folders, as Codex lays them out."""
    home = tmp_path / "codex-home"
    for name, text in rollouts:
        day = name.split("-", 1)[1][:10].replace("-", "/")
        folder = home / "sessions" / day
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return home


def rewritten(text: str, **payload: object) -> str:
    """The rollout with fields of its first line's payload changed."""
    lines = text.splitlines()
    first = json.loads(lines[0])
    first["payload"].update(payload)
    return "\n".join([json.dumps(first), *lines[1:]]) + "\n"


def test_codex_tells_the_id_of_the_conversation_the_agent_began(tmp_path: Path) -> None:
    home = codex_home(tmp_path, (ROLLOUT.name, ROLLOUT.read_text()))
    assert codex_session(home, WORKTREE, since=CODEX_BEGAN - 5) == CODEX_ID
    assert get_profile("codex").find_session(home, WORKTREE, CODEX_BEGAN - 5) == CODEX_ID
    assert get_profile("codex").resume_line("codex -m x", CODEX_ID, home) == f"codex -m x resume -- {CODEX_ID}"
    assert get_profile("codex").resume_line("codex", None, home) is None  # never `resume --last`


def test_codex_leaves_out_conversations_begun_before_the_launch_or_elsewhere(tmp_path: Path) -> None:
    text = ROLLOUT.read_text()
    home = codex_home(tmp_path, (ROLLOUT.name, text))
    assert codex_session(home, WORKTREE, since=CODEX_BEGAN + 60) is None  # an earlier run's conversation
    assert codex_session(home, Path("/home/user/project-worktrees/x2"), since=CODEX_BEGAN - 5) is None
    assert codex_session(tmp_path / "no-such-home", WORKTREE, since=CODEX_BEGAN - 5) is None


def test_codex_tells_the_newest_when_the_agent_began_another_and_reads_a_long_first_line(tmp_path: Path) -> None:
    """`/new` in the TUI begins another conversation: the newest is the one to resume. A first line carries the
    model's instructions (tens of KB with the real ones)."""
    later_id = "01a24c56-ffff-7000-8000-000000000001"
    later = rewritten(ROLLOUT.read_text(), id=later_id,
                      timestamp=datetime.fromtimestamp(CODEX_BEGAN + 30).astimezone().isoformat(),
                      base_instructions={"text": "x" * 200_000})
    later_name = ROLLOUT.name.replace(CODEX_ID, later_id)
    home = codex_home(tmp_path, (ROLLOUT.name, ROLLOUT.read_text()), (later_name, later))
    assert codex_session(home, WORKTREE, since=CODEX_BEGAN - 5) == later_id


def test_a_rollout_named_for_another_id_or_not_begun_with_its_meta_is_no_answer(tmp_path: Path) -> None:
    other = ROLLOUT.name.replace(CODEX_ID, "01a24c56-0000-7000-8000-000000000002")
    lines = ROLLOUT.read_text().splitlines()
    home = codex_home(tmp_path, (other, ROLLOUT.read_text()),
                      (ROLLOUT.name, "\n".join(lines[1:]) + "\n"))  # its session_meta line missing
    assert codex_session(home, WORKTREE, since=CODEX_BEGAN - 5) is None


def gemini_home(tmp_path: Path, *chats: tuple[str, str]) -> Path:
    """A GEMINI_CLI_HOME holding chat files in its project's chats folder, as Gemini CLI lays them out."""
    home = tmp_path / "gemini-home"
    folder = home / ".gemini" / "tmp" / "x1" / "chats"
    folder.mkdir(parents=True)
    for name, text in chats:
        (folder / name).write_text(text)
    return home


def test_gemini_tells_the_id_of_a_conversation_with_a_message_in_it(tmp_path: Path) -> None:
    home = gemini_home(tmp_path, (CHAT.name, CHAT.read_text()))
    assert gemini_session(home, since=GEMINI_BEGAN - 5) == GEMINI_ID
    assert get_profile("gemini").find_session(home, WORKTREE, GEMINI_BEGAN - 5) == GEMINI_ID
    assert get_profile("gemini").resume_line("gemini", GEMINI_ID, home) == f"gemini --resume={GEMINI_ID}"
    assert get_profile("gemini").resume_line("gemini", None, home) is None  # never `--resume latest`
    assert gemini_session(home, since=GEMINI_BEGAN + 60) is None  # begun before this launch


def test_gemini_does_not_tell_a_conversation_it_would_not_resume(tmp_path: Path) -> None:
    """The file Gemini CLI makes at its start holds its metadata and the context it puts first: `--resume <id>`
    finds no such session ("Invalid session identifier") until a message is in it."""
    lines = CHAT.read_text().splitlines()
    started = "\n".join(lines[:2]) + "\n"  # metadata, then the `<session_context>` it writes before any prompt
    assert "<session_context>" in lines[1]
    command = '{"id": "c1", "type": "user", "content": [{"text": "/about"}]}\n'
    sub = lines[0].replace('"kind":"main"', '"kind":"subagent"')
    home = gemini_home(tmp_path, (CHAT.name, started + command),
                       ("session-2026-12-06T17-11-00000000.jsonl", "\n".join([sub, *lines[1:]]) + "\n"))
    assert gemini_session(home, since=GEMINI_BEGAN - 5) is None


OLD_ID = "5e55a01d-0000-4000-8000-00000000a01d"


def test_gemini_reads_the_older_single_object_form(tmp_path: Path) -> None:
    old = {"sessionId": OLD_ID, "projectHash": "abc", "startTime": "2026-12-06T17:10:43.522Z",
           "messages": [{"id": "m1", "type": "user", "content": "hello"}]}
    home = gemini_home(tmp_path, ("session-2026-12-06T17-10-5e55old.json", json.dumps(old)))
    assert gemini_session(home, since=GEMINI_BEGAN - 5) == OLD_ID


def test_files_older_than_the_launch_are_not_opened(tmp_path: Path) -> None:
    """Looked at every few seconds until found: only files written since the launch are read."""
    home = gemini_home(tmp_path, (CHAT.name, CHAT.read_text()))
    chat = next((home / ".gemini" / "tmp" / "x1" / "chats").iterdir())
    os.utime(chat, (GEMINI_BEGAN - 3600, GEMINI_BEGAN - 3600))
    assert gemini_session(home, since=GEMINI_BEGAN - 5) is None


def test_a_folder_the_agent_linked_to_another_agents_conversations_tells_nothing(tmp_path: Path) -> None:
    """Another agent's CODEX_HOME (or GEMINI_CLI_HOME) linked into this agent's: its conversation is not this one."""
    other = codex_home(tmp_path / "other", (ROLLOUT.name, ROLLOUT.read_text()))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "sessions").symlink_to(other / "sessions")
    assert codex_session(other, WORKTREE, since=CODEX_BEGAN - 5) == CODEX_ID
    assert codex_session(mine, WORKTREE, since=CODEX_BEGAN - 5) is None
    theirs = gemini_home(tmp_path / "theirs", (CHAT.name, CHAT.read_text()))
    linked = tmp_path / "linked"
    (linked / ".gemini").mkdir(parents=True)
    (linked / ".gemini" / "tmp").symlink_to(theirs / ".gemini" / "tmp")
    assert gemini_session(theirs, since=GEMINI_BEGAN - 5) == GEMINI_ID
    assert gemini_session(linked, since=GEMINI_BEGAN - 5) is None
