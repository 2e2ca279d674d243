"""Channel secrets stay with the engine: an agent that lists its environment, and the tmux server's, from
inside its own pane (the demo agent's `run:` steps) finds none of them, in its first run or when started again,
and neither do the `worktrees.setup` commands run for it. Both ways: sandboxed, and with `isolation: none`, where
the tmux server is within the agent's reach and what its global environment holds is what the agent reads."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from tests.conftest import DEMO_AGENT, Sandbox, wait_until

SECRETS = {"SLACK_BOT_TOKEN": "xoxb-attack-slack-secret", "SMTP_PASSWORD": "attack-smtp-secret",
           "PAGER_KEY": "attack-pager-secret"}  # PAGER_KEY: named under `alerts:` only


@pytest.mark.both_isolations
def test_an_agent_listing_its_environment_finds_no_channel_secret(sandbox: Sandbox) -> None:
    sandbox.env.update(SECRETS)
    sandbox.write_config(textwrap.dedent(f"""\
        agent:
          profile: generic
          command: {DEMO_AGENT}
          stagger: 0s
        limits:
          idle_after: 1s
        worktrees:
          setup:
            - env > setup-env.txt
        alerts:
          tmux: false
          slack: {{webhook_url: "https://hooks.slack.invalid/${{SLACK_BOT_TOKEN}}"}}
          command: "notify --key ${{PAGER_KEY}} --smtp ${{SMTP_PASSWORD}}"
        """))
    script = sandbox.root.parent / "lister.json"
    # The tmux server's lines marked, to tell a listing that reached it from one that did not.
    listing = ("env; echo ---; tmux show-environment -g | sed 's/^/tmux-global:/'; "
               "tmux show-environment | sed 's/^/tmux-session:/'; echo {}-listed-$((40 + 2))")
    script.write_text(json.dumps({"start": [{"run": listing.format("start")}],
                                  "turns": [[{"run": listing.format("turn")}]]}))
    sandbox.sv("start", "lister", "--command", f"{DEMO_AGENT} --script {script}")
    wait_until(lambda: "start-listed-42" in sandbox.screen("lister"), timeout=30, message="the listing on screen")
    assert "SUPERVISOR_AGENT=lister" in sandbox.screen("lister")  # it did list its environment
    assert sandbox.agent("lister")["isolation"] == sandbox.isolation
    worktree = Path(sandbox.ls()["lister"]["worktree"])
    # A tmux server that an earlier engine started holds them in its own environment, which the pane's next
    # command inherits: the next engine takes them out of it before it runs anything there.
    for name, value in SECRETS.items():
        assert sandbox.tmux("set-environment", "-g", name, value).returncode == 0
    sandbox.sv("engine", "stop")
    sandbox.sv("restart", "lister")  # the pane's command again, in the same pane
    sandbox.wait_state("lister", "idle", "working", timeout=30)
    sandbox.sv("send", "lister", "list again")
    wait_until(lambda: "turn-listed-42" in sandbox.screen("lister"), timeout=30, message="the listing after restart")
    sandbox.sv("stop", "lister")  # the transcript is complete
    transcript = sandbox.paths.transcript("lister").read_text(errors="replace")
    assert transcript.count("start-listed-42") == 2 and "turn-listed-42" in transcript
    seen = {"screen": sandbox.screen("lister"), "transcript": transcript,
            "setup": (worktree / "setup-env.txt").read_text()}
    # Without a sandbox the agent did reach the server's environment (the engine's own PATH among it); in the
    # sandbox, no tmux server is within its sight.
    reached = re.search(r"^tmux-global:PATH=", transcript, re.MULTILINE) is not None
    assert reached == (sandbox.isolation == "none"), transcript[-2000:]
    leaks = {(where, name) for where, text in seen.items() for name, value in SECRETS.items() if value in text}
    assert leaks == set()
