"""Usage limits and budgets under the real engine, with real panes (SPEC §4 `limited`, §5, §14).

The fake `claude` (the demo agent with `--claude --look claude`) ends a turn on a usage limit with its `limit`
step, in Claude Code 2.1.332's words and with its StopFailure hook; the demo agent's own look words its reset to
the second (`resets in 5s`), so a resume can be waited for in seconds."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.core.budget import Spent
from supervisor.engine.budgets import budget_check, repository_budget_check
from supervisor.engine.engine import Engine
from tests.conftest import DEMO_AGENT, Sandbox, wait_until
from tests.test_watching import config, events, fake_claude, ticks_pass, triggers

PARIS = "Europe/Paris"
DAY = "2026-12-06"  # a repository's budget is per day: the day its spending is told for


def prompts(path: Path) -> list[str]:
    """What the demo agent took as prompts (--record), in order."""
    if not path.exists():
        return []
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]


def limited_alerts(box: Sandbox, name: str) -> list[dict[str, Any]]:
    """The alerts that told the human the agent is limited."""
    found = json.loads(box.sv("alerts", "ls", name, "--json", "--limit", "100").stdout)
    return [a for a in found if any(i["trigger"] == "limited" and i["status"] == "firing" for i in a["items"])]


def test_a_usage_limit_is_limited_until_its_reset_not_errors(sandbox: Sandbox) -> None:
    sandbox.env["TZ"] = PARIS
    config(sandbox, "error_repeats: 1\n")  # any error line would alert at once: the limit must not
    command = fake_claude(sandbox, "lim", """
        turns:
          - [{say: "Reading the task…"}, {limit: 1h}]
    """)
    sandbox.sv("start", "auth", "--task", "go", "--command", command)
    limited = sandbox.wait_state("auth", "limited")
    shown = re.search(r"resets (\d+)(?::(\d\d))?([ap]m) \(Europe/Paris\)", sandbox.screen("auth"))
    assert shown is not None
    hour = int(shown.group(1)) % 12 + (12 if shown.group(3) == "pm" else 0)
    # The day is said too when the reset falls on another day (an hour from now, late in the evening).
    at = f"{hour:02d}:{shown.group(2) or '00'}"
    assert re.fullmatch(rf"usage limit: resets at (\w{{3}} \d\d \w{{3}} )?{at}", limited["waiting_reason"]), limited
    assert limited["limit"]["kind"] == "usage limit" and "5-hour limit" in limited["limit"]["line"]
    assert "usage limit: resets at" in sandbox.sv("ls").stdout

    ticks_pass(sandbox, 3)  # its screen reads idle all along: the limit holds it, and it is said once
    assert sandbox.state("auth") == "limited"
    assert triggers(sandbox, "auth", "errors") == []
    assert [t["active"] for t in triggers(sandbox, "auth", "limited")] == [True]
    wait_until(lambda: limited_alerts(sandbox, "auth"), message="the limited alert")
    assert len(limited_alerts(sandbox, "auth")) == 1

    sandbox.sv("send", "auth", "try now")  # still limited: the CLI says so again, and so does the state
    wait_until(lambda: sandbox.screen("auth").count("You've hit your 5-hour limit") == 2, message="the limit again")
    sandbox.wait_state("auth", "limited")


def test_on_limit_wait_is_the_state_alone(sandbox: Sandbox) -> None:
    config(sandbox, "on_limit: wait\n")
    path = sandbox.root.parent / "w.yaml"
    path.write_text("turns:\n  - [{limit: 1h}]\n")
    sandbox.sv("start", "auth", "--task", "go", "--command", f"{DEMO_AGENT} --script {path}")
    assert sandbox.wait_state("auth", "limited")["waiting_reason"].startswith("usage limit: resets at ")
    ticks_pass(sandbox, 2)
    assert triggers(sandbox, "auth", "limited") == []


def test_resume_after_limit_types_continue_once_after_the_reset_across_an_engine_restart(sandbox: Sandbox) -> None:
    config(sandbox, "resume_after_limit: true\n")
    record = sandbox.root.parent / "prompts.jsonl"
    path = sandbox.root.parent / "r.yaml"
    path.write_text('turns:\n  - [{say: "Planning…"}, {limit: 15s}]\n  - [{say: "Picked up where I stopped."}]\n')
    sandbox.sv("start", "auth", "--task", "go", "--command", f"{DEMO_AGENT} --script {path} --record {record}")
    limited = sandbox.wait_state("auth", "limited")
    reset = time.time() + 15
    assert limited["waiting_reason"].startswith("usage limit: resets at ")
    sandbox.sv("engine", "stop")  # a new engine finds it limited, and resumes it once
    sandbox.sv("engine", "start")
    assert sandbox.state("auth") == "limited"
    wait_until(lambda: "continue" in prompts(record), timeout=30, message="continue typed after the reset")
    wait_until(lambda: "Picked up where I stopped." in sandbox.screen("auth"), message="the next turn")
    taken = [json.loads(line) for line in record.read_text().splitlines()]
    assert [p["text"] for p in taken] == ["go", "continue"]
    assert taken[1]["ts"] >= reset - 1  # not before the reset (the demo's limit would refuse it)
    sandbox.wait_state("auth", "idle")
    sandbox.sv("engine", "stop")
    sandbox.sv("engine", "start")
    ticks_pass(sandbox, 3)
    assert prompts(record) == ["go", "continue"]
    assert sandbox.state("auth") == "idle"
    assert [e["kind"] for e in events(sandbox, "auth") if e["kind"].startswith("limit")].count("limit_resuming") == 1


def test_a_limit_without_a_reset_holds_until_the_agent_works_again(sandbox: Sandbox) -> None:
    config(sandbox, "resume_after_limit: true\n")
    command = fake_claude(sandbox, "rl", """
        turns:
          - [{say: "API Error: Server is temporarily limiting requests (not your usage limit) · slow down"}]
          - [{work: 1s}, {say: "Done."}]
    """, hooks=False)
    sandbox.sv("start", "auth", "--task", "go", "--command", command)
    limited = sandbox.wait_state("auth", "limited")
    assert limited["waiting_reason"] == "rate limit: no reset time given"
    ticks_pass(sandbox, 3)
    assert sandbox.state("auth") == "limited"  # nothing says when: never resumed on a guess
    sandbox.sv("send", "auth", "again")
    sandbox.wait_state("auth", "idle")
    assert [t["active"] for t in triggers(sandbox, "auth", "limited")] == [True, False]


# budgets ---------------------------------------------------------------------------------------------------


@pytest.fixture
def engine(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The real engine, serving in a thread of this process, so that a test calls what the usage service calls;
    the `supervisor` CLI reaches it as always."""
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    made = Engine(sandbox.paths)
    made.tmux.ensure_server()  # with its `_engine` session, where the control client attaches
    thread = threading.Thread(target=made.serve, daemon=True)
    thread.start()
    wait_until(lambda: sandbox.sv("engine", "status", check=False).returncode == 0, message="the engine serving")
    try:
        yield made
    finally:
        made.request_stop()
        thread.join(timeout=30)


