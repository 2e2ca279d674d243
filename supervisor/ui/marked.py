"""Marked rows: space (or shift+↑↓) marks agents, and stop, restart, approve, deny, send and remove then act
on all the marked ones at once, after one confirmation that names them (for deny and send: the prompt for the
reason or the text), through the engine's `each` request (each
agent under its own request, a refusal of one said as that one's)."""

from __future__ import annotations

from typing import Any

from supervisor.ui.live import LiveDashboard
from supervisor.ui.screens import ConfirmScreen, PromptScreen, RefusalScreen

# verb -> (the confirmation's question, its buttons: (choice, label, variant)); each choice -> params.
QUESTIONS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "stop": ("Stop {names} and their process trees?", [("kill", "Kill now", "error"), ("stop", "Stop", "warning")]),
    "restart": ("Restart {names}? (running ones are stopped first)", [("restart", "Restart", "warning")]),
    "approve": ("Approve what {names} wait for?", [("approve", "Approve", "primary")]),
    "rm": ("Remove the worktrees and branches of {names}?\nForce also stops them and drops unmerged work.",
           [("force", "Force remove", "error"), ("rm", "Remove", "warning")]),
}
PARAMS: dict[str, dict[str, Any]] = {
    "kill": {"kill": True}, "stop": {"kill": False}, "restart": {}, "approve": {"by": "dashboard"},
    "force": {"force": True}, "rm": {"force": False},
}
DONE = {"stop": "stopped", "restart": "restarted", "approve": "approved", "deny": "denied", "send": "sent",
        "rm": "removed"}




class MarkedActions(LiveDashboard):
    """The marking keys and acting on what is marked (the app's single-agent actions call `act_on_marked`)."""

    def action_toggle_mark(self) -> None:
        name = self.selected
        if name is None or name not in self.board.agents:
            return
        self.marked.symmetric_difference_update({name})
        self.refresh_tables()

    def action_mark_down(self) -> None:
        self._mark_and_move(+1)

    def action_mark_up(self) -> None:
        self._mark_and_move(-1)

    def _mark_and_move(self, step: int) -> None:
        """Shift+arrow: the row under the cursor is marked, then the cursor moves on (marking as it goes)."""
        table = self.agents_table
        if self.selected is None or self.focused is not table:
            return
        self.marked.add(self.selected)
        table.move_cursor(row=max(0, min(table.row_count - 1, table.cursor_row + step)), animate=False)
        name = table.current_key
        if name is not None:
            self.marked.add(name)
            self._select(name)
        self.refresh_tables()

    def clear_marks(self) -> bool:
        if not self.marked:
            return False
        self.marked.clear()
        self.refresh_tables()
        return True

    def act_on_marked(self, verb: str) -> bool:
        """With rows marked, `verb` asks once for all of them and acts; False: nothing marked, act on one."""
        names = [name for name in self.board.order if name in self.marked]
        if not names:
            return False
        listed = ", ".join(names)
        if verb == "deny":
            def reason_given(reason: str | None) -> None:
                if reason is not None:
                    self._each(verb, names, {"reason": reason.strip() or None, "by": "dashboard"})

            self.push_screen(PromptScreen(f"Deny what {listed} wait for: why? (optional)", "reason",
                                          allow_empty=True), reason_given)
            return True
        if verb == "send":
            def text_given(text: str | None) -> None:
                if text:
                    self._each(verb, names, {"text": text})

            self.push_screen(PromptScreen(f"Send to {listed} (typed and submitted)", "text"), text_given)
            return True
        question, buttons = QUESTIONS[verb]

        def chosen(choice: str | None) -> None:
            if choice in PARAMS:
                self._each(verb, names, PARAMS[choice])

        self.push_screen(ConfirmScreen(question.format(names=listed), buttons), chosen)
        return True

    def _each(self, verb: str, names: list[str], params: dict[str, Any]) -> None:
        def done(answer: dict[str, Any]) -> None:
            results = answer.get("results") or []
            good = [item["name"] for item in results if item.get("ok")]
            bad = [item for item in results if not item.get("ok")]
            self.marked.difference_update(good)
            if good:
                self.notify(f"{DONE[verb]}: {', '.join(good)}", timeout=4)
            if bad:
                lines = [f"{item['name']}: {item.get('error')}" + (f"\n  hint: {item['hint']}" if item.get("hint")
                                                                   else "") for item in bad]
                self.push_screen(RefusalScreen(f"{len(bad)} of {len(results)} not {DONE[verb]}", "\n".join(lines)))
            self.request_ls(acted=True)

        self._in_thread("each", lambda: self.source.call("each", {"method": verb, "names": names, "params": params},
                                                        timeout=600), done)
