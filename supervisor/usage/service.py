"""The engine's usage reader: a thread of its own that, every few seconds and when a turn ends (a hook), reads
what each agent's CLI added to its records, writes it to the store, and keeps each agent's totals at hand.

It never runs in the watch loop: `ls` reads the totals it keeps (`per_agent`), and a pass over agents whose files
did not change costs one stat per file. Listeners (`subscribe`) hear the names of agents whose usage changed,
after each pass that changed any (budgets and the context alert hang there).
"""

from __future__ import annotations

import logging
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from supervisor.core.model import Agent, State
from supervisor.engine.records import AgentRecords
from supervisor.engine.service import PeriodicService
from supervisor.engine.views import iso
from supervisor.errors import UsageError
from supervisor.usage import totals
from supervisor.usage.follow import SOURCES, Finder, Mark, read_new
from supervisor.usage.ledger import Ledger
from supervisor.usage.prices import Prices
from supervisor.usage.records import Found, Reader
from supervisor.usage.totals import Usage

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

USAGE_SECONDS = 5.0
MIN_GAP = 0.5  # seconds between two passes, however many turns end
RESCAN_EVERY = 6  # passes between two looks for new record files (a new session's file, a CLI without hooks)
# Hook events after which the CLI has written a response's usage: read now rather than at the next pass.
TURN_ENDS = frozenset({"Stop", "StopFailure", "SubagentStop", "SessionEnd", "PreCompact"})

Listener = Callable[[set[str]], None]