CONTRACT = """\
# What This Session Can Do
- Modify: src/**
- Can spawn helpers: yes
- Max helpers: 2
- Budget: $20, 2M tokens

# Helper Permissions
- test-agent: src/tests/**
"""


def test_budget_thresholds_alert_once_and_stop_stops_the_tree(sandbox: Sandbox, engine: Engine) -> None:
    config(sandbox)
    with open(sandbox.root / "supervisor.yaml", "a") as handle:
        handle.write("budget:\n  per_session_tree: $10\n  per_repository_per_day: 5M tokens\n  on_budget: stop\n")
    contract = sandbox.root.parent / "auth.md"
    contract.write_text(CONTRACT)
    sandbox.sv("start", "auth", "--contract", str(contract), "--task", "go")
    sandbox.sv("helper", "t", "--role", "test-agent", "--parent", "auth")
    sandbox.wait_state("auth.t", "idle")
    engine.reload_config_if_changed()

    assert budget_check(engine, "auth", Spent(5.0, 100_000)) == []
    first = budget_check(engine, "auth", Spent(8.5, 100_000))  # $10 (the config's, narrower than $20)
    assert [c.key for c in first] == ["cost:80"]
    assert budget_check(engine, "auth", Spent(9.0, 1_000_000)) == []  # still past 80%: told once
    assert [t["summary"] for t in triggers(sandbox, "auth", "budget")] == [
        "its session tree spent $8.50 of $10.00 (80%) of its budget"]
    assert sandbox.state("auth") not in ("stopped", "killed")  # 80% alerts, and stops nothing

    # The repository's day: an alert about the repository, naming the agent whose spending moved it.
    assert [c.key for c in repository_budget_check(engine, Spent(30.0, 4_100_000), "auth.t", DAY)] == ["tokens:80"]
    assert repository_budget_check(engine, Spent(31.0, 4_200_000), "auth", DAY) == []
    told = [t for t in triggers(sandbox, "auth.t", "budget")]
    assert [(t["subject"], t["summary"]) for t in told] == [
        ("repo:", f"the repository spent 4.1M tokens of 5M tokens (80%) of its budget for {DAY}")]

    over = budget_check(engine, "auth", Spent(10.2, 1_700_000))
    assert [c.key for c in over] == ["tokens:80", "cost:100"]
    sandbox.wait_state("auth", "stopped")
    sandbox.wait_state("auth.t", "stopped")
    assert sandbox.agent("auth")["reason"] == "stopped at its budget ($10, 2M tokens)"
    budget = [t["summary"] for t in triggers(sandbox, "auth", "budget")]
    assert budget[-1] == "its session tree spent $10.20 of $10.00 (100%) of its budget — stopping it " \
                         "(budget.on_budget: stop)"
    assert budget_check(engine, "auth", Spent(12.0, 1_800_000)) == []


