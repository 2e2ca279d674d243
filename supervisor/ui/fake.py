"""A stand-in for the engine: fixed agents, events and screens, for snapshot tests, docs and the benchmark.

It answers the same requests as the engine with the same JSON shapes (see `supervisor.engine.views`), keeps
every request it received in `calls`, and can be driven from a test: `set_state`, `emit`, `go_down`. It is a
test double of the network, nothing more: the real engine is tested with the real engine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from supervisor.git.changes import split_files
from supervisor.git.refs import agent_branch
from supervisor.ui.source import EngineDown, EngineSlow, NotAvailable, RequestFailed

# A fixed "now" for deterministic pictures: 2025-06-02 10:00:00 UTC.
NOW = 1748858400.0

# The requests of the engine the dashboard was first written against: a test of what the dashboard does with
# an engine that lacks the others (approve, merge, helper, snooze…) passes these as `methods`.
FIRST_METHODS = frozenset({"ping", "status", "ls", "show", "events", "changes", "screen", "diffstat", "start",
                           "send", "stop", "restart", "rm", "attach_info"})
# Every request of today's engine that the dashboard uses (the default).
ENGINE_METHODS = FIRST_METHODS | {"approve", "deny", "merge", "helper", "snooze", "silences", "diff", "compare",
                                  "hosts"}
# The task board's requests (the sample world has a board; a test may leave them out).
TASK_METHODS = frozenset({"task_ls", "task_add", "task_claim", "task_done", "task_release"})


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def agent(name: str, state: str, *, since: float = 60.0, task: str | None = None, cpu: float | None = None,
          rss: int | None = None, now: float = NOW, **extra: Any) -> dict[str, Any]:
    """An agent record as `ls --json` gives it; `since`: seconds in its state before `now`."""
    live = state in ("starting", "working", "idle", "waiting", "stalled", "limited", "unreachable")
    parent = name.rsplit(".", 1)[0] if "." in name else None
    record: dict[str, Any] = {
        "name": name, "parent": parent, "level": name.count(".") + 1, "role": None, "state": state,
        "state_since": iso(now - since), "task": task, "worktree": f"/repo-worktrees/{name}",
        "branch": agent_branch(name), "base": "0" * 40, "target": "main", "pane": f"%{sum(map(ord, name)) % 100}",
        "pid": 1000 if live else None, "started_at": iso(now - since - 30), "last_activity_at": iso(now - 2),
        "cpu_percent": (cpu if cpu is not None else 0.0) if live else None,
        "rss_bytes": (rss if rss is not None else 50_000_000) if live else None,
        "waiting_reason": None, "exit_code": None, "reason": None, "ahead": None, "ready_to_merge": False,
    }
    record.update(extra)
    return record


def spent(cost: float | None, context: float | None, tokens: int = 100_000,
          model: str = "claude-sonnet-4-5") -> dict[str, Any]:
    """A `usage` as `ls --json` gives it (cost None: a model with no price)."""
    return {"input_tokens": tokens // 10, "output_tokens": tokens // 20, "cache_read_tokens": tokens,
            "cache_write_tokens": tokens // 10, "cost_usd": cost, "unpriced_tokens": 0 if cost is not None else tokens,
            "model": model, "context_percent": context}


SPENT = {"api": spent(0.22, 12.0), "auth": spent(1.84, 62.0), "auth.tests": spent(0.41, 18.0),
         "auth.tests.data": spent(0.05, 4.0), "billing": spent(3.1, 91.0),
         "docs": spent(None, 8.0, model="local-model"), "reports": spent(0.09, None), "search": spent(0.3, None),
         "ui": spent(0.67, 78.0)}


def sample_agents(now: float = NOW) -> list[dict[str, Any]]:
    """The demo's world at a glance: sessions, helpers, and one of everything that needs a human."""
    return [{**found, "usage": SPENT.get(found["name"], spent(0.0, None, 0))} for found in _sample_agents(now)]


