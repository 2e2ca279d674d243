"""What the engine writes and reads in an agent's CLI folder, which the agent itself writes: a link it left there is
replaced (and said), never followed; a FIFO is never waited on; the user's own files stay as they were."""

from __future__ import annotations

import json
import os
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supervisor.agents.aider import AIDER, HISTORY
from supervisor.agents.claude import CLAUDE
from supervisor.agents.codex import seed_state
from supervisor.agents.gemini import GEMINI
from supervisor.agents.session_files import codex_session, gemini_session
from supervisor.agents.session_ids import claude_conversation_held
from supervisor.agents.state_folder import StateFolder, noticed
from supervisor.files import read_regular

SESSION = "0d6c1f5e-2b3a-4c5d-8e9f-a0b1c2d3e4f5"


def _within_deadline(call: Callable[[], Any], seconds: float = 20.0) -> Any:
    """`call`'s result; fails (rather than hanging the suite) when it has not returned by the deadline."""
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(call()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "blocked: a FIFO was opened for reading"
    return result[0]


@pytest.fixture
def precious(tmp_path: Path) -> Path:
    """A file of the user's, outside the agent's folder, that a link planted there points at."""
    path = tmp_path / "precious.json"
    path.write_text('{"the user\'s": "own"}\n')
    path.chmod(0o644)
    return path


def test_a_link_anywhere_on_the_way_is_replaced_not_followed(tmp_path: Path, precious: Path) -> None:
    state, elsewhere = tmp_path / "state", tmp_path / "elsewhere"
    state.mkdir()
    elsewhere.mkdir()
    (state / "sub").symlink_to(elsewhere)  # a folder on the way
    (state / "x.json").symlink_to(precious)  # the file itself
    (state / ".x.json.tmp").symlink_to(precious)  # a temporary name a careless writer would use
    with noticed() as replaced:
        folder = StateFolder(state)
        folder.write("sub/settings.json", "{}")
        folder.write("x.json", "{}", mode=0o400)
    assert replaced == ["sub", "x.json"]
    assert precious.read_text() == '{"the user\'s": "own"}\n' and precious.stat().st_mode & 0o777 == 0o644
    assert list(elsewhere.iterdir()) == []
    assert not (state / "sub").is_symlink() and (state / "sub" / "settings.json").read_text() == "{}"
    assert not (state / "x.json").is_symlink() and (state / "x.json").stat().st_mode & 0o777 == 0o400
    # a linked agent folder itself (left by an agent that ran unsandboxed) is replaced too
    linked = tmp_path / "linked"
    linked.symlink_to(elsewhere)
    StateFolder(linked).write("a", "b")
    assert not linked.is_symlink() and list(elsewhere.iterdir()) == []


def test_reads_take_regular_files_only_never_through_a_link(tmp_path: Path, precious: Path) -> None:
    state = tmp_path / "state"
    (state / "real").mkdir(parents=True)
    (state / "real" / "f").write_text("ok")
    (state / "via").symlink_to(state / "real")
    (state / "link").symlink_to(precious)
    os.mkfifo(state / "fifo")
    (state / "big").write_bytes(b"x" * 100)
    folder = StateFolder(state)
    assert folder.read("real/f") == b"ok"
    assert folder.read("via/f") is None and folder.read("link") is None
    assert _within_deadline(lambda: folder.read("fifo")) is None
    assert _within_deadline(lambda: read_regular(state / "fifo")) is None
    assert folder.read("big", limit=99) is None and read_regular(state / "big", 100) == b"x" * 100


def test_gemini_copies_no_credential_through_a_linked_folder(tmp_path: Path, precious: Path) -> None:
    home, state, elsewhere = tmp_path / "home", tmp_path / "state", tmp_path / "elsewhere"
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "oauth_creds.json").write_text('{"token": "t"}')
    elsewhere.mkdir()
    state.mkdir()
    (state / ".gemini").symlink_to(elsewhere)
    with noticed() as replaced:
        GEMINI.prepare_state(state, home, tmp_path / "repo", tmp_path / "wt", "supervisor hook")
    assert replaced == [".gemini"] and list(elsewhere.iterdir()) == []
    assert (state / ".gemini" / "oauth_creds.json").read_text() == '{"token": "t"}'


def test_claude_writes_through_no_link_and_waits_on_no_fifo(tmp_path: Path, precious: Path) -> None:
    home, state, elsewhere = tmp_path / "home", tmp_path / "state", tmp_path / "elsewhere"
    (home / ".claude" / "commands").mkdir(parents=True)
    (home / ".claude" / "commands" / "review.md").write_text("review it")
    (home / ".claude" / ".credentials.json").write_text('{"secret": 1}')
    elsewhere.mkdir()
    state.mkdir()
    (state / "commands").symlink_to(elsewhere)
    (state / ".credentials.json").symlink_to(precious)
    os.mkfifo(state / ".claude.json")
    _within_deadline(lambda: CLAUDE.prepare_state(state, home, tmp_path / "repo", tmp_path / "wt", "supervisor hook"))
    assert list(elsewhere.iterdir()) == [] and precious.read_text() == '{"the user\'s": "own"}\n'
    assert (state / "commands" / "review.md").read_text() == "review it"
    assert (state / ".credentials.json").read_text() == '{"secret": 1}'
    assert json.loads((state / ".claude.json").read_text()) == {}  # the FIFO replaced by a fresh copy


def test_codex_reads_no_users_file_through_the_agents_config(tmp_path: Path) -> None:
    """A `config.toml` linked to a TOML file of the user's: the engine would read it and carry the tables Codex
    keeps of its own (`projects`, `notice`, `tui`) into the agent's config, where the agent reads them."""
    secret = tmp_path / "secret.toml"
    secret.write_text('[projects."/elsewhere"]\ntoken = "users-secret"\n')
    state = tmp_path / "state"
    state.mkdir()
    (state / "config.toml").symlink_to(secret)
    seed_state(state, tmp_path / "home", Path("/repo"), Path("/wt"), program=None)
    assert secret.read_text() == '[projects."/elsewhere"]\ntoken = "users-secret"\n'
    assert not (state / "config.toml").is_symlink()
    assert tomllib.loads((state / "config.toml").read_text()) == {}


def test_no_fifo_where_a_cli_keeps_its_conversation_blocks_a_resume(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    os.mkfifo(state / HISTORY)
    assert _within_deadline(lambda: AIDER.resume_line("aider", None, state)) is None
    (state / "projects" / "wt").mkdir(parents=True)
    os.mkfifo(state / "projects" / "wt" / f"{SESSION}.jsonl")
    assert _within_deadline(lambda: claude_conversation_held(state, SESSION)) is False
    chats = state / ".gemini" / "tmp" / "p" / "chats"
    chats.mkdir(parents=True)
    os.mkfifo(chats / "session-2026-01-01T00-00-0d6c1f5e.jsonl")
    assert _within_deadline(lambda: gemini_session(state, 0.0)) is None
    day = state / "sessions" / time.strftime("%Y/%m/%d")
    day.mkdir(parents=True)
    os.mkfifo(day / f"rollout-2026-01-01T00-00-00-{SESSION}.jsonl")
    assert _within_deadline(lambda: codex_session(state, tmp_path / "wt", 0.0)) is None
