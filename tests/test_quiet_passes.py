"""What makes the engine's passes cheap while nothing happens, counted on a real Engine object (real git, store and
inotify): a record read again when none was written decodes nothing, an audit pass with no ref moved and no
worktree's git folder changed reads no HEAD and stats no folder, and a change is still seen at the next pass."""

from __future__ import annotations

import mmap
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from supervisor.core.model import Agent, State
from supervisor.engine import auditor as auditor_module
from supervisor.engine import changes
from supervisor.engine.engine import Engine
from supervisor.engine.records import AgentRecords
from supervisor.git import agent_refs
from tests.conftest import Sandbox, wait_until


@pytest.fixture
def engine(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A real Engine object in this process (no watcher, no services running) on the sandbox's repository."""
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", str(sandbox.runtime))
    monkeypatch.setenv("HOME", str(sandbox.home))
    made = Engine(sandbox.paths)
    try:
        yield made
    finally:
        made.folders.close()
        made.store.close()


def _counted(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[tuple[Any, ...]]:
    """Calls of `module.name` from here on (still made: only counted)."""
    calls: list[tuple[Any, ...]] = []
    real: Callable[..., Any] = getattr(module, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


def _agent_with_worktree(engine: Engine, sandbox: Sandbox, name: str) -> Agent:
    worktree = sandbox.root.parent / f"wt-{name}"
    branch = f"agent/{name}/work"
    subprocess.run(["git", "worktree", "add", "-q", "-b", branch, str(worktree)], cwd=sandbox.root, check=True)
    agent = Agent(name=name, profile="generic", command="sleep 600", worktree=str(worktree), branch=branch,
                  base="HEAD", target="main")
    engine.store.add_agent(agent)
    return agent


def test_reading_every_record_again_with_none_written_decodes_nothing(engine: Engine, sandbox: Sandbox,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ann", "bob"):
        _agent_with_worktree(engine, sandbox, name)
    records = AgentRecords(engine.store)
    first, _ = records.read()
    versions = _counted(monkeypatch, engine.store, "versions")
    decoded = _counted(monkeypatch, engine.store, "get_agents")
    again, _ = records.read()
    assert [agent.name for agent in again] == ["ann", "bob"] == [agent.name for agent in first]
    assert not versions and not decoded  # nothing written: not even the versions are copied
    bob = engine.store.get_agent("bob")
    assert bob is not None
    bob.task = "a new task"
    engine.store.save_agent(bob)
    after, _ = records.read()
    assert [call[0] for call in decoded] == [["bob"]]  # only the record written is decoded
    assert [agent.task for agent in after] == [None, "a new task"]


def test_an_audit_pass_with_nothing_changed_reads_no_head_and_a_detached_one_is_seen(
        engine: Engine, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = _agent_with_worktree(engine, sandbox, "ann")
    heads = _counted(monkeypatch, auditor_module, "worktree_head")
    stats = _counted(monkeypatch, auditor_module, "stamp_of")
    ref_stats = _counted(monkeypatch, changes, "stamp_of")
    audit = engine.auditor
    audit.audit_all()
    assert len(heads) == 1  # its HEAD read once, on the first pass
    heads.clear(), stats.clear(), ref_stats.clear()
    for _ in range(3):
        audit.audit_all()
    assert heads == [] and stats == []  # its git folder did not change: not even a stat
    # The ref folders are watched too: only packed-refs, which no folder holds, is looked at with a stat.
    assert all(path == [sandbox.paths.common_dir / "packed-refs"] for (path,) in ref_stats)
    subprocess.run(["git", "checkout", "-q", "--detach"], cwd=agent.worktree, check=True)
    audit.audit_all()
    assert len(heads) == 1
    ann = engine.store.get_agent("ann")
    assert ann is not None and ann.extra.get("off_branch")  # the departure is seen at the next pass
    assert any(e.kind == "boundary" and e.data.get("off_branch") for e in engine.store.events("ann"))


def test_a_commit_on_a_watched_branch_is_audited_at_the_next_pass(engine: Engine, sandbox: Sandbox) -> None:
    agent = _agent_with_worktree(engine, sandbox, "ann")
    engine.auditor.audit_all()
    before = engine.store.get_agent("ann")
    assert before is not None
    (Path(agent.worktree) / "new.txt").write_text("x\n")
    subprocess.run(["git", "add", "new.txt"], cwd=agent.worktree, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "new"],
                   cwd=agent.worktree, check=True)
    tip = subprocess.run(["git", "rev-parse", "HEAD"], cwd=agent.worktree, check=True, capture_output=True,
                         text=True).stdout.strip()
    engine.auditor.audit_all()
    after = engine.store.get_agent("ann")
    assert after is not None and after.extra.get("audited") == tip


def test_an_audit_pass_rung_by_a_record_that_changes_nothing_audited_looks_at_nothing(
        engine: Engine, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records are written all the time (states, activity); the audit depends on few of their fields. A pass
    after such a write, with no folder changed, runs no git, reads no HEAD and stats nothing, not even
    packed-refs; a record that moves a worktree, and a folder that changed, are looked at again."""
    _agent_with_worktree(engine, sandbox, "ann")
    audit = engine.auditor
    audit.step()  # the first pass writes the record (what it audited): nothing the audit reads of it
    assert audit.passes == 1 and not audit.rung()  # everything watched: it sleeps until rung
    heads = _counted(monkeypatch, auditor_module, "worktree_head")
    stats = _counted(monkeypatch, auditor_module, "stamp_of")
    ref_stats = _counted(monkeypatch, changes, "stamp_of")
    ann = engine.store.get_agent("ann")
    assert ann is not None
    ann.task, ann.last_activity_at, ann.state = "another task", 12.0, State.IDLE
    engine.store.save_agent(ann)
    assert not audit.rung()  # a record was written, none of what the audit reads: not even woken
    audit.step()  # a pass all the same (its minute's timer, say) finds nothing to look at
    assert audit.passes == 1 and heads == stats == ref_stats == []
    assert not audit.rung()
    moved = replace(ann, worktree=ann.worktree + "-moved")
    engine.store.save_agent(moved)
    assert audit.rung()  # a record that moves a worktree rings it
    engine.store.save_agent(ann)
    audit.step()
    subprocess.run(["git", "checkout", "-q", "--detach"], cwd=ann.worktree, check=True)
    wait_until(lambda: engine.folders.dirty(()) or audit.rung(),  # events are read by any asker (the watch loop)
               message="the auditor rung by its worktree's git folder")
    audit.step()
    assert audit.passes == 2 and len(heads) == 1
    after = engine.store.get_agent("ann")
    assert after is not None and after.extra.get("off_branch")


def test_a_running_audit_is_woken_by_a_commit(engine: Engine, sandbox: Sandbox) -> None:
    """The audit's thread sleeps until told (it has no timer while every folder is watched): a commit on an
    agent's branch, told by inotify as the watch loop reads the events, is audited."""
    agent = _agent_with_worktree(engine, sandbox, "ann")
    audit = engine.auditor
    audit.start()
    try:
        wait_until(lambda: audit.passes >= 1, message="the first pass")
        (Path(agent.worktree) / "new.txt").write_text("x\n")
        subprocess.run(["git", "add", "new.txt"], cwd=agent.worktree, check=True)
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "new"],
                       cwd=agent.worktree, check=True)
        tip = subprocess.run(["git", "rev-parse", "HEAD"], cwd=agent.worktree, check=True, capture_output=True,
                             text=True).stdout.strip()

        def audited() -> bool:
            engine.folders.dirty(())  # as the watch loop reads the events every tick
            after = engine.store.get_agent("ann")
            return after is not None and after.extra.get("audited") == tip

        wait_until(audited, timeout=30, message="the commit audited")
    finally:
        audit.stop()


def test_the_ref_folders_of_agents_already_seen_are_not_worked_out_again(sandbox: Sandbox,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    agents = [Agent(name=f"a{index}", profile="generic", command="x", worktree="/w", branch=f"agent/a{index}/work",
                    base="abc", target="main", host="local" if index % 2 else "far") for index in range(6)]
    first = agent_refs.ref_folders(agents)
    worked = _counted(monkeypatch, agent_refs, "ref_folder")
    assert agent_refs.ref_folders(agents) == first
    assert worked == []
    assert "refs/supervisor/hosts/far/heads/agent/a0" in first and "refs/heads/agent/a1" in first
    moved = Agent(name="a7", profile="generic", command="x", worktree="/w", branch="agent/a7/work", base="abc",
                  target="agent/a1/work")
    assert agent_refs.ref_folders([moved]) == {"refs/heads/agent", "refs/heads/agent/a7", "refs/heads/agent/a1"}


def test_a_ref_rewritten_in_place_through_a_mapping_is_audited_by_the_whole_pass(
        engine: Engine, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write through a shared mapping tells inotify nothing and leaves the folder's stat as it was: a pass that
    trusts the kernel sees no move. The whole pass (every HEAD, every tip, at least every LOOK_AGAIN_SECONDS)
    does."""
    agent = _agent_with_worktree(engine, sandbox, "ann")
    audit = engine.auditor
    audit.step()
    audit.step()
    assert audit.passes == 1 and not audit.rung()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    tree = subprocess.run(["git", "rev-parse", "HEAD^{tree}"], cwd=agent.worktree, check=True, capture_output=True,
                          text=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=agent.worktree, check=True, capture_output=True,
                          text=True).stdout.strip()
    made = subprocess.run([*git, "commit-tree", tree, "-p", head, "-m", "in place"], cwd=agent.worktree, check=True,
                          capture_output=True, text=True).stdout.strip()
    ref = sandbox.root / ".git" / "refs" / "heads" / "agent" / "ann" / "work"
    fd = os.open(ref, os.O_RDWR)
    mapped = mmap.mmap(fd, 0)
    os.close(fd)  # the close is an event, before the write; what follows is none
    engine.folders.dirty(())  # the events so far read (as the watch loop reads them every tick)
    audit.step()
    passes = audit.passes
    mapped[:40] = made.encode()
    mapped.flush()
    assert subprocess.run(["git", "rev-parse", "agent/ann/work"], cwd=sandbox.root, check=True, capture_output=True,
                          text=True).stdout.strip() == made
    audit.audit_all()  # told nothing: nothing looked at
    assert audit.passes == passes
    ann = engine.store.get_agent("ann")
    assert ann is not None and ann.extra.get("audited") != made
    monkeypatch.setattr(auditor_module, "LOOK_AGAIN_SECONDS", 0.0)  # the whole pass is due
    audit.audit_all()
    mapped.close()
    ann = engine.store.get_agent("ann")
    assert ann is not None and ann.extra.get("audited") == made
