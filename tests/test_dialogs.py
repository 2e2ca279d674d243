"""Claude Code's dialogs answered by their labels, never by position (screens recorded from the real CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.agents.claude import CLAUDE
from supervisor.agents.dialogs import offers, read_menu
from supervisor.agents.screens import Verdict
from supervisor.engine.answering import Plan, carry_out, plan

SCREENS = Path(__file__).parent / "fixtures" / "claude" / "screens"


def screen(name: str) -> str:
    return (SCREENS / f"{name}.txt").read_text()


@pytest.mark.parametrize(("name", "approve", "deny"), [
    # "Do you want to use this API key?": `Yes` above a preselected `❯ No (recommended)` (2.1.332, 160x48).
    ("api_key_dialog", Plan("Enter", ("Up",), "Yes"), Plan("Enter", (), "No (recommended)")),
    # Workspace trust: `❯ No, exit` preselected above `Yes, I trust this folder`.
    ("trust_dialog_160", Plan("Enter", ("Down",), "Yes, I trust this folder"), Plan("Enter", (), "No, exit")),
    ("trust_dialog", Plan("Enter", ("Down",), "Yes, I trust this folder"), Plan("Enter", (), "No, exit")),
    # Auto mode's own approval: `❯ No` first, then `Yes`.
    ("permission_dialog_auto", Plan("Enter", ("Down",), "Yes"), Plan("Enter", (), "No")),
    # Notices that Enter continues and Esc cancels.
    ("auto_mode_billing_notice", Plan("Enter"), Plan("Escape")),
    ("auto_mode_cant_check", Plan("Enter"), Plan("Escape")),
    # Numbered options: by number, never the standing "Yes, and always allow…".
    ("permission_dialog", Plan("1"), Plan("4")),
])
def test_each_dialog_is_answered_by_the_label_that_means_it(name: str, approve: Plan, deny: Plan) -> None:
    text = screen(name)
    assert CLAUDE.read(text).verdict == Verdict.WAITING
    assert plan(CLAUDE, text, True) == approve
    assert plan(CLAUDE, text, False) == deny


def test_a_dialog_whose_options_say_neither_is_not_answered_and_says_what_it_offers() -> None:
    text = screen("api_key_dialog").replace("    Yes", "    Later").replace("❯ No (recommended)", "❯ Maybe")
    assert read_menu(text) is not None and read_menu(text).labels == ("Later", "Maybe")  # type: ignore[union-attr]
    assert plan(CLAUDE, text, True) is None and plan(CLAUDE, text, False) is not None  # Esc to cancel
    assert offers(text) == "options Later / Maybe; keys Enter to confirm · Esc to cancel"


def test_enter_goes_only_once_the_selection_is_on_the_label() -> None:
    """The CLI drops keys that arrive just as a dialog opens: the moves go again, and Enter waits for them."""
    shown = [screen("api_key_dialog")]
    sent: list[tuple[str, ...]] = []

    def send(*keys: str) -> bool:
        sent.append(keys)
        if keys == ("Up",) and len(sent) == 2:  # the first Up was dropped
            shown[0] = shown[0].replace("    Yes", "  ❯ Yes").replace("❯ No (recommended)", "  No (recommended)")
        return True

    assert carry_out(Plan("Enter", ("Up",), "Yes"), send, lambda: shown[0]) is None
    assert sent == [("Up",), ("Up",), ("Enter",)]
    never = [screen("api_key_dialog")]
    sent.clear()
    failed = carry_out(Plan("Enter", ("Up",), "Yes"), lambda *keys: sent.append(keys) is None, lambda: never[0])
    assert failed == "the selection did not move to 'Yes'" and ("Enter",) not in sent
