"""The dashboard's source for `ui --all`: every repository with a running engine, as one engine would look.

Agents are named `REPO:NAME` (supervisor/repositories.py), so the tree orders them repository by repository, and
a request about one agent goes to its own repository's engine with its own name. Requests about everything
(`ls`, `diffstat`, `silences`, `restorable`) go to every engine at once and are merged. Changes: one thread per
engine waits on that engine's `changes` long poll and hands its events on, numbered afresh, to the dashboard's
own long poll here, which therefore sees every engine's events as they happen, with no polling.

An engine that stops (or was killed) leaves the dashboard with its repository: its registration is gone or
stale. Engines started later join at the next listing. No engine is ever started from here.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

from supervisor.repositories import Repository, each_repository, qualify, repositories, split
from supervisor.ui.source import LONG_POLL_SECONDS, EngineDown, EngineSlow, EngineSource, NotAvailable, RequestFailed

RESCAN_SECONDS = 2.0  # the registry is read again at most this often (with the listing)
LOG_SIZE = 5000  # events kept for the dashboard's long poll and its "all agents" event log
NONE_RUNNING = "no repository of yours has a running engine (start one with `supervisor ui` in a repository)"
# Requests that name one agent in `name` (or the parent in `parent`), answered by that agent's engine.
BY_NAME = frozenset({"show", "screen", "attach_info", "send", "approve", "deny", "stop", "restart", "merge", "rm",
                     "snooze", "unsnooze", "unwritten", "events", "diff", "compare", "push", "pr", "start"})
# Requests about the whole repository that have no meaning across repositories.
PER_REPOSITORY = frozenset({"task_ls", "task_add", "task_claim", "task_done", "task_release", "usage", "run",
                            "alerts", "alerts_test"})


class _Engine:
    """One repository's engine: its source, and the thread that follows its changes."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.source = EngineSource(repo.paths)
        self.following = False