def test_a_helpers_budget_wider_than_its_parents_is_refused_with_file_and_line(sandbox: Sandbox) -> None:
    config(sandbox)
    templates = sandbox.root / "agents" / "templates"
    templates.mkdir(parents=True)
    (templates / "test-agent.md").write_text(
        "# What This Session Can Do\n- Modify: {{paths}}\n- Budget: $50\n\n# What We're Building\n- tests\n")
    contract = sandbox.root.parent / "auth.md"
    contract.write_text(CONTRACT)
    sandbox.sv("start", "auth", "--contract", str(contract), "--task", "go")
    sandbox.wait_state("auth", "idle")
    refused = sandbox.sv("helper", "t", "--role", "test-agent", "--parent", "auth", check=False)
    assert refused.returncode == 2
    assert f"{templates / 'test-agent.md'}:3" in refused.stderr
    assert "Budget $50 would widen the parent's budget ($20, 2M tokens)" in refused.stderr
    assert "auth.t" not in sandbox.ls()

    (templates / "test-agent.md").write_text(
        "# What This Session Can Do\n- Modify: {{paths}}\n- Budget: $5\n\n# What We're Building\n- tests\n")
    sandbox.sv("helper", "t", "--role", "test-agent", "--parent", "auth")
    assert "- Budget: $5\n" in sandbox.agent("auth.t")["contract"]
    assert "- Budget: $5" in (Path(sandbox.ls()["auth.t"]["worktree"]) / "SESSION.md").read_text()


def test_a_bad_budget_in_supervisor_yaml_names_its_line(sandbox: Sandbox) -> None:
    config(sandbox, "on_limit: sometimes\n")
    done = sandbox.sv("ls", check=False)
    assert done.returncode == 2 and "supervisor.yaml:" in done.stderr and "limits.on_limit" in done.stderr
    sandbox.write_config("budget:\n  per_session_tree: lots\n")
    done = sandbox.sv("ls", check=False)
    assert done.returncode == 2 and "supervisor.yaml:2" in done.stderr and "not a budget: 'lots'" in done.stderr

