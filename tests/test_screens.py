"""Screen rules against screens recorded from the real CLIs (tests/fixtures/*/screens; see their README)."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.agents import get_profile
from supervisor.agents.screens import Verdict

FIXTURES = Path(__file__).parent / "fixtures"

CLAUDE = {
    "startup_idle": Verdict.IDLE, "startup_idle_manual": Verdict.IDLE, "typing": Verdict.IDLE,
    "done_turn": Verdict.IDLE, "interrupted": Verdict.IDLE, "idle_after_idle_prompt": Verdict.IDLE,
    "api_error": Verdict.IDLE, "auto_mode_blocked": Verdict.IDLE, "permission_denied_by_user": Verdict.IDLE,
    "working_streaming": Verdict.WORKING, "working_hung_1": Verdict.WORKING, "working_hung_2": Verdict.WORKING,
    "working_hung_3": Verdict.WORKING, "working_tool": Verdict.WORKING, "api_retrying": Verdict.WORKING,
    "permission_dialog": Verdict.WAITING, "permission_dialog_write": Verdict.WAITING,
    "permission_dialog_auto": Verdict.WAITING, "auto_mode_cant_check": Verdict.WAITING,
    "auto_mode_billing_notice": Verdict.WAITING, "trust_dialog": Verdict.WAITING,
    # Claude Code 2.1.332, captured as the engine captures (160x48).
    "api_key_dialog": Verdict.WAITING, "trust_dialog_160": Verdict.WAITING,
    "conformance_api_key_dialog": Verdict.WAITING, "conformance_working_streaming": Verdict.WORKING,
    "conformance_queued_prompt": Verdict.WORKING, "conformance_done_turn": Verdict.IDLE,
    "conformance_trust_dialog": Verdict.WAITING,
}


def screen(cli: str, name: str) -> str:
    return (FIXTURES / cli / "screens" / f"{name}.txt").read_text()


@pytest.mark.parametrize(("name", "expected"), sorted(CLAUDE.items()))
def test_claude_screens(name: str, expected: Verdict) -> None:
    assert get_profile("claude").read(screen("claude", name)).verdict == expected


def test_every_recorded_claude_screen_is_classified() -> None:
    recorded = {p.stem for p in (FIXTURES / "claude" / "screens").glob("*.txt")}
    unclassified = {name for name in recorded - set(CLAUDE)
                    if get_profile("claude").read(screen("claude", name)).verdict is None}
    # Only screens of a CLI that has exited may say nothing.
    assert unclassified <= {"no_network_exit", "session_exit", "trust_declined_exit", "ctrl_c_once"}


def test_waiting_reasons_quote_the_question() -> None:
    claude = get_profile("claude")
    assert claude.read(screen("claude", "permission_dialog")).reason == "Do you want to proceed?"
    assert claude.read(screen("claude", "permission_dialog_auto")).reason == "Do you want to proceed?"


@pytest.mark.parametrize(("cli", "name", "reason"), [
    ("claude", "trust_dialog", "Quick safety check: Is this a project you created or one you trust?"),
    ("claude", "api_key_dialog", "Do you want to use this API key?"),
    ("claude", "auto_mode_billing_notice",
     "We're changing auto mode to no longer charge for classifier requests in Claude Code."),
    ("claude", "auto_mode_cant_check", "Auto mode can't check actions in this session"),
    ("claude", "permission_dialog_write", "Do you want to create hello.txt?"),
    ("codex", "approval_prompt", "Would you like to run the following command?"),
    ("codex", "trust_prompt_git", "Trust this folder?"),
    ("gemini", "trust_prompt", "Do you trust the files in this folder?"),
    ("gemini", "approval_prompt", "Allow execution of [Shell]?"),
])
def test_a_dialogs_reason_is_its_question_or_its_first_line_not_its_keys(cli: str, name: str, reason: str) -> None:
    """What an alert and `ls` say the agent waits for: never "Enter to confirm · Esc to cancel"."""
    assert get_profile(cli).read(screen(cli, name)).reason == reason


def test_a_hung_request_is_not_progress_but_streaming_is() -> None:
    rules = get_profile("claude").screen
    assert rules is not None
    hung = {rules.progress_key(screen("claude", f"working_hung_{i}")) for i in (1, 2, 3)}
    assert len(hung) == 1  # the spinner glyph and its counter changed, nothing else did
    assert rules.progress_key(screen("claude", "working_streaming")) not in hung


def test_claude_is_ready_only_at_its_idle_prompt() -> None:
    claude = get_profile("claude")
    assert claude.ready(screen("claude", "startup_idle")) is True
    assert claude.ready(screen("claude", "trust_dialog")) is False
    assert claude.ready(screen("claude", "working_streaming")) is False


CODEX = {
    "startup_idle": Verdict.IDLE, "typing": Verdict.IDLE, "done_turn": Verdict.IDLE, "interrupted": Verdict.IDLE,
    "approval_approved": Verdict.IDLE, "approval_denied": Verdict.IDLE,
    "working_hung_1": Verdict.WORKING, "working_hung_2": Verdict.WORKING, "working_tool": Verdict.WORKING,
    "approval_prompt": Verdict.WAITING, "trust_prompt_git": Verdict.WAITING, "startup_model_nudge": Verdict.WAITING,
}
GEMINI = {
    "startup_idle": Verdict.IDLE, "typing": Verdict.IDLE, "done_turn": Verdict.IDLE,
    "working_streaming": Verdict.WORKING, "working_hung_1": Verdict.WORKING, "working_hung_2": Verdict.WORKING,
    "working_tool": Verdict.WORKING,
    "approval_prompt": Verdict.WAITING, "trust_prompt": Verdict.WAITING,
    # Gemini CLI 0.61.0 through the engine's own capture (160x48), recorded by `make conformance-bump`.
    "conformance_approval_prompt": Verdict.WAITING, "conformance_trust_prompt": Verdict.WAITING,
    "conformance_working_hung": Verdict.WORKING, "conformance_working_streaming": Verdict.WORKING,
}


@pytest.mark.parametrize(("cli", "name", "expected"),
                         [("codex", n, v) for n, v in sorted(CODEX.items())]
                         + [("gemini", n, v) for n, v in sorted(GEMINI.items())])
def test_codex_and_gemini_screens(cli: str, name: str, expected: Verdict) -> None:
    assert get_profile(cli).read(screen(cli, name)).verdict == expected


def test_codex_streaming_shows_no_working_marker_and_is_never_read_as_idle() -> None:
    """Recorded Codex 0.169.0 draws nothing while text streams, only its input box, which it draws in every
    state. Until `Worked for` (or an interruption) ends the prompt's turn the screen says nothing, which the
    watcher takes as working: a pause in the stream is no finished turn and no `done` alert."""
    codex = get_profile("codex")
    streaming = screen("codex", "working_streaming")
    assert codex.read(streaming).verdict is None
    ended = streaming.replace("• word0 word1 word2", "• word0 word1 word2\n  Worked for 3s • 18:26")
    assert codex.read(ended).verdict == Verdict.IDLE
    assert codex.read(screen("codex", "typing")).verdict == Verdict.IDLE  # no prompt submitted yet


@pytest.mark.parametrize("cli", ["codex", "gemini"])
def test_their_hung_spinners_are_not_progress_either(cli: str) -> None:
    rules = get_profile(cli).screen
    assert rules is not None
    first, second = (rules.progress_key(screen(cli, f"working_hung_{i}")) for i in (1, 2))
    assert first == second


LIMIT_MESSAGES = {
    "claude": ["Claude usage limit reached. Your limit will reset at 5pm", "5-hour limit reached ∙ resets 3pm",
               "  ⎿  API Error: 429 {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\"}}",
               "Credit balance is too low"],
    "codex": ["■ You've hit your usage limit. Upgrade to Pro or try again later.",
              "■ stream error: exceeded retry limit, last status: 429 Too Many Requests"],
    "gemini": ["✕ [API Error: Quota exceeded for quota metric 'Generate Content API requests per minute']",
               "RESOURCE_EXHAUSTED"],
    "aider": ["litellm.RateLimitError: AnthropicException - rate limit exceeded"],
}
PROSE = ["I added rate limit middleware to the API", "src/server.py:429: def handle(request):",
         "Raise the quota in the settings page", "the usage limits section of the docs", "limit reached 100 items"]


@pytest.mark.parametrize("cli", sorted(LIMIT_MESSAGES))
def test_limit_messages_are_the_clis_own_words_not_prose(cli: str) -> None:
    rules = get_profile(cli).screen
    assert rules is not None

    def limit(line: str) -> bool:
        return any(pattern.search(line) for pattern in rules.limits)

    assert all(limit(line) for line in LIMIT_MESSAGES[cli])
    assert not any(limit(line) for line in PROSE)


@pytest.mark.parametrize("cli", ["claude", "codex", "gemini", "aider"])
def test_no_recorded_screen_reads_as_a_limit(cli: str) -> None:
    """None of these recordings hit a limit (Codex's startup nudge speaks of how far "your usage limits go"),
    except those recorded to show one (tests/test_limits.py)."""
    rules = get_profile(cli).screen
    assert rules is not None
    for path in (FIXTURES / cli / "screens").glob("*.txt"):
        if "limit" in path.stem:
            continue
        lines = path.read_text().splitlines()
        assert not [line for line in lines if any(p.search(line) for p in rules.limits)], path.name


@pytest.mark.parametrize(("cli", "name", "allow", "keys"), [
    # Codex marks the chosen option with `›`: its 2 is "Yes, and don't ask again", a rule for every later call.
    ("codex", "approval_prompt", True, "1"),
    ("codex", "approval_prompt", False, "3"),
    # Gemini's 2 is "Allow for this session".
    ("gemini", "approval_prompt", True, "1"),
    ("gemini", "approval_prompt", False, "3"),
    ("gemini", "conformance_approval_prompt", True, "1"),
    ("gemini", "conformance_trust_prompt", True, "1"),
    ("gemini", "conformance_trust_prompt", False, "3"),
    # Claude's 2 always allows access to the folder, its 3 switches to auto mode.
    ("claude", "permission_dialog", True, "1"),
    ("claude", "permission_dialog", False, "4"),
])
def test_approve_picks_the_option_that_allows_this_call_once(cli: str, name: str, allow: bool, keys: str) -> None:
    assert get_profile(cli).answer_keys(screen(cli, name), allow) == keys


def test_approve_never_picks_a_standing_permission() -> None:
    dialog = "Run it?\n› 1. Yes, and don't ask again (p)\n  2. Allow for this session\n  3. No (esc)\n"
    assert get_profile("codex").answer_keys(dialog, True) is None
    assert get_profile("codex").answer_keys(dialog, False) == "3"


@pytest.mark.parametrize("cli", ["claude", "codex", "gemini", "aider"])
def test_a_screen_read_as_the_engine_captures_it_reads_the_same(cli: str) -> None:
    """The engine captures with `capture-pane -J`, which keeps trailing spaces, in a 160x48 pane where Codex and
    aider paint blank rows with spaces: the verdict must not depend on that padding."""
    profile = get_profile(cli)
    for path in sorted((FIXTURES / cli / "screens").glob("*.txt")):
        text = path.read_text()
        padded = "\n".join(row.ljust(160) for row in text.rstrip("\n").split("\n")) + "\n" + (" " * 160 + "\n") * 40
        assert profile.read(padded) == profile.read(text), path.name
        assert profile.screen is not None
        assert profile.screen.progress_key(padded) == profile.screen.progress_key(text), path.name


# aider 0.86.2, recorded through the engine's own capture in 160x48 panes (tests/fixtures/aider/README.md).
AIDER = {
    "done_turn": Verdict.IDLE, "question_approved": Verdict.IDLE, "question_denied": Verdict.IDLE,
    "restored_chat": Verdict.IDLE,
    "working_hung_1": Verdict.WORKING, "working_hung_2": Verdict.WORKING,
    "question_run_command": Verdict.WAITING, "question_add_file": Verdict.WAITING,
    "question_run_echo": Verdict.WAITING, "question_command_output": Verdict.WAITING,
    "startup_gitignore_question": Verdict.WAITING,
}


@pytest.mark.parametrize(("name", "expected"), sorted(AIDER.items()))
def test_aider_screens(name: str, expected: Verdict) -> None:
    assert get_profile("aider").read(screen("aider", name)).verdict == expected


def test_aider_streaming_is_never_read_as_a_question_or_idle() -> None:
    """While its answer streams aider draws no marker, and the questions it asked earlier (answered, or taken
    at their default with a bare Enter) stay on the screen above: only its newest row tells."""
    aider = get_profile("aider")
    assert aider.read(screen("aider", "working_streaming")).verdict is None
    answered_by_enter = screen("aider", "startup_gitignore_question") + "Added .aider* to .gitignore\nword0 word1\n"
    assert aider.read(answered_by_enter).verdict is None


def test_aiders_hung_request_is_not_progress_but_streaming_is() -> None:
    rules = get_profile("aider").screen
    assert rules is not None
    first, second = (screen("aider", f"working_hung_{i}") for i in (1, 2))
    assert first != second  # its bar moved
    assert rules.progress_key(first) == rules.progress_key(second)
    streamed = screen("aider", "working_streaming")
    assert rules.progress_key(streamed) != rules.progress_key(streamed.replace("word4", "word4 word5"))


@pytest.mark.parametrize(("name", "reason"), [
    ("question_run_command", "Run shell command?"),
    ("question_add_file", "Add file to the chat?"),
    ("startup_gitignore_question", "Add .aider* to .gitignore (recommended)?"),
    ("question_command_output", "Add command output to the chat?"),  # not the answered one above it
])
def test_aiders_questions_are_waiting_with_their_question(name: str, reason: str) -> None:
    assert get_profile("aider").read(screen("aider", name)).reason == reason


@pytest.mark.parametrize("name", ["question_run_command", "question_add_file", "startup_gitignore_question"])
def test_aiders_questions_are_answered_with_a_letter_and_enter_never_its_default(name: str) -> None:
    """`y` answers this question only: never `d` (don't ask again) nor a bare Enter (the default)."""
    aider = get_profile("aider")
    assert aider.answer_keys(screen("aider", name), True) == ("y", "Enter")
    assert aider.answer_keys(screen("aider", name), False) == ("n", "Enter")
    assert aider.answer_keys(screen("aider", "done_turn"), True) is None
    assert aider.answer_keys(screen("aider", "question_approved"), True) is None  # answered already


def test_aider_is_ready_only_at_its_prompt() -> None:
    aider = get_profile("aider")
    assert aider.ready(screen("aider", "done_turn")) is True
    assert aider.ready(screen("aider", "startup_gitignore_question")) is False
    assert aider.ready(screen("aider", "working_hung_1")) is False
    assert aider.ready_settle > 0


def test_aiders_history_lives_in_the_agents_own_folder_and_restart_restores_it(tmp_path: Path) -> None:
    aider = get_profile("aider")
    state = tmp_path / "agents" / "a1"
    env = aider.prepare_state(state, tmp_path / "home", tmp_path / "repo", tmp_path / "wt", "supervisor hook")
    assert env["AIDER_CHAT_HISTORY_FILE"] == str(state / "chat.history.md")
    assert env["AIDER_INPUT_HISTORY_FILE"] == str(state / "input.history")
    assert env["AIDER_ANALYTICS"] == "false"
    assert aider.resume_line("aider --model x", None, state) is None  # no history yet: afresh, with its task
    state.mkdir(parents=True)
    (state / "chat.history.md").write_text("\n# aider chat started at 2026-12-06 10:00:00\n\n")
    assert aider.resume_line("aider --model x", None, state) is None  # written at every start: no prompt yet
    with (state / "chat.history.md").open("a") as history:
        history.write("#### write the parser\n\nOn it.\n")
    assert aider.resume_line("aider --model x", None, state) == "aider --model x --restore-chat-history"


def test_aiders_next_question_right_after_an_answer_is_the_answer_taken() -> None:
    """After `echo hi there` ran aider asks `Add command output to the chat?` at once: the answered question went
    away although a question is on screen (approve said "did not take the answer"); the same screen is not."""
    aider = get_profile("aider")
    asked, next_question = screen("aider", "question_run_echo"), screen("aider", "question_command_output")
    assert aider.answer_taken(asked, next_question)
    assert not aider.answer_taken(asked, asked)
    assert aider.answer_taken(asked, screen("aider", "done_turn"))
