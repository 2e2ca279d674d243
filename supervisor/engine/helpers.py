"""The helper desk: helpers started under a parent's contract, `.sub-agents/status.yaml` in every parent's
worktree, and messages between the agents of one tree.

A request from inside an agent's pane acts as that agent: it starts helpers under itself only and messages
agents of its own tree. `status.yaml` is rewritten (in place, so that a parent's sandbox, which binds that
file, shows it; only when it changes) whenever the event log shows a helper changed; a message is written as a
file in `.sub-agents/messages/` of the two agents' nearest common ancestor and typed into the recipient at its
next prompt. Never through a symbolic link an agent planted in its worktree (`files.inside`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from supervisor.core.contract import Contract, parse_contract, render_contract
from supervisor.core.model import SESSION_NAME, Agent, Event, State, root_of
from supervisor.core.roles import default_session_contract, helper_contract
from supervisor.core.seal import Seal
from supervisor.engine import views
from supervisor.engine.service import ServiceThread
from supervisor.errors import SupervisorError, UsageError
from supervisor.files import inside, write_atomically, write_in_place
from supervisor.git import worktrees
from supervisor.git.agent_refs import branch_ref
from supervisor.git.refs import agent_branch
from supervisor.hosts import placement
from supervisor.hosts.isolation import inherit as inherit_isolation
from supervisor.hosts.remote import trees
from supervisor.hosts.remote.host import HostUnreachable, RemoteHost
from supervisor.hostsconfig import LOCAL

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

SUB_AGENTS = ".sub-agents"
STATUS_FILE = "status.yaml"
MESSAGES_DIR = "messages"
MAX_MESSAGE = 64 * 1024


class HelperDesk(ServiceThread):
    """Starts helpers, keeps status.yaml current and carries messages (an engine service)."""

    thread_name = "helper-desk"

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self._written: dict[str, str] = {}  # parent → the status.yaml text last written
        self._refreshing = threading.Lock()  # the desk's thread and helper requests both refresh
        self._events: list[Event] = []  # events about helpers not handled yet
        self._guard = threading.Lock()
        self._bell = threading.Event()  # an event about a helper came (or it is asked to stop)
        engine.store.listen_events(lambda agent, _kind, _data: agent is not None and "." in agent, self._told)
        engine.hostlinks.on_up.append(self._host_up)

    # service ---------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Rewrite status files when helpers change; pass helpers' finished turns on to their parents. Told by
        the store of the events about helpers only (`Store.listen_events`): the others never wake it."""
        self._refresh_logged()
        while not self.stopping.is_set():
            self._bell.wait()
            with self._guard:
                self._bell.clear()
                events, self._events = self._events, []
            if not events:
                continue
            self._refresh_logged()
            for event in events:  # each on its own: a failure to tell one parent loses no other's news
                if event.kind == "alert" and event.data.get("route") == "parent" and event.agent:
                    try:
                        self._tell_parent(event.agent, event.data)
                    except Exception:
                        log.exception("helper desk: telling the parent of %s", event.agent)

    def _refresh_logged(self) -> None:
        """`refresh`, its failure logged: the desk's thread runs on (events about helpers keep coming to it)."""
        try:
            self.refresh()
        except Exception:
            log.exception("helper desk")

    def wake(self) -> None:
        self._bell.set()

    def _told(self, event: Event) -> None:
        """An event about a helper (under the store's lock: only kept for the desk's thread)."""
        with self._guard:
            self._events.append(event)
            self._bell.set()

    # starting helpers ---------------------------------------------------------------------------------------

    def op_helper(
        self,
        name: str,
        role: str,
        task: str | None = None,
        paths: list[str] | None = None,
        parent: str | None = None,
        wait: bool = True,
        _caller: Agent | None = None,
    ) -> dict[str, Any]:
        engine = self.engine
        if _caller is not None:
            if parent is not None and parent != _caller.name:
                raise SupervisorError(f"{_caller.name} may start helpers only under itself, not under {parent}")
            parent = _caller.name
        if parent is None:
            raise UsageError("whose helper is it? run this from inside an agent's pane, or pass --parent AGENT")
        owner = engine.get(parent)
        short = name.removeprefix(f"{parent}.")
        if not SESSION_NAME.fullmatch(short):
            raise UsageError(f"invalid helper name {name!r}",
                             hint="1-32 characters of a-z, 0-9 and '-'; the full name becomes PARENT.NAME")
        full = f"{parent}.{short}"
        if not owner.state.live:
            raise SupervisorError(f"{parent} is {owner.state}; a helper needs a running parent",
                                  hint=f"`supervisor restart {parent}` first")
        engine.reload_config_if_changed()
        config = engine.config
        if not engine.contracts.verify(owner):  # a helper's contract is made from its parent's
            raise SupervisorError(f"{parent}'s contract was changed outside the engine: no helper starts under it",
                                  hint=f"a human reads it (`supervisor show {parent}`) and confirms it with "
                                       f"`supervisor merge {parent} --confirm-contract`")
        parent_terms = contract_of(owner, engine.paths.root)
        terms, template = helper_contract(
            parent_terms, role, name=full, parent_name=parent, repo_root=engine.paths.root,
            paths=paths or None, task=task, level=owner.level + 1, max_level=config.limits.max_level,
            default_timeout=config.limits.helper_timeout)
        worktree = inside(Path(owner.worktree), Path(owner.worktree) / SUB_AGENTS / short)
        now = time.time()
        agent = Agent(
            name=full, profile=owner.profile, command=owner.command, worktree=str(worktree),
            branch=agent_branch(full), base=worktrees.resolve(engine.paths.root, branch_ref(owner)),
            target=owner.branch, task=task, role=role, state=State.STARTING, state_since=now,
            started_at=now, port=engine.free_port(), host=owner.host)  # a helper runs where its parent does

        inherit_isolation(owner, agent)

        def admit() -> None:
            refusal = slot_refusal(engine, parent, full) or \
                placement.room_refusal(config, engine.store.agents(), agent.host)  # a place on its parent's host
            if refusal is not None:
                raise SupervisorError(*refusal)

        view = engine.create(agent, terms, config, wait=wait, admit=admit, admission=engine.admission)
        engine.store.append_event(parent, "helper_started", helper=full, role=role, template=template,
                                  paths=list(terms.modify))
        self.refresh()
        return view

    # status.yaml ------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Rewrite each parent's `.sub-agents/status.yaml` whose content changed."""
        with self._refreshing:
            self._refresh()

    def _refresh(self) -> None:
        agents = self.engine.store.agents()
        by_name = {a.name: a for a in agents}
        children: dict[str, list[Agent]] = {}
        for agent in agents:
            if agent.parent in by_name:
                children.setdefault(agent.parent, []).append(agent)
        for gone in set(self._written) - set(by_name):
            del self._written[gone]
        for parent in agents:
            helpers = children.get(parent.name, [])
            if parent.host != LOCAL:
                self._refresh_on_host(parent, helpers)
                continue
            directory = Path(parent.worktree) / SUB_AGENTS
            # A parent whose last helper was removed gets an empty list, not the file as it last was
            # (also one written by an earlier engine: hence the look at the file).
            if not helpers and parent.name not in self._written and not (directory / STATUS_FILE).exists():
                continue
            text = status_text(parent, sorted(helpers, key=lambda a: a.name))
            if self._written.get(parent.name) == text:
                continue
            if not directory.is_dir():
                continue
            try:
                write_in_place(inside(Path(parent.worktree), directory / STATUS_FILE), text)
            except (SupervisorError, OSError) as exc:  # a planted link: said once, not followed
                if self._written.get(parent.name) != "":
                    log.warning("%s: status.yaml not written: %s", parent.name, getattr(exc, "message", exc))
                self._written[parent.name] = ""
                continue
            self._written[parent.name] = text

    def _refresh_on_host(self, parent: Agent, helpers: list[Agent]) -> None:
        """A parent's status.yaml on its host (supervisor/hosts/remote/trees.py). While the host is down it is
        written once it is back (`on_up` refreshes); a refusal there (a planted link) is said once."""
        if not helpers and parent.name not in self._written:
            return
        text = status_text(parent, sorted(helpers, key=lambda a: a.name))
        if self._written.get(parent.name) == text:
            return
        link = self.engine.hostlinks.link(parent.host)
        if link is None or not link.up:
            return  # written once the host is up (never waited for here)
        try:
            host = self.engine.host_of(parent)
            if not isinstance(host, RemoteHost) or not trees.write_status(host, parent, SUB_AGENTS, STATUS_FILE,
                                                                         text):
                return
        except HostUnreachable:
            return
        except SupervisorError as exc:
            if self._written.get(parent.name) != "":
                log.warning("%s: status.yaml not written on host %s: %s", parent.name, parent.host, exc.message)
            self._written[parent.name] = ""
            return
        self._written[parent.name] = text

    def _host_up(self, host: str, link: object) -> None:
        """A host came (back) up: the status files of its trees written now, off the link's thread."""
        if any(agent.host == host and agent.parent for agent in self.engine.store.agents()):
            threading.Thread(target=self.refresh, daemon=True, name=f"helper-status-{host}").start()

    # messages ---------------------------------------------------------------------------------------------

    def op_msg(self, to: str, text: str, _caller: Agent | None = None) -> dict[str, Any]:
        engine = self.engine
        if _caller is None:
            raise UsageError("msg is for agents: run it from inside an agent's pane",
                             hint="to type into an agent yourself, use `supervisor send AGENT TEXT`")
        sender = _caller.name
        if to == "parent":
            if _caller.parent is None:
                raise UsageError(f"{sender} is a session: it has no parent")
            to = _caller.parent
        recipient = engine.get(to)
        if root_of(recipient.name) != root_of(sender):
            raise SupervisorError(f"{to} is not in {sender}'s tree; agents message only their own tree")
        if recipient.name == sender:
            raise UsageError("an agent cannot message itself")
        if not text.strip():
            raise UsageError("the message is empty")
        if len(text.encode()) > MAX_MESSAGE:
            raise UsageError(f"the message is longer than {MAX_MESSAGE // 1024} KiB; write a file and send its path")
        home = engine.get(common_ancestor(sender, recipient.name))
        sent = datetime.now(UTC)
        file = f"{sent.strftime('%Y%m%dT%H%M%S.%f')}-{sender}-to-{recipient.name}.yaml"
        body = {"from": sender, "to": recipient.name, "sent": sent.isoformat(timespec="seconds"), "text": text}
        written = yaml.safe_dump(body, allow_unicode=True, sort_keys=False)
        if home.host != LOCAL:  # the tree's worktrees are on its host: written there
            host = engine.host_of(home)
            if not isinstance(host, RemoteHost):
                raise SupervisorError(f"{home.name} runs on host {home.host}, which this engine does not know")
            path: Path | str = trees.write_message(host, home, [SUB_AGENTS, MESSAGES_DIR, file], written)
        else:
            folder = inside(Path(home.worktree), Path(home.worktree) / SUB_AGENTS / MESSAGES_DIR)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / file
            write_atomically(path, written)
        engine.store.append_event(sender, "message_sent", to=recipient.name, file=str(path))
        engine.tell(recipient.name, f"Message from {sender} ({path}): {text}")
        return {"from": sender, "to": recipient.name, "file": str(path), "delivered": "at its next prompt"}

    def _tell_parent(self, helper: str, alert: dict[str, Any]) -> None:
        parent = alert.get("to")
        if not isinstance(parent, str) or self.engine.store.get_agent(parent) is None:
            return
        triggers = ", ".join(str(t) for t in alert.get("triggers") or [])
        if alert.get("status") == "resolved":
            return
        what = "finished its turn" if triggers == "done" else triggers
        self.engine.tell(parent, f"Your helper {helper} {what}; see {SUB_AGENTS}/{STATUS_FILE}.")


