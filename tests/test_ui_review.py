"""Reviewing work inside the dashboard, against the real engine: `D` shows everything an agent changed against
its base (what `supervisor diff` prints) file by file, coloured, scrollable; `C` puts a best-of-N's candidates
side by side (what `supervisor compare` prints), and opens one's diff."""

from __future__ import annotations

import re
from typing import Any

from rich.style import Style
from textual.pilot import Pilot

from supervisor.ui.review import CompareScreen, DiffScreen
from supervisor.ui.testing import loaded, run, screen_is, wait_for
from tests.conftest import DEMO_AGENT, Sandbox, wait_until
from tests.test_plans import script
from tests.test_review import started_with_changes
from tests.test_ui_engine import engine, make

__all__ = ["engine"]

LONG_MODULE = "".join(f"def step_{i}(value: int) -> int:\n    return value + {i}  # step {i}\n\n" for i in range(60))


def diff_screen(pilot: Pilot[Any]) -> DiffScreen:
    screen = pilot.app.screen
    assert isinstance(screen, DiffScreen)
    return screen


def test_d_shows_the_agents_changes_file_by_file_coloured_and_scrollable(engine: Sandbox) -> None:
    worktree = started_with_changes(engine)  # a commit, an uncommitted edit and a new file
    (worktree / "src" / "steps.py").write_text(LONG_MODULE)  # long enough to scroll
    printed = engine.sv("diff", "auth").stdout
    paths_printed = re.findall(r"^\+\+\+ b/(.+)$", printed, flags=re.MULTILINE)
    app, _ = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot, preview=False)
        app.select_agent("auth")
        await pilot.press("D")
        await screen_is(pilot, DiffScreen)
        screen = diff_screen(pilot)
        await wait_for(pilot, lambda: screen.loaded and screen.files, message="auth's changes")
        assert screen.agent == "auth"
        assert [found["path"] for found in screen.files] == paths_printed  # what `supervisor diff` shows
        assert set(paths_printed) == {"README.md", "notes.txt", "src/app.py", "src/steps.py"}
        by_path = {found["path"]: found for found in screen.files}
        assert by_path["notes.txt"]["status"] == "added" and by_path["src/app.py"]["added"] == 1

        # n and p walk the files; the body shows the file's hunks with its lines
        first = screen.current
        assert first == 0 and screen.files[0]["path"] in screen.body.text
        await pilot.press("n")
        await wait_for(pilot, lambda: screen.current == 1, message="the next file")
        assert screen.files[1]["path"] in str(screen.body.border_title)
        await pilot.press("p")
        await wait_for(pilot, lambda: screen.current == 0, message="the previous file")

        # src/steps.py: its code coloured as Python, and it scrolls
        while screen.files[screen.current]["path"] != "src/steps.py":
            await pilot.press("n")
            await pilot.pause()
        assert "+def step_59(value: int) -> int:" in screen.body.text
        keyword = next(line for line in screen.body.lines if line.plain.startswith("+def step_1("))
        styles = [Style.parse(span.style) if isinstance(span.style, str) else span.style for span in keyword.spans]
        assert any(style.color is not None and style.bold for style in styles), "`def` coloured as a keyword"
        assert any(style.bgcolor is not None for style in styles), "an added line has its background"
        assert screen.body.scroll_y == 0
        screen.body.focus()
        await pilot.press("pagedown")
        await wait_for(pilot, lambda: screen.body.scroll_y > 0, message="the diff scrolled")

        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, DiffScreen), message="back to the dashboard")
        assert app.selected == "auth"

    run(app, scenario)


def test_c_compares_a_best_of_n_and_opens_a_candidates_diff(engine: Sandbox) -> None:
    engine.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\n  stagger: 0s\n"
                        "limits:\n  idle_after: 1s\n")
    command = script(engine, "cand", [[{"run": "sh -c 'echo $SUPERVISOR_AGENT > by.txt'"}, {"commit": "a candidate"}]])
    engine.sv("start", "fix", "--best-of", "2", "--task", "fix it", "--command", command)
    for name in ("fix-1", "fix-2"):
        wait_until(lambda n=name: engine.ls()[n]["state"] == "idle" and  # type: ignore[misc]
                   engine.git("rev-list", "--count", f"main..agent/{n}/work") == "1", 30, message=f"{name} committed")
    app, _ = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot, preview=False)
        app.select_agent("fix-1")
        await pilot.press("C")
        await screen_is(pilot, CompareScreen)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await wait_for(pilot, lambda: screen.loaded and screen.candidates, message="the comparison")
        assert screen.candidates == ["fix-1", "fix-2"]
        labels = [str(screen.table.get_row_at(index)[0]) for index in range(screen.table.row_count)]
        assert {"state", "commits", "files", "lines", "by.txt"} <= set(labels)
        assert screen.chosen == "fix-1"
        await pilot.press("right")
        await wait_for(pilot, lambda: screen.chosen == "fix-2", message="the second candidate")
        await pilot.press("D")  # its diff, from the comparison
        await screen_is(pilot, DiffScreen)
        diff = app.screen
        assert isinstance(diff, DiffScreen)
        await wait_for(pilot, lambda: diff.loaded and diff.files, message="fix-2's changes")
        assert diff.agent == "fix-2" and [found["path"] for found in diff.files] == ["by.txt"]
        assert "+fix-2" in diff.body.text
        assert app.selected == "fix-2"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, DiffScreen), message="back to the dashboard")

    run(app, scenario)


def test_d_on_an_agent_that_changed_nothing_says_so(engine: Sandbox) -> None:
    engine.sv("start", "calm", "--command", "sleep 600")
    app, _ = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot, preview=False)
        await pilot.press("D")
        await screen_is(pilot, DiffScreen)
        screen = diff_screen(pilot)
        await wait_for(pilot, lambda: screen.loaded, message="the answer")
        assert screen.files == [] and "changed nothing against its base" in screen.body.text
        await pilot.press("q")
        await wait_for(pilot, lambda: not isinstance(app.screen, DiffScreen))

    run(app, scenario)



def test_the_diff_runs_none_of_the_programs_an_agents_configuration_names(engine: Sandbox) -> None:
    """The worktree and the repository's configuration are the agent's to write: a textconv or external diff
    named there must not run as the engine (D) nor as the user (`supervisor diff`)."""
    worktree = started_with_changes(engine)
    marker = engine.root.parent / "ran"
    (worktree / ".gitattributes").write_text("*.txt diff=evil\n")
    engine.git("config", "diff.evil.textconv", f"sh -c 'touch {marker}; cat \"$1\"' -")
    engine.git("config", "diff.external", f"sh -c 'touch {marker}'")
    printed = engine.sv("diff", "auth").stdout
    assert "+a new file" in printed and not marker.exists()
    app, _ = make(engine)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot, preview=False)
        app.select_agent("auth")
        await pilot.press("D")
        await screen_is(pilot, DiffScreen)
        screen = diff_screen(pilot)
        await wait_for(pilot, lambda: screen.loaded and screen.files, message="auth's changes")
        notes = next(found for found in screen.files if found["path"] == "notes.txt")
        assert notes["lines"][-1] == "+a new file"
        assert not marker.exists()

    run(app, scenario)
