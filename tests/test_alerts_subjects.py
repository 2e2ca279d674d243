"""Alerts whose subject is not one agent: supervisor's tmux server dying under several agents is one alert
naming them all (through the real engine, a real tmux server killed with SIGKILL, a real command channel), and
a subject such as `tmux:` can be silenced, listed and rendered like an agent."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.alerts.content import Item, build
from supervisor.core import subjects
from supervisor.core.triggers import Trigger, fire_about
from supervisor.errors import UsageError
from tests.alert_servers import Rig, Rigs
from tests.conftest import DEMO_AGENT, Sandbox, process_gone, wait_until

SERVER_ENDED = "tmux server ended"


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rigs]:
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", str(tmp_path / "run"))
    rigs = Rigs(tmp_path)
    yield rigs
    rigs.close()


def alerts(sandbox: Sandbox) -> list[dict[str, Any]]:
    return list(json.loads(sandbox.sv("alerts", "ls", "--json", "--limit", "100").stdout))


def test_the_tmux_server_dying_under_three_agents_is_one_alert_naming_them_all(
        sandbox: Sandbox, tmp_path: Path) -> None:
    out = tmp_path / "told"
    out.mkdir()
    sandbox.write_config(
        f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\nlimits:\n  idle_after: 1s\n"
        f"alerts:\n  tmux: false\n  group_wait: 2s\n"
        f"  command: \"printf '%s' \\\"$SUPERVISOR_ALERT_TEXT\\\" > {out}/$SUPERVISOR_ALERT_ID.txt\"\n")
    names = ("api", "db", "web")
    for name in names:
        sandbox.sv("start", name, "--command", "sleep 600")
    for name in names:
        sandbox.wait_state(name, "working", "idle")
    server = int(sandbox.tmux("display-message", "-p", "#{pid}").stdout.strip())
    os.kill(server, signal.SIGKILL)
    wait_until(lambda: process_gone(server), message="the tmux server dead")
    for name in names:
        assert sandbox.wait_state(name, "exited")["reason"] == SERVER_ENDED
    # A later alert is written no earlier than any queued before it: once it is, every one about the three is.
    sandbox.sv("start", "later", "--command", "sh -c 'exit 5'")
    wait_until(lambda: any(a["agent"] == "later" for a in alerts(sandbox)), timeout=20, message="the later alert")
    about_them = [a for a in alerts(sandbox) if a["agent"] != "later"]
    assert len(about_them) == 1, [(a["agent"], a["title"]) for a in about_them]
    (alert,) = about_them
    assert alert["subject"] == "tmux:" and alert["agent"] is None
    assert sorted(alert["agents"]) == list(names)
    assert [item["trigger"] for item in alert["items"]] == ["exited"]
    assert alert["actions"][0] == "supervisor restore --all"
    # The command channel told it once, naming the server and all three agents, with the way back.
    def told() -> list[str]:
        return [path.read_text() for path in sorted(out.glob("*.txt"))]

    wait_until(lambda: len(told()) == 2, timeout=20, message="both alerts run through the command channel")
    (text,) = [t for t in told() if "later" not in t]
    assert "supervisor's tmux server" in text and "agents: api, db, web" in text
    assert "supervisor restore --all" in text
    assert "tmux: (api, db, web)" in sandbox.sv("alerts", "ls").stdout
    # Each agent's own listing shows the alert that names it.
    assert [a["id"] for a in json.loads(sandbox.sv("alerts", "ls", "db", "--json").stdout)] == [alert["id"]]


def gone_with_server(r: Rig, name: str) -> int:
    """What the watcher fires for an agent whose pane went with supervisor's tmux server."""
    return r.fire(name, "exited", SERVER_ENDED, subject="tmux:", subject_summary="the tmux server ended")


def test_a_silenced_subject_holds_back_its_alert_and_nothing_else(rig: Rigs) -> None:
    r = rig("  group_wait: 0.3s\n")
    silence = r.alerts.op_snooze(name="tmux:", duration="1h")
    assert silence["subject"] == "tmux:"
    assert [s["subject"] for s in r.alerts.op_silences()] == ["tmux:"]
    gone_with_server(r, "api")
    gone_with_server(r, "db")
    r.fire("web", "exited", "exited with code 1", exit_code=1)  # an agent's own exit is not the server's
    wait_until(lambda: r.history(), message="web's alert")
    # The silenced group was due before web's, so it was settled (dropped, a one-off) by the time web's went.
    assert [(a["subject"], a["agents"]) for a in r.history()] == [("web", ["web"])]
    r.alerts.op_unsnooze(name="tmux:")
    gone_with_server(r, "api")
    gone_with_server(r, "db")
    wait_until(lambda: len(r.history()) == 2, message="the tmux alert once the silence ended")
    alert = r.history()[-1]
    assert (alert["subject"], alert["agent"], alert["agents"]) == ("tmux:", None, ["api", "db"])
    assert alert["title"] == "repo: supervisor's tmux server exited — the tmux server ended"
    assert alert["actions"] == ["supervisor restore --all", "supervisor ls"]
    assert [a["id"] for a in r.alerts.op_alerts("api")] == [alert["id"]]
    assert [a["id"] for a in r.alerts.op_alerts("tmux:")] == [alert["id"]]


