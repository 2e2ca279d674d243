"""Usage and rate limits as the real CLIs print them (screens recorded from Claude Code 2.1.332, Codex 0.171.0 and
Gemini CLI 0.61.0 against the stand-ins' `usage limit N` answers, TZ=Europe/Paris), read into a kind and a reset;
and budgets: which thresholds a spend crosses, once each."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from supervisor.agents import get_profile
from supervisor.agents.limits import MINUTE_CUT, LimitReading, around, describe, read_limit, read_limits, retrying
from supervisor.core.budget import Budget, Spent, crossed, parse_budget
from supervisor.demo.limits import limit_message
from supervisor.engine.hooks import read_hook

FIXTURES = Path(__file__).parent / "fixtures"
PARIS = ZoneInfo("Europe/Paris")


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# (cli, screen, when it was captured (UTC), the reset it gives (UTC) or None, the kind of limit)
RECORDED = [
    ("claude", "usage_limit_auto_continue", "2026-12-06 17:05:33", "2026-12-06 18:05", "usage limit"),
    ("claude", "usage_limit_weekly_dialog", "2026-12-06 17:06:40", "2026-12-09 00:39", "usage limit"),
    ("claude", "usage_limit_continuing_shortly", "2026-12-06 17:08:36", "2026-12-06 17:08", "usage limit"),
    ("claude", "usage_limit_hit_again_after_auto_continue", "2026-12-06 17:09:51", "2026-12-06 17:11",
     "usage limit"),
    ("claude", "rate_limit_server", "2026-12-06 17:06:30", None, "rate limit"),
    ("codex", "usage_limit", "2026-12-06 17:07:21", "2026-12-06 18:07", "usage limit"),
    ("codex", "usage_limit_far", "2026-12-06 17:07:40", "2026-12-09 00:40", "usage limit"),
    ("gemini", "usage_limit_dialog", "2026-12-06 17:08:19", "2026-12-06 18:08", "usage limit"),
    ("gemini", "usage_limit_stopped", "2026-12-06 17:08:30", "2026-12-06 18:08:30", "usage limit"),
]


def limit_reading(cli: str, name: str, seen: float) -> tuple[int, LimitReading]:
    """What the watcher makes of the screen's limit lines, all of them new: each with the rows after it."""
    rules = get_profile(cli).screen
    assert rules is not None
    rows = [row.rstrip() for row in (FIXTURES / cli / "screens" / f"{name}.txt").read_text().split("\n")]
    hits = [index for index, row in enumerate(rows) if any(p.search(row) for p in rules.limits)]
    assert hits, f"{name}: no limit line"
    return read_limits([around(rows, index) for index in hits], seen, PARIS)


@pytest.mark.parametrize(("cli", "name", "seen", "reset", "kind"), RECORDED)
def test_a_recorded_limit_is_read_with_its_reset(cli: str, name: str, seen: str, reset: str | None,
                                                 kind: str) -> None:
    _text, reading = limit_reading(cli, name, utc(seen))
    assert reading.kind == kind
    assert reading.reset_at == (utc(reset) if reset else None)


def test_a_reset_shown_to_the_minute_lifts_by_the_end_of_that_minute() -> None:
    minute = read_limit("You've hit your 5-hour limit · resets 7:05pm (Europe/Paris)", utc("2026-12-06 17:05:33"))
    assert minute.lifts_at == utc("2026-12-06 18:05") + MINUTE_CUT
    delay = read_limit("Please retry in 90s.", 1000.0)
    assert (delay.reset_at, delay.precise) == (1090.0, True)


def test_a_time_of_day_already_past_is_tomorrows_and_a_zone_is_honoured() -> None:
    late = utc("2026-12-06 22:30:00")  # 23:30 in Paris
    assert read_limit("resets 1am (Europe/Paris)", late).reset_at == utc("2026-12-07 00:00")
    assert read_limit("Access resets at 9:15 PM UTC.", utc("2026-12-06 20:00")).reset_at == utc("2026-12-06 21:15")
    assert read_limit("try again at 3:05 PM", utc("2026-12-06 10:00"), PARIS).reset_at == utc("2026-12-06 14:05")


def test_words_that_are_no_time_give_no_reset() -> None:
    assert read_limit("the cache resets 3 times a day, try again later").reset_at is None
    assert read_limit("API Error: Request rejected (429) · rate limited").kind == "rate limit"


def test_the_reason_says_until_when_in_the_users_zone() -> None:
    now = time.time()
    reset = now + 600
    shown = time.strftime("%H:%M", time.localtime(reset))
    reading = read_limit(f"Usage limit reached · resets in {600}s", now)
    if time.localtime(reset).tm_yday == time.localtime(now).tm_yday:
        assert describe(reading, now) == f"usage limit: resets at {shown}"
    assert describe(read_limit("API Error: Server is temporarily limiting requests (not your usage limit)")) \
        == "rate limit: no reset time given"


