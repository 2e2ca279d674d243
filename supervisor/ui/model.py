"""The dashboard's view of the world, without Textual: agents as rows, what needs a human, filters.

`Board` keeps what the engine said (the `ls` agents, `diffstat`, and the trigger events of the log) and
turns it into rows of rich `Text` cells. The widgets compare rows cell by cell and redraw only what
changed, so everything here must be deterministic for the same input and the same `now`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from rich.text import Text

from supervisor.core.durations import format_duration
from supervisor.core.eventtext import describe
from supervisor.core.model import describe_conflicts
from supervisor.ui.palette import DEFAULT, Palette
from supervisor.usage import report as usage_report

COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "Agent"), ("state", "State"), ("host", "Host"), ("for", "For"), ("cpu", "CPU"), ("mem", "Mem"),
    ("cost", "Cost"), ("ctx", "Ctx"), ("diff", "Diff"), ("badges", "Alerts"), ("task", "Task"),
)
# Which columns of the agents list give way first when the screen is narrow: the last of these first. The name
# and the state never do; the task, shown last, takes the width the others leave. The host is shown only while
# hosts are configured (or an agent runs on one): `HOST_COLUMN`.
COLUMN_PRIORITY = ("name", "state", "badges", "task", "host", "for", "diff", "cost", "ctx", "cpu", "mem")
HOST_COLUMN = "host"
LOCAL_HOST = "local"
COLUMN_MIN_WIDTH = {"cpu": 4, "mem": 6, "for": 3}  # what they often grow to: not a redraw of the list each time
TASK_MIN_WIDTH = 16  # narrower, a task says nothing: columns give way before it is cut to less
CONTEXT_WARN, CONTEXT_FULL = 75.0, 90.0  # percent of the context window: yellow, then red

LIVE_STATES = frozenset({"starting", "working", "idle", "waiting", "stalled", "limited", "unreachable"})
ENDED_STATES = frozenset({"exited", "failed", "killed", "stopped"})
CLEARED_BY_ENDING = ("waiting", "stalled", "deadlock")  # conditions that end with the agent

# The state filter's choices, in the order the filter offers them.
STATE_FILTERS: tuple[tuple[str, str], ...] = (
    ("all", "all agents"), ("attention", "needs me"), ("live", "live"), ("ended", "ended"),
    ("working", "working"), ("idle", "idle"), ("waiting", "waiting"), ("stalled", "stalled"), ("limited", "limited"),
    ("starting", "starting"), ("unreachable", "unreachable"), ("exited", "exited"), ("failed", "failed"),
    ("stopped", "stopped"), ("killed", "killed"), ("queued", "queued"),
)

# Attention kinds, most urgent first: what a human must look at before anything else. A conflict between
# live branches comes late: nothing is stuck yet, but someone should decide who merges first; last, work
# that is finished and ready to merge.
ATTENTION_ORDER = ("waiting", "boundary", "stalled", "merge", "failed", "timeout", "exited", "limited", "conflict",
                   "ready")
# How each kind shows in the "Needs you" list: its badge (coloured by the palette).
ATTENTION_LABELS = {
    "waiting": "ASK", "boundary": "BOUNDARY", "stalled": "STALL", "merge": "MERGE", "failed": "FAIL",
    "timeout": "TIMEOUT", "exited": "EXIT", "conflict": "CONFLICT", "ready": "READY", "limited": "LIMIT",
}


@lru_cache(maxsize=4096)
def parse_ts(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def format_mem(rss: int | None) -> str:
    if rss is None:
        return "-"
    value = float(rss)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return "-"


def format_age(seconds: float) -> str:
    """Time in state, as the table shows it: seconds only in the first minute, then minutes (`12m`), then
    hours (`1h30m`), so a quiet agent's row changes once a minute rather than every second."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m"
    return format_duration(total)