def slot_refusal(engine: Engine, parent_name: str, helper: str) -> tuple[str, str] | None:
    """Why `helper` may not run under `parent_name` now, with a hint (None: it may): the parent is not live,
    or its contract's Max helpers are live besides it. The caller holds `engine.admission` until the helper
    is live (or has given up), so that two cannot take the parent's last place."""
    parent = engine.store.get_agent(parent_name)
    if parent is None:
        return f"its parent {parent_name} is gone", f"`supervisor rm {helper}` clears it"
    if not parent.state.live:
        return f"its parent {parent_name} is {parent.state}", f"`supervisor restart {parent_name}` first"
    limit = contract_of(parent, engine.paths.root).max_helpers
    live = sorted(a.name for a in engine.store.agents()
                  if a.parent == parent_name and a.state.live and a.name != helper)
    if len(live) >= limit:
        return (f"{parent_name} already has {len(live)} live helper(s) ({', '.join(live)}); its contract allows "
                f"{limit} (Max helpers)", "wait for one to finish, or stop one")
    return None


def with_terms(agent: Agent, terms: Contract, seal: Seal) -> Agent:
    """Record the contract the agent runs under (rendered: what SESSION.md and the guard read), signed with the
    engine's key."""
    agent.extra["contract"] = render_contract(terms)
    seal.sign(agent)
    agent.extra["timeout"] = terms.timeout
    agent.extra["stall_after"] = terms.stall_after
    return agent


