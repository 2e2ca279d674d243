"""`ls --all` and `ui --all`: every repository of the user with a running engine, each reached through its own
engine; an engine killed without a word is not shown as running; an agent sees none of it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from supervisor.ui.app import SupervisorApp
from supervisor.ui.everywhere import EverySource
from supervisor.ui.screens import ConfirmScreen, NewSessionScreen
from supervisor.ui.testing import loaded, run, screen_is, wait_for
from tests.conftest import PYTHON, Sandbox, process_gone, wait_until
from tests.test_attacks_sandbox import _configure, _rogue

LIVE = ("starting", "working", "idle")


@pytest.fixture
def beta(sandbox: Sandbox) -> Iterator[Path]:
    """A second repository beside the sandbox's, with the same configuration and runtime directory; its tmux
    server is ended afterwards (the sandbox's teardown ends its engine with everything else of the test's)."""
    root = sandbox.root.parent / "beta"
    root.mkdir()
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "initial"]):
        sandbox.git(*args, cwd=root)
    shutil.copy(sandbox.root / "supervisor.yaml", root / "supervisor.yaml")
    try:
        yield root
    finally:
        sandbox.sv("down", "--kill", cwd=root, check=False)


def registrations(box: Sandbox) -> list[str]:
    folder = box.runtime / "engines"
    return sorted(path.name for path in folder.glob("*.json")) if folder.is_dir() else []


def engine_pid(box: Sandbox, cwd: Path) -> int:
    return int(json.loads(box.sv("engine", "status", "--json", cwd=cwd).stdout)["pid"])


def test_ls_all_lists_every_repository_whose_engine_runs_and_not_one_that_was_killed(
        sandbox: Sandbox, beta: Path) -> None:
    sandbox.sv("start", "one", "--task", "first")
    sandbox.sv("start", "two", "--task", "second", cwd=beta)
    anywhere = sandbox.home  # no repository: `--all` needs none

    listed = json.loads(sandbox.sv("ls", "--all", "--json", cwd=anywhere).stdout)
    assert sorted((a["repo_name"], a["repo"], a["name"]) for a in listed) == [
        ("beta", str(beta), "two"), ("repo", str(sandbox.root), "one")]
    assert all(a["task"] in ("first", "second") and a["state"] in LIVE for a in listed)
    text = sandbox.sv("ls", "--all", cwd=anywhere).stdout
    assert re.search(rf"^beta  {re.escape(str(beta))}  \(1 agent, engine pid \d+\)\nNAME .*\ntwo ", text, re.M), text
    assert re.search(rf"^repo  {re.escape(str(sandbox.root))}  \(1 agent, engine pid \d+\)\nNAME .*\none ",
                     text, re.M), text

    # kill -9: the engine leaves its registration behind; it is not listed, and the stale file goes
    killed = engine_pid(sandbox, beta)
    assert f"{killed}.json" in registrations(sandbox)
    os.kill(killed, signal.SIGKILL)
    wait_until(lambda: process_gone(killed), message="the engine killed")
    listed = json.loads(sandbox.sv("ls", "--all", "--json", cwd=anywhere).stdout)
    assert [(a["repo_name"], a["name"]) for a in listed] == [("repo", "one")]
    assert f"{killed}.json" not in registrations(sandbox)
    assert "beta" not in sandbox.sv("ls", "--all", cwd=anywhere).stdout

    # an engine that stops removes its own registration
    sandbox.sv("engine", "stop")
    assert registrations(sandbox) == []
    done = sandbox.sv("ls", "--all", cwd=anywhere)
    assert "no repository of yours has a running engine" in done.stdout


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (apt-get install bubblewrap)")
@pytest.mark.parametrize("isolation", ["sandbox", "none"])
def test_an_agent_sees_no_other_repository(sandbox: Sandbox, beta: Path, isolation: str) -> None:
    """Sandboxed, the registry is out of sight; without a sandbox it can be read (the control), but the command
    refuses `ls --all` and a request to another repository's engine from an agent's pane."""
    _configure(sandbox, isolation)
    sandbox.sv("start", "two", "--task", "second", cwd=beta)
    sv = f"{PYTHON} -m supervisor"
    probes = (f"probe registry \"ls '{sandbox.runtime}/engines' | grep -q json\"\n"
              f"probe ls_all \"{sv} ls --all\"\n"
              f"probe other_repo \"cd '{beta}' && {sv} ls\"\n"
              f"{sv} ls --all 2>&1 | tail -2\n"
              f"cd '{beta}' && {sv} ls 2>&1 | tail -2\n")
    found = _rogue(sandbox, probes)
    assert found == {"registry": "yes" if isolation == "none" else "no", "ls_all": "no", "other_repo": "no"}
    if isolation == "none":  # refused by the command itself, saying why (in a sandbox, nothing is there to see)
        log = sandbox.sv("log", "rogue").stdout
        assert "refused: `ls --all` is the human's view of every repository" in log
        assert f"reaches only the engine of its own repository, not the one of {beta}" in log
    assert json.loads(sandbox.sv("ls", "--json", cwd=beta).stdout)[0]["state"] in LIVE  # untouched


def test_another_repositorys_engine_refuses_an_agent_that_drops_its_variables(sandbox: Sandbox, beta: Path) -> None:
    """Without a sandbox, an agent that unsets its own variables reaches the other engine's human socket as the
    human would: that engine ties the caller to an agent all the same (its lineage) and refuses it."""
    _configure(sandbox, "none")
    sandbox.sv("start", "two", "--task", "second", cwd=beta)
    sv = f"env -u SUPERVISOR_SOCKET -u SUPERVISOR_AGENT {PYTHON} -m supervisor"
    found = _rogue(sandbox, f"probe stop_other \"cd '{beta}' && {sv} stop two\"\n"
                            f"cd '{beta}' && {sv} stop two 2>&1 | tail -2\n")
    assert found == {"stop_other": "no"}
    assert "another repository's agent" in sandbox.sv("log", "rogue").stdout
    assert json.loads(sandbox.sv("ls", "--json", cwd=beta).stdout)[0]["state"] in LIVE  # untouched


@pytest.fixture
def engines(sandbox: Sandbox, beta: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Both repositories' engines, reachable from this process (the dashboard runs in the test's process)."""
    for key in ("HOME", "SUPERVISOR_RUNTIME_DIR", "SHELL", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL",
                "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(key, sandbox.env[key])
    monkeypatch.delenv("TMUX", raising=False)
    yield beta


def test_the_dashboard_of_every_repository_acts_through_each_agents_own_engine(sandbox: Sandbox,
                                                                                engines: Path) -> None:
    beta = engines
    sandbox.sv("start", "one", "--task", "first")
    sandbox.sv("start", "two", "--task", "second", cwd=beta)
    app = SupervisorApp(EverySource(long_poll=5), refresh_seconds=0.5, screen_seconds=0.2, long_poll=5)

    def beta_agents() -> dict[str, Any]:
        return {a["name"]: a for a in json.loads(sandbox.sv("ls", "--json", cwd=beta).stdout)}

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        # grouped by repository: the tree of each, repository by repository
        assert app.agents_table.keys == ["beta:two", "repo:one"]
        assert app.title == "supervisor — every repository (beta, repo)"

        # s on beta's agent stops it in beta's engine, and only it
        app.select_agent("beta:two")
        await wait_for(pilot, lambda: app._preview_of == "beta:two" and "second" in app.preview.text,
                       message="beta:two's pane")
        await pilot.press("s")
        await screen_is(pilot, ConfirmScreen)
        await pilot.click("#stop")
        await wait_for(pilot, lambda: app.board.agents["beta:two"]["state"] == "stopped", message="two stopped")
        assert beta_agents()["two"]["state"] == "stopped"
        assert sandbox.state("one") in LIVE

        # n starts a session in the selected agent's repository
        await pilot.press("n")
        await screen_is(pilot, NewSessionScreen)
        app.screen.query_one("#name", Input).value = "three"
        app.screen.query_one("#task", Input).value = "third"
        await pilot.click("#start")
        await wait_for(pilot, lambda: "beta:three" in app.board.agents, message="beta:three listed")
        assert beta_agents()["three"]["task"] == "third"
        assert "three" not in sandbox.ls()

        # the repository whose engine is killed leaves the dashboard; the other stays
        killed = engine_pid(sandbox, sandbox.root)
        os.kill(killed, signal.SIGKILL)
        await wait_for(pilot, lambda: not any(name.startswith("repo:") for name in app.board.agents),
                       message="repo's agents gone with its engine")
        assert sorted(app.board.agents) == ["beta:three", "beta:two"]
        assert app.engine_down is None

    try:
        run(app, scenario)
    finally:
        subprocess.run(["tmux", "-S", str(sandbox.tmux_socket), "kill-server"], capture_output=True, check=False)