class EverySource:
    """A `DataSource` over every repository with a running engine."""

    def __init__(self, *, long_poll: float = LONG_POLL_SECONDS) -> None:
        self.long_poll = long_poll
        self._engines: dict[str, _Engine] = {}
        self._scanned = 0.0
        self._lock = threading.Condition()
        self._log: collections.deque[dict[str, Any]] = collections.deque(maxlen=LOG_SIZE)
        self._last = 0  # the id of the newest event handed on
        self._primed = False  # the first `events` has been read from every engine: follow their changes now
        self._rescan(force=True)

    # the DataSource protocol ---------------------------------------------------------------------------

    @property
    def title(self) -> str:
        with self._lock:
            labels = sorted(self._engines)
        return f"every repository ({', '.join(labels)})" if labels else "every repository"

    @property
    def tmux_socket(self) -> str | None:
        return None

    def repository_of(self, name: str | None) -> str | None:
        """The repository of agent `name` (the first one shown when no agent is named)."""
        if name:
            return name.partition(":")[0]
        with self._lock:
            return min(self._engines, default=None)

    def ensure_engine(self) -> None:
        """Engines are not started from here: only whether one runs."""
        if not self._rescan(force=True):
            raise EngineDown(NONE_RUNNING)

    def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = 30.0) -> Any:
        params = dict(params or {})
        if method == "changes":
            return self._changes(int(params.get("after") or 0), float(params.get("timeout") or 0.0),
                                 int(params.get("limit") or 500))
        if method == "events" and params.get("name") is None:
            return self._events(int(params.get("limit") or 100))
        if method in BY_NAME and params.get("name") is not None:
            return self._routed(method, params, "name", timeout)
        if method == "helper" and params.get("parent"):
            return self._routed(method, params, "parent", timeout)
        if method in ("each", "restore") and params.get("names"):
            return self._split_names(method, params, timeout)
        if method in PER_REPOSITORY:
            raise NotAvailable(method)
        return self._everywhere(method, params, timeout)

    # one agent, many, every one ------------------------------------------------------------------------

    def _engine(self, label: str) -> _Engine:
        with self._lock:
            engine = self._engines.get(label)
        if engine is None:
            raise RequestFailed(f"{label}: its engine is not running (any more)",
                                hint="`supervisor engine start` in that repository starts it again")
        return engine

    def _ask(self, engine: _Engine, method: str, params: dict[str, Any], timeout: float | None) -> Any:
        """One engine's answer; it stopping is that repository's news, not the dashboard's banner."""
        try:
            return engine.source.call(method, params, timeout=timeout)
        except EngineDown as exc:
            self._forget(engine.repo.label)
            raise RequestFailed(f"{engine.repo.label}: {exc}",
                                hint="`supervisor engine start` in that repository starts it again") from exc

    def _routed(self, method: str, params: dict[str, Any], key: str, timeout: float | None) -> Any:
        try:
            label, name = split(str(params[key]))
        except Exception as exc:
            raise RequestFailed(str(getattr(exc, "message", exc))) from exc
        engine = self._engine(label)
        result = self._ask(engine, method, {**params, key: name}, timeout)
        return self._named(label, method, result)

    def _split_names(self, method: str, params: dict[str, Any], timeout: float | None) -> Any:
        """`each` and `restore` over agents of several repositories: each engine its own, results together."""
        groups: dict[str, list[str]] = {}
        for qualified in params["names"]:
            label, name = split(str(qualified))
            groups.setdefault(label, []).append(name)
        merged: dict[str, list[Any]] = {}
        for label, names in groups.items():
            answer = self._named(label, method, self._ask(self._engine(label), method, {**params, "names": names},
                                                          timeout))
            for key, value in (answer or {}).items():
                if isinstance(value, list):
                    merged.setdefault(key, []).extend(value)
        return merged

    def _everywhere(self, method: str, params: dict[str, Any], timeout: float | None) -> Any:
        engines = self._live_engines()
        answers = each_repository([engine.repo for engine in engines],
                                  lambda repo: self._engines_by_repo(repo).source.call(method, params,
                                                                                       timeout=timeout))
        results: list[tuple[str, Any]] = []
        down: list[Exception] = []
        for repo, result, error in answers:
            if isinstance(error, EngineDown):
                self._forget(repo.label)
                down.append(error)
            elif isinstance(error, NotAvailable | EngineSlow | RequestFailed):
                if len(answers) == 1:
                    raise error
            elif error is not None:
                raise error
            else:
                results.append((repo.label, self._named(repo.label, method, result)))
        if not results and (down or not engines):
            raise EngineDown(NONE_RUNNING)
        return _merge(method, results)

    def _engines_by_repo(self, repo: Repository) -> _Engine:
        with self._lock:
            engine = self._engines.get(repo.label)
        if engine is None:
            raise EngineDown(f"{repo.label}: not running")
        return engine

    def _live_engines(self) -> list[_Engine]:
        self._rescan()
        with self._lock:
            return [self._engines[label] for label in sorted(self._engines)]

    def _named(self, label: str, method: str, result: Any) -> Any:
        """An engine's answer with its agents named across repositories."""
        if method == "ls" and isinstance(result, list):
            return [_agent(label, agent) for agent in result]
        if method == "events" and isinstance(result, list):
            return [_event(label, event) for event in result]
        if method == "diffstat" and isinstance(result, dict):
            return {qualify(label, name): stat for name, stat in result.items()}
        if method == "silences" and isinstance(result, list):
            return [{**s, "agent": qualify(label, s["agent"])} if s.get("agent") else s for s in result]
        if method == "restorable" and isinstance(result, dict):
            return {**result, "agents": [qualify(label, str(name)) for name in result.get("agents") or []]}
        if isinstance(result, dict):
            named = dict(result)
            for key in ("restored", "results", "failed"):
                if isinstance(named.get(key), list):
                    named[key] = [{**item, "name": qualify(label, str(item["name"]))}
                                  if isinstance(item, dict) and item.get("name") else item for item in named[key]]
            if isinstance(named.get("name"), str) and method != "screen":
                named["name"] = qualify(label, named["name"])
            return named
        return result

    # the registry -------------------------------------------------------------------------------------

    def _rescan(self, *, force: bool = False) -> bool:
        """Read the registry again (at most every RESCAN_SECONDS unless `force`): engines that started join,
        engines that stopped leave. Whether any engine runs."""
        now = time.monotonic()
        with self._lock:
            if not force and now - self._scanned < RESCAN_SECONDS:
                return bool(self._engines)
            self._scanned = now
        found = {repo.label: repo for repo in repositories()}
        joined: list[_Engine] = []
        with self._lock:
            for label in list(self._engines):
                if label not in found or found[label].registration != self._engines[label].repo.registration:
                    self._drop(label)
            for label, repo in found.items():
                if label not in self._engines:
                    engine = _Engine(repo)
                    self._engines[label] = engine
                    joined.append(engine)
            primed = self._primed
        for engine in joined:
            if primed:  # a repository that started after the dashboard: news, and its changes from now on
                self._publish([{"kind": "engine_started", "agent": None, "repo": engine.repo.label}])
                self._follow(engine, None)
        return bool(found)

    def _forget(self, label: str) -> None:
        with self._lock:
            self._drop(label)

    def _drop(self, label: str) -> None:
        """(under the lock) The repository leaves the dashboard; the dashboard is told, so it lists again."""
        if self._engines.pop(label, None) is not None and self._primed:
            self._append([{"kind": "engine_stopped", "agent": None, "repo": label}])

    # events -------------------------------------------------------------------------------------------

    def _events(self, limit: int) -> list[dict[str, Any]]:
        """Everyone's recent events: read from every engine the first time, then kept here from their changes."""
        with self._lock:
            primed = self._primed
        if not primed:
            engines = self._live_engines()
            answers = each_repository([e.repo for e in engines],
                                      lambda repo: list(self._engines_by_repo(repo).source.call(
                                          "events", {"limit": limit})))
            history: list[dict[str, Any]] = []
            newest: dict[str, int] = {}
            for repo, events, _error in answers:
                if events is not None:
                    newest[repo.label] = max((int(e["id"]) for e in events), default=0)
                    history += [_event(repo.label, e) for e in events]
            history.sort(key=lambda e: str(e.get("ts") or ""))
            with self._lock:
                self._primed = True
                self._append(history)
            for engine in engines:
                self._follow(engine, newest.get(engine.repo.label))
        with self._lock:
            return list(self._log)[-limit:] if limit > 0 else []

    def _follow(self, engine: _Engine, after: int | None) -> None:
        """Follow the engine's changes from event `after` (None: from now) in a thread of its own."""
        if engine.following:
            return
        engine.following = True
        threading.Thread(target=self._pump, args=(engine, after), name=f"supervisor-changes-{engine.repo.label}",
                         daemon=True).start()

    def _pump(self, engine: _Engine, after: int | None) -> None:
        label = engine.repo.label
        while True:
            with self._lock:
                if self._engines.get(label) is not engine:
                    return  # it left the dashboard
            try:
                if after is None:
                    after = int(engine.source.call("changes", {"after": 2**62, "timeout": 0})["last"])
                result = engine.source.call("changes", {"after": after, "timeout": self.long_poll},
                                            timeout=self.long_poll + 15)
            except EngineDown:
                self._forget(label)
                return
            except (EngineSlow, NotAvailable, RequestFailed):
                time.sleep(1.0)
                continue
            events = list(result.get("events") or [])
            after = int(result.get("last", after))
            if events:
                self._publish([_event(label, e) for e in events])

    def _publish(self, events: list[dict[str, Any]]) -> None:
        with self._lock:
            self._append(events)

    def _append(self, events: list[dict[str, Any]]) -> None:
        """(under the lock) Hand events on, numbered in the order they arrived here."""
        for event in events:
            self._last += 1
            self._log.append({**event, "id": self._last})
        if events:
            self._lock.notify_all()

    def _changes(self, after: int, timeout: float, limit: int) -> dict[str, Any]:
        """The dashboard's long poll: the events after `after` handed on by any engine, waiting up to `timeout`."""
        self._rescan()
        with self._lock:
            if not self._engines:
                raise EngineDown(NONE_RUNNING)
            self._lock.wait_for(lambda: self._last > after, timeout=max(timeout, 0.0))
            events = [event for event in self._log if event["id"] > after][:limit]
            return {"last": events[-1]["id"] if events else max(self._last, after), "events": events}


def _agent(label: str, agent: dict[str, Any]) -> dict[str, Any]:
    named = {**agent, "name": qualify(label, str(agent["name"])), "repo_name": label}
    if agent.get("parent"):
        named["parent"] = qualify(label, str(agent["parent"]))
    return named


def _event(label: str, event: dict[str, Any]) -> dict[str, Any]:
    if event.get("agent"):
        return {**event, "agent": qualify(label, str(event["agent"]))}
    return {**event, "repo": label}


def _merge(method: str, results: list[tuple[str, Any]]) -> Any:
    """Every engine's answer to a request about everything, as one engine's would look."""
    values = [result for _, result in results]
    if method in ("ls", "silences"):
        return [item for result in values for item in result]
    if method == "diffstat":
        return {name: stat for result in values for name, stat in result.items()}
    if method == "restorable":
        modes = [str(result.get("mode")) for result in values if result.get("agents")]
        return {"agents": [name for result in values for name in result.get("agents") or []],
                "mode": "ask" if "ask" in modes else (modes[0] if modes else None)}
    return values[0] if len(values) == 1 else {label: result for label, result in results}
