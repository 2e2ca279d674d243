"""Answering a dialog on an agent's screen with keys: a numbered option by its number, an unnumbered one by
moving the selection onto its label (and checking that it moved) before Enter, a notice by Enter or Esc."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from supervisor.agents.base import Profile
from supervisor.agents.dialogs import notice_key, read_menu, selected_label
from supervisor.engine.delivery import wait_for

_NUMBERED = re.compile(r"^\s*(?:│\s*)*(?:[❯›●]\s*)?\d+\.\s")
MOVE_WAIT = 1.5  # seconds for the selection to show where the arrow keys put it (the CLI may drop early keys)
# The only keys an answer types, whatever the screen shows: one option's digit, a yes/no question's letter, the
# arrows that move a selection, Enter, and Escape to refuse. A screen is the agent's (or its host's) to draw: its
# words choose among these keys, never add others ("12. Yes" would type 1 and 2; a deny never types `y`).
_KEYS = {True: frozenset({*"123456789", "y", "Enter", "Up", "Down"}),
         False: frozenset({*"123456789", "n", "Escape", "Enter", "Up", "Down"})}
MAX_MOVES = 24  # a dialog's options fit on one screen


@dataclass(frozen=True)
class Plan:
    key: str  # what picks the answer
    moves: tuple[str, ...] = ()  # arrow keys that first put the selection on `label`
    label: str | None = None
    then: tuple[str, ...] = ()  # keys sent right after `key` (aider reads a line: a letter, then Enter)


def plan(profile: Profile, screen: str, allow: bool, *, always: bool = False) -> Plan | None:
    """How to answer the dialog on `screen`; None when which option means the answer cannot be told, or when
    telling it would type a key outside the answer's own (`typed_only`). With `always` (the human asked for a
    standing allowance) only a numbered option that grants one will do."""
    answer = _plan(profile, screen, allow, always=always)
    return answer if answer is not None and typed_only(answer, allow) else None


def typed_only(answer: Plan, allow: bool) -> bool:
    """Whether every key of `answer` is one an approval (or a denial) may type."""
    keys = (*answer.moves, answer.key, *answer.then)
    return len(answer.moves) <= MAX_MOVES and set(answer.moves) <= {"Up", "Down"} and set(keys) <= _KEYS[allow]


def _plan(profile: Profile, screen: str, allow: bool, *, always: bool) -> Plan | None:
    if always:
        keys = profile.answer_keys(screen, allow, always=True)
        if isinstance(keys, tuple):
            return Plan(keys[0], then=keys[1:]) if keys else None
        return Plan(keys) if keys is not None else None
    numbered = any(_NUMBERED.match(row) for row in screen.split("\n"))
    menu = None if numbered else read_menu(screen)
    target = menu.choose(allow) if menu is not None else None
    if menu is not None and target is not None:
        return Plan("Enter", tuple(menu.moves(target)), menu.labels[target])
    if menu is not None and allow:
        return None
    keys = profile.answer_keys(screen, allow)  # a numbered option, a letter and Enter, or Esc to refuse
    if isinstance(keys, tuple):
        return Plan(keys[0], then=keys[1:]) if keys else None
    if keys is None and allow:
        keys = notice_key(screen)
    return Plan(keys) if keys is not None else None


def carry_out(answer: Plan, send: Callable[..., bool], capture: Callable[[], str]) -> str | None:
    """Send the plan's keys; the selection is checked to be on the chosen label before Enter. Returns what
    went wrong, or None."""
    if answer.moves:
        for _attempt in range(2):
            before = selected_label(capture())
            if before == answer.label:
                break
            if not send(*answer.moves):
                return "its pane is gone"
            if wait_for(lambda: selected_label(capture()) == answer.label, MOVE_WAIT, interval=0.1):
                break
            if selected_label(capture()) != before:
                return f"the selection went elsewhere than {answer.label!r}"
        else:
            return f"the selection did not move to {answer.label!r}"
    return None if send(answer.key, *answer.then) else "its pane is gone"
