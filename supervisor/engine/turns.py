"""Claude Code's turns as its hooks tell them, prompts queued mid-turn included.

A prompt submitted while Claude Code works is queued: its UserPromptSubmit fires at once, and the next Stop
ends the turn that was running, not the queued prompt's. The queued prompt then runs as a turn of its own
(no UserPromptSubmit of its own, a Stop at its end), or is folded into the running turn (no Stop of its own
either: Claude Code 2.1.332 does that when the prompt is queued while a tool runs). So a Stop while a prompt is
queued does not say idle: the screen decides (`esc to interrupt` while the queued turn runs, the idle footer
once it is over), and the Stop of the last turn says idle again.
"""

from __future__ import annotations

from dataclasses import dataclass

from supervisor.core.model import State

TURN_ENDS = frozenset({"Stop", "StopFailure"})


@dataclass
class Turns:
    running: bool = False  # a prompt was taken and its turn has not ended yet
    queued: int = 0  # prompts taken while a turn ran, whose turns have not ended yet

    def read(self, event: str, state: State | None) -> State | None:
        """The state a hook event says, given the turns: None when the screen decides."""
        if event == "UserPromptSubmit":
            if self.running:
                self.queued += 1
            else:
                self.running, self.queued = True, 0
        elif event in TURN_ENDS:
            if self.queued:
                self.queued -= 1
                return None
            self.running = False
        elif event == "SessionStart" and state is not None:
            self.settled()
        return state

    def settled(self) -> None:
        """No turn runs (the screen showed the agent idle, or the CLI started afresh)."""
        self.running, self.queued = False, 0
