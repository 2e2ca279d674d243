"""The task board's requests, and the return of stale claims to the board (an engine service).

`task_add`, `task_ls`, `task_claim`, `task_done` and `task_release` may come from inside an agent's pane,
and then act as that agent. A thread puts back every claim whose agent is gone, ended, stalled or started
again since it claimed (`supervisor.core.tasks.stale_reason`): while agents hold claims it looks whenever
the event log moves (an agent ending or stalling is an event) and at least every second; while none do,
one indexed query a second is all it costs.

With `restart: always` this is the swarm's loop: an agent ends, its unfinished claim returns to the board,
and the fresh incarnation (given its task prompt again) claims the next open task.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from supervisor.core.model import Agent
from supervisor.core.tasks import Actor, Task, TaskBoard, stale_reason
from supervisor.engine.service import ServiceThread
from supervisor.engine.views import iso
from supervisor.errors import SupervisorError, UsageError

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0
IDLE_SECONDS = 10.0  # with no claim held, it looks at least this often (a store change wakes it at once)
MIN_GAP = 0.2  # while events pour in, claims are looked at no more often than this


def task_view(task: Task) -> dict[str, Any]:
    """A task as `task ls --json` and `task claim --json` give it."""
    return {
        "id": task.id,
        "text": task.text,
        "state": task.state,
        "by": task.holder,  # claimed: who holds it; done: who finished it; null: the human (or open)
        "incarnation": iso(task.incarnation),  # when the holding agent's current run started
        "added_by": task.added_by,
        "created_at": iso(task.created),
        "claimed_at": iso(task.claimed),
        "done_at": iso(task.done),
        "updated_at": iso(task.updated),
        "claims": task.claims,
        "released": task.released,  # why it last went back to the board
    }


class TaskDesk(ServiceThread):
    """Answers task requests; returns stale claims to the board."""

    thread_name = "task-desk"

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.board = TaskBoard(engine.store)
        self._bell = threading.Event()  # a task event, or a holder's record changed, since the last look began
        self._holders: frozenset[str] = frozenset()  # the agents holding claims at the last look
        engine.store.listen_events(lambda _agent, kind, _data: kind.startswith("task_"), self._ring)
        engine.store.listen_record_keys(self._holder_key, self._bell.set)

    def _ring(self, _event: object) -> None:
        self._bell.set()

    def _holder_key(self, agent: Agent) -> object:
        """What a claim depends on in a holder's record (`stale_reason`); nothing in anyone else's."""
        return (agent.started_at, agent.state) if agent.name in self._holders else None

    # service ---------------------------------------------------------------------------------------------

    def run(self) -> None:
        while not self.stopping.is_set():
            self._bell.clear()  # what is written from now on rings again
            try:
                held = self.release_stale()
            except Exception:
                log.exception("task board")
                held = False
            if held:
                self.stopping.wait(MIN_GAP)
                self._bell.wait(CHECK_SECONDS)
            else:
                # No claim held: one can go stale only once an agent claimed a task (a task event) and its
                # record changed (it ended, or started again).
                self._bell.wait(IDLE_SECONDS)

    def wake(self) -> None:
        self._bell.set()

    def release_stale(self) -> bool:
        """Put back the stale claims; whether agents still hold any."""
        claims = self.board.agent_claims()
        self._holders = frozenset(task.holder for task in claims if task.holder)
        if not claims:
            return False
        agents, _ = self.engine.store.get_agents(sorted({task.holder for task in claims if task.holder}))
        by_name = {agent.name: agent for agent in agents}
        held = False
        for task in claims:
            assert task.holder is not None
            reason = stale_reason(task.holder, task.incarnation, by_name.get(task.holder))
            if reason is None:
                held = True
            elif self.board.release_stale(task, reason) is not None:
                log.info("task %d back on the board: %s", task.id, reason)
        return held

    # requests --------------------------------------------------------------------------------------------

    def op_task_add(self, texts: list[str], _caller: Agent | None = None) -> list[dict[str, Any]]:
        if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
            raise UsageError("texts must be a list of strings")
        return [task_view(task) for task in self.board.add(texts, Actor.of(_caller))]

    def op_task_ls(self, state: str | None = None) -> list[dict[str, Any]]:
        return [task_view(task) for task in self.board.tasks(state)]

    def op_task_claim(self, _caller: Agent | None = None) -> dict[str, Any] | None:
        """The oldest open task, claimed for the caller; None when the board has none left."""
        if _caller is not None and not _caller.state.live:
            raise SupervisorError(f"{_caller.name} is {_caller.state}; only a running agent can claim a task")
        task = self.board.claim(Actor.of(_caller))
        return task_view(task) if task is not None else None

    def op_task_done(self, task_id: int, _caller: Agent | None = None) -> dict[str, Any]:
        return task_view(self.board.done(_task_id(task_id), Actor.of(_caller)))

    def op_task_release(self, task_id: int, _caller: Agent | None = None) -> dict[str, Any]:
        return task_view(self.board.release(_task_id(task_id), Actor.of(_caller)))


def _task_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"invalid task id {value!r}", hint="a task id is a number from `supervisor task ls`")
    return value
