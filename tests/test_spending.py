"""Budgets and the context alert acting on the usage the CLIs record (SPEC §14, §5): the real engine, real tmux and
the fake Claude Code writing its session transcript (a `reply:` step is one model response), priced by `prices:`.

A session and its helper run the same script (a helper runs its parent's command): each prompt runs the next
turn, so the session's turns and the helper's first turn spend what the table below says."""

from __future__ import annotations

import re
import textwrap
from typing import Any

from supervisor.engine.spending import trees_of
from tests.conftest import Sandbox, wait_until
from tests.test_helpers import contract_file
from tests.test_usage import start, wait_usage
from tests.test_watching import triggers

MODEL = "stand-in-model"
# USD per million tokens: an input token $0.000001, a cache read $0.0000001, an output token $0.0001.
PRICES = f"prices:\n  {MODEL}: {{input: 1, output: 100, cache_read: 0.1, cache_write: 1, context_window: 100000}}\n"
TURNS = """\
turns:
  - [reply: {input: 1000, output: 200}, say: "one"]                  # $0.021; context 1%
  - [reply: {input: 1000, cache_read: 90000, output: 300}, say: "two"]  # $0.040; context 91%
  - [reply: {input: 1000, cache_read: 91000}, say: "three"]          # $0.0101; context 92%
  - [reply: {input: 3000}, say: "compacted"]                         # $0.003; context 3%
  - [reply: {input: 1000, output: 100}, say: "five"]                 # $0.011
"""


def budget_summaries(box: Sandbox, name: str) -> list[str]:
    return [t["summary"] for t in triggers(box, name, "budget")]


def context_told(box: Sandbox, name: str) -> list[tuple[bool, float]]:
    return [(t["active"], t["percent"]) for t in triggers(box, name, "context")]


def wait_for(what: Any, expected: Any, message: str) -> None:
    try:
        wait_until(lambda: what() == expected, timeout=30, interval=0.2, message=message)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it is {what()!r}") from None


def quiet_helpers(config: str) -> str:
    """The configuration with a helper's finished turn told to the human, not typed into its parent: a parent
    taking a turn of its own meanwhile would step its scripted spending ahead of the test."""
    if "helper_done:" in config:
        return config.replace("helper_done: parent", "helper_done: human")
    if re.search(r"^alerts:\n", config, re.M):
        return re.sub(r"^alerts:\n", "alerts:\n  helper_done: human\n", config, count=1, flags=re.M)
    return config + "alerts:\n  helper_done: human\n"