def age_changes_at(since: float, now: float) -> float:
    """When the age `format_age` shows for a state entered at `since` next changes its text (a time no later
    than that: at a minute's or an hour's turn it may show the same)."""
    total = max(0, int(now - since))
    step = 1 if total < 60 else 60 if total < 86400 else 3600
    return since + (total // step + 1) * step


def first_line(text: str | None, width: int = 80) -> str:
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def state_text(agent: dict[str, Any], palette: Palette = DEFAULT) -> Text:
    state = str(agent.get("state") or "?")
    label = state
    if state in ("exited", "failed") and agent.get("exit_code") not in (None, 0):
        label = f"{state} {agent['exit_code']}"
    elif state == "unreachable" and agent.get("last_state"):
        label = f"unreachable ({agent['last_state']})"  # what it was doing when its host went out of reach
    style = palette.state(state)
    if state == "exited" and agent.get("exit_code") not in (None, 0):
        style = palette.bad
    return Text(label, style=style)


def cost_text(usage: dict[str, Any], tree: str | None = None) -> Text:
    """The agent's cost (`-`: tokens of a model with no price), and its tree's after `Σ` for a session with
    helpers."""
    text = Text(usage_report.cost(usage) if usage else "-", justify="right")
    if tree is not None:
        text.append(f" Σ{tree}", style="dim")
    return text


def context_text(usage: dict[str, Any], palette: Palette = DEFAULT) -> Text:
    percent = usage.get("context_percent")
    if percent is None:
        return Text("-", justify="right", style="dim")
    style = f"bold {palette.bad}" if percent >= CONTEXT_FULL else palette.warn if percent >= CONTEXT_WARN else ""
    return Text(f"{percent:.0f}%", justify="right", style=style)


def diff_text(stat: dict[str, int] | None, palette: Palette = DEFAULT) -> Text:
    if not stat or not stat.get("files"):
        return Text("-", style="dim")
    text = Text(f"{stat['files']}f ")
    text.append(f"+{stat.get('added', 0)}", style=palette.good)
    text.append(" ")
    text.append(f"−{stat.get('removed', 0)}", style=palette.bad)
    return text


@dataclass
class Flags:
    """What the event log says about one agent beyond its `ls` record."""

    boundary: list[str] = field(default_factory=list)  # summaries of boundary violations
    active: dict[str, str] = field(default_factory=dict)  # stateful trigger -> summary, while true


@dataclass(frozen=True)
class Attention:
    name: str
    kind: str  # one of ATTENTION_ORDER
    reason: str
    since: float | None

    @property
    def rank(self) -> int:
        return ATTENTION_ORDER.index(self.kind)


def timed_out(agent: dict[str, Any], flags: Flags) -> bool:
    """Killed by the supervisor because it (or the parent it belonged to) ran past its timeout."""
    if agent.get("state") != "killed":
        return False
    return "timeout" in flags.active or "timed out" in str(agent.get("reason") or "")


def _conflicts(agent: dict[str, Any]) -> list[str]:
    value = agent.get("conflicts")
    if isinstance(value, dict):
        return sorted(str(key) for key in value)
    if isinstance(value, list | tuple | set):
        return [str(item if not isinstance(item, dict) else item.get("with", item)) for item in value]
    return []


# Columns whose cell is made from its inputs alone (not the agent's name): rows showing the same share one.
SHARED_COLUMNS = frozenset({"state", "for", "cpu", "mem", "ctx", "badges"})
SHARED_MOST = 5000  # shared cells kept (memory figures come and go): past this, made anew as needed


class Board:
    """Agents, their diff stats and their flags; rows and attention items derived from them."""

    def __init__(self) -> None:
        self.agents: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []  # tree order, as the engine lists them
        self.diffstat: dict[str, dict[str, int]] = {}
        self.tree_costs: dict[str, str] = {}
        self.total_cost = "$0.00"
        self.flags: dict[str, Flags] = {}
        self.silenced: dict[str, str] = {}  # agent -> until (ISO), from the engine's alert silences
        self.palette = DEFAULT
        # name -> (each cell's inputs, cells, the version they were made at)
        self._rows: dict[str, tuple[dict[str, Any], dict[str, Text], int]] = {}
        self._shared: dict[tuple[str, Any], Text] = {}  # (column, inputs) -> the cell every row with them shows
        # Bumped by every change of what rows are made of but the clock: a row made at this version can differ
        # now only by its age (`cells`).
        self.version = 0
        self._trees: dict[str, list[dict[str, Any]]] = {}  # session -> its tree's usages, as last summed

    # input --------------------------------------------------------------------------------------------

    def set_agents(self, agents: Iterable[dict[str, Any]]) -> None:
        listed = list(agents)
        self.version += 1
        self.agents = {str(a["name"]): a for a in listed}
        self.order = sorted(self.agents, key=tree_key)
        for gone in set(self.flags) - set(self.agents):
            del self.flags[gone]
        for gone in set(self._rows) - set(self.agents):
            del self._rows[gone]
        trees: dict[str, list[dict[str, Any]]] = {}
        for name, agent in self.agents.items():
            trees.setdefault(name.split(".", 1)[0], []).append(agent.get("usage") or {})
        if trees == self._trees:
            return  # the same usages: the same sums (added up again, 100 agents' cost a millisecond a listing)
        # A session with helpers shows its whole tree's cost too; the header shows the repository's.
        self.tree_costs = {root: usage_report.cost(usage_report.summed(views))
                           for root, views in trees.items() if len(views) > 1}
        self.total_cost = usage_report.cost(usage_report.summed([v for views in trees.values() for v in views]))
        self._trees = trees

    def set_palette(self, palette: Palette) -> None:
        """Colours of another theme: every row is drawn again."""
        if palette != self.palette:
            self.palette = palette
            self.version += 1
            self._rows.clear()
            self._shared.clear()

    def set_diffstat(self, stats: dict[str, dict[str, int]]) -> None:
        self.diffstat = dict(stats)
        self.version += 1

    def set_silences(self, silences: Iterable[dict[str, Any]]) -> None:
        """Alert silences (`supervisor alerts snooze`): the agents with one get a `zz` badge."""
        silenced = {str(s["agent"]): str(s.get("until") or "") for s in silences if s.get("agent")}
        if silenced != self.silenced:
            self.silenced = silenced
            self.version += 1

    def apply_events(self, events: Iterable[dict[str, Any]]) -> set[str]:
        """Fold trigger events (and removals) into the flags; the names whose flags changed."""
        changed: set[str] = set()
        for event in events:
            name = event.get("agent")
            if not name:
                continue
            kind = event.get("kind")
            if kind == "removed" or kind == "created":
                if self.flags.pop(name, None) is not None:
                    changed.add(name)
                continue
            if kind == "launched":  # a restart starts with a clean slate, except what its commits did
                flags = self.flags.get(name)
                if flags is not None and flags.active:
                    flags.active.clear()
                    changed.add(name)
                continue
            if event.get("state") in ENDED_STATES:
                # An ended agent no longer waits or stalls (as the alert router clears them, quietly): a badge
                # kept from before would ask for what nothing can answer.
                flags = self.flags.get(name)
                if flags is not None and any([flags.active.pop(mark, None) for mark in CLEARED_BY_ENDING]):
                    changed.add(name)
            if kind != "trigger":
                continue
            trigger = str(event.get("trigger") or "")
            summary = str(event.get("summary") or trigger)
            flags = self.flags.setdefault(name, Flags())
            if trigger == "boundary":
                if event.get("active", True) and summary not in flags.boundary:
                    flags.boundary.append(summary)
                elif not event.get("active", True):
                    flags.boundary.clear()
            elif event.get("active", True):
                flags.active[trigger] = summary
            else:
                flags.active.pop(trigger, None)
            changed.add(name)
        if changed:
            self.version += 1
        return changed

    # output -------------------------------------------------------------------------------------------

    def badges(self, name: str) -> Text:
        agent = self.agents.get(name, {})
        flags = self.flags.get(name, Flags())
        state = agent.get("state")
        items: list[str] = []
        # Each badge is read off the record as it is now: a trigger event said what was true then, and the
        # event that ends it may never come (a denial answered, a stop, a pane gone).
        if state == "waiting":
            items.append("ASK")
        if state == "stalled":
            items.append("STALL")
        if state == "limited":
            items.append("LIMIT")
        if flags.boundary or agent.get("boundary_violations"):
            items.append("BOUNDARY")
        conflicts = _conflicts(agent)
        if conflicts:
            items.append("CONFLICT")
        if state == "failed":
            items.append("FAIL")
        elif state == "exited":
            items.append("EXIT 0" if agent.get("exit_code") == 0 else "EXIT")
        elif timed_out(agent, flags):
            items.append("TIMEOUT")
        if "merge" in flags.active:
            items.append("MERGE")
        elif agent.get("ready_to_merge"):  # READY: the engine found a merge now would go through, nothing lost
            items.append("READY")
        elif agent.get("merged"):
            items.append("MERGED")
        if agent.get("snoozed_until") or name in self.silenced:
            items.append("ZZ")
        text = Text()
        for item in items:
            if text:
                text.append(" ")
            label = f"CONFLICT {len(conflicts)}" if item == "CONFLICT" else ("zz" if item == "ZZ" else item)
            text.append(label, style=self.palette.badge(item))
        return text

    def cells(self, name: str, now: float, *, context_only: bool = False) -> dict[str, Text]:
        """One row of the agent table (`context_only`: shown only as the parent of a match).

        The same dict comes back while nothing shown in the row changed, so the table can skip the row
        without comparing cells: a refresh of 100 quiet agents costs 100 tuple comparisons. In a row that
        changed, each cell whose own inputs did not change is the same `Text` as before (most of a busy
        agent's row: its name, task, cost), so the table skips it without comparing it either. The cells of
        columns many rows show alike (state, age, CPU, memory, context, badges) are one `Text` for all the
        rows showing the same (`SHARED_COLUMNS`): a changed row mostly gets cells already made and drawn
        (`supervisor.ui.rowdraw` draws a cell once per `Text`). CPU and memory count as changed when what
        they show does."""
        agent = self.agents[name]
        since = parse_ts(agent.get("state_since"))
        age = format_age(now - since) if since else "-"
        cached = self._rows.get(name)
        if cached is not None and cached[2] == self.version and cached[0]["name"][1] == context_only:
            # Nothing but the clock moved since this row was made (ages tick every second): only its age may
            # have changed, and no other input needs to be gathered again.
            if cached[0]["for"] == age:
                return cached[1]
            aged = {**cached[1], "for": self._shared_cell("for", age, name, agent, age, {}, context_only)}
            self._rows[name] = ({**cached[0], "for": age}, aged, self.version)
            return aged
        flags = self.flags.get(name)
        flagged = (tuple(flags.boundary), tuple(sorted(flags.active.items()))) if flags else None
        usage = agent.get("usage") or {}
        cpu = agent.get("cpu_percent")
        inputs = {  # what each cell shows is made of
            "name": (agent.get("level"), context_only),
            "state": (agent.get("state"), agent.get("exit_code"), agent.get("last_state")),
            "host": agent.get("host"),
            "for": age,
            "cpu": f"{cpu:.0f}%" if cpu is not None else "-",
            "mem": format_mem(agent.get("rss_bytes")),
            "cost": (repr(usage), self.tree_costs.get(name)),
            "ctx": usage.get("context_percent"),
            "diff": repr(self.diffstat.get(name)),
            "badges": (flagged, self.silenced.get(name), agent.get("state"), agent.get("exit_code"),
                       agent.get("reason"), repr(agent.get("boundary_violations")), repr(agent.get("conflicts")),
                       agent.get("merged"), agent.get("ready_to_merge"), agent.get("snoozed_until")),
            "task": agent.get("task"),
        }
        if cached is not None and cached[0] == inputs:
            self._rows[name] = (inputs, cached[1], self.version)
            return cached[1]
        before = cached[1] if cached is not None else {}
        was = cached[0] if cached is not None else {}
        cells: dict[str, Text] = {}
        for key, made_of in inputs.items():
            old = before.get(key)
            if old is not None and was.get(key) == made_of:
                cells[key] = old
            elif key in SHARED_COLUMNS:
                cells[key] = self._shared_cell(key, made_of, name, agent, age, usage, context_only)
            else:
                cells[key] = self._cell(key, name, agent, age, usage, context_only)
        self._rows[name] = (inputs, cells, self.version)
        return cells

    def _shared_cell(self, key: str, made_of: Any, name: str, agent: dict[str, Any], age: str,
                     usage: dict[str, Any], context_only: bool) -> Text:
        """The cell of column `key` (one of SHARED_COLUMNS) every row whose inputs are `made_of` shows."""
        shared = self._shared.get((key, made_of))
        if shared is None:
            if len(self._shared) >= SHARED_MOST:
                self._shared.clear()
            shared = self._shared[key, made_of] = self._cell(key, name, agent, age, usage, context_only)
        return shared

    def _cell(self, key: str, name: str, agent: dict[str, Any], age: str, usage: dict[str, Any],
              context_only: bool) -> Text:
        if key == "name":
            level = int(agent.get("level") or name.count(".") + 1)
            indent = "  " * (level - 2) + " └ " if level > 1 else ""
            name_text = Text(indent, style="dim")
            repository, colon, own = name.rpartition(":")  # `ui --all`: REPO:NAME, grouped by repository
            name_text.append(repository + colon, style="dim")
            name_text.append(own, style="dim" if context_only else "bold")
            return name_text
        if key == "state":
            return state_text(agent, self.palette)
        if key == "host":
            host = str(agent.get("host") or LOCAL_HOST)
            return Text(host, style="dim" if host == LOCAL_HOST else "")
        if key == "for":
            return Text(age, style="dim")
        if key == "cpu":
            cpu = agent.get("cpu_percent")
            return Text(f"{cpu:.0f}%" if cpu is not None else "-", justify="right")
        if key == "mem":
            return Text(format_mem(agent.get("rss_bytes")), justify="right")
        if key == "cost":
            return cost_text(usage, self.tree_costs.get(name))
        if key == "ctx":
            return context_text(usage, self.palette)
        if key == "diff":
            return diff_text(self.diffstat.get(name), self.palette)
        if key == "badges":
            return self.badges(name)
        return Text(first_line(agent.get("task"), 200), overflow="ellipsis", no_wrap=True)

    def ages_change_at(self, names: Iterable[str], now: float) -> float:
        """When the first of these agents' ages (as rows show them) next changes its text: before then, a
        redraw for the clock alone would draw what is shown already."""
        found = [age_changes_at(since, now) for name in names
                 if (since := parse_ts(self.agents[name].get("state_since"))) is not None]
        return min(found, default=float("inf"))

    def age_cell(self, name: str, now: float) -> Text:
        since = parse_ts(self.agents[name].get("state_since"))
        return Text(format_age(now - since) if since else "-", style="dim")

    def attention(self) -> list[Attention]:
        """What needs a human, most urgent first (one item per agent: its most urgent reason)."""
        items: list[Attention] = []
        for name in self.order:
            item = self.attention_of(name)
            if item is not None:
                items.append(item)
        return sorted(items, key=lambda a: (a.rank, a.since or 0.0, a.name))

    def attention_of(self, name: str) -> Attention | None:
        agent = self.agents[name]
        flags = self.flags.get(name, Flags())
        state = agent.get("state")
        since = parse_ts(agent.get("state_since"))
        if state == "waiting":
            return Attention(name, "waiting", agent.get("waiting_reason") or "needs input", since)
        if flags.boundary or agent.get("boundary_violations"):
            return Attention(name, "boundary", flags.boundary[-1] if flags.boundary else "left its boundary", since)
        if state == "stalled":
            return Attention(name, "stalled", flags.active.get("stalled") or "no output and no CPU", since)
        if "merge" in flags.active:
            return Attention(name, "merge", flags.active["merge"], since)
        if state == "failed":
            return Attention(name, "failed", agent.get("reason") or "could not start", since)
        if timed_out(agent, flags):
            return Attention(name, "timeout", agent.get("reason") or flags.active.get("timeout") or "timed out",
                             since)
        if state == "exited":
            code = agent.get("exit_code")
            reason = agent.get("reason") or ("exited by itself (code 0)" if code == 0 else f"exited with code {code}")
            return Attention(name, "exited", reason, since)
        if state == "limited":  # nothing to answer, but its work waits: until when, and what to do about it
            return Attention(name, "limited", agent.get("waiting_reason") or "hit a usage or rate limit", since)
        conflicts = agent.get("conflicts")
        if conflicts and isinstance(conflicts, list) and all(isinstance(c, dict) for c in conflicts):
            return Attention(name, "conflict", describe_conflicts(conflicts), since)
        if agent.get("ready_to_merge"):
            ahead = agent.get("ahead")
            commits = f"{ahead} commit{'s' if ahead != 1 else ''}" if ahead else "its commits"
            return Attention(name, "ready", f"ready to merge: {commits} into {agent.get('target') or 'its target'}"
                             " (m merges)", since)
        return None

    def hosts(self) -> list[str]:
        """The hosts the agents run on, `local` first, then by name."""
        found = {str(agent.get("host") or LOCAL_HOST) for agent in self.agents.values()}
        return sorted(found, key=lambda host: (host != LOCAL_HOST, host))

    def visible(self, state_filter: str, text_filter: str, host_filter: str = "all") -> list[tuple[str, bool]]:
        """The names to show, in tree order, each with whether it is shown only as a matching helper's parent.
        `host_filter`: a host's name, or `all`."""
        needle = text_filter.strip().lower()
        matches = {name for name in self.order if self._matches(name, state_filter, needle)
                   and (host_filter == "all" or (self.agents[name].get("host") or LOCAL_HOST) == host_filter)}
        shown: list[tuple[str, bool]] = []
        for name in self.order:
            if name in matches:
                shown.append((name, False))
            elif any(other.startswith(name + ".") for other in matches):
                shown.append((name, True))
        return shown

    def _matches(self, name: str, state_filter: str, needle: str) -> bool:
        agent = self.agents[name]
        state = agent.get("state")
        if state_filter == "attention":
            if self.attention_of(name) is None:
                return False
        elif state_filter == "live":
            if state not in LIVE_STATES:
                return False
        elif state_filter == "ended":
            if state not in ENDED_STATES:
                return False
        elif state_filter != "all" and state != state_filter:
            return False
        if not needle:
            return True
        haystack = " ".join(str(agent.get(key) or "") for key in ("name", "state", "task", "waiting_reason",
                                                                    "reason", "role", "branch", "host"))
        return needle in haystack.lower()


def tree_key(name: str) -> tuple[str, ...]:
    """Sessions by name, each followed by its helpers, depth first: `a`, `a.b`, `a.b.c`, `a.c`, `b`."""
    return tuple(name.split("."))


# Fields of an event the log panel leaves out: how the agent was launched is in `supervisor show`, not news.
_EVENT_NOISE = frozenset({"command", "pid", "pane", "base", "worktree"})
_FAILURES = frozenset({"failed", "delivery_failed", "kill_incomplete", "config_invalid", "alert_failed"})


def event_line(event: dict[str, Any], *, with_agent: bool = True, palette: Palette = DEFAULT) -> Text:
    """One line of the event log: local time, agent, and what happened as a sentence (`supervisor events`'s
    words, supervisor.core.eventtext), its first words coloured by what it is."""
    ts = parse_ts(event.get("ts"))
    clock = datetime.fromtimestamp(ts).strftime("%H:%M:%S") if ts else "--:--:--"
    kind = str(event.get("kind") or "?")
    line = Text(clock + " ", style="dim")
    if with_agent:
        line.append(f"{event.get('agent') or 'engine':<10} ", style="bold")
    text = first_line(describe({key: value for key, value in event.items() if key not in _EVENT_NOISE}), 400)
    if kind == "trigger":
        active = event.get("active", True)
        head = f"{event.get('trigger')} {'began' if active else 'ended'}"
        style = f"bold {palette.warn}" if active else palette.good
    elif kind == "state":
        head, style = str(event.get("state")), palette.state(str(event.get("state")))
    elif kind in _FAILURES or (kind in ("exited", "killed") and event.get("exit_code") not in (0, None)):
        head, style = text, palette.bad
    else:
        head, style = "", ""
    if head and text.startswith(head):
        line.append(head, style=style)
        line.append(text[len(head):])
    else:
        line.append(text)
    return line
