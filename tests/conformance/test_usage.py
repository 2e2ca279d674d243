"""Usage read from the real CLIs' own records after a turn: Claude Code's session JSONL and Codex's rollout file,
written by the pinned CLIs against stand-ins that answer every request with known, distinct token counts.

With SUPERVISOR_CONFORMANCE_RECORD=1 each test keeps the record file it read as a fixture
(tests/fixtures/<cli>/usage/), which tests/test_usage_readers.py reads without the CLI."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from tests.conformance.conftest import FIXTURES, Run
from tests.conformance.test_claude import API_KEY as CLAUDE_KEY
from tests.conformance.test_claude import claude_home
from tests.conformance.test_codex import API_KEY as CODEX_KEY
from tests.conformance.test_codex import codex_home
from tests.conftest import wait_until


def keep(run: Run, record: Path, name: str) -> None:
    if os.environ.get("SUPERVISOR_CONFORMANCE_RECORD"):
        folder = FIXTURES / run.cli / "usage"
        folder.mkdir(parents=True, exist_ok=True)
        text = run.sanitize(record.read_text())
        for real in (str(run.box.root.parent), os.path.expanduser("~")):  # Codex names the account's home too
            text = text.replace(real, "/home/user")
        (folder / name).write_text(text)


def usage_of(run: Run, name: str, **expected: int) -> dict[str, object]:
    """The agent's `usage` once `expected` tokens are counted (the reader runs every few seconds)."""
    def counted() -> dict[str, object] | None:
        usage = dict(run.box.agent(name)["usage"])
        return usage if all(usage[key] == value for key, value in expected.items()) else None

    try:
        return dict(wait_until(counted, timeout=30, interval=0.5, message=f"{expected}"))
    except AssertionError as exc:
        raise AssertionError(f"{exc}; usage: {run.box.agent(name)['usage']}") from None


def test_claude_code_tokens_are_its_transcripts_counted_once_per_message(real_cli: Callable[..., Run]) -> None:
    run = real_cli("claude", FIXTURES / "claude" / "messages_api.py", args="--model claude-sonnet-4-5", env={
        "ANTHROPIC_API_KEY": CLAUDE_KEY, "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1"})
    run.box.env["ANTHROPIC_BASE_URL"] = run.api.url
    claude_home(run)
    box = run.box
    box.sv("start", "c1", "--task", "run a command")  # a tool_use answer, then "Done.": two responses, one turn
    wait_until(lambda: "Stop" in run.hooks("c1"), timeout=90, message="the turn over")
    records = sorted((box.paths.agent_state("c1") / "projects").rglob("*.jsonl"))
    assert records, "Claude Code wrote no session transcript in its config folder"
    main = max(records, key=lambda p: p.stat().st_size)
    loop = [r for r in run.api.requests() if r.get("tools")]  # the agent loop's answers (side requests have none)
    assert [r["answer"] for r in loop] == ["tool", "text"], loop
    outputs = 20 + 10  # messages_api.py streams output_tokens 20 for a tool_use, 10 for a text
    usage = usage_of(run, "c1", input_tokens=12 * 2, cache_write_tokens=340 * 2, cache_read_tokens=1200 * 2)
    keep(run, main, "session.jsonl")
    assert usage["output_tokens"] == outputs, usage  # each response once, with its final count
    assert usage["model"] == "claude-sonnet-4-5"
    cost = (24 * 3 + 680 * 3.75 + 2400 * 0.3 + outputs * 15) / 1e6  # the packaged table's Sonnet 4.5 prices
    assert usage["cost_usd"] == round(cost, 6), usage  # USD to the millionth
    assert usage["context_percent"] == round(100 * (12 + 340 + 1200) / 200_000, 1), usage


def test_codex_tokens_are_its_rollouts_token_counts(real_cli: Callable[..., Run]) -> None:
    run = real_cli("codex", FIXTURES / "codex" / "responses_api.py", env={"OPENAI_API_KEY": CODEX_KEY},
                   extra_config="prices:\n  gpt-5.5: {input: 2, output: 10, cache_read: 0.2}\n")
    codex_home(run)
    box = run.box
    box.sv("start", "x1", "--task", "hello there")
    box.wait_state("x1", "idle", timeout=90)
    turns = wait_until(lambda: [r for r in run.api.requests() if "exec_command" in (r.get("tools") or [])],
                       timeout=30, message="the stand-in answered")
    count = len(turns)  # the agent's own turns (its side request naming the session is not in its rollout)
    rollouts = wait_until(lambda: sorted((box.paths.agent_state("x1") / "sessions").rglob("rollout-*.jsonl")),
                          timeout=30, message="Codex's rollout file in its CODEX_HOME")
    keep(run, rollouts[-1], "rollout.jsonl")
    usage = usage_of(run, "x1", input_tokens=(1500 - 1024) * count, cache_read_tokens=1024 * count,
                     output_tokens=8 * count)
    assert usage["cache_write_tokens"] == 0
    assert usage["model"] == "gpt-5.5"
    expected = ((1500 - 1024) * 2 + 1024 * 0.2 + 8 * 10) * count / 1e6
    assert usage["cost_usd"] == round(expected, 6), usage
    assert usage["context_percent"] is not None  # Codex reports its window in the rollout
