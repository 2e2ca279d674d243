"""PLAN.yaml: what a plan means, and every mistake refused with its file and line before anything starts."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from supervisor.core.pathrules import may_overlap
from supervisor.core.plan import Plan, overlaps, parse_plan
from supervisor.errors import InputFileError


def read(tmp_path: Path, text: str) -> Plan:
    path = tmp_path / "PLAN.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return parse_plan(path.read_text(), path, tmp_path)


def refused(tmp_path: Path, text: str) -> InputFileError:
    with pytest.raises(InputFileError) as info:
        read(tmp_path, text)
    return info.value


def test_the_spec_example_reads_as_written(tmp_path: Path) -> None:
    plan = read(tmp_path, """
        sessions:
          - name: auth
            task: Harden the auth package
            modify: [packages/auth/**]
            helpers: {test-agent: packages/auth/__tests__/**}
          - name: ui
            task: Polish the UI
            modify: [packages/ui/**]
          - name: billing
            task: Use the new auth roles
            after: [auth]          # starts when auth has been merged
    """)
    assert plan.names == ("auth", "ui", "billing") and plan.merge == "manual" and plan.base is None
    auth, ui, billing = plan.sessions
    assert auth.contract.modify == ("packages/auth/**",)
    assert dict(auth.contract.helper_permissions) == {"test-agent": ("packages/auth/__tests__/**",)}
    assert auth.contract.can_spawn and auth.contract.max_helpers == 3
    assert not ui.contract.can_spawn
    assert billing.after == ("auth",) and billing.contract.modify == ("**",)  # like `start` without a contract
    assert plan.requires("billing") == {"auth"}
    assert [(a.name, b.name) for a, b in plan.concurrent()] == [("auth", "ui"), ("ui", "billing")]


def test_merge_settings_and_files_beside_the_plan(tmp_path: Path) -> None:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "ui.md").write_text("Polish\nthe UI\n")
    (tmp_path / "ui.md").write_text("# What This Session Can Do\n- Modify: packages/ui/**\n")
    plan = read(tmp_path, """
        base: develop
        merge: {mode: auto, check: make test, check_timeout: 20m}
        sessions:
          - {name: ui, task_file: tasks/ui.md, contract: ui.md, command: aider --yes, agent: aider}
    """)
    assert (plan.base, plan.merge, plan.check, plan.check_timeout) == ("develop", "auto", "make test", 1200.0)
    ui = plan.sessions[0]
    assert ui.task == "Polish\nthe UI" and ui.contract.modify == ("packages/ui/**",)
    assert (ui.command, ui.profile) == ("aider --yes", "aider")
    assert read(tmp_path, "merge: auto\nsessions: [{name: a}]\n").merge == "auto"


@pytest.mark.parametrize(("text", "line", "words"), [
    ("sessions:\n  - name: a\n    modfy: [x]\n", 3, "unknown key 'session.modfy'"),
    ("sesions: []\n", 1, "unknown key 'sesions'"),
    ("sessions:\n  - name: a\n    after: [b]\n", 3, "a is after 'b', which is not a session of this plan"),
    ("sessions:\n  - name: a\n    after: [c]\n  - name: b\n    after: [a]\n  - name: c\n    after: [b]\n", 5,
     "cycle: a → c → b → a"),
    ("sessions:\n  - name: a\n    after: a\n", 3, "cycle: a → a"),
    ("sessions:\n  - name: a\n  - name: a\n", 3, "two sessions are named 'a'"),
    ("sessions: []\n", 1, "the plan has no sessions"),
    ("merge: sometimes\nsessions: [{name: a}]\n", 1, "merge must be one of: manual, auto"),
    ("sessions:\n  - name: Bad_Name\n", 2, "invalid agent name"),
    ("sessions:\n  - name: a.b\n", 2, "cannot contain '.'"),
    ("sessions:\n  - name: a\n    modify: [../up]\n", 3, "'../up' contains '..'"),
    ("sessions:\n  - name: a\n    task: x\n    task_file: y\n", 4, "give task or task_file, not both"),
    ("sessions:\n  - name: a\n    task_file: missing.md\n", 3, "task_file: cannot read"),
    ("sessions:\n  - name: a\n    max_helpers: 2\n", 3, "max_helpers without `helpers:`"),
    ("sessions:\n  - name: a\n    modify: [src/**]\n    helpers: {test-agent: docs/**}\n", 3, "outside Modify"),
    ("sessions:\n  - name: a\n    modify: [src/**]\n    contract: c.md\n", 3, "do not go together"),
    ("sessions:\n  - [a]\n", 2, "each session must be a mapping"),
    ("sessions:\n  - task: nameless\n", 2, "a session has no name"),
    ("merge: {mode: auto, check: x, check_timeout: " + "9" * 400 + "d}\nsessions: [{name: a}]\n", 1,
     "too long to be a duration"),
])
def test_mistakes_are_refused_with_their_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    error = refused(tmp_path, text)
    assert error.line == line
    assert words in error.detail


def test_an_unknown_dependency_suggests_the_closest_name(tmp_path: Path) -> None:
    error = refused(tmp_path, "sessions:\n  - name: billing\n    after: [auht]\n  - name: auth\n")
    assert error.hint == "did you mean 'auth'?"


def test_a_broken_contract_file_is_named_with_its_own_line(tmp_path: Path) -> None:
    (tmp_path / "c.md").write_text("# What This Session Can Do\n- Modify: src/**\n- Max helpers: lots\n")
    with pytest.raises(InputFileError) as info:
        read(tmp_path, "sessions:\n  - {name: a, contract: c.md}\n")
    assert info.value.path == tmp_path / "c.md" and info.value.line == 3


def test_overlaps_name_the_paths_of_sessions_that_can_run_together(tmp_path: Path) -> None:
    plan = read(tmp_path, """
        sessions:
          - {name: api, modify: [packages/**], dont_touch: [packages/ui/**]}
          - {name: ui, modify: [packages/ui/**]}
          - {name: shared, modify: [packages/shared/**, docs/*.md]}
          - {name: docs, modify: ["*.md"], after: [shared]}
    """)
    found = {(o.first, o.second): o for o in overlaps(plan, ["packages/shared/a.py", "packages/ui/b.py", "x.md"])}
    assert set(found) == {("api", "shared"), ("api", "docs"), ("ui", "docs")}  # shared → docs are ordered
    assert found[("api", "shared")].files == ("packages/shared/a.py",)
    assert found[("api", "shared")].message() == (
        "api and shared can run at the same time and may both change packages/** (api) and packages/shared/** "
        "(shared); 1 tracked file(s) in both, e.g. packages/shared/a.py")


@pytest.mark.parametrize(("first", "second", "expected"), [
    ("packages/auth/**", "packages/ui/**", False),
    ("packages/auth/**", "packages/auth/x.py", True),
    ("packages/**", "packages/ui/**", True),
    ("packages/*/tests/**", "packages/ui/**", True),
    ("src/a.py", "src/b.py", False),
    ("*.md", "src/**", True),
    ("**", "docs/x", True),
])
def test_may_overlap_answers_no_only_when_certain(first: str, second: str, expected: bool) -> None:
    assert may_overlap(first, second) is expected
    assert may_overlap(second, first) is expected


HOSTS = ("local", "box1", "box2")


def hosted(tmp_path: Path, text: str) -> Plan:
    path = tmp_path / "PLAN.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return parse_plan(path.read_text(), path, tmp_path, hosts=HOSTS)


def test_hosts_of_a_plan_and_of_its_sessions(tmp_path: Path) -> None:
    plan = hosted(tmp_path, """
        hosts: [box2, local]
        sessions:
          - name: a
            host: box1
          - name: b
    """)
    assert plan.hosts == ("box2", "local") and plan.hosts_line == 1
    assert [(s.name, s.host, s.host_line) for s in plan.sessions] == [("a", "box1", 4), ("b", None, 5)]
    assert read(tmp_path, "sessions:\n  - name: a\n").hosts is None  # local alone


@pytest.mark.parametrize(("text", "line", "words"), [
    ("hosts: [local, bxo1]\nsessions:\n  - name: a\n", 1,
     "hosts: no host named 'bxo1' in supervisor.yaml (hint: did you mean 'box1'?)"),
    ("hosts: [box1, box1]\nsessions:\n  - name: a\n", 1, "hosts: 'box1' is listed twice"),
    ("hosts: []\nsessions:\n  - name: a\n", 1, "hosts: the list is empty"),
    ("sessions:\n  - name: a\n  - name: b\n    host: elsewhere\n", 4,
     "b: host: no host named 'elsewhere' in supervisor.yaml (hint: hosts: local, box1, box2;"),
    ("sessions:\n  - name: a\n    hots: box1\n", 3, "did you mean 'session.host'"),
])
def test_unknown_hosts_are_refused_with_their_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = tmp_path / "PLAN.yaml"
    path.write_text(text)
    with pytest.raises(InputFileError) as info:
        parse_plan(text, path, tmp_path, hosts=HOSTS)
    assert info.value.line == line
    shown = f"{info.value.message} (hint: {info.value.hint})"
    assert words in shown, shown
    assert "box1" in str(refused(tmp_path, "hosts: [box1]\nsessions:\n  - name: a\n"))  # without hosts: local only
