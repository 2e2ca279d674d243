"""The engine's usage reader: a thread of its own that, every few seconds and when a turn ends (a hook), reads
what each agent's CLI added to its records, writes it to the store, and keeps each agent's totals at hand.

It never runs in the watch loop: `ls` reads the totals it keeps (`per_agent`), and a pass over agents whose files
did not change costs one stat per file. Listeners (`subscribe`) hear the names of agents whose usage changed,
after each pass that changed any (budgets and the context alert hang there).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
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
from supervisor.usage import claude, totals
from supervisor.usage.follow import SOURCES, Finder, Mark, inside, read_new, read_small
from supervisor.usage.ledger import Ledger
from supervisor.usage.prices import Prices
from supervisor.usage.records import Found, Reader
from supervisor.usage.totals import Usage

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

USAGE_SECONDS = 5.0
MIN_GAP = 0.5  # seconds between two passes, however many turns end
MAX_NAMED = 64  # files an agent's hooks may name (beyond what is found in its folder)
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
        self._roots: dict[str, str] = {}  # agent → its state folder (its parent's symlinks resolved)
        self._files: dict[str, list[str]] = {}  # agent → its record files, as last listed
        self._passes = 0
        self._marks: dict[str, tuple[str, Mark]] | None = None  # path → (agent, mark), loaded on the first pass
        self._extra: dict[str, set[str]] = {}  # agent → files its hooks named (inside its own folder)
        self._owners: dict[str, tuple[str, str]] = {}  # a file's identity → (agent, path) that reads it
        self._faulty: set[str] = set()  # files whose fault was said (once)
        self._settings: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}  # settings.json, as last read
        self._listeners: list[Listener] = []
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._prices_from: object = None
        self._prices = Prices()
        self._usage: dict[str, Usage] | None = None  # agent → its usage, priced with self._prices
        self._generation = 0  # moves whenever the store's usage changes (a pass that read any, a removal)
        self._last_pass = 0.0
        self._passing = threading.Lock()  # one pass at a time (the thread's, or a request's)
        # A pass's save, and a removal's forgetting, one at a time: a pass that read a removed agent's files saves
        # nothing of them after its removal. Not the pass lock: listeners (budgets) take agent locks under that,
        # and a removal holds its agent's lock.
        self._saving = threading.Lock()
        self._removals = 0  # removals so far
        self._removed: dict[str, int] = {}  # agent → the removal that forgot it (its number)
        self._gone: set[str] = set()  # removed agents whose folders and listings the next pass forgets

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
            usage, generation = self._usage, self._generation
        if usage is None:
            usage = totals.per_agent(self.ledger, prices)
            with self._lock:  # kept only if no pass changed the store meanwhile (it might not be in `usage`)
                if self._prices is prices and self._generation == generation:
                    self._usage = usage
        return usage

    def usage_of(self, name: str) -> Usage:
        return self.per_agent().get(name, totals.NONE)

    def note_hook(self, name: str, event: dict[str, Any]) -> None:
        """A hook event of the agent's CLI: the transcript it names is read too (only one inside the agent's own
        folder: the agent can send hooks itself, naming any file), and a turn's end reads now."""
        path = event.get("transcript_path")
        if isinstance(path, str) and path.endswith(".jsonl") and inside(path, self._root(name)):
            with self._lock:
                known = self._extra.setdefault(name, set())
                new = path not in known and len(known) < MAX_NAMED
                if new:
                    known.add(path)
            if new:
                self._wake.set()
        if event.get("hook_event_name") in TURN_ENDS:
            self._wake.set()

    def forget(self, name: str) -> None:
        """The agent was removed (its record and its folder are gone): its records count for the repository only;
        its files are forgotten, and a pass under way when it was removed saves nothing of them."""
        with self._saving:
            self.ledger.forget(name)
            with self._lock:
                self._removals += 1
                self._removed[name] = self._removals
                self._gone.add(name)
                self._extra.pop(name, None)
                self._generation += 1
                if self._marks is not None:
                    self._marks = {path: entry for path, entry in self._marks.items() if entry[0] != name}
                if self._usage is not None:
                    self._usage = {agent: usage for agent, usage in self._usage.items() if agent != name}

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
        for label, removed, usage in totals.grouped(self.ledger, prices, by, since, plans):
            if by == "agent" and removed is None and label in current:
                usage = replace(usage, context_tokens=current[label].context_tokens,
                                context_window=current[label].context_window)
            rows.append({"key": label, "removed": by == "agent" and (removed is not None or label not in plans),
                         **usage.view(), "tokens": usage.tokens, "last_at": iso(usage.last_at),
                         **({"removed_at": iso(removed)} if by == "agent" else {})})
        return {"by": by, "since": iso(since), "rows": rows,
                "total": {**totals.total(u for _, _, u in totals.grouped(self.ledger, prices, "tree", since)).view()}}

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
            self._generation += 1
            if self._usage is not None:
                self._usage = {**self._usage, **fresh}
        for listener in self._listeners:
            try:
                listener(changed)
            except Exception:
                log.exception("usage: a listener failed")

    def read_all(self) -> set[str]:
        """Read every agent's new records into the store (one transaction); the agents that had any. A file whose
        records cannot be read or stored is passed over (said once in the log), never the others with it."""
        with self._lock:
            removals, gone, self._gone = self._removals, self._gone, set()
            extra = {name: set(paths) for name, paths in self._extra.items()}
        for name in gone:
            self._forget_files(name)
        with self._saving:
            if self._marks is None:
                self._marks = self.ledger.marks()
                self._owners = {mark.identity: (agent, path) for path, (agent, mark) in self._marks.items()}
        agents, _ = self._records.read()
        reads: list[tuple[str, str, Mark, Found]] = []
        self._passes += 1
        rescan = self._passes % RESCAN_EVERY == 1  # new files in between: from hooks (transcript_path) or then
        for agent in agents:
            source = SOURCES.get(agent.profile)
            if source is None or agent.state == State.QUEUED:
                continue
            root = self._roots.get(agent.name)
            if root is None:
                root = self._roots[agent.name] = self._root(agent.name)
            paths = self._files.get(agent.name)
            if not paths or rescan:  # none yet: looked for at every pass until its CLI writes one
                paths = self._files[agent.name] = list(self._finder.files(root, source))
            for path in [*paths, *sorted(extra.get(agent.name, set()) - set(paths))]:
                found = self._read(agent, root, path, source.reader)
                if found is not None:
                    reads.append(found)
        with self._saving:
            reads = [read for read in reads if self._removed.get(read[0], 0) <= removals]  # not removed meanwhile
            if reads:
                reads = self._save(reads)
                for name, path, mark, _ in reads:
                    self._marks[path] = (name, mark)
        return {name for name, _, _, found in reads if found.records or found.context}

    def _forget_files(self, name: str) -> None:
        """What this thread keeps of a removed agent's folder."""
        root = self._roots.pop(name, None) or self._root(name)
        self._files.pop(name, None)
        self._settings.pop(os.path.join(root, "settings.json"), None)
        self._finder.forget(root)
        self._owners = {key: owner for key, owner in self._owners.items() if owner[0] != name}
        with self._lock:
            self._faulty = {path for path in self._faulty if not path.startswith(root + os.sep)}

    def _read(self, agent: Agent, root: str, path: str, reader: Reader) -> tuple[str, str, Mark, Found] | None:
        assert self._marks is not None
        owner, mark = self._marks.get(path, (agent.name, None))
        if owner != agent.name:
            return None  # a file another agent's hooks named first: never counted twice
        chunk = read_new(path, mark, root)
        if chunk is None:
            return None
        if not self._owns(agent.name, path, chunk.mark.identity):
            return agent.name, path, chunk.mark, Found([])  # passed over up to here, not read again each pass
        if agent.profile == "aider":
            chunk.mark.state.setdefault("model", _option(agent.command, "--model"))
        if agent.profile == "claude":
            chunk.mark.state["window"] = claude.window(_chosen(agent.command) or self._setting(root, "model"))
        return agent.name, path, chunk.mark, self._found(path, reader, chunk.lines, chunk.mark.state)

    def _owns(self, name: str, path: str, identity: str) -> bool:
        """Whether the file `path` (of `identity`) is the agent's to count: not when another agent reads that
        same file under another name (a hard link in the agent's folder), as long as that other name is it."""
        other = self._owners.get(identity)
        if other is not None and other[0] != name and other[1] != path and _identity(other[1]) == identity:
            self._fault(path, f"{path} is the file {other[1]} of agent {other[0]}: not counted for {name}")
            return False
        self._owners[identity] = (name, path)
        return True

    def _found(self, path: str, reader: Reader, lines: list[bytes], state: dict[str, Any]) -> Found:
        """What the reader finds in `lines`; a line it fails on is passed over (said once for the file)."""
        before = copy.deepcopy(state)
        try:
            return reader(lines, state)
        except Exception as exc:
            self._fault(path, f"a line of {path} could not be read ({type(exc).__name__}: {exc}): passed over")
        state.clear()
        state.update(before)
        found = Found([])
        for line in lines:
            try:
                one = reader([line], state)
            except Exception:
                continue
            found.records += one.records
            found.context = one.context or found.context
        return found

    def _save(self, reads: list[tuple[str, str, Mark, Found]]) -> list[tuple[str, str, Mark, Found]]:
        """Store what was read, in one transaction; if that fails, file by file: a file whose records the store
        refuses is passed over (said once; its position moves on, nothing of that part counted). The reads stored."""
        try:
            self.ledger.save_all(reads)
            return reads
        except Exception:
            log.debug("usage: storing a pass's reads failed; file by file", exc_info=True)
        saved = []
        for name, path, mark, found in reads:
            try:
                self.ledger.save(name, path, mark, found)
            except Exception as exc:
                self.ledger.save(name, path, mark, Found([]))  # raises when the store is at fault, not the file
                self._fault(path, f"the records of {path} could not be stored ({type(exc).__name__}: {exc}): "
                                  "passed over")
                found = Found([])
            saved.append((name, path, mark, found))
        return saved

    def _setting(self, root: str, key: str) -> str | None:
        """A string setting of Claude Code's own settings file in the agent's folder, read again when it changed."""
        path = os.path.join(root, "settings.json")
        try:
            seen = os.lstat(path)
        except OSError:
            return None
        stamp = (seen.st_ino, seen.st_mtime_ns, seen.st_size)
        cached = self._settings.get(path)
        if cached is None or cached[0] != stamp:
            cached = self._settings[path] = (stamp, _settings(read_small(path, root)))
        found = cached[1].get(key)
        return found if isinstance(found, str) else None

    def _fault(self, path: str, text: str) -> None:
        with self._lock:
            said = path in self._faulty
            self._faulty.add(path)
        if not said:
            log.warning("usage: %s", text)

    def _root(self, name: str) -> str:
        """The agent's state folder, its parent's symlinks resolved (the folder itself is the agent's to replace:
        a symlink there must not make another agent's files its own)."""
        folder = self.engine.paths.agent_state(name)
        return os.path.join(os.path.realpath(folder.parent), folder.name)


def _identity(path: str) -> str | None:
    try:
        seen = os.lstat(path)
    except OSError:
        return None
    return f"{seen.st_dev}:{seen.st_ino}"


def _settings(text: bytes | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text is not None else None
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


@functools.lru_cache(maxsize=256)
def _chosen(command: str) -> str | None:
    """The model a Claude Code command line chooses: `--model`, else ANTHROPIC_MODEL (Claude Code's order)."""
    return _option(command, "--model") or _option(command, "ANTHROPIC_MODEL")


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
