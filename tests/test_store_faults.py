"""The store as a database users can trust, with a real engine, tmux and git: an empty store with agents
still running, a damaged store, a store from a newer version, one bad record, and a start that fails."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.conftest import Sandbox, process_gone, wait_until

LIVE = ("starting", "working", "idle", "waiting", "stalled")


def _start_three(sandbox: Sandbox) -> dict[str, dict[str, object]]:
    for name in ("a1", "a2", "a3"):
        sandbox.sv("start", name, "--task", f"task of {name}")
    for name in ("a1", "a2", "a3"):
        sandbox.wait_state(name, "idle", "working")
    return sandbox.ls()


def _stop_engine(sandbox: Sandbox) -> Path:
    """Stop the engine and wait for its process to end (it closes the store last)."""
    pid = sandbox.engine_pid()
    sandbox.sv("engine", "stop")
    wait_until(lambda: process_gone(pid), message="the engine ended")
    db = sandbox.paths.db_path
    for leftover in (Path(f"{db}-wal"), Path(f"{db}-shm")):
        leftover.unlink(missing_ok=True)
    return Path(db)


def _event_kinds(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT kind FROM events ORDER BY id")]


def test_a_0_byte_store_with_live_agents_readopts_them(sandbox: Sandbox) -> None:
    before = _start_three(sandbox)
    db = _stop_engine(sandbox)
    db.write_bytes(b"")

    listed = sandbox.sv("ls", "--json")
    agents = {a["name"]: a for a in json.loads(listed.stdout)}
    assert set(agents) == {"a1", "a2", "a3"}, listed.stdout + listed.stderr
    for name, agent in agents.items():
        assert agent["state"] in LIVE
        assert agent["pane"] == before[name]["pane"]
        assert agent["branch"] == f"agent/{name}"
    shown = sandbox.agent("a1")
    assert shown["contract_unverified"]["source"].endswith("a1/SESSION.md")
    assert "agents_rebuilt" in _event_kinds(db)
    text = sandbox.sv("ls")
    assert "rebuilt from tmux and git because the store" in text.stderr and "was 0 bytes" in text.stderr
    # They are watched again: a message reaches a1 and its state follows.
    sandbox.sv("send", "a1", "hello again")
    wait_until(lambda: "hello again" in sandbox.screen("a1"), message="a1 got the message")


def test_a_rebuilt_contract_is_not_merged_until_a_human_confirms_it(sandbox: Sandbox) -> None:
    sandbox.sv("start", "w1", "--task", "work")
    agent = sandbox.wait_state("w1", "idle", "working")
    worktree = Path(str(agent["worktree"]))
    (worktree / "note.txt").write_text("work\n")
    sandbox.git("add", "note.txt", cwd=worktree)
    sandbox.git("commit", "-q", "-m", "work", cwd=worktree)
    _stop_engine(sandbox).write_bytes(b"")

    refused = sandbox.sv("merge", "w1", check=False)
    assert refused.returncode == 1
    assert "its contract was rebuilt from" in refused.stderr and "--confirm-contract" in refused.stderr
    assert sandbox.git("log", "-1", "--format=%s", "main") == "initial"

    merged = sandbox.sv("merge", "w1", "--confirm-contract")
    assert "merged 1 commit(s) into main" in merged.stdout
    assert sandbox.agent("w1")["contract_unverified"] is None