@pytest.mark.parametrize("look", ["claude", "gemini", "demo"])
def test_the_demo_agents_limit_reads_back_as_its_reset(look: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        reset = time.time() + 3600
        message = limit_message(look, reset)
        rules = get_profile("claude" if look == "claude" else "gemini" if look == "gemini" else "demo").screen
        assert rules is not None and any(p.search(message) for p in rules.limits), message
        reading = read_limit(" ".join(message.split("\n")))
        assert reading.kind == "usage limit" and reading.reset_at is not None
        assert reading.reset_at - 1.0 <= reset < (reading.lifts_at or 0)  # a delay is read a moment later
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_claude_continuing_by_itself_after_a_limit_is_a_turn_not_a_question() -> None:
    """Claude Code 2.1.332 notifies `quota_auto_resume_fired` when it continues after a 5-hour limit: an unknown
    Notification type would read as waiting for a human."""
    import json

    payload = json.loads((FIXTURES / "claude" / "hooks" / "Notification-quota_auto_resume_fired.json").read_text())
    assert str(read_hook(payload).state) == "working"
    stop = json.loads((FIXTURES / "claude" / "hooks" / "StopFailure-rate_limit.json").read_text())
    assert stop["error"] == "rate_limit"
    assert read_limit(stop["last_assistant_message"], utc("2026-12-06 17:06:34")).reset_at == utc("2026-12-06 17:08")


def test_claude_shows_when_it_continues_by_itself() -> None:
    pattern = get_profile("claude").resumes_after_limit
    assert pattern is not None
    for name in ("usage_limit_auto_continue", "usage_limit_continuing_shortly"):
        assert pattern.search((FIXTURES / "claude" / "screens" / f"{name}.txt").read_text())
    assert not pattern.search((FIXTURES / "claude" / "screens" / "usage_limit_weekly_dialog.txt").read_text())


def paris(*when: int) -> float:
    return datetime(*when, tzinfo=PARIS).timestamp()  # type: ignore[misc]


def test_a_reset_without_a_zone_has_the_offset_of_its_own_day_across_a_change_of_summer_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Summer time ends in Paris on Sunday 25 October 2026 (3:00 CEST becomes 2:00 CET): a reset printed in the
    local zone after the change is at 9:00 CET, not 9:00 CEST (an hour early); and the other way in March."""
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        far = "You’ve hit your usage limit. Upgrade to Pro (…) or try again at Oct 27th, 2026 9:00 AM."
        assert read_limit(far, paris(2026, 10, 23, 12, 0)).reset_at == paris(2026, 10, 27, 9, 0)
        footer = "Usage limit reached · limit resets 9:00am"
        assert read_limit(footer, paris(2026, 10, 24, 22, 0)).reset_at == paris(2026, 10, 25, 9, 0)
        assert read_limit(footer, paris(2026, 3, 28, 22, 0)).reset_at == paris(2026, 3, 29, 9, 0)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_time_of_day_a_few_hours_past_is_an_old_lines_whose_limit_has_lifted() -> None:
    """A time without a date is always ahead when the CLI prints it (Codex dates a reset on another day, Claude
    Code's 5-hour limit lifts within 5 hours): found hours past, it is an old line read again, not tomorrow's."""
    seen = paris(2026, 12, 6, 21, 30)
    old = read_limit("You've hit your 5-hour limit · resets 6:08pm (Europe/Paris)", seen)
    assert old.reset_at == paris(2026, 12, 6, 18, 8) and (old.lifts_at or 0) < seen
    assert read_limit("try again at 7:07 PM.", seen, PARIS).reset_at == paris(2026, 12, 6, 19, 7)
    # Far enough in the past, it can only be tomorrow's (a reset less than a day ahead).
    assert read_limit("Access resets at 9:15 AM.", seen, PARIS).reset_at == paris(2026, 12, 7, 9, 15)


def test_an_apis_rate_limit_per_minute_is_no_usage_limit() -> None:
    tpm = ("■ stream error: Rate limit reached for gpt-5.1-codex in organization org-x on tokens per min (TPM): "
           "Limit 500000, Used 499000, Requested 3000. Please try again in 2.4s.")
    assert read_limit(tpm).kind == "rate limit"
    assert read_limit("Usage limit reached for all Pro models.").kind == "usage limit"


RETRIES = [
    ("claude", "✻ API Error: Server is temporarily limiting requests (not your usage limit) · retrying in 3s · "
               "attempt 1/10"),
    ("claude", "✻ API Error: Request rejected (429) · rate_limit_error · retrying in 12s · attempt 4/10"),
    ("aider", 'litellm.RateLimitError: AnthropicException - {"type":"rate_limit_error"}'),
    ("codex", "■ stream error: Rate limit reached for gpt-5.1-codex in organization org-x on tokens per min (TPM): "
              "Please try again in 2.4s; retrying 1/5 in 2.4s…"),
]


@pytest.mark.parametrize(("cli", "line"), RETRIES)
def test_a_cli_retrying_within_its_turn_is_told_apart_from_a_limit(cli: str, line: str) -> None:
    """Claude Code's spinner line while it retries (its recorded `api_retrying` form), aider's litellm retry (the
    line, then `Retrying in 0.2 seconds...`), Codex's retry of a per-minute limit: each is a limit line, and says
    the CLI retries by itself."""
    rules = get_profile(cli).screen
    assert rules is not None and any(p.search(line) for p in rules.limits)
    rows = [line, "Retrying in 0.2 seconds..." if cli == "aider" else ""]
    assert retrying(around(rows, 0))


@pytest.mark.parametrize(("cli", "name", "seen", "reset", "kind"), RECORDED)
def test_a_recorded_limit_is_no_retry(cli: str, name: str, seen: str, reset: str | None, kind: str) -> None:
    rows = (FIXTURES / cli / "screens" / f"{name}.txt").read_text().split("\n")
    assert not retrying(" ".join(rows))
    assert retrying(" ".join((FIXTURES / "claude" / "screens" / "api_retrying.txt").read_text().split("\n")))


TYPED = [
    ("claude", "typing", "hello there"), ("claude", "api_retrying_interrupted", "hello"),
    ("claude", "startup_idle", ""), ("claude", "conformance_usage_limit", ""),
    ("claude", "conformance_queued_prompt", ""), ("claude", "usage_limit_weekly_dialog", None),
    ("codex", "typing", "hello there"), ("codex", "conformance_usage_limit", ""), ("codex", "startup_idle", ""),
    ("gemini", "typing", "hello there"), ("gemini", "usage_limit_stopped", ""),
    ("gemini", "usage_limit_dialog", None), ("aider", "done_turn", ""),
]


@pytest.mark.parametrize(("cli", "name", "typed"), TYPED)
def test_text_typed_into_the_input_line_is_read_and_a_placeholder_is_none(cli: str, name: str,
                                                                          typed: str | None) -> None:
    """What stands in each CLI's input line, not submitted: a prompt half typed (or put back by an interruption)
    holds "continue" back; an empty line, or the CLI's placeholder in it, does not; a prompt submitted above is no
    input line."""
    rules = get_profile(cli).screen
    assert rules is not None
    assert rules.typed((FIXTURES / cli / "screens" / f"{name}.txt").read_text()) == typed


# budgets ---------------------------------------------------------------------------------------------------


def test_budget_amounts() -> None:
    assert parse_budget("$20") == Budget(20.0, None)
    assert parse_budget("2M tokens") == Budget(None, 2_000_000)
    assert parse_budget("$12.50, 1.5M tokens") == Budget(12.5, 1_500_000)
    assert parse_budget("500k tokens") == Budget(None, 500_000)
    for bad in ("20", "$0", "2M", "$20, $30", "lots"):
        with pytest.raises(ValueError):
            parse_budget(bad)
    assert str(parse_budget("$12.50, 1.5M tokens")) == "$12.5, 1.5M tokens"
    assert parse_budget(str(Budget(3.0, 1_234_567))) == Budget(3.0, 1_234_567)


def test_each_threshold_is_crossed_once() -> None:
    budget = Budget(20.0, 2_000_000)
    assert crossed(Spent(10.0, 100), budget) == []
    first = crossed(Spent(16.0, 100), budget)
    assert [c.key for c in first] == ["cost:80"]
    assert first[0].describe() == "spent $16.00 of $20.00 (80%)"
    done = [c.key for c in first]
    assert crossed(Spent(17.0, 100), budget, done) == []  # still past 80%: told already
    jump = crossed(Spent(25.0, 1_700_000), budget, done)
    assert [c.key for c in jump] == ["tokens:80", "cost:100"]
    done += [c.key for c in jump]
    assert [c.key for c in crossed(Spent(25.0, 2_000_000), budget, done)] == ["tokens:100"]


def test_spent_counts_every_token_of_the_usage() -> None:
    usage = {"input_tokens": 10, "output_tokens": 5, "cache_read_tokens": 100, "cache_write_tokens": 20,
             "cost_usd": 0.5}
    assert Spent.of_usage(usage) == Spent(0.5, 135)


def test_a_helpers_budget_narrows_its_parents() -> None:
    parent = Budget(20.0, None)
    assert Budget(10.0, 5_000_000).widens(parent) is None
    assert Budget(30.0, None).widens(parent) == "$30.00 is more than $20.00"
    assert Budget(None, 1000).within(parent) == Budget(20.0, 1000)
