"""aider (aider-chat): a plain scrolling log under prompt_toolkit, read from its newest row; questions answered
with a letter and Enter; its chat history kept in the agent's own folder, restored on restart."""

from __future__ import annotations

import re
from pathlib import Path

from supervisor.agents.base import Profile
from supervisor.agents.reader import LOCAL, Reader
from supervisor.agents.screens import COMMON_VOLATILE, ScreenRules, Verdict, marker

# Recorded from aider 0.86.2 (tests/fixtures/aider) in 160x48 panes through the engine's own capture. aider
# prints a log and draws nothing else: the row its cursor is on (the newest that shows anything) is its state.
# - a question, not yet answered: `Run shell command? (Y)es/(N)o/(D)on't ask again [Yes]:` (an answered one
#   keeps its answer after the colon: `[Yes]: y`);
# - its input prompt, empty: `> `, or the edit format and mode before it (`diff> `, `architect multi> `);
# - its spinner while it waits for the model: a bar of `░█` (`#=` on a plain terminal) and `Waiting for …`.
# While the answer streams no row carries a marker: working, and progress as the text grows.
HISTORY = "chat.history.md"  # in the agent's own state folder
HISTORY_LIMIT = 64 << 20  # bytes of it read while looking for a prompt (the first one comes early)
_SPINNER = r"^ *(?:[░█]{2}|#=|=#) +\S"
AIDER_SCREEN = ScreenRules(
    markers=(
        marker(Verdict.WAITING, "question", r"\(Y\)es/\(N\)o\b.*\[[^\]]+\]:\s*$"),
        marker(Verdict.IDLE, "prompt", r"^(?:[\w-]+ )?[\w-]*> ?$"),
        marker(Verdict.WORKING, "spinner", _SPINNER),
    ),
    errors=(re.compile(r"litellm\.\w+Error|^Error:|APIConnectionError"),),
    # litellm's words for a provider's limit, as aider prints them.
    limits=(re.compile(r"RateLimitError|rate limit (?:reached|exceeded)|quota exceeded|exceeded your (?:current )?"
                       r"quota|\b429 Too Many Requests", re.IGNORECASE),),
    # Its prompt, on the last row: what follows it is typed.
    input_line=re.compile(r"^(?:[\w-]+ )?[\w-]*>(?P<typed>.*)\n\Z", re.MULTILINE),
    # The spinner's bar moves while a request hangs: that is no progress.
    volatile=(*COMMON_VOLATILE, re.compile(r"^ *(?:[░█]{2}|#=|=#) +", re.MULTILINE)),
    last_row=True,
)

# A question's options: (Y)es and (N)o always; (A)ll/(S)kip all for a group; (D)on't ask again where aider
# offers to remember. `y` answers this one question only, never the group or later ones.
_QUESTION = re.compile(r"\(Y\)es/\(N\)o\b.*\[[^\]]+\]:\s*$")


def _rows(screen: str) -> list[str]:
    return [row.rstrip() for row in screen.split("\n") if row.strip()]


class AiderProfile(Profile):
    def answer_keys(self, screen: str, allow: bool, always: bool = False) -> str | tuple[str, ...] | None:
        """`y` or `n`, then Enter: aider reads a line. Never `d` (don't ask again: it stops asking), `a` (all of
        a group) nor a bare Enter (its default, which may be either); nothing for `always`, which aider's
        questions do not offer as an allowance."""
        rows = _rows(screen)
        if always or not rows or not _QUESTION.search(rows[-1]):
            return None
        return ("y" if allow else "n", "Enter")

    def answer_taken(self, before: str, after: str) -> bool:
        """The question's row now holds the answer: aider may ask its next question at once (`Add command
        output to the chat?` after a command ran), so a question on screen does not mean this one is open. While
        it asks, aider draws nothing else: any change of its rows is the answer taken."""
        return self.read(after).verdict != Verdict.WAITING or _rows(after) != _rows(before)

    def resume_line(self, command: str, session: str | None, state: Path,
                    reader: Reader = LOCAL) -> str | None:
        """aider keeps no conversation id: its conversation is its chat history file, which is the agent's own
        (see prepare_state). Restored from it once it holds a prompt (`#### ` lines: aider writes `# aider chat
        started at` at each start, prompt or none)."""
        return f"{command} --restore-chat-history" if _holds_prompt(reader.head(str(state / HISTORY), HISTORY_LIMIT)) \
            else None

    def prepare_state(self, state: Path, home: Path, repo_root: Path, worktree: Path,
                      hook_command: str) -> dict[str, str]:
        """aider writes its chat and input history into the repository's root by default (`.aider.chat.
        history.md`, `.aider.input.history`): they go to the agent's own folder, never into its worktree (where
        they would be committed, or read by another agent), and `--restore-chat-history` reads them from there
        on restart. Analytics stay off for a supervised session (no opt-in question), but its analytics log
        (`--analytics-log`, written whether or not analytics are sent) goes to the agent's folder: it is where
        aider records each exchange's tokens (supervisor/usage/aider.py reads it)."""
        return {
            "AIDER_CHAT_HISTORY_FILE": str(state / HISTORY),
            "AIDER_INPUT_HISTORY_FILE": str(state / "input.history"),
            "AIDER_ANALYTICS": "false",
            "AIDER_ANALYTICS_LOG": str(state / "analytics.jsonl"),
        }


def _holds_prompt(head: bytes | None) -> bool:
    """Whether aider's chat history file (its first HISTORY_LIMIT bytes, read through the agent's machine's
    `Reader`: never through a link, nor waited on) holds a user's prompt (its `#### ` lines)."""
    return head is not None and (head.startswith(b"#### ") or b"\n#### " in head)


AIDER = AiderProfile(
    name="aider", default_command="aider",
    state_vars=frozenset({"AIDER_CHAT_HISTORY_FILE", "AIDER_INPUT_HISTORY_FILE", "AIDER_ANALYTICS",
                          "AIDER_ANALYTICS_LOG"}),
    screen=AIDER_SCREEN,
    cli_processes=frozenset({"aider", "python", "python3"}),
    # Its start-up questions (.gitignore, the model's warnings, what's new, analytics) all come before its prompt
    # shows, never after it: a short settle is enough.
    ready_settle=0.5,
    # `~/.aider`: its record of the versions whose "what's new" the user has seen (`installs.json`: a new user
    # is asked first), its analytics choice and the model price list it would fetch from the network otherwise.
    # Its config files and `.env` (API keys) are read from the home too, beside the repository's and the cwd's.
    home_seed=(".aider",),
    home_read=(".aider.conf.yml", ".aider.model.settings.yml", ".aider.model.metadata.json", ".env"),
)