def test_a_trees_spending_alerts_at_80_and_stops_it_at_100_and_a_full_context_alerts_once(sandbox: Sandbox) -> None:
    config = quiet_helpers((sandbox.root / "supervisor.yaml").read_text())
    sandbox.write_config(config + PRICES + textwrap.dedent("""\
        budget:
          per_session_tree: $0.10
          per_repository_per_day: 200k tokens
          on_budget: stop
        """))  # limits.context_alert: the default, 90%
    start(sandbox, "auth", TURNS, model=MODEL, contract=str(contract_file(sandbox)))
    wait_usage(sandbox, "auth", input_tokens=1000, cost_usd=0.021)
    sandbox.sv("send", "auth", "two")
    wait_usage(sandbox, "auth", cache_read_tokens=90000, context_percent=91.0)
    wait_for(lambda: context_told(sandbox, "auth"), [(True, 91.0)], "auth's context alert at 91%")

    # The helper's spending is its session tree's: $0.061 + $0.021 crosses 80% of the tree's $0.10.
    sandbox.sv("helper", "t", "--role", "test-agent", "--parent", "auth", "--task", "go")
    wait_usage(sandbox, "auth.t", input_tokens=1000, cost_usd=0.021)
    wait_for(lambda: budget_summaries(sandbox, "auth"), ["its session tree spent $0.08 of $0.10 (80%) of its budget"],
             "the tree's 80% alert")
    assert budget_summaries(sandbox, "auth.t") == []  # told about the tree, at its session
    assert sandbox.state("auth") not in ("stopped", "killed")

    # What was told is remembered: a new engine tells neither the 80% nor the full context again.
    sandbox.sv("engine", "stop")
    sandbox.sv("engine", "start")
    sandbox.sv("send", "auth", "three")  # context 92%: still over; the tree at 92%
    wait_usage(sandbox, "auth", cache_read_tokens=181000, context_percent=92.0)
    # The repository's day: 1.2k + 91.3k + 1.2k (the helper's) + 92k tokens is past 80% of 200k.
    wait_for(lambda: [t["summary"].rsplit(" for ", 1)[0] for t in triggers(sandbox, "auth", "budget")
                      if t.get("subject") == "repo:"],
             ["the repository spent 185.7k tokens of 200k tokens (80%) of its budget"], "the repository's 80% alert")
    sandbox.sv("send", "auth", "compact")  # the context drops: the alert is resolved
    wait_usage(sandbox, "auth", input_tokens=6000, context_percent=3.0)
    wait_for(lambda: context_told(sandbox, "auth"), [(True, 91.0), (False, 3.0)], "auth's context alert resolved")
    assert budget_summaries(sandbox, "auth")[:1] == ["its session tree spent $0.08 of $0.10 (80%) of its budget"]
    assert len(budget_summaries(sandbox, "auth")) == 2  # the tree's 80%, the repository's 80%: each once

    sandbox.sv("send", "auth", "five")  # $0.1061: 100% of the tree's budget, with on_budget: stop
    sandbox.wait_state("auth", "stopped", timeout=30)
    sandbox.wait_state("auth.t", "stopped", timeout=30)
    assert sandbox.agent("auth")["reason"] == "stopped at its budget ($0.1)"
    assert budget_summaries(sandbox, "auth")[-1] == \
        "its session tree spent $0.11 of $0.10 (100%) of its budget — stopping it (budget.on_budget: stop)"
    assert [t["percent"] for t in triggers(sandbox, "auth", "budget") if t.get("subject") != "repo:"] == [80, 100]
    assert context_told(sandbox, "auth.t") == []  # its context never passed 1%



def test_a_helper_with_a_budget_of_its_own_is_stopped_at_it_and_its_session_goes_on(sandbox: Sandbox) -> None:
    config = (sandbox.root / "supervisor.yaml").read_text()
    sandbox.write_config(config + PRICES + "budget:\n  per_session_tree: $0.10\n  on_budget: stop\n")
    templates = sandbox.root / "agents" / "templates"
    templates.mkdir(parents=True)
    (templates / "test-agent.md").write_text(
        "# What This Session Can Do\n- Modify: {{paths}}\n- Budget: $0.02\n\n# What We're Building\n- tests\n")
    start(sandbox, "auth", TURNS, model=MODEL, contract=str(contract_file(sandbox)))
    wait_usage(sandbox, "auth", cost_usd=0.021)
    sandbox.sv("helper", "t", "--role", "test-agent", "--parent", "auth", "--task", "go")
    sandbox.wait_state("auth.t", "stopped", timeout=30)  # its $0.021 is past its own $0.02
    assert sandbox.agent("auth.t")["reason"] == "stopped at its budget ($0.02)"
    assert budget_summaries(sandbox, "auth.t") == [
        "its tree spent $0.02 of $0.02 (80%) of its budget",
        "its tree spent $0.02 of $0.02 (100%) of its budget — stopping it (budget.on_budget: stop)"]
    assert budget_summaries(sandbox, "auth") == []  # the session tree is at 42% of its $0.10
    assert sandbox.state("auth") not in ("stopped", "killed")


def test_the_trees_a_change_of_usage_concerns() -> None:
    assert trees_of({"auth.t.d", "ui"}) == ["auth", "ui", "auth.t", "auth.t.d"]
    assert trees_of({"auth", "auth.t"}) == ["auth", "auth.t"]
