"""The readers of each CLI's records, on the files the real CLIs wrote (tests/fixtures/<cli>/usage/, recorded by
tests/conformance/test_usage.py), and reading them incrementally into a real store."""

from __future__ import annotations

import json
import os
from pathlib import Path

from supervisor.core.model import Agent
from supervisor.core.store import Store
from supervisor.demo.claude_transcript import Transcript
from supervisor.usage import aider, claude, codex, gemini
from supervisor.usage.follow import Mark, read_new
from supervisor.usage.ledger import Ledger
from supervisor.usage.prices import Prices
from supervisor.usage.records import Found, Record
from supervisor.usage.totals import of_tree, per_agent, per_tree

FIXTURES = Path(__file__).parent / "fixtures"


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def test_claude_codes_transcript_gives_each_response_once_with_its_cache_and_context() -> None:
    found = claude.read(lines(FIXTURES / "claude" / "usage" / "session.jsonl"), {})
    assert [(r.input, r.output, r.cache_read, r.cache_write, r.model) for r in found.records] == [
        (12, 20, 1200, 340, "claude-sonnet-4-5"), (12, 10, 1200, 340, "claude-sonnet-4-5")]
    assert len({r.key for r in found.records}) == 2
    assert found.context is not None and found.context.tokens == 12 + 1200 + 340


def test_codexs_rollout_gives_its_token_counts_with_cached_input_apart_and_its_window() -> None:
    found = codex.read(lines(FIXTURES / "codex" / "usage" / "rollout.jsonl"), {})
    assert [(r.input, r.output, r.cache_read, r.model) for r in found.records] == [(476, 8, 1024, "gpt-5.5")]
    assert found.context is not None and found.context.tokens == 1500 and found.context.window
    again = codex.read([line for line in lines(FIXTURES / "codex" / "usage" / "rollout.jsonl")
                        if b"token_count" in line], {"total": {"input_tokens": 1500, "cached_input_tokens": 1024,
                                                               "output_tokens": 8}})
    assert again.records == []  # the same running total again is no new response


def test_geminis_chat_file_counts_a_message_written_again_with_its_tokens_once() -> None:
    # Gemini CLI 0.61's ChatRecordingService: metadata, the message, then the same message again with tokens.
    records = [{"sessionId": "s", "projectHash": "p", "startTime": "2026-12-06T10:00:00Z"},
               {"id": "u1", "timestamp": "2026-12-06T10:00:01Z", "type": "user", "content": "hi"},
               {"id": "g1", "timestamp": "2026-12-06T10:00:02Z", "type": "gemini", "content": "Hel",
                "model": "gemini-2.5-pro", "tokens": None},
               {"id": "g1", "timestamp": "2026-12-06T10:00:02Z", "type": "gemini", "content": "Hello",
                "model": "gemini-2.5-pro",
                "tokens": {"input": 1000, "output": 40, "cached": 600, "thoughts": 10, "tool": 5, "total": 1055}},
               {"$set": {"lastUpdated": "2026-12-06T10:00:03Z"}}]
    found = gemini.read([json.dumps(r).encode() for r in records], {})
    assert [(r.key, r.input, r.output, r.cache_read) for r in found.records] == [("gemini:g1", 405, 50, 600)]
    assert found.context is not None and found.context.tokens == 1005


def test_aiders_analytics_log_gives_each_exchange_and_the_command_lines_model_when_aider_hides_it() -> None:
    entry = {"event": "message_send", "user_id": "u", "time": 1_790_000_000, "properties": {
        "main_model": "openai/REDACTED", "prompt_tokens": 900, "completion_tokens": 70, "cost": 0.0}}
    found = aider.read([json.dumps({"event": "launched", "properties": {}}).encode(), json.dumps(entry).encode()],
                       {"model": "openai/gpt-5"})
    assert [(r.input, r.output, r.model, r.ts) for r in found.records] == [(900, 70, "openai/gpt-5", 1_790_000_000)]


