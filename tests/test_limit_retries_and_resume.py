"""What is not a limit, and when "continue" waits, under the real engine with real panes (SPEC §4 `limited`, §14).

A CLI that retries by itself within its turn is not limited; a limit told late, with the turn after it, types
nothing; "continue" is never typed into a running turn, into an input line that holds text, or while a person is
attached to the agent's session."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import DEMO_AGENT, Sandbox, wait_until
from tests.test_attach import user_tmux  # noqa: F401 (a fixture)
from tests.test_limited import prompts
from tests.test_watching import _hook, _pane_env, config, demo, events, fake_claude, states, ticks_pass, triggers

CLAUDE_RETRY = ("✻ API Error: Server is temporarily limiting requests (not your usage limit) · retrying in 3s · "
                "attempt 1/10")


def limit_events(box: Sandbox, name: str) -> list[str]:
    return [e["kind"] for e in events(box, name) if e["kind"].startswith("limit")]


def test_a_limit_the_cli_retries_within_its_turn_is_no_limit(sandbox: Sandbox) -> None:
    """Claude Code's spinner line while it retries a 429, and aider's litellm retry: the turn goes on and ends
    as usual (its `done` said), the agent never `limited`; the retry is an event."""
    config(sandbox, "resume_after_limit: true\n")
    claude = fake_claude(sandbox, "cr", f"""
        turns:
          - [{{say: "{CLAUDE_RETRY}"}}, {{work: 2s}}, {{say: "Done."}}]
    """)
    aider_like = demo(sandbox, "ar", """
        turns:
          - [{say: "litellm.RateLimitError: AnthropicException - rate_limit_error\\nRetrying in 0.2 seconds..."},
             {work: 2s}, {say: "Done."}]
    """)
    sandbox.sv("start", "c1", "--task", "go", "--command", claude)
    sandbox.sv("start", "a1", "--task", "go", "--command", aider_like)
    for name in ("c1", "a1"):
        wait_until(lambda: all("Done." in sandbox.screen(n) for n in ("c1", "a1")), message="both turns over")
        sandbox.wait_state(name, "idle")
    ticks_pass(sandbox, 2)
    for name in ("c1", "a1"):
        assert "limited" not in states(sandbox, name), limit_events(sandbox, name)
        assert sandbox.state(name) == "idle"
        assert limit_events(sandbox, name) == ["limit_retrying"]
    assert len(triggers(sandbox, "c1", "done")) == 1


def test_a_limit_ends_with_the_stop_of_the_turn_it_was_printed_in(sandbox: Sandbox) -> None:
    """A limit line with no reset and no word of a retry, and then the turn ends well (Stop, no StopFailure): the
    CLI got past it, and the agent is idle, not `limited` for a day."""
    config(sandbox)
    command = fake_claude(sandbox, "st", """
        turns:
          - [{say: "API Error: Server is temporarily limiting requests (not your usage limit) · slow down"},
             {quiet: 3s}, {say: "Done."}]
    """)
    sandbox.sv("start", "auth", "--task", "go", "--command", command)
    wait_until(lambda: "Done." in sandbox.screen("auth"), message="the turn over")
    sandbox.wait_state("auth", "idle")
    assert "limited" in states(sandbox, "auth")
    assert [t["active"] for t in triggers(sandbox, "auth", "limited")] == [True, False]
    assert [e["why"] for e in events(sandbox, "auth", "limit_lifted")] == ["it works again"]


def test_continue_is_never_typed_into_a_turn_that_runs(sandbox: Sandbox) -> None:
    """A limit with a delay of seconds, printed while the CLI still shows it working (an API's per-minute limit
    that the CLI waits out in its turn): no "continue" goes into the turn, before or after that delay."""
    config(sandbox, "resume_after_limit: true\n")
    record = sandbox.root.parent / "prompts.jsonl"
    path = sandbox.root.parent / "t.yaml"
    path.write_text('turns:\n  - [{say: "Usage limit reached · resets in 2s\\n⠋ Working… (0s)"}, {quiet: 6s},'
                    ' {say: "Done."}]\n')
    sandbox.sv("start", "auth", "--task", "go", "--command", f"{DEMO_AGENT} --script {path} --record {record}")
    wait_until(lambda: "Done." in sandbox.screen("auth"), message="the turn over")
    sandbox.wait_state("auth", "idle")
    ticks_pass(sandbox, 2)
    assert prompts(record) == ["go"]
    assert "limit_resuming" not in limit_events(sandbox, "auth")
    assert "limited" not in states(sandbox, "auth")


def test_a_limit_told_late_with_the_turn_after_it_types_nothing(sandbox: Sandbox) -> None:
    """The limit's StopFailure and the turn that came after it (the CLI went on by itself, or a person typed)
    reach a new engine together, from the spool: the limit is over, and nothing is typed into the agent."""
    config(sandbox, "resume_after_limit: true\n")
    record = sandbox.root.parent / "prompts.jsonl"
    command = fake_claude(sandbox, "late", "turns:\n  - [{quiet: 60s}]\n") + f" --record {record}"
    sandbox.sv("start", "auth", "--command", command)
    sandbox.wait_state("auth", "idle")
    env = _pane_env(sandbox, "auth")
    sandbox.sv("engine", "stop")
    told = time.time()
    _hook(env, {"hook_event_name": "StopFailure", "error": "rate_limit",
                "last_assistant_message": "Usage limit reached · resets in 1s"})
    wait_until(lambda: time.time() > told + 3, message="the reset passed")
    _hook(env, {"hook_event_name": "UserPromptSubmit", "prompt": "go on"})
    _hook(env, {"hook_event_name": "Stop"})
    sandbox.sv("engine", "start")  # it reads the spool
    ticks_pass(sandbox, 3)
    assert prompts(record) == []
    assert sandbox.state("auth") == "idle"
    assert "limit_resuming" not in limit_events(sandbox, "auth")
    assert "limited" not in states(sandbox, "auth")
    assert triggers(sandbox, "auth", "limited") == []
    assert [e["why"] for e in events(sandbox, "auth", "limit_ignored")] == ["the agent went on after it"]


def held(box: Sandbox, name: str) -> list[str]:
    return [e["why"] for e in events(box, name, "limit_resume_held")]


def limited_until_reset(box: Sandbox, seconds: int) -> Path:
    """An agent `auth` limited for `seconds` (the demo's own look: its reset to the second), with
    resume_after_limit; returns the record of its prompts."""
    config(box, "resume_after_limit: true\n")
    record = box.root.parent / "prompts.jsonl"
    path = box.root.parent / "r.yaml"
    path.write_text(f'turns:\n  - [{{limit: {seconds}s}}]\n  - [{{say: "Picked up where I stopped."}}]\n')
    box.sv("start", "auth", "--task", "go", "--command", f"{DEMO_AGENT} --script {path} --record {record}")
    box.wait_state("auth", "limited")
    return record


def test_continue_waits_while_the_input_line_holds_text(sandbox: Sandbox) -> None:
    """A person began a prompt in the limited agent's input line: "continue" is not added to it (and sent with
    it); it waits, said once, and is typed once the line is empty."""
    record = limited_until_reset(sandbox, 6)
    pane = sandbox.ls()["auth"]["pane"]
    sandbox.tmux("send-keys", "-t", pane, "-l", "half typed")
    wait_until(lambda: held(sandbox, "auth"), timeout=30, message="continue held")
    assert held(sandbox, "auth") == ["its input line holds text: half typed"]
    ticks_pass(sandbox, 2)
    assert prompts(record) == ["go"]
    assert sandbox.state("auth") == "limited"
    sandbox.tmux("send-keys", "-t", pane, "C-u")
    wait_until(lambda: "continue" in prompts(record), timeout=30, message="continue typed")
    wait_until(lambda: "Picked up where I stopped." in sandbox.screen("auth"), message="the next turn")
    assert prompts(record) == ["go", "continue"]
    assert held(sandbox, "auth") == ["its input line holds text: half typed"]
    assert limit_events(sandbox, "auth").count("limit_resuming") == 1


def test_continue_waits_while_a_person_is_attached(sandbox: Sandbox, user_tmux: list[str]) -> None:  # noqa: F811
    """A person attached to the limited agent's session (their keys and ours would mix): "continue" waits, said
    once, and is typed once they detach."""
    record = limited_until_reset(sandbox, 6)
    command = f"cd {shlex.quote(str(sandbox.root))} && {shlex.quote(sys.executable)} -m supervisor attach auth; " \
              "sleep 60"
    subprocess.run([*user_tmux, "new-session", "-d", "-s", "user", "-x", "160", "-y", "48",
                    f"env -u TMUX sh -c {shlex.quote(command)}"], env=sandbox.env, check=True)
    wait_until(lambda: "0 auth" in sandbox.tmux("list-clients", "-F", "#{client_control_mode} #{session_name}")
               .stdout.splitlines(), message="attached")
    wait_until(lambda: held(sandbox, "auth"), timeout=30, message="continue held")
    assert held(sandbox, "auth") == ["a person is attached to its session"]
    assert prompts(record) == ["go"]
    subprocess.run([*user_tmux, "send-keys", "-t", "user", "C-b", "d"], env=sandbox.env, check=True)
    wait_until(lambda: "continue" in prompts(record), timeout=30, message="continue typed after the detach")
    assert prompts(record) == ["go", "continue"]
    assert json.loads(sandbox.sv("show", "auth", "--json").stdout)["state"] in ("working", "idle")