def test_a_subject_that_is_not_an_agent_is_rendered_as_itself_with_its_agents() -> None:
    item = Item(trigger="exited", status="firing", summary="the tmux server ended", since=0.0)
    content = build(7, "repo", "tmux:", [item], {}, 0.0, agents=("api", "db"))
    assert content.slack_text(0.0).splitlines()[:3] == [
        ":rotating_light: *supervisor's tmux server* in `repo`",
        "• exited (at 00:00:00 UTC): the tmux server ended",
        "*Agents:* api, db"]
    text = content.text(0.0)
    assert "about: supervisor's tmux server\nagents: api, db\n" in text
    assert "snooze: supervisor alerts snooze tmux: --for 1h" in text
    env = content.environment(0.0)
    assert (env["SUPERVISOR_ALERT_SUBJECT"], env["SUPERVISOR_ALERT_AGENTS"], env["SUPERVISOR_ALERT_AGENT"]) == (
        "tmux:", "api db", "")
    assert content.one_line().startswith("supervisor: repo: supervisor's tmux server exited")
    with pytest.raises(UsageError, match="invalid alert subject"):
        subjects.check("tmux:a b")
    with pytest.raises(UsageError, match="invalid alert subject"):
        subjects.check("disk:")
    assert subjects.check("host:build-2") == "host:build-2" and subjects.covers("host:", "host:build-2")
    assert not subjects.covers("host:", "tmux:") and not subjects.covers("api", "api.test")


def test_a_subject_is_snoozed_listed_and_unsnoozed_through_the_cli(sandbox: Sandbox) -> None:
    assert "snoozed tmux: for" in sandbox.sv("alerts", "snooze", "tmux:", "--for", "30m").stdout
    assert [s["subject"] for s in json.loads(sandbox.sv("alerts", "silences", "--json").stdout)] == ["tmux:"]
    assert json.loads(sandbox.sv("alerts", "ls", "tmux:", "--json").stdout) == []
    assert "removed 1 silence(s)" in sandbox.sv("alerts", "unsnooze", "tmux:").stdout
    refused = sandbox.sv("alerts", "snooze", "disk:", check=False)
    assert refused.returncode != 0 and "invalid alert subject 'disk:'" in refused.stderr
    refused = sandbox.sv("alerts", "ls", "../x", check=False)
    assert refused.returncode != 0 and "'../x'" in refused.stderr


def test_a_host_down_is_one_alert_about_the_host_even_with_no_agent_and_resolved_once(rig: Rigs) -> None:
    r = rig("  group_wait: 0s\n")

    def host_down(agents: list[str], active: bool = True) -> int:
        return fire_about(r.engine.store, "host:box2", Trigger.HOST_DOWN, "Connection refused", agents,
                          active=active)

    host_down([])  # an event of no agent's: the router reads its subject
    wait_until(lambda: r.history(), message="the host_down alert")
    host_down(["api"])  # still down (an engine started again, say): the same alert, not another
    r.fire("web", "done", "finished its turn")
    wait_until(lambda: len(r.history()) == 2, message="web's alert, after anything the second host_down made")
    host_down(["api"], active=False)  # back: its agents with it
    wait_until(lambda: len(r.history()) == 3, message="the resolved follow-up")
    firing, done, resolved = r.history()
    assert done["subject"] == "web"
    assert (firing["subject"], firing["agent"], firing["agents"], items(firing)) == (
        "host:box2", None, [], [("host_down", "firing")])
    assert firing["title"] == "repo: host box2 host_down — Connection refused"
    assert firing["actions"] == ["supervisor hosts check box2", "supervisor hosts"]
    assert (resolved["subject"], resolved["agents"], items(resolved)) == ("host:box2", ["api"],
                                                                         [("host_down", "resolved")])


def items(alert: dict[str, Any]) -> list[tuple[str, str]]:
    return [(item["trigger"], item["status"]) for item in alert["items"]]
