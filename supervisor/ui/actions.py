"""Everything the dashboard lets a human do, once: its key, what it does, and the CLI command that does the
same (every action of the dashboard is also a command). The footer, the help screen (`?`) and the command
palette are all built from this list."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    key: str  # Textual key name(s), comma-separated
    name: str  # the app's action_<name>
    title: str
    help: str
    cli: str | None = None  # the equivalent command; NAME is the selected agent
    footer: bool = False  # shown in the footer (the rest is in the help screen and the palette)
    on_agent: bool = True  # needs a selected agent
    short: str = ""  # the footer's label (default: the title)

    @property
    def footer_label(self) -> str:
        return self.short or self.title

    @property
    def display_key(self) -> str:
        first = self.key.split(",")[0]
        return {"enter": "⏎", "question_mark": "?", "slash": "/", "exclamation_mark": "!", "space": "space",
                "shift+down": "shift+↓", "shift+up": "shift+↑"}.get(first, first)


ACTIONS: tuple[Action, ...] = (
    Action("enter", "attach", "Attach", "attach the terminal to the agent's pane; your tmux prefix + d comes back "
           "(its status line says the keys)",
           "supervisor attach NAME", footer=True),
    Action("n", "new_session", "New session", "start a session: name, task, profile, command, contract",
           "supervisor start NAME --task TEXT [--agent PROFILE] [--command CMD] [--contract FILE]", footer=True,
           on_agent=False, short="New"),
    Action("h", "new_helper", "New helper", "start a helper under the selected agent",
           "supervisor helper NAME --role ROLE --parent NAME", footer=True, short="Helper"),
    Action("i", "send", "Send text", "type text into the agent and submit it", "supervisor send NAME TEXT",
           footer=True, short="Send"),
    Action("y", "approve", "Approve", "answer the agent's pending approval with yes", "supervisor approve NAME",
           footer=True),
    Action("d", "deny", "Deny", "answer the agent's pending approval with no, and a reason",
           "supervisor deny NAME --reason TEXT", footer=True),
    Action("s", "stop", "Stop", "stop the agent (graceful, or kill at once)", "supervisor stop NAME [--kill]",
           footer=True),
    Action("r", "restart", "Restart", "start the agent again in the same worktree", "supervisor restart NAME",
           footer=True),
    Action("m", "merge", "Merge", "audit the agent's commits against its contract and merge its branch",
           "supervisor merge NAME", footer=True),
    Action("x", "remove", "Remove", "remove a stopped agent's worktree and branch", "supervisor rm NAME [--force]",
           footer=True),
    Action("D", "diff", "Diff", "everything the agent changed against its base (commits, uncommitted edits, new "
           "files), file by file with its code coloured: n/p next/previous file, arrows and PgUp/PgDn scroll",
           "supervisor diff NAME", footer=True),
    Action("C", "compare", "Compare", "the candidates of the selected agent's best-of-N side by side (files, lines, "
           "merge.check); from there D shows one's diff and m merges it", "supervisor compare GROUP"),
    Action("z", "snooze", "Snooze alerts", "silence the agent's alerts for a while",
           "supervisor alerts snooze NAME [--for 30m]", footer=True, short="Snooze"),
    Action("R", "restore", "Restore agents", "bring back the agents whose panes went with the tmux server (it was "
           "killed, the machine rebooted), each in its own conversation", "supervisor restore --all", on_agent=False),
    Action("t", "task_board", "Task board", "the tasks agents claim one at a time: add one, release a claim, "
           "mark one done", "supervisor task ls|add|release|done", on_agent=False),
    Action("space", "toggle_mark", "Mark", "mark the agent (again: unmark); with agents marked, s, r, y, d, i and x "
           "act on all of them after one confirmation (Esc clears the marks)",
           "supervisor stop|restart|approve|deny|send|rm NAME NAME…", footer=True),
    Action("shift+down", "mark_down", "Mark and move down", "mark the agent and the next one (shift+↓)",
           on_agent=True),
    Action("shift+up", "mark_up", "Mark and move up", "mark the agent and the one above (shift+↑)", on_agent=True),
    Action("slash", "filter_text", "Filter", "filter the agents by text (Esc returns to the list)",
           on_agent=False),  # not in the footer: the filter line says `(/)` already
    Action("f", "cycle_state_filter", "State filter", "cycle the state filter: all, needs me, live, …",
           on_agent=False),
    Action("F", "cycle_host_filter", "Host filter", "cycle the host filter: all hosts, local, each host of "
           "supervisor.yaml (shown while there are hosts)", on_agent=False),
    Action("H", "hosts_view", "Hosts", "each host: state, load, agents against its places (max_agents), latency, "
           "why it is down; ⏎ on one shows its agents", "supervisor hosts", on_agent=False),
    Action("exclamation_mark", "needs_me", "Needs me", "show only the agents that need a human (again: all)",
           on_agent=False),
    Action("e", "toggle_events", "Events: agent/all", "show the events of the selected agent or of all",
           on_agent=False),
    Action("p", "focus_preview", "Preview", "move the focus to the pane preview to scroll its history, and back",
           on_agent=False),
    Action("question_mark", "help", "Help", "this list of keys", footer=True, on_agent=False),
    Action("q", "quit", "Quit", "close the dashboard (the agents and the engine keep running)", footer=True,
           on_agent=False),
)

BY_NAME = {action.name: action for action in ACTIONS}
