"""The dashboard's model without Textual: tree order, what needs a human, badges, filters, event lines."""

from __future__ import annotations

import subprocess
import sys

from supervisor.ui.fake import NOW, agent, sample_agents, sample_events
from supervisor.ui.model import Board, event_line, format_age, tree_key


def board() -> Board:
    b = Board()
    b.set_agents(sample_agents())
    b.apply_events(sample_events())
    return b


def test_tree_order_puts_helpers_under_their_parent() -> None:
    names = ["b", "a.c", "a", "a.b.c", "a-x", "a.b"]
    assert sorted(names, key=tree_key) == ["a", "a.b", "a.b.c", "a.c", "a-x", "b"]


def test_rows_show_the_tree_state_time_and_diff() -> None:
    b = board()
    b.set_diffstat({"auth": {"files": 4, "added": 126, "removed": 9}})
    cells = b.cells("auth.tests.data", NOW)
    assert cells["name"].plain == "   └ auth.tests.data"
    assert cells["state"].plain == "idle"
    assert cells["for"].plain == "20s"
    auth = b.cells("auth", NOW)
    assert auth["diff"].plain == "4f +126 −9"
    assert auth["cpu"].plain == "38%"  # 37.5 rounds to even
    assert auth["mem"].plain == "175.0M"
    assert b.cells("search", NOW)["state"].plain == "exited 3"


def test_rows_showing_the_same_share_their_cells_and_a_figure_that_shows_the_same_changes_nothing() -> None:
    """Under churn most changed cells show what another row shows (`idle`, `1s`, `0%`): one cell for all of
    them, drawn once by the table; a CPU or memory figure that moved without changing what it shows leaves
    the row as it was (the table skips it without comparing a cell)."""
    b = board()
    docs, data = b.cells("docs", NOW), b.cells("auth.tests.data", NOW)
    assert docs["state"].plain == "idle" and docs["state"] is data["state"]
    assert docs["cpu"].plain == "0%" and docs["cpu"] is data["cpu"]
    agents = sample_agents()
    api = next(a for a in agents if a["name"] == "api")
    shown = b.cells("api", NOW)
    api.update(cpu_percent=0.3, rss_bytes=api["rss_bytes"] + 10)  # 0% and 39.1M still
    b.set_agents(agents)
    assert b.cells("api", NOW) is shown
    api.update(cpu_percent=12.0, state="working")
    b.set_agents(agents)
    busy = b.cells("api", NOW)
    assert busy["cpu"].plain == "12%" and busy["state"].plain == "working"
    assert busy["state"] is b.cells("auth", NOW)["state"]  # another working agent's
    assert busy["mem"] is shown["mem"] and busy["name"] is shown["name"]


def test_rows_show_each_agents_cost_and_context_and_a_session_its_trees_cost() -> None:
    b = board()
    auth = b.cells("auth", NOW)
    assert auth["cost"].plain == "$1.84 Σ$2.30"  # its own, then its tree's (auth, auth.tests, auth.tests.data)
    assert auth["ctx"].plain == "62%"
    assert b.cells("auth.tests", NOW)["cost"].plain == "$0.41"  # a helper: its own only
    assert b.cells("billing", NOW)["ctx"].style == f"bold {b.palette.bad}"  # 91% of its window
    assert b.cells("ui", NOW)["ctx"].style == b.palette.warn
    assert b.cells("docs", NOW)["cost"].plain == "-"  # a model with no price: no cost, never a guess
    assert b.cells("reports", NOW)["ctx"].plain == "-"
    assert b.total_cost == "$6.68+"  # the repository's, and some tokens could not be priced


def test_time_in_state_changes_once_a_minute_after_the_first() -> None:
    assert [format_age(s) for s in (0, 59, 60, 119, 3599, 3600, 5400, 90000)] == [
        "0s", "59s", "1m", "1m", "59m", "1h", "1h30m", "1d1h"]


def test_attention_lists_what_needs_a_human_most_urgent_first() -> None:
    items = board().attention()
    assert [(i.name, i.kind) for i in items] == [
        ("ui", "waiting"), ("docs", "boundary"), ("billing", "stalled"), ("reports", "timeout"),
        ("search", "exited"), ("api", "ready")]
    assert "rm -rf build/" in items[0].reason
    assert items[3].reason == "timed out after 40s"
    assert items[-1].reason == "ready to merge: 1 commit into main (m merges)"


def test_badges_render_waiting_stalled_boundary_conflicts_and_failures() -> None:
    b = board()
    assert b.badges("ui").plain == "ASK CONFLICT 1"
    assert b.badges("billing").plain == "STALL"
    assert b.badges("docs").plain == "BOUNDARY"
    assert b.badges("search").plain == "EXIT"
    assert b.badges("reports").plain == "TIMEOUT"
    assert b.badges("api").plain == "READY"
    assert b.badges("auth").plain == ""
    b.set_agents([agent("x", "failed", reason="command not found: nope"), agent("y", "idle", snoozed_until="soon")])
    assert b.badges("x").plain == "FAIL"
    assert b.badges("y").plain == "zz"


