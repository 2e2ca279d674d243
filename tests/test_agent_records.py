"""The records the watch loops, the host ticks and commits-home read every tick or pass (`AgentRecords`): a record
written since the last read is read again (a host agent stopped, moved to another host, a new one, one removed),
and one not written since is kept as decoded, not decoded again."""

from __future__ import annotations

from pathlib import Path

from supervisor.core.model import Agent, State
from supervisor.core.store import Store
from supervisor.engine.records import AgentRecords


def agent(name: str, folder: Path, host: str = "local") -> Agent:
    return Agent(name=name, profile="generic", command="sh", worktree=str(folder), branch=f"agent/{name}",
                 base="0" * 40, target="main", state=State.WORKING, host=host)


def test_records_written_since_are_read_again_the_rest_kept(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    for name in ("a", "b", "c"):
        store.add_agent(agent(name, tmp_path, host="box"))
    records = AgentRecords(store)
    first, versions = records.read()
    assert [a.name for a in first] == ["a", "b", "c"]
    assert versions == store.versions()

    stopped = store.get_agent("b")
    assert stopped is not None
    stopped.state = State.STOPPED
    store.save_agent(stopped)
    store.delete_agent("c")
    store.add_agent(agent("d", tmp_path, host="box"))

    second, versions = records.read()
    by_name = {a.name: a for a in second}
    assert sorted(by_name) == ["a", "b", "d"]
    assert by_name["b"].state == State.STOPPED
    assert by_name["a"] is first[0]  # not written since: kept as decoded
    assert versions == store.versions()
