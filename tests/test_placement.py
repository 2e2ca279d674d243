"""Placing a plan's sessions over hosts by free places (supervisor/hosts/placement.py), without an engine."""

from __future__ import annotations

from pathlib import Path

from supervisor.config import Config, parse_config
from supervisor.core.model import Agent, State
from supervisor.hosts.placement import NoRoom, Wanted, place, room_refusal


def config(tmp_path: Path, text: str) -> Config:
    return parse_config(text, repo_root=tmp_path, source=None)


def agent(name: str, host: str, state: State = State.WORKING) -> Agent:
    return Agent(name=name, profile="generic", command="x", worktree="/w", branch="b", base="c", target="main",
                 state=state, host=host)


def test_sessions_go_where_most_places_are_free(tmp_path: Path) -> None:
    settings = config(tmp_path, "hosts:\n  local: {max_agents: 2}\n  box1: {ssh: box1, max_agents: 3}\n"
                                "  box2: {ssh: box2, max_agents: 3}\n")
    agents = [agent("old", "box1"), agent("gone", "box2", State.STOPPED), agent("next", "box2", State.QUEUED)]
    wanted = [Wanted(f"s{i}", None, i) for i in range(1, 5)]
    # Free: 2/2/2 (a queued session holds its place, a stopped one does not), then 1/2/2 …; a tie: listed first.
    assert place(settings, agents, wanted, ["box1", "box2", "local"]) == {
        "s1": "box1", "s2": "box2", "s3": "local", "s4": "box1"}
    more = [*wanted, *(Wanted(f"s{i}", None, i) for i in range(5, 8))]
    full = place(settings, agents, more, ["box1", "box2", "local"])
    assert isinstance(full, NoRoom) and (full.session, full.line) == ("s7", 7)
    pinned = place(settings, agents, [Wanted("a", "box1", 3), Wanted("b", "box1", 4), Wanted("c", "box1", 5)], None)
    assert isinstance(pinned, NoRoom) and (pinned.session, pinned.line) == ("c", 5)
    assert pinned.message.startswith("session c: host box1 has no room for it (box1 has 3 places, 3 taken")


def test_local_without_a_limit_counts_as_ten_and_takes_what_no_other_has_room_for(tmp_path: Path) -> None:
    settings = config(tmp_path, "hosts:\n  box1: {ssh: box1, max_agents: 2}\n")
    agents = [agent(f"l{i}", "local") for i in range(9)]  # local: 9 of its "10"
    wanted = [Wanted(f"s{i}", None, i) for i in range(5)]
    assert place(settings, agents, wanted, ["local", "box1"]) == {
        "s0": "box1", "s1": "local", "s2": "box1", "s3": "local", "s4": "local"}
    assert room_refusal(settings, agents * 3, "local") is None  # never full
    assert room_refusal(settings, [agent("x", "box1"), agent("y", "box1")], "box1") is not None
    assert room_refusal(settings, [agent("x", "box1"), agent("y", "box1")], "box1", besides="y") is None