def test_a_stopped_merge_needs_a_human_until_it_merges() -> None:
    b = Board()
    b.set_agents([agent("auth", "idle"), agent("ui", "queued", after=["auth"])])
    b.apply_events([{"id": 1, "agent": "auth", "kind": "trigger", "trigger": "merge", "active": True,
                     "summary": "not merged into main: conflicts in: src/app.py"}])
    assert b.badges("auth").plain == "MERGE"
    assert [(i.name, i.kind, i.reason) for i in b.attention()] == [
        ("auth", "merge", "not merged into main: conflicts in: src/app.py")]
    assert [name for name, _ in b.visible("queued", "")] == ["ui"]
    b.apply_events([{"id": 2, "agent": "auth", "kind": "trigger", "trigger": "merge", "active": False}])
    b.set_agents([agent("auth", "idle", merged="0123abcd"), agent("ui", "starting")])
    assert b.badges("auth").plain == "MERGED"
    assert b.attention() == []


def test_ended_agents_need_a_human_unless_the_human_ended_them() -> None:
    """Timed out (also a helper killed with its parent), crashed, exited by itself, could not start: listed;
    stopped or killed on request: not."""
    b = Board()
    b.set_agents([
        agent("a", "killed", reason="timed out after 1h"), agent("a.h", "killed", reason="its parent a timed out"),
        agent("b", "killed", reason="killed on request"), agent("c", "stopped", reason="stopped on request"),
        agent("d", "exited", exit_code=0), agent("e", "exited", exit_code=None,
                                                  reason="its pane is gone (its window was closed)"),
        agent("f", "failed", reason="exited 127 while starting: sh: nope: not found"),
    ])
    assert {n: b.badges(n).plain for n in b.order} == {
        "a": "TIMEOUT", "a.h": "TIMEOUT", "b": "", "c": "", "d": "EXIT 0", "e": "EXIT", "f": "FAIL"}
    assert [(i.name, i.kind, i.reason) for i in b.attention()] == [
        ("f", "failed", "exited 127 while starting: sh: nope: not found"),
        ("a", "timeout", "timed out after 1h"), ("a.h", "timeout", "its parent a timed out"),
        ("d", "exited", "exited by itself (code 0)"), ("e", "exited", "its pane is gone (its window was closed)")]
    # A timeout the engine reported only as a trigger (no reason on the record) counts too.
    b.set_agents([agent("g", "killed")])
    b.apply_events([{"id": 1, "agent": "g", "kind": "trigger", "trigger": "timeout", "active": True,
                     "summary": "timed out after 2h"}])
    assert b.badges("g").plain == "TIMEOUT" and b.attention()[0].reason == "timed out after 2h"


def test_work_ready_to_merge_is_badged_and_listed_last() -> None:
    b = Board()
    b.set_agents([agent("a", "idle", ready_to_merge=True, ahead=3), agent("b", "working", conflicts=[
        {"with": "main", "branch": "main", "files": ["x.py"]}]), agent("c", "idle", ahead=0)])
    assert b.badges("a").plain == "READY" and b.badges("c").plain == ""
    assert [(i.name, i.kind) for i in b.attention()] == [("b", "conflict"), ("a", "ready")]
    assert b.attention()[1].reason == "ready to merge: 3 commits into main (m merges)"
    b.set_agents([agent("a", "idle", merged="abc123", ahead=0)])  # merged: no longer ready
    assert b.badges("a").plain == "MERGED" and b.attention() == []


def test_ready_is_the_engines_word_and_a_conflict_with_another_agent_does_not_hide_it() -> None:
    """The engine says READY only when a merge now would go through (no conflict with its target, nothing
    uncommitted); a conflict with another agent's branch does not stop a merge into the target."""
    b = Board()
    b.set_agents([agent("a", "idle", ready_to_merge=True, ahead=1,
                        conflicts=[{"with": "b", "branch": "agent/b/work", "files": ["x.py"]}]),
                  agent("c", "idle", ready_to_merge=False, ahead=1,
                        conflicts=[{"with": "main", "branch": "main", "files": ["x.py"]}])])
    assert b.badges("a").plain == "CONFLICT 1 READY"
    assert b.badges("c").plain == "CONFLICT 1"


def test_badges_and_reasons_come_from_the_state_now_not_from_old_triggers() -> None:
    """A `waiting` or `stalled` trigger whose end never came does not outlive the state."""
    b = Board()
    b.set_agents([agent("a", "waiting", waiting_reason="Delete it?"), agent("b", "stalled")])
    b.apply_events([{"id": 1, "agent": "a", "kind": "trigger", "trigger": "waiting", "active": True,
                     "summary": "approval: Delete it?"},
                    {"id": 2, "agent": "b", "kind": "trigger", "trigger": "stalled", "active": True,
                     "summary": "no progress for 10m"}])
    assert (b.badges("a").plain, b.badges("b").plain) == ("ASK", "STALL")
    b.set_agents([agent("a", "idle"), agent("b", "working")])  # denied, and went on; moving again
    assert (b.badges("a").plain, b.badges("b").plain) == ("", "")
    assert b.attention() == []


