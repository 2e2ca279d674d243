"""PLAN.yaml (`supervisor run`): many sessions, the order between them and how their work is merged.

    base: main                 # the branch every session starts from and merges into (default: the current one)
    hosts: [local, box1]       # where sessions without `host:` may run: the one with the most free places
    merge: auto                # manual (default) | auto, or {mode: auto, check: "make test", check_timeout: 20m}
    sessions:
      - name: auth
        task: Harden the auth package
        modify: [packages/auth/**]
        helpers: {test-agent: packages/auth/__tests__/**}
      - name: billing
        task_file: tasks/billing.md
        after: [auth]          # starts once auth has been merged
        host: box1             # runs there (a host of supervisor.yaml, or local)

A session's contract comes from `contract` (a SESSION.md), or from `modify`, `dont_touch`, `helpers`,
`max_helpers`, `timeout`; with none of them it is the contract of `supervisor start` without `--contract`.
Everything is checked before anything starts: unknown keys, unknown or cyclic `after`, duplicate names,
hosts supervisor.yaml does not name and broken contracts are errors with the file and line (whether the
hosts have room is the engine's to say: supervisor/hosts/placement.py); `overlaps` names the paths two
sessions that can run at the same time may both change (a warning: the plan may be right, the radar shows
real conflicts).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml

from supervisor.config.reader import _compose, _describe, _is_null, _line, _Section
from supervisor.config.sections import _Parser
from supervisor.config.settings import ISOLATIONS, MERGE_MODES
from supervisor.core.contract import Contract, HelperPermissions, parse_contract
from supervisor.core.model import validate_name
from supervisor.core.pathrules import covers, may_overlap
from supervisor.core.roles import default_session_contract
from supervisor.errors import InputFileError, UsageError
from supervisor.hostsconfig import LOCAL

_TOP: Final = ("base", "hosts", "merge", "sessions")
_MERGE: Final = ("mode", "check", "check_timeout")
_SESSION: Final = ("name", "task", "task_file", "after", "modify", "dont_touch", "helpers", "max_helpers",
                   "timeout", "contract", "command", "agent", "isolation", "host")
_CONTRACT_KEYS: Final = ("modify", "dont_touch", "helpers", "max_helpers", "timeout")


@dataclass(frozen=True)
class PlannedSession:
    name: str
    task: str | None
    contract: Contract
    after: tuple[str, ...]
    command: str | None
    profile: str | None
    line: int
    isolation: str | None = None  # its own `sandbox | none`, over supervisor.yaml's
    host: str | None = None  # the host it runs on; None: placed on one of the plan's `hosts` (or local)
    host_line: int | None = None  # where `host:` is said (or the session's line), for a refusal to point at


@dataclass(frozen=True)
class Plan:
    path: Path
    sessions: tuple[PlannedSession, ...]
    base: str | None = None
    merge: str = "manual"
    check: str | None = None  # None: supervisor.yaml's merge.check
    check_timeout: float | None = None
    hosts: tuple[str, ...] | None = None  # the candidates for sessions without `host:`; None: local alone
    hosts_line: int | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(session.name for session in self.sessions)

    def requires(self, name: str) -> set[str]:
        """Every session `name` waits for, directly or through others."""
        by_name = {session.name: session for session in self.sessions}
        found: set[str] = set()
        todo = list(by_name[name].after)
        while todo:
            current = todo.pop()
            if current not in found:
                found.add(current)
                todo += by_name[current].after
        return found

    def concurrent(self) -> list[tuple[PlannedSession, PlannedSession]]:
        """The pairs of sessions that may run at the same time (neither waits for the other)."""
        needs = {session.name: self.requires(session.name) for session in self.sessions}
        pairs = []
        for i, first in enumerate(self.sessions):
            for second in self.sessions[i + 1:]:
                if first.name not in needs[second.name] and second.name not in needs[first.name]:
                    pairs.append((first, second))
        return pairs


def load_plan(path: Path, repo_root: Path, environ: Mapping[str, str] | None = None) -> Plan:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputFileError(path, None, "the file is not valid UTF-8", "save it as UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read the plan {path}: {exc.strerror or exc}") from None
    return parse_plan(text, path, repo_root, environ)


def parse_plan(text: str, path: Path, repo_root: Path, environ: Mapping[str, str] | None = None,
               hosts: Collection[str] = (LOCAL,)) -> Plan:
    """The plan in `text` (read from `path`: relative `task_file` and `contract` paths start at its folder).
    `hosts`: the hosts a session may name (supervisor.yaml's, and `local`)."""
    reader = _PlanReader(path, os.environ if environ is None else environ, repo_root)
    reader.known_hosts = tuple(hosts)
    return reader.plan(_compose(text, path))


class _PlanReader(_Parser):
    known_hosts: tuple[str, ...] = (LOCAL,)

    def plan(self, root: yaml.Node | None) -> Plan:
        if root is None or _is_null(root):
            self.fail(root, "the plan is empty", "list the sessions under `sessions:`")
        if not isinstance(root, yaml.MappingNode):
            self.fail(root, f"the top level must be a mapping with `sessions:`, got {_describe(root)}")
        top = self.section(root, "", _TOP)
        mode, check, check_timeout = self.merge_settings(top)
        node = top.get("sessions")
        if node is None or _is_null(node) or (isinstance(node, yaml.SequenceNode) and not node.value):
            self.fail(node or root, "the plan has no sessions", "list them under `sessions:`, one `- name:` each")
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, f"sessions must be a list (one `- name: …` per session), got {_describe(node)}")
        sessions: list[PlannedSession] = []
        after_nodes: dict[str, dict[str, yaml.Node]] = {}  # session → each name it is after → where
        for item in node.value:
            session, nodes = self.session(item)
            if any(s.name == session.name for s in sessions):
                first = next(s.line for s in sessions if s.name == session.name)
                self.fail(item, f"two sessions are named {session.name!r}", f"the first is on line {first}")
            sessions.append(session)
            after_nodes[session.name] = nodes
        self.check_after(sessions, after_nodes)
        hosts = self.hosts(top)
        return Plan(self.path, tuple(sessions), base=self.opt_string(top, "base"), merge=mode, check=check,
                    check_timeout=check_timeout, hosts=hosts, hosts_line=_line(top.get("hosts") or root))

    def hosts(self, top: _Section) -> tuple[str, ...] | None:
        """`hosts: [..]`: exactly the hosts sessions without `host:` are placed on, each named once."""
        node = top.get("hosts")
        if node is None or _is_null(node):
            return None
        names = self.strings(top, "hosts", one_ok=True)
        items = list(node.value) if isinstance(node, yaml.SequenceNode) else [node]
        if not names:
            self.fail(node, "hosts: the list is empty", "name the hosts to place sessions on, e.g. [local, box1]")
        for name, item in zip(names, items, strict=True):
            self.host_name(item, name, "hosts")
        seen: set[str] = set()
        for name, item in zip(names, items, strict=True):
            if name in seen:
                self.fail(item, f"hosts: {name!r} is listed twice", "name each host once")
            seen.add(name)
        return names

    def host_name(self, node: yaml.Node, name: str, key: str) -> str:
        """`name` when supervisor.yaml names that host (or it is `local`); else a refusal at `node`."""
        if name in self.known_hosts:
            return name
        close = difflib.get_close_matches(name, self.known_hosts, n=1)
        self.fail(node, f"{key}: no host named {name!r} in supervisor.yaml",
                  f"did you mean '{close[0]}'?" if close else f"hosts: {', '.join(self.known_hosts)}; others are "
                  "named under `hosts:` in supervisor.yaml")

    def merge_settings(self, top: _Section) -> tuple[str, str | None, float | None]:
        node = top.get("merge")
        if node is None or _is_null(node):
            return "manual", None, None
        if isinstance(node, yaml.ScalarNode):
            return self.choice(top, "merge", "manual", MERGE_MODES), None, None
        sec = self.section(node, "merge", _MERGE)
        mode = self.choice(sec, "mode", "manual", MERGE_MODES)
        timeout = self.duration(sec, "check_timeout", 1800.0) if sec.get("check_timeout") is not None else None
        return mode, self.opt_string(sec, "check"), timeout

    def session(self, node: yaml.Node) -> tuple[PlannedSession, dict[str, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"each session must be a mapping with at least `name:`, got {_describe(node)}")
        sec = self.section(node, "session", _SESSION)
        name_node = sec.get("name")
        if name_node is None:
            self.fail(node, "a session has no name", "add `name: …` (a-z, 0-9 and '-')")
        name = self.required(name_node, "name", "a session name")
        try:
            validate_name(name)
        except UsageError as exc:
            self.fail(name_node, exc.message, exc.hint)
        if "." in name:
            self.fail(name_node, f"a session name cannot contain '.': {name!r}", "helpers are started by the sessions")
        if sec.get("task") is not None and sec.get("task_file") is not None:
            self.fail(sec.get("task_file"), f"{name}: give task or task_file, not both")
        task = self.opt_string(sec, "task")
        if sec.get("task_file") is not None:
            task = self.read_beside(sec, "task_file")[1].strip() or None
        after_node = sec.get("after")
        after_items = list(after_node.value) if isinstance(after_node, yaml.SequenceNode) else \
            [after_node] if after_node is not None and not _is_null(after_node) else []
        after: dict[str, yaml.Node] = {}
        for dependency, item in zip(self.strings(sec, "after", one_ok=True), after_items, strict=True):
            after.setdefault(dependency, item)
        host_node = sec.get("host")
        host = None
        if host_node is not None and not _is_null(host_node):
            host = self.host_name(host_node, self.required(host_node, f"{name}: host", "a host's name"),
                                  f"{name}: host")
        return PlannedSession(
            name=name, task=task, contract=self.contract(sec, name, node), after=tuple(after),
            command=self.opt_string(sec, "command"), profile=self.opt_string(sec, "agent"), line=_line(node) or 0,
            isolation=self.choice(sec, "isolation", "", ISOLATIONS) or None,
            host=host, host_line=_line(host_node) if host_node is not None else _line(node),
        ), after

    def read_beside(self, sec: _Section, key: str) -> tuple[Path, str]:
        """The file named by `key`, relative to the plan's folder: its path and text."""
        node = sec.get(key)
        assert node is not None
        path = self.path.parent / Path(self.required(node, key, "a file path")).expanduser()
        try:
            return path, path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            self.fail(node, f"{key}: cannot read {path}: {detail or exc}")

    def contract(self, sec: _Section, name: str, node: yaml.Node) -> Contract:
        given = [key for key in _CONTRACT_KEYS if sec.get(key) is not None]
        if sec.get("contract") is not None:
            if given:
                self.fail(sec.get(given[0]), f"{name}: `{given[0]}` and `contract` do not go together",
                          "put it in the SESSION.md, or drop `contract:`")
            path, text = self.read_beside(sec, "contract")
            return parse_contract(text, path)  # its errors name that file and line
        if not given:
            return default_session_contract(self.repo_root)
        helpers = self.helpers(sec, name)
        max_node = sec.get("max_helpers")
        max_helpers = self.integer(sec, "max_helpers", 3 if helpers else 0, 0)
        if max_helpers and not helpers:
            self.fail(max_node, f"{name}: max_helpers without `helpers:`", "list the roles it may start")
        try:
            return Contract(
                modify=self.strings(sec, "modify", one_ok=True) or ("**",),
                dont_touch=self.strings(sec, "dont_touch", one_ok=True),
                can_spawn=bool(helpers) and max_helpers > 0, max_helpers=max_helpers,
                timeout=self.opt_duration(sec, "timeout", None),
                helper_permissions=HelperPermissions(helpers),
            )
        except ValueError as exc:
            self.fail(sec.get("modify") or sec.get("helpers") or node, f"{name}: {exc}")

    def helpers(self, sec: _Section, name: str) -> dict[str, tuple[str, ...]]:
        node = sec.get("helpers")
        if node is None or _is_null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{name}: helpers must map roles to paths, e.g. {{test-agent: src/tests/**}}")
        roles: dict[str, tuple[str, ...]] = {}
        for key_node, _value in node.value:
            role = self.required(key_node, "helpers role", "a role name")
            roles[role] = self.strings(_Section(f"{name}.helpers", {role: (key_node, _value)}), role, one_ok=True)
            if not roles[role]:
                self.fail(_value, f"{name}: helpers.{role} needs the paths that role may change")
        return roles

    def check_after(self, sessions: list[PlannedSession], nodes: dict[str, dict[str, yaml.Node]]) -> None:
        names = [session.name for session in sessions]
        for session in sessions:
            for dependency, node in nodes[session.name].items():
                if dependency not in names:
                    close = difflib.get_close_matches(dependency, names, n=1)
                    self.fail(node, f"{session.name} is after {dependency!r}, which is not a session of this plan",
                              f"did you mean '{close[0]}'?" if close else f"sessions: {', '.join(names)}")
        cycle = _find_cycle({session.name: session.after for session in sessions})
        if cycle:
            self.fail(nodes[cycle[-2]][cycle[-1]], f"the sessions wait for each other in a cycle: {' → '.join(cycle)}",
                      "remove one of these `after` entries")


def _find_cycle(after: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle of `after` edges as [a, b, …, a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for dependency in after.get(name, ()):
            if state.get(dependency) == 1:
                return [*path[path.index(dependency):], dependency]
            if dependency not in state and (found := visit(dependency)) is not None:
                return found
        path.pop()
        state[name] = 2
        return None

    for name in after:
        if name not in state and (found := visit(name)) is not None:
            return found
    return None


# ---------------------------------------------------------------------------------------------------------
# Overlapping boundaries


@dataclass(frozen=True)
class Overlap:
    first: str
    second: str
    patterns: tuple[tuple[str, str], ...]  # (first's pattern, second's pattern) that may name the same paths
    files: tuple[str, ...]  # tracked files both may change

    def message(self) -> str:
        shown = "; ".join(f"{a} ({self.first}) and {b} ({self.second})" if a != b else a
                          for a, b in self.patterns[:4])
        more = f" and {len(self.patterns) - 4} more" if len(self.patterns) > 4 else ""
        files = ""
        if self.files:
            files = f"; {len(self.files)} tracked file(s) in both, e.g. {', '.join(self.files[:3])}"
        return f"{self.first} and {self.second} can run at the same time and may both change {shown}{more}{files}"


def overlaps(plan: Plan, tracked: Iterable[str] = ()) -> list[Overlap]:
    """For each pair of sessions that may run at the same time, the Modify patterns that may overlap
    (minus what the other's Don't touch excludes) and the tracked files both contracts allow."""
    files = list(tracked)
    found = []
    for first, second in plan.concurrent():
        a, b = first.contract, second.contract
        pairs = tuple((x, y) for x in a.modify for y in b.modify if may_overlap(x, y)
                      and not any(covers(d, y) for d in a.dont_touch)
                      and not any(covers(d, x) for d in b.dont_touch))
        if pairs:
            rules_a, rules_b = a.rules(), b.rules()
            both = tuple(f for f in files if rules_a.allows(f) and rules_b.allows(f))
            found.append(Overlap(first.name, second.name, pairs, both))
    return found
