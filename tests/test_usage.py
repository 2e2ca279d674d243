"""Usage under the real engine, real tmux and the fake Claude Code (the demo agent with `--claude`), whose session
transcript is written as the real CLI writes it: each assistant message on several lines, its usage repeated."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from tests.conftest import Sandbox, wait_until
from tests.test_helpers import contract_file
from tests.test_watching import fake_claude

TURNS = """\
turns:
  - [reply: {input: 100, output: 50, cache_read: 1000, cache_write: 200, blocks: 3}, say: "first done"]
  - [reply: {input: 10, output: 5, cache_read: 2000, blocks: 2}, say: "second done"]
"""
SONNET = {"input": 3e-6, "output": 15e-6, "cache_read": 0.3e-6, "cache_write": 3.75e-6}  # the packaged table's


def start(box: Sandbox, name: str, script: str = TURNS, *, model: str | None = None, task: str = "go",
          contract: str | None = None) -> None:
    command = fake_claude(box, name, script) + (f" --model {model}" if model else "")
    args = ["start", name, "--command", command, "--task", task]
    box.sv(*args, *(["--contract", contract] if contract else []))


def usage(box: Sandbox, name: str) -> dict[str, Any]:
    return dict(box.agent(name)["usage"])


def wait_usage(box: Sandbox, name: str, **expected: Any) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        found = usage(box, name)
        return found if all(found[key] == value for key, value in expected.items()) else None

    try:
        return dict(wait_until(reached, timeout=30, interval=0.2, message=f"{name}'s usage {expected}"))
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it is {usage(box, name)}") from None


def cost(input: int, output: int, cache_read: int, cache_write: int, price: dict[str, float] = SONNET) -> float:
    return round(input * price["input"] + output * price["output"] + cache_read * price["cache_read"]
                 + cache_write * price["cache_write"], 6)


def test_tokens_are_the_transcripts_counted_once_per_message_with_cost_and_context(sandbox: Sandbox) -> None:
    start(sandbox, "c1")
    first = wait_usage(sandbox, "c1", input_tokens=100, output_tokens=50, cache_read_tokens=1000,
                       cache_write_tokens=200)  # three lines of one message: counted once
    assert first["model"] == "claude-sonnet-4-5"
    assert first["cost_usd"] == cost(100, 50, 1000, 200)
    assert first["context_percent"] == round(100 * (100 + 1000 + 200) / 200_000, 1)
    sandbox.sv("send", "c1", "again")
    second = wait_usage(sandbox, "c1", input_tokens=110, output_tokens=55, cache_read_tokens=3000)
    assert second["cache_write_tokens"] == 200
    assert second["cost_usd"] == cost(110, 55, 3000, 200)
    assert second["context_percent"] == round(100 * (10 + 2000) / 200_000, 1)  # the newest turn's, not a sum
    assert sandbox.ls()["c1"]["usage"] == second
    shown = sandbox.sv("show", "c1").stdout
    assert "usage:" in shown and "110 in, 55 out, 3.0k cache read, 200 cache written" in shown
    assert f"${second['cost_usd']:.4f}" in shown and "claude-sonnet-4-5" in shown and "context:" in shown


def test_an_unknown_model_shows_tokens_and_no_cost_until_prices_names_it(sandbox: Sandbox) -> None:
    start(sandbox, "u1", model="stand-in-model-9")
    found = wait_usage(sandbox, "u1", input_tokens=100, output_tokens=50)
    assert found["cost_usd"] is None and found["unpriced_tokens"] == 1350 and found["context_percent"] is None
    assert "-" in sandbox.sv("show", "u1").stdout.split("cost:", 1)[1].splitlines()[0]
    config = (sandbox.root / "supervisor.yaml").read_text()
    sandbox.write_config(config + textwrap.dedent("""\
        prices:
          stand-in-model-9: {input: 1, output: 2, cache_read: 0.5, cache_write: 4, context_window: 10000}
        """))
    priced = {"input": 1e-6, "output": 2e-6, "cache_read": 0.5e-6, "cache_write": 4e-6}
    found = wait_usage(sandbox, "u1", cost_usd=cost(100, 50, 1000, 200, priced))
    assert found["unpriced_tokens"] == 0 and found["context_percent"] == 13.0


def test_totals_per_tree_and_every_grouping_of_usage(sandbox: Sandbox) -> None:
    # Whether the parent hears its helper is done (and takes a turn of its own on it) depends on whether the
    # watcher saw the helper working before idle; the human hears instead, so the totals below are exact.
    sandbox.write_config((sandbox.root / "supervisor.yaml").read_text() + "alerts:\n  helper_done: human\n")
    contract = contract_file(sandbox)
    start(sandbox, "auth", contract=str(contract))
    start(sandbox, "ui")
    wait_usage(sandbox, "auth", input_tokens=100)
    sandbox.sv("helper", "tests", "--role", "test-agent", "--parent", "auth", "--task", "go")
    wait_usage(sandbox, "auth.tests", input_tokens=100)
    wait_usage(sandbox, "ui", input_tokens=100)
    one = cost(100, 50, 1000, 200)

    by_agent = json.loads(sandbox.sv("usage", "--json").stdout)
    assert {row["key"]: row["input_tokens"] for row in by_agent["rows"]} == {"auth": 100, "auth.tests": 100, "ui": 100}
    assert by_agent["total"]["input_tokens"] == 300 and by_agent["total"]["cost_usd"] == round(3 * one, 6)
    by_tree = json.loads(sandbox.sv("usage", "--by", "tree", "--json").stdout)
    assert {row["key"]: (row["input_tokens"], row["cost_usd"]) for row in by_tree["rows"]} == \
        {"auth": (200, round(2 * one, 6)), "ui": (100, one)}
    by_plan = json.loads(sandbox.sv("usage", "--by", "plan", "--json").stdout)
    assert [(row["key"], row["input_tokens"]) for row in by_plan["rows"]] == [("-", 300)]  # none runs in a plan
    by_day = json.loads(sandbox.sv("usage", "--by", "day", "--json", "--since", "1d").stdout)
    assert len(by_day["rows"]) == 1 and by_day["rows"][0]["output_tokens"] == 150
    # Only what was spent from now on: none of the turns above.
    since_now = json.loads(sandbox.sv("usage", "--json", "--since", "0s").stdout)["rows"]
    recent = {row["key"]: row["input_tokens"] for row in since_now}
    every = {row["key"]: row["input_tokens"] for row in json.loads(sandbox.sv("usage", "--json").stdout)["rows"]}
    assert all(recent[key] <= every[key] - 100 for key in recent), (recent, every)

    table = sandbox.sv("usage", "--by", "tree").stdout.splitlines()
    assert table[0].split()[:3] == ["TREE", "IN", "OUT"] and table[-1].split()[0] == "total"
    refused = sandbox.sv("usage", "--since", "yesterday", check=False)
    assert refused.returncode == 2 and "not a duration" in refused.stderr


def test_usage_survives_an_engine_restart_and_a_removed_agents_spending_stays_the_repositorys(
        sandbox: Sandbox) -> None:
    start(sandbox, "c1")
    before = wait_usage(sandbox, "c1", input_tokens=100, output_tokens=50)
    sandbox.sv("engine", "stop")
    sandbox.sv("engine", "start")
    assert usage(sandbox, "c1") == before  # from the store, and its transcript not counted again
    sandbox.sv("send", "c1", "again")
    wait_usage(sandbox, "c1", input_tokens=110)  # read on from where it was
    sandbox.sv("stop", "c1")
    sandbox.sv("rm", "--force", "c1")
    rows = json.loads(sandbox.sv("usage", "--json").stdout)["rows"]
    assert [(row["key"], row["removed"], row["input_tokens"]) for row in rows] == [("c1", True, 110)]
    start(sandbox, "c1", task="go again")  # a new agent of the same name starts from nothing
    wait_usage(sandbox, "c1", input_tokens=100)
    answer = json.loads(sandbox.sv("usage", "--json").stdout)
    assert answer["total"]["input_tokens"] == 210
    assert [(row["key"], row["removed"], row["input_tokens"]) for row in answer["rows"]] == \
        [("c1", True, 110), ("c1", False, 100)]  # the removed agent's spending apart from the new one's
    assert answer["rows"][0]["removed_at"] and answer["rows"][1]["removed_at"] is None
    assert answer["rows"][1]["context_percent"] is not None and answer["rows"][0]["context_percent"] is None
    table = sandbox.sv("usage").stdout.splitlines()
    assert [line.split()[:2] for line in table[1:3]] == [["c1", "(removed)"], ["c1", "100"]]