def test_triggers_that_clear_and_agents_that_go_away_drop_their_flags() -> None:
    b = board()
    b.apply_events([{"id": 99, "agent": "docs", "kind": "trigger", "trigger": "boundary", "active": False}])
    assert b.attention_of("docs") is None
    b.apply_events([{"id": 100, "agent": "billing", "kind": "trigger", "trigger": "stalled", "active": True,
                     "summary": "no output for 10m"}])
    assert b.attention_of("billing") is not None and b.attention_of("billing").reason == "no output for 10m"
    b.set_agents([a for a in sample_agents() if a["name"] != "billing"])
    assert "billing" not in b.flags


def test_filters_by_state_and_text_keep_the_parents_of_matches() -> None:
    b = board()
    assert [n for n, _ in b.visible("all", "")] == b.order
    assert b.visible("all", "fixtures") == [("auth", True), ("auth.tests", True), ("auth.tests.data", False)]
    assert [n for n, _ in b.visible("attention", "")] == ["api", "billing", "docs", "reports", "search", "ui"]
    assert [n for n, _ in b.visible("working", "")] == ["auth", "auth.tests"]
    assert [n for n, _ in b.visible("ended", "")] == ["reports", "search"]
    assert [n for n, _ in b.visible("live", "BILLING")] == ["billing"]
    assert b.visible("all", "nothing matches this") == []


def test_event_lines_say_what_happened() -> None:
    """In the words of `supervisor events` (sentences, never Python values), without how it was launched."""
    events = {e["kind"] + str(e.get("trigger", "")): e for e in sample_events()}
    line = event_line(events["triggerwaiting"]).plain
    assert "ui" in line and "waiting began" in line and "rm -rf build/" in line
    assert "working (was starting)" in event_line(events["state"]).plain
    resolved = event_line({"id": 1, "ts": None, "agent": "a", "kind": "trigger", "trigger": "stalled",
                           "active": False, "summary": "output again"}).plain
    assert "stalled ended: output again" in resolved
    launched = event_line({"id": 2, "ts": None, "agent": "a", "kind": "launched", "previous": "starting",
                           "state": "starting", "command": "claude --verbose", "pid": 4242, "pane": "%3"},
                          with_agent=False).plain
    assert launched == "--:--:-- launched"  # not `launched starting → starting command=…`
    alert = event_line({"id": 3, "ts": None, "agent": "a", "kind": "alert", "alert": 1, "channels": ["tmux"],
                        "triggers": ["done", "waiting"], "status": "firing"}, with_agent=False).plain
    assert alert == "--:--:-- alert 1 (done, waiting) for tmux, firing"
    approved = event_line({"id": 4, "ts": None, "agent": "a", "kind": "approved", "by": "dashboard"}).plain
    assert approved.endswith("approved in the dashboard")
    for text in (launched, alert, approved):
        assert "=" not in text and "['" not in text


def test_conflicts_from_the_radar_show_as_a_badge_an_attention_item_and_an_event() -> None:
    """The shape `ls --json` gives (see supervisor.engine.radar): whom with, their branch, which files."""
    found = [{"with": "auth", "branch": "agent/auth/work", "files": ["src/app.py", "src/b.py"]},
             {"with": "main", "branch": "main", "files": ["README.md"]}]
    b = Board()
    b.set_agents([agent("ui", "working", conflicts=found), agent("api", "idle", conflicts=[]),
                  agent("docs", "waiting", conflicts=found[1:])])
    assert b.badges("ui").plain == "CONFLICT 2" and b.badges("api").plain == ""
    items = b.attention()
    assert [(i.name, i.kind) for i in items] == [("docs", "waiting"), ("ui", "conflict")]  # the least urgent
    assert items[1].reason == "conflicts with auth (src/app.py, src/b.py), main (README.md)"
    event = {"id": 7, "ts": None, "agent": "ui", "kind": "conflicts", "conflicts": found,
             "summary": "conflicts with auth (src/app.py, src/b.py), main (README.md)"}
    assert event_line(event, with_agent=False).plain == (
        "--:--:-- conflicts with auth (src/app.py, src/b.py), main (README.md)")


def test_the_model_and_the_source_adapter_do_not_import_textual() -> None:
    """They run in worker threads and in tests without an app: Textual stays in the widgets."""
    code = ("import sys, supervisor.ui.model, supervisor.ui.source, supervisor.ui.fake, supervisor.ui.actions\n"
            "print(any(m == 'textual' or m.startswith('textual.') for m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
