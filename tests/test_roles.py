"""Role templates (`contracts/`, a repo's `agents/templates/`) and the helper-contract builder."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import supervisor.resources as resources
from supervisor.core.contract import (
    Contract,
    HelperPermissions,
    derive_helper_contract,
    parse_contract,
    render_contract,
)
from supervisor.core.roles import (
    GENERIC_ROLE,
    NO_TASK,
    PLACEHOLDERS,
    available_roles,
    default_session_contract,
    helper_contract,
    module_of,
    render_template,
    template_dirs,
    template_for,
    template_values,
)
from supervisor.errors import InputFileError, UsageError

PROJECT = Path(__file__).resolve().parent.parent
SHIPPED = resources.data_dir("contracts")
SHIPPED_ROLES = ["api-agent", "docs-agent", "migration-agent", "performance-agent", "refactor-agent",
                 "reviewer-agent", "test-agent"]
FAST = settings(max_examples=200, deadline=None)

PARENT = Contract(
    modify=("packages/auth/**",),
    dont_touch=("packages/auth/secrets/**",),
    can_spawn=True,
    max_helpers=3,
    stall_after=600,
    helper_permissions=HelperPermissions({role: ("packages/auth/**",) for role in [*SHIPPED_ROLES, "custom-agent"]}),
    goals=("Tests pass",),
)


def build(role: str, repo: Path, *, parent: Contract = PARENT, level: int = 2, **kwargs: Any) -> tuple[Contract, str]:
    """A helper of session `auth` in `role`."""
    return helper_contract(parent, role, name=f"auth.{role}", parent_name="auth", repo_root=repo, level=level, **kwargs)


def write_repo_template(repo: Path, role: str, text: str) -> Path:
    path = repo / "agents" / "templates" / f"{role}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------
# Shipped templates


def test_shipped_folder_holds_one_template_per_role_and_the_generic_one() -> None:
    names = sorted(p.name for p in SHIPPED.glob("*.md"))
    assert names == sorted([f"{role}.md" for role in SHIPPED_ROLES] + ["helper.md"])
    assert template_dirs(PROJECT)[-1] == SHIPPED


@pytest.mark.parametrize("role", [*SHIPPED_ROLES, GENERIC_ROLE])
def test_every_shipped_template_renders_and_parses(role: str) -> None:
    path = SHIPPED / f"{role}.md"
    text = path.read_text(encoding="utf-8")
    for placeholder in ("paths", "task", "parent"):
        assert "{{" + placeholder + "}}" in text
    values = template_values(name="auth.helper", parent="auth", role=role,
                             paths=["packages/auth/tests/**", "packages/auth/conftest.py"], task="Cover login")
    assert set(values) == set(PLACEHOLDERS)
    rendered = render_template(text, values, path)
    assert "{{" not in rendered
    contract = parse_contract(rendered, path)
    assert contract.modify == ("packages/auth/tests/**", "packages/auth/conftest.py")
    assert contract.dont_touch == ()  # always inherited, never in a template
    assert contract.timeout is not None
    assert contract.goals[0] == "Your task: Cover login"
    assert len(contract.goals) >= 4
    assert any("packages/auth" in goal for goal in contract.goals)  # {{module}} or {{paths}}
    if role in ("refactor-agent", "api-agent"):
        assert contract.can_spawn and contract.max_helpers == 2
        assert dict(contract.helper_permissions) == {"test-agent": contract.modify, "docs-agent": contract.modify}
    else:
        assert not contract.can_spawn and not contract.helper_permissions


def test_timeouts_suit_the_role() -> None:
    timeouts = {role: build(role, PROJECT)[0].timeout for role in SHIPPED_ROLES}
    assert timeouts["reviewer-agent"] == 30 * 60
    assert timeouts["test-agent"] == 60 * 60
    assert timeouts["refactor-agent"] == 2 * 60 * 60
    assert all(t is not None and 15 * 60 <= t <= 3 * 60 * 60 for t in timeouts.values())


@pytest.mark.parametrize("role", [*SHIPPED_ROLES, "custom-agent"])
def test_helper_contract_takes_paths_from_the_parent_and_the_rest_from_the_template(role: str, tmp_path: Path) -> None:
    narrowed = ["packages/auth/api/**"]
    contract, source = build(role, tmp_path, paths=narrowed, task="Do the thing", default_timeout=123)
    expected = derive_helper_contract(PARENT, role, paths=narrowed, level=2)
    assert contract.modify == expected.modify == ("packages/auth/api/**",)
    assert contract.dont_touch == PARENT.dont_touch
    assert contract.stall_after == PARENT.stall_after
    template = role if role != "custom-agent" else GENERIC_ROLE
    assert Path(source) == SHIPPED / f"{template}.md"
    assert contract.goals[0] == "Your task: Do the thing"
    assert contract.timeout is not None and contract.timeout != 123  # every shipped template has its own
    assert any("auth" in goal for goal in contract.goals)  # {{parent}} is filled in
    assert parse_contract(render_contract(contract)) == contract


def test_default_timeout_applies_when_the_template_has_none(tmp_path: Path) -> None:
    write_repo_template(tmp_path, "custom-agent", """\
        # What This Session Can Do
        - Modify: {{paths}}
        """)
    contract, _ = build("custom-agent", tmp_path, default_timeout=3600)
    assert contract.timeout == 3600
    assert contract.goals == ()
    contract, _ = build("custom-agent", tmp_path)
    assert contract.timeout is None


def test_without_a_task_the_goal_points_at_the_first_prompt() -> None:
    contract, _ = build("test-agent", PROJECT)
    assert contract.goals[0] == f"Your task: {NO_TASK}"
    contract, _ = build("test-agent", PROJECT, task="  \n\t ")
    assert contract.goals[0] == f"Your task: {NO_TASK}"


def test_a_long_task_is_cut_in_the_goal() -> None:
    contract, _ = build("test-agent", PROJECT, task="word " * 500)
    goal = contract.goals[0]
    assert len(goal) < 500 and goal.endswith("(the whole task is in your first prompt)")


# ---------------------------------------------------------------------------------------------------------
# Three levels


def test_refactor_agent_can_start_a_test_agent_that_cannot_spawn_further(tmp_path: Path) -> None:
    refactor, _ = build("refactor-agent", tmp_path, paths=["packages/auth/core/**"])
    assert refactor.can_spawn and refactor.max_helpers == 2
    assert set(refactor.helper_permissions) == {"test-agent", "docs-agent"}
    tests, source = helper_contract(refactor, "test-agent", name="auth.refactor.tests", parent_name="auth.refactor",
                                    repo_root=tmp_path, paths=["packages/auth/core/tests/**"], task="Pin behaviour",
                                    level=3)
    assert Path(source) == SHIPPED / "test-agent.md"
    assert tests.modify == ("packages/auth/core/tests/**",)
    assert tests.dont_touch == PARENT.dont_touch
    assert not tests.can_spawn and tests.max_helpers == 0 and not tests.helper_permissions
    assert any("auth.refactor" in goal for goal in tests.goals)
    assert parse_contract(render_contract(tests)) == tests
    with pytest.raises(UsageError, match="level 4 is not allowed"):
        helper_contract(tests, "test-agent", name="auth.refactor.tests.more", parent_name="auth.refactor.tests",
                        repo_root=tmp_path, level=4)


def test_a_spawning_role_at_the_last_level_cannot_spawn(tmp_path: Path) -> None:
    api, _ = build("api-agent", tmp_path)
    assert api.can_spawn
    sub = HelperPermissions({"refactor-agent": ("packages/auth/**",)})
    parent = Contract(modify=("packages/auth/**",), can_spawn=True, max_helpers=1, helper_permissions=sub)
    last, _ = helper_contract(parent, "refactor-agent", name="a.b.c", parent_name="a.b", repo_root=tmp_path, level=3)
    assert not last.can_spawn and last.max_helpers == 0 and not last.helper_permissions
    capped, _ = helper_contract(parent, "refactor-agent", name="a.b", parent_name="a", repo_root=tmp_path, level=2,
                                max_level=2)
    assert not capped.can_spawn


# ---------------------------------------------------------------------------------------------------------
# Refusals


def test_refusals_say_why(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--paths 'packages/\*\*' would widen role 'test-agent'"):
        build("test-agent", tmp_path, paths=["packages/**"])
    with pytest.raises(UsageError, match=r"role 'security-agent' is not listed .*listed: api-agent"):
        build("security-agent", tmp_path)
    with pytest.raises(UsageError, match="level 4 is not allowed"):
        build("test-agent", tmp_path, level=4)
    with pytest.raises(UsageError, match="level 3 is not allowed"):
        build("test-agent", tmp_path, level=3, max_level=2)
    no_spawn = Contract(modify=("**",))
    with pytest.raises(UsageError, match="may not start helpers"):
        build("test-agent", tmp_path, parent=no_spawn)


def test_refusals_come_before_the_template_is_read(tmp_path: Path) -> None:
    write_repo_template(tmp_path, "test-agent", "# Nonsense section\n")
    with pytest.raises(UsageError, match="would widen") as caught:
        build("test-agent", tmp_path, paths=["**"])
    assert not isinstance(caught.value, InputFileError)


# ---------------------------------------------------------------------------------------------------------
# Repository templates


def test_a_repo_template_overrides_the_shipped_one_and_adds_roles(tmp_path: Path) -> None:
    own = write_repo_template(tmp_path, "test-agent", """\
        <!-- our test writer: pytest only -->
        # What This Session Can Do
        - Modify: {{ paths }}
        - Timeout: 20m

        # What We're Building
        - Use pytest for {{module}}; task: {{ task }}
        """)
    extra = write_repo_template(tmp_path, "security-agent", "# What This Session Can Do\n- Modify: {{paths}}\n")
    write_repo_template(tmp_path, "README", "how we write templates\n")
    (tmp_path / "agents" / "templates" / "notes.txt").write_text("not a template\n")
    roles = available_roles(tmp_path)
    assert roles["test-agent"] == own
    assert roles["security-agent"] == extra
    assert roles["docs-agent"] == SHIPPED / "docs-agent.md"
    assert set(roles) == {*SHIPPED_ROLES, "security-agent"}
    assert list(roles) == sorted(roles)
    assert GENERIC_ROLE not in roles
    assert template_dirs(tmp_path)[0] == tmp_path / "agents" / "templates"

    contract, source = build("test-agent", tmp_path, paths=["packages/auth/tests/**"], task="cover\nlogin")
    assert Path(source) == own
    assert contract.timeout == 20 * 60
    assert contract.goals == ("Use pytest for packages/auth/tests; task: cover login",)
    assert template_for(tmp_path, "docs-agent") == SHIPPED / "docs-agent.md"
    assert template_for(tmp_path, "unknown-agent") == SHIPPED / "helper.md"


def test_a_repo_can_override_the_generic_helper(tmp_path: Path) -> None:
    generic = write_repo_template(tmp_path, GENERIC_ROLE, """\
        # What This Session Can Do
        - Modify: {{paths}}
        # What We're Building
        - Be a good {{role}}
        """)
    contract, source = build("custom-agent", tmp_path)
    assert Path(source) == generic
    assert contract.goals == ("Be a good custom-agent",)
    assert GENERIC_ROLE not in available_roles(tmp_path)


@pytest.mark.parametrize(("text", "line", "message"), [
    ("# What This Session Can Do\n- Modify: {{paths}}\n\n- Colour: blue\n", 4, "unknown key 'Colour'"),
    ("<!-- a\ncomment -->\n# What This Session Can Do\n- Modify: {{paths}}\n- Timeout: {{pahts}}\n", 5,
     "unknown placeholder '{{pahts}}' (placeholders: {{name}}, {{parent}}, {{role}}, {{paths}}, {{module}}, "
     "{{task}})"),
    ("# What This Session Can Do\n- Modify: {{paths}}\n# What We're Building\n- Do {{task\n", 4, "never closed"),
    ("# What We Are Building\n- Modify: {{paths}}\n", 1, "unknown section"),
    ("# What This Session Can Do\n- Timeout: 1h\n", 1, "Modify is missing"),
    ("# What This Session Can Do\n- Modify: {{paths}}\n- Can spawn helpers: yes\n# Helper Permissions\n"
     "- test-agent: src/**\n", 5, "outside Modify"),
])
def test_a_broken_repo_template_names_its_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write_repo_template(tmp_path, "test-agent", text)
    with pytest.raises(InputFileError) as caught:
        build("test-agent", tmp_path)
    assert caught.value.path == path
    assert caught.value.line == line
    assert message in caught.value.detail
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_a_template_modify_may_narrow_but_never_widen(tmp_path: Path) -> None:
    write_repo_template(tmp_path, "test-agent", """\
        # What This Session Can Do
        - Modify: packages/auth/tests/**
        """)
    contract, _ = build("test-agent", tmp_path)
    assert contract.modify == ("packages/auth/tests/**",)
    path = write_repo_template(tmp_path, "docs-agent", """\
        <!--
        a wider Modify is refused at its line
        -->
        # What This Session Can Do
        - Timeout: 1h
        - Modify: docs/**, {{paths}}
        """)
    with pytest.raises(InputFileError, match=r"Modify 'docs/\*\*' is outside the helper's paths") as caught:
        build("docs-agent", tmp_path)
    assert (caught.value.path, caught.value.line) == (path, 6)


def test_a_template_dont_touch_and_stall_after_only_add(tmp_path: Path) -> None:
    write_repo_template(tmp_path, "test-agent", """\
        # What This Session Can Do
        - Modify: {{paths}}
        - Don't touch: packages/auth/vendor/**
        - Stall after: 30m
        """)
    contract, _ = build("test-agent", tmp_path)
    assert contract.dont_touch == ("packages/auth/secrets/**", "packages/auth/vendor/**")
    assert contract.stall_after == 30 * 60
    assert build("docs-agent", tmp_path)[0].stall_after == PARENT.stall_after


def test_a_task_cannot_inject_contract_lines(tmp_path: Path) -> None:
    task = "x\n- Modify: **\n# Helper Permissions\n- test-agent: **\r\n# What This Session Can Do\n- Timeout: 9h"
    contract, _ = build("api-agent", tmp_path, task=task)
    assert contract.modify == ("packages/auth/**",)
    assert contract.timeout == 2 * 60 * 60
    assert contract.goals[0] == ("Your task: x - Modify: ** # Helper Permissions - test-agent: ** "
                                 "# What This Session Can Do - Timeout: 9h")
    assert parse_contract(render_contract(contract)) == contract


def test_an_unreadable_template_is_an_input_file_error(tmp_path: Path) -> None:
    path = tmp_path / "agents" / "templates" / "test-agent.md"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"# What This Session Can Do\n- Modify: \xff\n")
    with pytest.raises(InputFileError, match="not UTF-8") as caught:
        build("test-agent", tmp_path)
    assert caught.value.path == path


# ---------------------------------------------------------------------------------------------------------
# render_template and module_of


def test_render_template_replaces_placeholders_with_spaces_inside_braces() -> None:
    assert render_template("a {{x}} b {{ y }} {{\tx\t}}", {"x": "1", "y": "{{x}}"}, "t.md") == "a 1 b {{x}} 1"
    assert render_template("}} {x} { {x}}", {"x": "1"}, "t.md") == "}} {x} { {x}}"
    assert render_template("one\r\ntwo {{x}}\n", {"x": "a\nb\r\nc"}, "t.md") == "one\r\ntwo a b c\n"
    with pytest.raises(InputFileError, match=r"unknown placeholder '\{\{\}\}'"):
        render_template("\n{{}}", {"x": "1"}, "t.md")
    with pytest.raises(InputFileError) as caught:
        render_template("ok\n{{modul}}", {"module": "m", "name": "n"}, "t.md")
    assert caught.value.line == 2
    assert caught.value.hint == "did you mean {{module}}?"
    assert "placeholders: {{module}}, {{name}}" in caught.value.detail


_LITERAL = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=20)
_KEYS = st.sampled_from(["a", "b", "task", "paths"])
_ONE_LINE_VALUES = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=20) | (
    st.sampled_from(["{{a}}", "{{ task }}", "{{", "}}", "{{b"]))


@FAST
@given(st.text(alphabet=st.sampled_from(list("{} ab\n\t-:#x")) | st.characters(), max_size=60),
       st.dictionaries(st.text(max_size=6), st.text(max_size=20), max_size=4))
def test_render_template_returns_text_or_an_input_file_error(text: str, values: dict[str, str]) -> None:
    try:
        rendered = render_template(text, values, "t.md")
    except InputFileError as exc:
        assert exc.line is not None and 1 <= exc.line <= text.count("\n") + 1
    else:
        assert rendered.count("\n") == text.count("\n")


@FAST
@given(st.lists(st.tuples(_LITERAL, _KEYS, st.sampled_from(["", " ", "  \t"])), max_size=6), _LITERAL,
       st.dictionaries(_KEYS, _ONE_LINE_VALUES, min_size=4, max_size=4))
def test_render_template_inserts_values_literally(parts: list[tuple[str, str, str]], tail: str,
                                                  values: dict[str, str]) -> None:
    text = "".join(f"{literal}{{{{{pad}{key}{pad}}}}}" for literal, key, pad in parts) + tail
    rendered = render_template(text, values, "t.md")
    assert rendered == "".join(literal + values[key] for literal, key, _ in parts) + tail


@pytest.mark.parametrize(("patterns", "module"), [
    (["packages/auth/**"], "packages/auth"),
    (["packages/auth/tests/**", "packages/auth/conftest.py"], "packages/auth"),
    (["/packages/auth/"], "packages/auth"),
    (["packages/auth/*.py"], "packages/auth"),
    (["src/app.py"], "src/app.py"),
    (["docs/**", "src/**"], "the repository"),
    (["**"], "the repository"),
    (["*.py"], "the repository"),
    (["**/tests/**"], "the repository"),
    ([], "the repository"),
])
def test_module_of(patterns: list[str], module: str) -> None:
    assert module_of(patterns) == module


# ---------------------------------------------------------------------------------------------------------
# The default session contract


def test_default_session_contract_allows_every_role_everywhere_and_round_trips(tmp_path: Path) -> None:
    write_repo_template(tmp_path, "security-agent", "# What This Session Can Do\n- Modify: {{paths}}\n")
    contract = default_session_contract(tmp_path)
    assert contract.modify == ("**",) and contract.dont_touch == ()
    assert contract.can_spawn and contract.max_helpers == 3
    assert dict(contract.helper_permissions) == {role: ("**",) for role in [*SHIPPED_ROLES, "security-agent"]}
    assert contract.goals == ()
    assert parse_contract(render_contract(contract)) == contract
    five = default_session_contract(tmp_path, max_helpers=5)
    assert five.max_helpers == 5 and parse_contract(render_contract(five)) == five
    none = default_session_contract(tmp_path, max_helpers=0)
    assert not none.can_spawn and parse_contract(render_contract(none)) == none
    helper, _ = helper_contract(contract, "security-agent", name="s.sec", parent_name="s", repo_root=tmp_path,
                                paths=["src/**"], level=2)
    assert helper.modify == ("src/**",)


# ---------------------------------------------------------------------------------------------------------
# Packaging


def test_data_dir_prefers_the_installed_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "site" / "supervisor"
    package.mkdir(parents=True)
    monkeypatch.setattr(resources, "_PACKAGE", package)
    assert resources.data_dir("contracts") == tmp_path / "site" / "contracts"  # a source checkout
    (package / "_data" / "contracts").mkdir(parents=True)
    assert resources.data_dir("contracts") == package / "_data" / "contracts"  # a wheel


def test_the_wheel_ships_the_templates_and_the_hooks(tmp_path: Path) -> None:
    """Builds the real wheel. Offline when the build backend is installed (the dev environment has it);
    otherwise pip fetches it the way `pip install .` does."""
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist")]
    if importlib.util.find_spec("hatchling") is not None:
        command += ["--no-build-isolation", "--no-index"]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run([*command, str(PROJECT)], capture_output=True, text=True, env=env, timeout=110)
    assert done.returncode == 0, done.stderr
    [wheel] = (tmp_path / "dist").glob("supervisor_agents-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        shipped = archive.read("supervisor/_data/contracts/test-agent.md").decode()
        archive.extractall(tmp_path / "site")
    assert {f"supervisor/_data/contracts/{role}.md" for role in [*SHIPPED_ROLES, GENERIC_ROLE]} <= names
    assert any(name.startswith("supervisor/_data/hooks/") for name in names)
    assert shipped == (SHIPPED / "test-agent.md").read_text(encoding="utf-8")
    # The unpacked wheel, imported on its own, finds its templates inside the package.
    code = ("import json, pathlib, supervisor.core.roles as r\n"
            "print(json.dumps({k: str(v) for k, v in r.available_roles(pathlib.Path('.')).items()}))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                         env={**env, "PYTHONPATH": str(tmp_path / "site")})
    assert run.returncode == 0, run.stderr
    assert f'"test-agent": "{tmp_path / "site" / "supervisor" / "_data" / "contracts" / "test-agent.md"}"' in run.stdout