def _sample_agents(now: float) -> list[dict[str, Any]]:
    return [
        agent("api", "idle", since=95, task="Add the /health endpoint", cpu=0.0, rss=41_000_000, now=now,
              ahead=1, ready_to_merge=True),
        agent("auth", "working", since=312, task="Harden the auth package: validate tokens and add tests",
              cpu=37.5, rss=183_500_000, now=now),
        agent("auth.tests", "working", since=48, task="Write tests for token validation", cpu=12.0,
              rss=96_000_000, role="test-agent", now=now),
        agent("auth.tests.data", "idle", since=20, task="Generate token fixtures", cpu=0.0, rss=38_000_000,
              role="test-data", now=now),
        agent("billing", "stalled", since=640, task="Use the new auth roles in billing", cpu=0.0, rss=52_000_000,
              now=now),
        agent("docs", "idle", since=210, task="Document the auth package", cpu=0.0, rss=40_000_000, now=now),
        agent("reports", "killed", since=20, task="Rebuild the monthly report", reason="timed out after 40s",
              now=now),
        agent("search", "exited", since=33, task="Speed up the search index", exit_code=3,
              reason="exited with code 3: Error: unexpected response from the model API", now=now),
        agent("ui", "waiting", since=75, task="Polish the settings page", cpu=0.5, rss=61_000_000,
              waiting_reason="approval: Do you want to run `rm -rf build/`?", now=now,
              conflicts=[{"with": "auth", "files": ["packages/ui/settings.py"]}]),
    ]


def sample_events(now: float = NOW) -> list[dict[str, Any]]:
    rows: list[tuple[float, str | None, str, dict[str, Any]]] = [
        (400, None, "engine_started", {"pid": 4242, "version": "0.1.0"}),
        (330, "auth", "task_delivered", {"text": "Harden the auth package: validate tokens and add tests"}),
        (312, "auth", "state", {"previous": "starting", "state": "working"}),
        (250, "docs", "trigger", {"trigger": "boundary", "active": True,
                                  "summary": "commit 3f2a1c9 touches outside/boundary-violation.txt"}),
        (210, "docs", "state", {"previous": "working", "state": "idle"}),
        (95, "api", "trigger", {"trigger": "done", "active": True, "summary": "finished its turn"}),
        (75, "ui", "trigger", {"trigger": "waiting", "active": True,
                               "summary": "approval: Do you want to run `rm -rf build/`?"}),
        (48, "auth.tests", "state", {"previous": "starting", "state": "working"}),
        (33, "search", "exited", {"exit_code": 3, "reason": "Error: unexpected response from the model API"}),
        (33, "search", "trigger", {"trigger": "exited", "active": True, "summary": "exited with code 3"}),
        (20, "reports", "killed", {"reason": "timed out after 40s"}),
        (20, "reports", "trigger", {"trigger": "timeout", "active": True, "summary": "timed out after 40s"}),
    ]
    return [{"id": index + 1, "ts": iso(now - ago), "agent": name, "kind": kind, **data}
            for index, (ago, name, kind, data) in enumerate(rows)]


def task(task_id: int, text: str, state: str, *, by: str | None = None, ago: float = 60.0,
         released: str | None = None, now: float = NOW) -> dict[str, Any]:
    """A task as `task ls --json` gives it; `ago`: seconds in its state before `now`."""
    claimed = state == "claimed"
    return {
        "id": task_id, "text": text, "state": state, "by": by if state != "open" else None,
        "incarnation": iso(now - ago - 30) if claimed and by else None, "added_by": None,
        "created_at": iso(now - 900), "claimed_at": iso(now - ago) if claimed else None,
        "done_at": iso(now - ago) if state == "done" else None, "updated_at": iso(now - ago),
        "claims": 0 if state == "open" and not released else 1, "released": released,
    }


def sample_tasks(now: float = NOW) -> list[dict[str, Any]]:
    """A board half worked through: done, claimed by an agent and by the human, open, and one put back."""
    return [
        task(1, "Document the login endpoint", "done", by="docs", ago=420, now=now),
        task(2, "Document the token refresh flow", "done", by="docs", ago=250, now=now),
        task(3, "Document the billing roles", "claimed", by="docs", ago=200, now=now),
        task(4, "Review the API error codes", "claimed", ago=130, now=now),
        task(5, "Add an index on orders.created_at", "open", ago=33, released="search exited", now=now),
        task(6, "Translate the settings page strings", "open", ago=900, now=now),
    ]


def sample_screens() -> dict[str, str]:
    green, yellow, dim, bold, reset = "\x1b[32m", "\x1b[33m", "\x1b[2m", "\x1b[1m", "\x1b[0m"
    return {
        "auth": "\n".join([
            f"{bold}demo-agent 0.1.0{reset} — /repo-worktrees/auth",
            "",
            "› Harden the auth package: validate tokens and add tests",
            "Planning the change…",
            f"{dim}· Worked for 2s{reset}",
            "Editing files…",
            f"{green}⠹ Working… (4s){reset}",
        ]),
        "ui": "\n".join([
            f"{bold}demo-agent 0.1.0{reset} — /repo-worktrees/ui",
            "",
            "› Polish the settings page",
            "The build directory is stale.",
            f"{dim}· Worked for 1s{reset}",
            f"{yellow}Do you want to run `rm -rf build/`?{reset}",
            "❯ 1. Yes",
            "  2. No",
            f"{dim}Esc to cancel{reset}",
        ]),
    }