class UsageService(PeriodicService):
    thread_name = "usage"
    interval = USAGE_SECONDS

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.ledger = Ledger(engine.store)
        self._records = AgentRecords(engine.store)
        self._finder = Finder()
        self._roots: dict[str, str] = {}  # agent → its state folder
        self._files: dict[str, list[str]] = {}  # agent → its record files, as last listed
        self._passes = 0
        self._marks: dict[str, tuple[str, Mark]] | None = None  # path → (agent, mark), loaded on the first pass
        self._extra: dict[str, set[str]] = {}  # agent → files its hooks named outside its own folder
        self._listeners: list[Listener] = []
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._prices_from: object = None
        self._prices = Prices()
        self._usage: dict[str, Usage] | None = None  # agent → its usage, priced with self._prices
        self._last_pass = 0.0
        self._passing = threading.Lock()  # one pass at a time (the thread's, or a request's)

    # what others use -------------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` (from this service's thread) with the agents whose usage changed, after each pass."""
        self._listeners.append(listener)

    def prices(self) -> Prices:
        overrides = self.engine.config.prices
        with self._lock:
            if overrides is not self._prices_from:  # supervisor.yaml was read again: price everything anew
                self._prices_from, self._prices, self._usage = overrides, Prices(overrides), None
            return self._prices

    def per_agent(self) -> dict[str, Usage]:
        """Every agent's usage now (tokens, cost, model, context)."""
        prices = self.prices()
        with self._lock:
            usage = self._usage
        if usage is None:
            usage = totals.per_agent(self.ledger, prices)
            with self._lock:
                if self._prices is prices:
                    self._usage = usage
        return usage

    def usage_of(self, name: str) -> Usage:
        return self.per_agent().get(name, totals.NONE)

    def note_hook(self, name: str, event: dict[str, Any]) -> None:
        """A hook event of the agent's CLI: the transcript it names is read too, and a turn's end reads now."""
        path = event.get("transcript_path")
        if isinstance(path, str) and path.endswith(".jsonl"):
            with self._lock:
                known = self._extra.setdefault(name, set())
                new = path not in known
                known.add(path)
            if new:
                self._wake.set()
        if event.get("hook_event_name") in TURN_ENDS:
            self._wake.set()

    def forget(self, name: str) -> None:
        """The agent is being removed: its records count for the repository only; its files are forgotten."""
        self.ledger.forget(name)
        with self._lock:
            self._extra.pop(name, None)
            if self._marks is not None:
                self._marks = {path: entry for path, entry in self._marks.items() if entry[0] != name}
            if self._usage is not None:
                self._usage = {agent: usage for agent, usage in self._usage.items() if agent != name}
        self._finder.forget(str(self.engine.paths.agent_state(name)))
        self._roots.pop(name, None)
        self._files.pop(name, None)

    def op_usage(self, since: float | None = None, by: str = "agent") -> dict[str, Any]:
        """`supervisor usage`: tokens and cost grouped `by` agent, tree, plan or day, recorded since the time
        `since` (None: all), removed agents' included; with the repository's total and each tree's."""
        if by not in totals.GROUPINGS:
            raise UsageError(f"unknown grouping {by!r}", hint=f"--by takes one of: {', '.join(totals.GROUPINGS)}")
        prices = self.prices()
        self.step_now()
        agents, _ = self._records.read()
        plans = {a.name: (a.extra.get("plan") or {}).get("file") for a in agents}
        current = self.per_agent() if since is None else {}
        rows = []
        for label, usage in totals.grouped(self.ledger, prices, by, since, plans):
            if by == "agent" and label in current:
                usage = replace(usage, context_tokens=current[label].context_tokens,
                                context_window=current[label].context_window)
            rows.append({"key": label, "removed": by == "agent" and label not in plans, **usage.view(),
                         "tokens": usage.tokens, "last_at": iso(usage.last_at)})
        return {"by": by, "since": iso(since), "rows": rows,
                "total": {**totals.total(u for _, u in totals.grouped(self.ledger, prices, "tree", since)).view()}}

    def step_now(self) -> None:
        """Read what is new before answering (a request thread; passes never overlap)."""
        with self._passing:
            self._pass()

    # the thread ------------------------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def pause(self) -> None:
        self._wake.wait(max(self.interval - (time.monotonic() - self._last_pass), 0.0))
        self._wake.clear()
        wait = self._last_pass + MIN_GAP - time.monotonic()
        if wait > 0:
            self.stopping.wait(wait)

    def step(self) -> None:
        with self._passing:
            self._pass()

    def _pass(self) -> None:
        self._last_pass = time.monotonic()
        changed = self.read_all()
        if not changed:
            return
        fresh = totals.per_agent(self.ledger, self.prices(), sorted(changed))
        with self._lock:
            if self._usage is not None:
                self._usage = {**self._usage, **fresh}
        for listener in self._listeners:
            try:
                listener(changed)
            except Exception:
                log.exception("usage: a listener failed")

    def read_all(self) -> set[str]:
        """Read every agent's new records into the store (one transaction); the agents that had any."""
        if self._marks is None:
            self._marks = self.ledger.marks()
        agents, _ = self._records.read()
        with self._lock:
            extra = {name: set(paths) for name, paths in self._extra.items()}
        reads: list[tuple[str, str, Mark, Found]] = []
        self._passes += 1
        rescan = self._passes % RESCAN_EVERY == 1  # new files in between: from hooks (transcript_path) or then
        for agent in agents:
            source = SOURCES.get(agent.profile)
            if source is None or agent.state == State.QUEUED:
                continue
            root = self._roots.get(agent.name)
            if root is None:
                root = self._roots[agent.name] = str(self.engine.paths.agent_state(agent.name))
            paths = self._files.get(agent.name)
            if not paths or rescan:  # none yet: looked for at every pass until its CLI writes one
                paths = self._files[agent.name] = list(self._finder.files(root, source))
            for path in [*paths, *sorted(extra.get(agent.name, set()) - set(paths))]:
                found = self._read(agent, path, source.reader)
                if found is not None:
                    reads.append(found)
        if reads:
            self.ledger.save_all(reads)
            for name, path, mark, _ in reads:
                self._marks[path] = (name, mark)
        return {name for name, _, _, found in reads if found.records or found.context}

    def _read(self, agent: Agent, path: str, reader: Reader) -> tuple[str, str, Mark, Found] | None:
        assert self._marks is not None
        owner, mark = self._marks.get(path, (agent.name, None))
        if owner != agent.name:
            return None  # a file another agent's hooks named first: never counted twice
        chunk = read_new(path, mark)
        if chunk is None:
            return None
        if agent.profile == "aider":
            chunk.mark.state.setdefault("model", _option(agent.command, "--model"))
        return agent.name, path, chunk.mark, reader(chunk.lines, chunk.mark.state)


def _option(command: str, name: str) -> str | None:
    """The value of `name` on a command line (`--model X` or `--model=X`), if it is there."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    for i, word in enumerate(words):
        if word == name and i + 1 < len(words):
            return words[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None