def contract_of(agent: Agent, repo_root: Path) -> Contract:
    """The agent's contract as the engine stored it (never the SESSION.md in its worktree, which it could
    edit); agents from before contracts existed get the default session contract."""
    text = agent.extra.get("contract")
    if isinstance(text, str):
        return parse_contract(text, f"{agent.name}'s contract")
    return default_session_contract(repo_root)


def common_ancestor(a: str, b: str) -> str:
    left, right = a.split("."), b.split(".")
    shared = []
    for x, y in zip(left, right, strict=False):
        if x != y:
            break
        shared.append(x)
    return ".".join(shared)


def status_text(parent: Agent, helpers: list[Agent]) -> str:
    entries = {}
    for helper in helpers:
        entries[helper.name] = {
            "role": helper.role,
            "state": str(helper.state),
            "since": views.iso(helper.state_since),
            "task": helper.task,
            "started": views.iso(helper.started_at),
            "waiting_for": list(helper.extra.get("waiting_for") or []),
            "waiting_reason": helper.waiting_reason,
            "branch": helper.branch,
            "worktree": os.path.relpath(helper.worktree, parent.worktree),
            "exit_code": helper.exit_code,
            "reason": helper.reason,
        }
    header = (f"# {parent.name}'s helpers, kept current by supervisor (do not edit).\n"
              f"# Messages: `supervisor msg AGENT TEXT`; they are kept in {SUB_AGENTS}/{MESSAGES_DIR}/.\n")
    return header + yaml.safe_dump({"helpers": entries}, allow_unicode=True, sort_keys=False, width=1000)

