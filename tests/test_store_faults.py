"""The store as a database users can trust, with a real engine, tmux and git: an empty store with agents
still running, a damaged store, a store from a newer version, one bad record, and a start that fails."""

from __future__ import annotations

import hashlib
import json
import random
import re
import shlex
import shutil
import sqlite3
from pathlib import Path

from supervisor.core.schema import LATEST
from tests.conftest import Sandbox, process_gone, wait_until

FIXTURES = Path(__file__).parent / "fixtures" / "stores"
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
        assert agent["branch"] == f"agent/{name}/work"
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
    assert "w1 cannot be merged into main: its contract was rebuilt from its worktree's SESSION.md" in refused.stderr
    assert "--confirm-contract" in refused.stderr
    assert sandbox.git("log", "-1", "--format=%s", "main") == "initial"

    merged = sandbox.sv("merge", "w1", "--confirm-contract")
    assert "merged 1 commit(s) into main" in merged.stdout
    assert sandbox.agent("w1")["contract_unverified"] is None


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_damaged_store_is_named_at_start_and_doctor_repair_recovers_it(sandbox: Sandbox) -> None:
    _start_three(sandbox)
    db = _stop_engine(sandbox)
    with sqlite3.connect(db) as conn:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        roots = dict(conn.execute("SELECT name, rootpage FROM sqlite_master "
                                  "WHERE name IN ('agents', 'events_by_agent')"))
    # Garbage over the agents table and the events' index: the event log itself stays readable.
    data = bytearray(db.read_bytes())
    noise = random.Random(16)
    for number in roots.values():
        data[(number - 1) * page:number * page] = bytes(noise.randrange(256) for _ in range(page))
    db.write_bytes(bytes(data))

    failed = sandbox.sv("ls", check=False)
    assert failed.returncode == 1
    first = failed.stderr.splitlines()[0]
    assert first.startswith(f"supervisor: error: the engine did not start: the store {db} is damaged: "), failed.stderr
    assert "supervisor doctor --repair" in failed.stderr
    assert f"the store {db} is damaged" in sandbox.paths.engine_log.read_text()

    repaired = sandbox.sv("doctor", "--repair", check=False)
    assert "store: repaired" in repaired.stdout, repaired.stdout + repaired.stderr
    kept = [p for p in db.parent.iterdir() if re.fullmatch(r"state\.db\.broken-[0-9-]+", p.name)]
    assert len(kept) == 1 and kept[0].read_bytes() == bytes(data)  # the damaged file is kept as it was
    assert "rebuilt from tmux and git: a1, a2, a3" in repaired.stdout
    agents = sandbox.ls()
    assert set(agents) == {"a1", "a2", "a3"}
    assert all(agent["state"] in LIVE for agent in agents.values())
    kinds = _event_kinds(db)
    assert kinds.count("task_delivered") == 3  # the event log was carried over
    assert "store_repaired" in kinds and kinds.count("rebuilt") == 3


def test_a_file_that_is_not_sqlite_is_refused_with_what_to_do(sandbox: Sandbox) -> None:
    sandbox.sv("engine", "start")
    db = _stop_engine(sandbox)
    db.write_text("this is not a database\n" * 100)

    failed = sandbox.sv("ls", check=False)
    assert failed.returncode == 1
    assert f"the store {db} is damaged: it is not an SQLite database" in failed.stderr
    assert "it is not an SQLite database" in sandbox.paths.engine_log.read_text()
    assert db.read_text() == "this is not a database\n" * 100


def test_a_store_of_a_newer_version_is_refused_and_left_unchanged(sandbox: Sandbox) -> None:
    sandbox.sv("engine", "start")
    db = _stop_engine(sandbox)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA user_version=99")
    before = _sha(db)

    failed = sandbox.sv("ls", check=False)
    assert failed.returncode == 1
    assert (f"the engine did not start: {db} is a store of schema version 99, made by a newer supervisor; "
            f"this one knows versions up to {LATEST}") in failed.stderr, failed.stderr
    assert "upgrade supervisor" in failed.stderr
    repair = sandbox.sv("doctor", "--repair", check=False)
    assert repair.returncode == 1 and "schema version 99" in repair.stderr
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 99
    assert _sha(db) == before