def test_reading_goes_on_from_where_it_stopped_and_starts_over_when_the_file_is_replaced_or_truncated(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    ledger = Ledger(store)
    prices = Prices()
    config = tmp_path / "claude"
    writer = Transcript(config, tmp_path)
    writer.reply("s1", {"input": 100, "output": 50, "cache_read": 1000, "cache_write": 200, "blocks": 3})
    path = writer.path("s1")
    mark: Mark | None = None

    def read() -> bool:
        nonlocal mark
        chunk = read_new(path, mark)
        if chunk is None:
            return False
        found = claude.read(chunk.lines, chunk.mark.state)
        ledger.save("a", str(path), chunk.mark, found)
        mark = chunk.mark
        return True

    assert read() and not read()  # nothing new: not read again
    assert per_agent(ledger, prices)["a"].input_tokens == 100  # three lines, one message
    with path.open("ab") as handle:  # a line being written: it waits for its end
        handle.write(b'{"type":"assistant","message":{"id":"m2","usage":{"input_tokens":7')
    assert not read()
    with path.open("ab") as handle:
        handle.write(b',"output_tokens":3}},"requestId":"r2"}\n')
    assert read() and per_agent(ledger, prices)["a"].input_tokens == 107  # the append is counted
    text = path.read_bytes()
    path.write_bytes(b"")  # truncated, then written again as it was: read from its start, nothing doubled
    assert read() and mark is not None and mark.offset == 0
    path.write_bytes(text)
    assert read() and per_agent(ledger, prices)["a"].input_tokens == 107
    replaced = path.with_suffix(".new")  # replaced by another file (a rename): read anew, nothing doubled
    replaced.write_bytes(text)
    os.replace(replaced, path)
    assert read() and per_agent(ledger, prices)["a"].output_tokens == 53
    path.write_bytes(text[: text.index(b"\n") + 1])  # truncated to its first line: started over
    assert read() and mark is not None and mark.offset == path.stat().st_size
    store.close()


def test_prices_come_from_the_table_by_the_name_a_cli_gives_and_unknown_models_are_never_priced(
        tmp_path: Path) -> None:
    prices = Prices()
    for name in ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "anthropic/claude-sonnet-4-5"):
        assert prices.get(name) == prices.get("claude-sonnet-4-5") is not None
    assert prices.window("claude-opus-4-6[1m]") == 1_000_000
    assert prices.get("stand-in-model") is None
    store = Store(tmp_path / "state.db")
    ledger = Ledger(store)
    writer = Transcript(tmp_path / "c", tmp_path)
    writer.reply("s", {"input": 10, "output": 1, "model": "stand-in-model"})
    writer.reply("s", {"input": 1_000_000, "output": 0, "model": "gpt-5"})
    chunk = read_new(writer.path("s"), None)
    assert chunk is not None
    ledger.save("auth.tests", "f", chunk.mark, claude.read(chunk.lines, {}))
    usage = per_agent(ledger, prices)["auth.tests"]
    assert usage.cost_usd == 1.25 and usage.unpriced_tokens == 11  # the known part priced, the rest counted
    assert per_tree({"auth.tests": usage})["auth"].input_tokens == 1_000_010
    store.close()


def test_a_trees_spending_keeps_its_removed_helpers_and_not_an_earlier_agents_of_its_name(tmp_path: Path) -> None:
    """What a tree's budget is checked against: a helper merged and removed still spent the tree's money; an
    earlier session of the same name, removed before this one was created, did not; `authx` is no helper."""
    store = Store(tmp_path / "state.db")
    ledger = Ledger(store)

    def agent(name: str) -> None:
        store.add_agent(Agent(name=name, profile="claude", command="claude", worktree=str(tmp_path),
                              branch=f"agent/{name}/work", base="HEAD", target="main"))

    def spend(name: str, key: str, tokens: int) -> None:
        ledger.save(name, f"/{name}/{key}.jsonl", Mark("1:1", 1, {}), Found([Record(key, 1.0, None, input=tokens)]))

    agent("auth")
    spend("auth", "old", 1000)
    ledger.forget("auth")  # the first `auth`, removed
    store.delete_agent("auth")
    agent("auth")
    agent("auth.t")
    agent("authx")
    spend("auth", "a", 10)
    spend("auth.t", "b", 20)
    spend("authx", "c", 400)
    ledger.forget("auth.t")  # merged and removed: its spending stays the tree's
    store.delete_agent("auth.t")
    agent("auth.u")
    spend("auth.u", "d", 3)
    prices = Prices()
    assert of_tree(ledger, prices, "auth").input_tokens == 10 + 20 + 3
    assert of_tree(ledger, prices, "auth.u").input_tokens == 3
    assert of_tree(ledger, prices, "authx").input_tokens == 400