SAMPLE_PATCHES = {
    "api": """diff --git a/services/api/app.py b/services/api/app.py
index 1c2d3e4..5f6a7b8 100644
--- a/services/api/app.py
+++ b/services/api/app.py
@@ -1 +1,12 @@
-ROUTES = ['/']
+\"\"\"The service's routes.\"\"\"
+
+ROUTES = ['/', '/health']
+
+
+def health() -> dict[str, str]:
+    # Load balancers ask this every few seconds: no database call here.
+    return {"status": "ok", "version": VERSION}
+
+
+VERSION = "1.4.2"
+TIMEOUT_SECONDS = 30
diff --git a/notes/api.md b/notes/api.md
new file mode 100644
index 0000000..9a8b7c6
--- /dev/null
+++ b/notes/api.md
@@ -0,0 +1,2 @@
+# API notes
+`GET /health` answers without touching the database.
""",
}


class FakeSource:
    """An in-memory engine. Thread-safe: the dashboard calls it from worker threads."""

    def __init__(self, agents: Iterable[dict[str, Any]] = (), events: Iterable[dict[str, Any]] = (), *,
                 screens: dict[str, str] | None = None, diffstat: dict[str, dict[str, int]] | None = None,
                 methods: Iterable[str] = ENGINE_METHODS, title: str = "demo-shop", now: float = NOW,
                 tasks: Iterable[dict[str, Any]] = ()) -> None:
        self.agents: dict[str, dict[str, Any]] = {a["name"]: dict(a) for a in agents}
        self.events: list[dict[str, Any]] = list(events)
        self.screens = dict(screens or {})
        self.stats = dict(diffstat or {})
        self.methods = set(methods)
        self.now = now
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.silences: list[dict[str, Any]] = []
        self.tasks: list[dict[str, Any]] = [dict(t) for t in tasks]
        self.hosts: list[dict[str, Any]] = []  # `hosts` rows beyond `local` (set_host changes one)
        self.down = False
        self.restartable = True
        self.timeouts: dict[str, float | None] = {}  # each request's timeout, as last asked
        self.slow: set[str] = set()  # requests that time out (EngineSlow), as a busy engine's would
        self.gates: dict[str, threading.Event] = {}  # requests that wait for their gate before answering
        # Requests answered at once whose reply arrives only when its event is set (a reply in flight);
        # `answered` counts the answers made, per request.
        self.in_flight: dict[str, threading.Event] = {}
        self.answered: dict[str, int] = {}
        self._changed = threading.Condition()
        self._title = title

    @classmethod
    def sample(cls, **kwargs: Any) -> FakeSource:
        stats = {"auth": {"files": 4, "added": 126, "removed": 9}, "auth.tests": {"files": 2, "added": 88,
                 "removed": 0}, "api": {"files": 1, "added": 12, "removed": 1},
                 "docs": {"files": 1, "added": 1, "removed": 0}}
        kwargs.setdefault("methods", ENGINE_METHODS | TASK_METHODS)
        return cls(sample_agents(), sample_events(), screens=sample_screens(), diffstat=stats, tasks=sample_tasks(),
                   **kwargs)

    # the DataSource protocol --------------------------------------------------------------------------

    @property
    def title(self) -> str:
        return self._title

    @property
    def tmux_socket(self) -> str | None:
        return None

    def repository_of(self, name: str | None) -> str | None:
        return None

    def ensure_engine(self) -> None:
        with self._changed:
            if not self.restartable:
                raise EngineDown("the engine did not start")
            self.down = False
            self._changed.notify_all()

    def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = 30.0) -> Any:
        params = dict(params or {})
        with self._changed:
            if self.down:
                raise EngineDown("the engine is not running")
            self.calls.append((method, params))
            self.timeouts[method] = timeout
        if method not in self.methods:
            raise NotAvailable(method)
        if method in self.slow:
            raise EngineSlow(method, timeout)
        gate = self.gates.get(method)
        if gate is not None:
            gate.wait(60)
        handler = getattr(self, f"_op_{method}", None)
        if handler is None:
            with self._changed:
                result = self._action(method, params)
        else:
            result = handler(**params)
        with self._changed:
            self.answered[method] = self.answered.get(method, 0) + 1
        flight = self.in_flight.get(method)
        if flight is not None:
            flight.wait(60)
        return result

    # reads --------------------------------------------------------------------------------------------

    def _op_ping(self) -> str:
        return "pong"

    def _op_ls(self) -> list[dict[str, Any]]:
        with self._changed:
            return [dict(self.agents[name]) for name in sorted(self.agents, key=lambda n: tuple(n.split(".")))]

    def _op_events(self, name: str | None = None, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        with self._changed:
            if name is not None and name not in self.agents:
                raise RequestFailed(f"no agent named {name!r}")
            found = [e for e in self.events if e["id"] > after and (name is None or e["agent"] == name)]
            return [dict(e) for e in found[-limit:]]

    def _op_changes(self, after: int = 0, timeout: float = 10.0, limit: int = 500) -> dict[str, Any]:
        with self._changed:
            self._changed.wait_for(lambda: self.down or self._last() > after, timeout=min(timeout, 60.0))
            if self.down:
                raise EngineDown("the engine is not running")
            found = [dict(e) for e in self.events if e["id"] > after][-limit:]
            return {"last": self._last(), "events": found}

    def _op_screen(self, name: str, history: int = 0, ansi: bool = False) -> dict[str, Any]:
        with self._changed:
            if name not in self.agents:
                raise RequestFailed(f"no agent named {name!r}")
            text = self.screens.get(name)
            return {"name": name, "text": text or "", "available": text is not None}

    def _op_diffstat(self) -> dict[str, dict[str, int]]:
        with self._changed:
            return {name: dict(stat) for name, stat in self.stats.items() if name in self.agents}

    def _op_diff(self, name: str) -> dict[str, Any]:
        with self._changed:
            if name not in self.agents:
                raise RequestFailed(f"no agent named {name!r}")
            record = self.agents[name]
        files = split_files(SAMPLE_PATCHES.get(name, ""))
        return {"name": name, "base": record["base"], "branch": record["branch"], "target": record["target"],
                "files": [found.as_dict() for found in files]}

    def _op_silences(self) -> list[dict[str, Any]]:
        with self._changed:
            return [dict(s) for s in self.silences]

    def _op_task_ls(self, state: str | None = None) -> list[dict[str, Any]]:
        with self._changed:
            return [dict(t) for t in self.tasks if state is None or t["state"] == state]

    def _op_hosts(self) -> list[dict[str, Any]]:
        with self._changed:
            local = {"name": "local", "state": "up", "agents": len(self.agents), "max_agents": None, "load": None,
                     "latency_ms": None, "last_seen": iso(self.now), "error": None}
            return [local, *(dict(h) for h in self.hosts)]

    def _op_attach_info(self, name: str) -> dict[str, Any]:
        with self._changed:
            if name not in self.agents:
                raise RequestFailed(f"no agent named {name!r}")
            return {"pane": self.agents[name]["pane"], "session": name, "socket": "/nonexistent/tmux.sock"}

    # changes ------------------------------------------------------------------------------------------

    def _last(self) -> int:
        return int(self.events[-1]["id"]) if self.events else 0

    def emit(self, name: str | None, kind: str, **data: Any) -> dict[str, Any]:
        """Append an event to the log (waking the dashboard's long poll)."""
        with self._changed:
            event = {"id": self._last() + 1, "ts": iso(self.now), "agent": name, "kind": kind, **data}
            self.events.append(event)
            self._changed.notify_all()
            return event

    def set_state(self, name: str, state: str, **fields: Any) -> None:
        """Change an agent's state the way the engine does: its record, then a `state` event."""
        with self._changed:
            record = self.agents[name]
            previous = record["state"]
            record.update(state=state, state_since=iso(self.now), **fields)
        self.emit(name, "state", previous=previous, state=state)

    def set_host(self, name: str, state: str, error: str | None = None, agents: int = 0) -> None:
        """A host goes up or down the way the engine tells it: its row, then a `host_down` / `host_up` event."""
        with self._changed:
            self.hosts = [h for h in self.hosts if h["name"] != name]
            self.hosts.append({"name": name, "state": state, "agents": agents, "max_agents": 10, "load": None,
                               "latency_ms": None, "last_seen": iso(self.now), "error": error})
        self.emit(None, f"host_{state}", host=name, error=error)

    def go_down(self, *, restartable: bool = True) -> None:
        with self._changed:
            self.down = True
            self.restartable = restartable
            self._changed.notify_all()

    def _action(self, method: str, params: dict[str, Any]) -> Any:
        """start, send, stop, restart, rm, merge, approve, deny, helper, snooze, the task board's: recorded, with
        a plausible effect."""
        name = str(params.get("name", ""))
        if method == "start":
            if name in self.agents:
                raise RequestFailed(f"an agent named {name!r} already exists")
            self.agents[name] = agent(name, "starting", since=0, task=params.get("task"), now=self.now)
            self._emit_locked(name, "created", task=params.get("task"))
            return dict(self.agents[name])
        if method == "snooze":
            silence = {"id": len(self.silences) + 1, "agent": name or None, "trigger": params.get("trigger"),
                       "until": iso(self.now + 3600), "remaining": str(params.get("duration") or "1h")}
            self.silences.append(silence)
            return dict(silence)
        if method.startswith("task_"):
            return self._task_action(method, params)
        if method == "merge" and name in self.agents:
            record = self.agents[name]
            record.update(merged="f" * 40, ready_to_merge=False, ahead=0)
            self._emit_locked(name, "merged", into=record["target"], commits=2)
            return {"name": name, "into": record["target"], "commit": "f" * 40, "commits": 2, "fast_forward": True,
                    "already_merged": False, "updated_worktree": None, "uncommitted": 0, "removed": []}
        if method in ("approve", "deny") and name in self.agents:
            record = self.agents[name]
            if record["state"] != "waiting":
                raise RequestFailed(f"{name} is not waiting for an answer (it is {record['state']})")
            record.update(state="working", waiting_reason=None, state_since=iso(self.now))
            self._emit_locked(name, "approved" if method == "approve" else "denied",
                              **({"reason": params["reason"]} if params.get("reason") else {}))
            self._emit_locked(name, "state", previous="waiting", state="working")
            return dict(record)
        if method == "helper":
            full = f"{params.get('parent')}.{name}"
            self.agents[full] = agent(full, "starting", since=0, task=params.get("task"), now=self.now,
                                      role=params.get("role"))
            self._emit_locked(full, "created", task=params.get("task"))
            return dict(self.agents[full])
        if name not in self.agents:
            raise RequestFailed(f"no agent named {name!r}", hint="`supervisor ls` lists the agents")
        record = self.agents[name]
        if method == "stop":
            record.update(state="killed" if params.get("kill") else "stopped", pid=None, state_since=iso(self.now))
            self._emit_locked(name, "killed" if params.get("kill") else "stopped")
        elif method == "restart":
            record.update(state="starting", state_since=iso(self.now), exit_code=None)
            self._emit_locked(name, "launched")
        elif method == "rm":
            if record["state"] in ("starting", "working", "idle", "waiting", "stalled", "limited") \
                    and not params.get("force"):
                raise RequestFailed(f"{name} is still running ({record['state']})",
                                    hint=f"`supervisor stop {name}` first, or `supervisor rm --force {name}`")
            del self.agents[name]
            self._emit_locked(name, "removed")
            return {"name": name, "removed": True}
        else:
            self._emit_locked(name, method, **{k: v for k, v in params.items() if k != "name"})
        return dict(record)

    def _task_action(self, method: str, params: dict[str, Any]) -> Any:
        """The human's task requests, with the engine's event for each change."""
        if method == "task_add":
            added = []
            for text in params["texts"]:
                added.append(task(max((t["id"] for t in self.tasks), default=0) + 1, text, "open", ago=0,
                                  now=self.now))
                self.tasks.append(added[-1])
                self._emit_locked(None, "task_added", task=added[-1]["id"], text=text, by="human")
            return [dict(t) for t in added]
        if method == "task_claim":
            found = next((t for t in self.tasks if t["state"] == "open"), None)
            if found is None:
                return None
            found.update(task(found["id"], found["text"], "claimed", ago=0, now=self.now))
            self._emit_locked(None, "task_claimed", task=found["id"], text=found["text"], by="human")
            return dict(found)
        found = next((t for t in self.tasks if t["id"] == params.get("task_id")), None)
        if found is None:
            raise RequestFailed(f"no task {params.get('task_id')}", hint="`supervisor task ls` lists the tasks")
        if method == "task_release":
            if found["state"] != "claimed":
                raise RequestFailed(f"task {found['id']} is not claimed (it is {found['state']})")
            holder = found["by"]
            found.update(task(found["id"], found["text"], "open", ago=0, released="released by the human",
                              now=self.now))
            self._emit_locked(holder, "task_released", task=found["id"], text=found["text"],
                              reason="released by the human")
        elif method == "task_done":
            if found["state"] == "done":
                raise RequestFailed(f"task {found['id']} is already done")
            found.update(task(found["id"], found["text"], "done", ago=0, now=self.now))
            self._emit_locked(None, "task_done", task=found["id"], text=found["text"], by="human")
        return dict(found)

    def _emit_locked(self, name: str | None, kind: str, **data: Any) -> None:
        event = {"id": self._last() + 1, "ts": iso(self.now), "agent": name, "kind": kind, **data}
        self.events.append(event)
        self._changed.notify_all()