def test_one_bad_agent_record_is_set_aside_and_the_others_work(sandbox: Sandbox) -> None:
    sandbox.sv("start", "good", "--task", "work")
    sandbox.sv("start", "bad", "--task", "work")
    sandbox.wait_state("bad", "idle", "working")
    sandbox.sv("stop", "bad")
    db = _stop_engine(sandbox)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE agents SET data = '{\"name\": \"bad\", \"state\": \"no-such-state\"' WHERE name = 'bad'")

    listed = sandbox.sv("ls")
    assert "good" in listed.stdout and "bad" not in listed.stdout
    assert "agent bad: its record" in listed.stderr and "set aside" in listed.stderr
    assert sandbox.state("good") in LIVE
    sandbox.sv("send", "good", "still here")
    wait_until(lambda: "still here" in sandbox.screen("good"), message="good got the message")
    with sqlite3.connect(db) as conn:
        kept = conn.execute("SELECT name, data FROM agents_set_aside").fetchall()
    assert kept == [("bad", '{"name": "bad", "state": "no-such-state"')]
    assert "agent bad: its record" in sandbox.paths.engine_log.read_text()
    sandbox.sv("start", "bad2", "--task", "the name space still works")


def test_an_older_store_is_migrated_when_the_engine_starts(sandbox: Sandbox) -> None:
    db = Path(sandbox.paths.db_path)
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "v1.db", db)

    agents = sandbox.ls()
    assert set(agents) == {"auth", "auth.tests", "billing"}
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
        assert conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 1
    assert db.with_name("state.db.v1").exists()  # the store as it was before the migration


def test_an_empty_store_brings_back_stopped_agents_from_their_worktrees_too(sandbox: Sandbox) -> None:
    sandbox.sv("start", "live", "--task", "work")
    sandbox.sv("start", "done", "--task", "work")
    sandbox.wait_state("done", "idle", "working")
    sandbox.sv("stop", "done")
    sandbox.git("checkout", "-q", "-b", "agent/not-an-agent/work")  # the main worktree is never taken for one
    _stop_engine(sandbox).write_bytes(b"")

    agents = sandbox.ls()
    assert set(agents) == {"live", "done"}
    assert agents["live"]["state"] in LIVE
    assert agents["done"]["state"] == "stopped"
    assert sandbox.agent("done")["reason"] == "rebuilt from git: no pane of it was running"


def test_a_rebuilt_agent_s_worktree_is_where_supervisor_put_it_never_where_its_pane_went(
        sandbox: Sandbox, tmp_path: Path) -> None:
    """Its pane's current folder is the agent's to choose: an agent that checked out another branch and
    moved its pane to the main worktree is rebuilt with its own worktree; one whose worktree is gone is not
    rebuilt at all. Without a sandbox: in one, the folder tmux shows for the pane is bubblewrap's own, the
    worktree, wherever the agent goes inside."""
    sandbox.write_config((sandbox.root / "supervisor.yaml").read_text() + "isolation: none\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name, folder in (("moved", sandbox.root), ("gone", elsewhere)):
        sandbox.sv("start", name, "--command", f"cd {shlex.quote(str(folder))} && exec sleep 600")
    before = sandbox.ls()
    own = Path(str(before["moved"]["worktree"]))

    def went(name: str, folder: Path) -> bool:
        shown = sandbox.tmux("display-message", "-p", "-t", str(before[name]["pane"]), "#{pane_current_path}")
        return shown.stdout.strip() == str(folder)

    wait_until(lambda: went("moved", sandbox.root) and went("gone", elsewhere), message="the panes moved away")
    sandbox.git("checkout", "-q", "-b", "elsewhere", cwd=own)  # git lists no worktree on agent/moved/work now
    sandbox.git("worktree", "remove", "--force", str(before["gone"]["worktree"]))
    _stop_engine(sandbox).write_bytes(b"")

    agents = sandbox.ls()
    assert Path(str(agents["moved"]["worktree"])) == own and agents["moved"]["state"] in LIVE
    assert set(agents) == {"moved"}
    log = sandbox.paths.engine_log.read_text()
    assert f"agent gone: its pane runs, but {before['gone']['worktree']} is not a worktree of this repository" in log
