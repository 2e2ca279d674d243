"""Slack delivery against a real local HTTP server speaking the Web API (chat.postMessage, auth.test) and an
incoming webhook: exactly once, in order per agent, threaded, through 500s, 429 + Retry-After and an outage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.alerts.channels.slack import SlackChannel
from supervisor.alerts.content import make_test_alert
from supervisor.config import SlackConfig
from tests.alert_servers import TOKEN, Rigs, SlackServer
from tests.conftest import wait_until


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rigs]:
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    rigs = Rigs(tmp_path)
    yield rigs
    rigs.close()


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    server = SlackServer().start()
    yield server
    server.stop()


def bot_config(server: SlackServer, group_wait: str = "0.1s") -> str:
    return (f"  group_wait: {group_wait}\n"
            f"  slack: {{token: \"${{SLACK_BOT_TOKEN}}\", channel: \"#agents\", base_url: \"{server.base_url}\"}}\n")


def delivered(r: Any, count: int) -> list[dict[str, Any]]:
    """Wait until `count` alerts exist and every one is sent on every channel."""
    def done() -> list[dict[str, Any]] | None:
        alerts = r.history()
        ok = len(alerts) == count and all(d["status"] == "sent" for a in alerts for d in a["deliveries"])
        return alerts if ok else None

    return list(wait_until(done, timeout=20, message=f"{count} alerts delivered"))


def test_alerts_arrive_once_in_order_per_agent_threaded_through_500_and_429(rig: Rigs, slack: SlackServer) -> None:
    slack.fail_next(500)  # the first post fails
    slack.fail_next(429, retry_after=1)  # its retry is rate limited for a second
    r = rig(bot_config(slack, "0.5s"))  # room for the test to fire the group's two triggers on a loaded machine
    r.fire("auth", "errors", "auth-1")
    r.fire("auth", "waiting", "approve Bash(make deploy)?")  # grouped with auth-1: one message
    r.fire("ui", "errors", "ui-1")
    wait_until(lambda: len(r.history()) == 2, message="the first two alerts written")
    r.fire("auth", "errors", "auth-2")  # queued behind auth-1, which is still retrying
    r.fire("auth", "waiting", "approve Bash(make deploy)? (asked again)")  # still true: deduplicated
    wait_until(lambda: len(r.history()) == 3, message="auth-2 written")
    r.fire("ui", "errors", "ui-2")
    r.fire("auth", "errors", "auth-3")
    alerts = delivered(r, 5)

    posted = slack.posted()
    assert len(posted) == 5  # exactly once each, although two attempts failed
    for agent in ("auth", "ui"):
        mine = [m for m in posted if f"*{agent}*" in m["text"]]
        order = [next(s for s in (f"{agent}-1", f"{agent}-2", f"{agent}-3") if s in m["text"]) for m in mine]
        assert order == sorted(order)  # in order per agent
        assert "thread_ts" not in mine[0]  # the first alert about an agent starts its thread
        assert ("approve Bash(make deploy)?" in mine[0]["text"]) == (agent == "auth")
        assert not any("asked again" in m["text"] for m in mine)
        assert all(m["thread_ts"] == mine[0]["ts"] and m["channel"] == "C0AGENTS" for m in mine[1:])
        assert all(m["reply_broadcast"] is True for m in mine[1:])  # firing replies are also shown in the channel
    assert len(slack.requests) == 7  # five messages, one 500, one 429
    assert sum(d["attempts"] for a in alerts for d in a["deliveries"]) == 7
    assert slack.requests[2].at - slack.requests[1].at >= 0.95, "Retry-After was not honoured"


def test_an_outage_is_retried_until_the_server_is_back_and_the_token_is_never_stored(
        rig: Rigs, slack: SlackServer) -> None:
    slack.stop()  # Slack is down
    r = rig(bot_config(slack))
    r.fire("auth", "waiting", "waiting for approval: Bash(git push)")

    def failing() -> bool:
        alerts = r.history()
        return bool(alerts) and alerts[0]["deliveries"][0]["attempts"] >= 2

    wait_until(failing, message="two failed attempts")
    error = r.history()[0]["deliveries"][0]["last_error"]
    assert "Slack unreachable" in error and TOKEN not in error
    slack.start()
    (alert,) = delivered(r, 1)
    assert len(slack.posted()) == 1
    assert alert["deliveries"][0]["attempts"] >= 3
    r.close()
    state = r.root / ".git" / "supervisor"
    for path in state.glob("state.db*"):
        assert TOKEN.encode() not in path.read_bytes(), f"the token leaked into {path.name}"


def test_an_incoming_webhook_gets_each_alert_once_and_honours_retry_after(rig: Rigs, slack: SlackServer) -> None:
    slack.fail_next(429, retry_after=0.5)
    r = rig(f"  group_wait: 0.1s\n  slack: {{webhook_url: \"{slack.webhook_url}\"}}\n")
    r.fire("auth", "done", "finished its turn", screen=["all tests pass"])
    r.fire("ui", "exited", "exited with code 1", exit_code=1)
    delivered(r, 2)
    hooks = [m for m in slack.messages if m["path"] == slack.webhook_url.split(str(slack.port))[1]]
    assert len(hooks) == 2
    assert sorted(h["text"].split("*")[1] for h in hooks) == ["auth", "ui"]
    assert slack.requests[1].at - slack.requests[0].at >= 0.45


def test_message_content_names_repo_agent_trigger_task_screen_duration_and_command(
        rig: Rigs, slack: SlackServer) -> None:
    r = rig(bot_config(slack))
    r.fire("auth", "waiting", "waiting for approval: Bash(rm -rf build/)", task="Harden the <auth> package",
           screen=["$ make build", "Do you want to proceed?", "❯ 1. Yes"], since=__import__("time").time() - 125)
    delivered(r, 1)
    text = slack.posted()[0]["text"]
    assert "*auth* in `repo`" in text
    assert "waiting (for 2m" in text and "Bash(rm -rf build/)" in text
    assert "Harden the &lt;auth&gt; package" in text  # escaped as Slack requires
    assert "Do you want to proceed?" in text and "```" in text
    assert "`supervisor approve auth`" in text and "`supervisor attach auth`" in text


def test_reachability_check_uses_auth_test(slack: SlackServer) -> None:
    good = SlackChannel(SlackConfig(token=TOKEN, channel="#agents", base_url=slack.base_url)).check()
    assert good.ok and "token valid" in good.detail
    bad = SlackChannel(SlackConfig(token="xoxb-wrong", channel="#agents", base_url=slack.base_url)).check()
    assert not bad.ok and "invalid_auth" in bad.detail and "xoxb-wrong" not in bad.detail
    sent = SlackChannel(SlackConfig(token=TOKEN, channel="#agents", base_url=slack.base_url)).send(
        make_test_alert("repo", 0.0), None, 0.0)
    assert sent.thread is not None and slack.posted()[0]["channel"] == "#agents"
    slack.stop()
    down = SlackChannel(SlackConfig(token=TOKEN, channel="#agents", base_url=slack.base_url)).check()
    assert not down.ok and "unreachable" in down.detail
