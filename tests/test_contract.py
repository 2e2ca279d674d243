"""SESSION.md contracts: parsing (errors name the line), rendering, and deriving a helper's contract."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.core.contract import (
    DEFAULT_MAX_HELPERS,
    ROLE_NAME,
    Contract,
    HelperPermissions,
    derive_helper_contract,
    parse_contract,
    render_contract,
)
from supervisor.core.durations import MAX_SECONDS, parse_duration
from supervisor.core.pathrules import PathRules, validate_pattern
from supervisor.errors import InputFileError, UsageError

FAST = settings(max_examples=200, deadline=None)

SPEC_EXAMPLE = """\
# What This Session Can Do
- Modify: packages/auth/**
- Don't touch: services/**, packages/ui/**
- Can spawn helpers: yes
- Max helpers: 3
- Timeout: 1h
- Stall after: 10m

# Helper Permissions
- migration-agent: packages/auth/migrations/**
- test-agent: packages/auth/__tests__/**
- api-agent: packages/auth/api/**

# What We're Building
- All helpers finish their tasks
- Tests pass
- No wandering outside boundaries
"""

EXPECTED = Contract(
    modify=("packages/auth/**",),
    dont_touch=("services/**", "packages/ui/**"),
    can_spawn=True,
    max_helpers=3,
    timeout=3600.0,
    stall_after=600.0,
    helper_permissions=HelperPermissions(
        {
            "migration-agent": ("packages/auth/migrations/**",),
            "test-agent": ("packages/auth/__tests__/**",),
            "api-agent": ("packages/auth/api/**",),
        }
    ),
    goals=("All helpers finish their tasks", "Tests pass", "No wandering outside boundaries"),
)


def parse(text: str) -> Contract:
    return parse_contract(textwrap.dedent(text))


def error_of(text: str) -> InputFileError:
    with pytest.raises(InputFileError) as caught:
        parse(text)
    return caught.value


# --------------------------------------------------------------------------------------------------------
# parsing


def test_spec_example_parses() -> None:
    contract = parse_contract(SPEC_EXAMPLE)
    assert contract == EXPECTED
    assert contract.roles == ("migration-agent", "test-agent", "api-agent")
    assert contract.helper_permissions["test-agent"] == ("packages/auth/__tests__/**",)
    assert contract.rules() == PathRules(["packages/auth/**"], ["services/**", "packages/ui/**"])
    assert contract.rules().allows("packages/auth/login.py")
    assert not contract.rules().allows("services/api.py")


def test_contract_is_hashable_and_json_ready() -> None:
    assert hash(parse_contract(SPEC_EXAMPLE)) == hash(EXPECTED)
    data = EXPECTED.as_dict()
    assert data["helper_permissions"] == {
        "migration-agent": ["packages/auth/migrations/**"],
        "test-agent": ["packages/auth/__tests__/**"],
        "api-agent": ["packages/auth/api/**"],
    }


def test_sections_and_keys_are_case_insensitive_with_typographic_apostrophes() -> None:
    contract = parse(
        """\
        ## what this session can do
        - MODIFY: src/**
        - Don’t Touch: src/vendor/**
        - can spawn helpers: YES
        - max  helpers: 2
        # helper permissions
        - tests: src/tests/**
        # What We’re Building:
        - Ship it
        """
    )
    assert contract.dont_touch == ("src/vendor/**",)
    assert contract.can_spawn and contract.max_helpers == 2
    assert contract.goals == ("Ship it",)


def test_defaults_when_keys_are_left_out() -> None:
    contract = parse("# What This Session Can Do\n- Modify: src/**\n")
    assert contract == Contract(modify=("src/**",))
    assert contract.can_spawn is False and contract.max_helpers == 0
    assert contract.timeout is None and contract.stall_after is None
    spawning = parse("# What This Session Can Do\n- Modify: src/**\n- Can spawn helpers: yes\n")
    assert spawning.max_helpers == DEFAULT_MAX_HELPERS


def test_free_text_comments_and_blank_lines() -> None:
    lines = [
        "Notes before the first section are free text.",
        "<!-- a comment",
        "     over two lines -->",
        "",
        "# What This Session Can Do",
        "",
        "- Modify: src/**",
        "<!-- - Modify: commented/out -->",
        "# What We're Building",
        "Some context in a paragraph.",
        "",
        "- First goal",
        "  continued on the next line",
        "* Second goal",
        "- ",
        "More prose.",
    ]
    contract = parse_contract("\n".join(lines))
    assert contract.modify == ("src/**",)
    assert contract.goals == ("First goal continued on the next line", "Second goal")
    # The free text is the user's note to the agent: kept in place, comments and stray blank lines not.
    assert contract.notes == ("Notes before the first section are free text.",)
    assert contract.goal_notes == ((0, "Some context in a paragraph."), (0, ""), (2, "More prose."))
    text = render_contract(contract)
    assert "-->\n\nNotes before the first section are free text.\n\n# What This Session Can Do\n" in text
    assert text.endswith("# What We're Building\nSome context in a paragraph.\n\n- First goal continued on the "
                         "next line\n- Second goal\nMore prose.\n")
    assert parse_contract(text) == contract


def test_notes_keep_their_paragraphs_and_indentation_is_not_a_continuation() -> None:
    contract = parse_contract(
        "Title\n\n\n  An indented note\n# What We're Building\n- A goal\n\n   indented prose after a blank\n"
        "- Another goal\n\n\n# What This Session Can Do\n- Modify: a/**\n")
    assert contract.notes == ("Title", "", "An indented note")
    assert contract.goals == ("A goal", "Another goal")
    assert contract.goal_notes == ((1, "indented prose after a blank"),)  # no longer a continuation once kept
    assert parse_contract(render_contract(contract)) == contract


@pytest.mark.parametrize("note", ["# a header", "- an item", "* an item", "<!-- a comment", "two\nlines"])
def test_a_note_that_would_read_as_something_else_is_refused(note: str) -> None:
    with pytest.raises(ValueError, match="note"):
        Contract(modify=("a/**",), notes=(note,))
    with pytest.raises(ValueError, match="note"):
        Contract(modify=("a/**",), goal_notes=((0, note),))
    with pytest.raises(ValueError, match="place"):
        Contract(modify=("a/**",), goals=("g",), goal_notes=((2, "after two goals"),))


def test_paths_with_spaces_unicode_and_commas() -> None:
    contract = parse(
        """\
        # What This Session Can Do
        - Modify: docs/my notes/**, données/été/**, reports/q1\\, q2.md
        """
    )
    assert contract.modify == ("docs/my notes/**", "données/été/**", "reports/q1\\, q2.md")
    rules = contract.rules()
    assert rules.allows("docs/my notes/a b.md")
    assert rules.allows("données/été/résumé.md")
    assert rules.allows("reports/q1, q2.md")
    assert parse_contract(render_contract(contract)) == contract


def test_crlf_and_bom() -> None:
    text = "\ufeff# What This Session Can Do\r\n- Modify: src/**\r\n- Timeout: 90s\r\n"
    assert parse_contract(text) == Contract(modify=("src/**",), timeout=90.0)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("# What This Session Can Do\n- Modify: a/**\n# Helpers\n", 3, "unknown section 'Helpers'"),
        ("# What This Session Can Do\n- Modify: a/**\n- Modfy: b/**\n", 3, "unknown key 'Modfy'"),
        ("# What This Session Can Do\n- Modify: a/**\n\n- Modify: b/**\n", 4, "given twice (first on line 2)"),
        ("# What This Session Can Do\n- Modify: a/**\n- Can spawn helpers: maybe\n", 3, "yes or no"),
        ("# What This Session Can Do\n- Modify: a/**\n- Max helpers: -1\n", 3, "whole number"),
        ("# What This Session Can Do\n- Modify: a/**\n- Max helpers: three\n", 3, "whole number"),
        ("# What This Session Can Do\n- Modify: a/**\n- Timeout: soon\n", 3, "not a duration"),
        ("# What This Session Can Do\n- Modify: a/**\n- Stall after: 10 minutes\n", 3, "not a duration"),
        ("# What This Session Can Do\n- Modify: a/**\n- Timeout: " + "9" * 400 + "d\n", 3, "too long to be a"),
        ("# What This Session Can Do\n- Modify: a/**\n- Timeout: " + "9" * 5000 + "h\n", 3, "too long to be a"),
        ("# What This Session Can Do\n- Modify: a/**\n- Stall after: 36501d\n", 3, "at most 36500d"),
        ("# What This Session Can Do\n- Modify: a/**, ../b\n", 2, "'..'"),
        ("# What This Session Can Do\n- Modify: a/**\n- Don't touch: /, b\n", 3, "bad path pattern"),
        ("# What This Session Can Do\n- Modify: /etc/../x\n", 2, "'..'"),
        ("# What This Session Can Do\n- Can spawn helpers: no\n", 1, "Modify is missing"),
        ("# What This Session Can Do\n- Max helpers: 0\n- Modify:\n", 3, "Modify is empty"),
        ("# What This Session Can Do\n- Modify: a/**\n# Helper Permissions\n- Test_Agent: a/t/**\n", 4, "role"),
        (
            "# What This Session Can Do\n- Modify: a/**\n# Helper Permissions\n- t: a/t/**\n- t: a/u/**\n",
            5,
            "listed twice (first on line 4)",
        ),
        ("# What This Session Can Do\n- Modify: a/**\n# Helper Permissions\n- t:\n", 4, "lists no paths"),
        ("# What This Session Can Do\n- Modify: a/**\n# Helper Permissions\n- t: b/**\n", 4, "outside Modify"),
        ("# What This Session Can Do\n- Modify: a/**\nstray words\n", 3, "expected a list item"),
        ("# What This Session Can Do\n- Modify a/**\n", 2, "expected '- Key: value'"),
        ("- Modify: a/**\n# What This Session Can Do\n", 1, "before the first section"),
        ("# What This Session Can Do\n- Modify: a/**\n<!-- open\n\n", 3, "never closed"),
        ("# What This Session Can Do\n- Modify: a\n# What this session can do\n", 3, "appears twice"),
    ],
)
def test_errors_name_the_line(text: str, line: int, words: str) -> None:
    error = error_of(text)
    assert error.line == line, str(error)
    assert words in error.detail
    assert str(error).startswith(f"SESSION.md:{line}: ")


def test_missing_section_has_no_line() -> None:
    error = error_of("just some prose\n")
    assert error.line is None
    assert "Modify is missing" in error.detail


def test_unknown_key_hints_at_the_closest_key() -> None:
    assert error_of("# What This Session Can Do\n- Dont touch: a\n").hint == "did you mean 'Don't touch'?"
    assert error_of("# What This Session Can Do\n- Max helper: 2\n").hint == "did you mean 'Max helpers'?"
    assert "keys:" in (error_of("# What This Session Can Do\n- Colour: blue\n").hint or "")


def test_error_names_the_given_path() -> None:
    with pytest.raises(InputFileError) as caught:
        parse_contract("# Nope\n", path="/wt/auth/SESSION.md")
    assert str(caught.value).startswith("/wt/auth/SESSION.md:1: unknown section")


# --------------------------------------------------------------------------------------------------------
# rendering


def test_render_round_trips_the_spec_example() -> None:
    text = render_contract(EXPECTED)
    assert parse_contract(text) == EXPECTED
    assert "This file is your contract" in text
    assert "`supervisor report --waiting-for\nAGENT...`" in text  # what the deadlock trigger reads
    assert "- Don't touch: services/**, packages/ui/**" in text
    assert "- Timeout: 1h\n" in text and "- Stall after: 10m\n" in text
    assert text.index("# What This Session Can Do") < text.index("# Helper Permissions")
    assert text.index("# Helper Permissions") < text.index("# What We're Building")


def test_render_of_a_contract_without_helpers_or_goals() -> None:
    contract = Contract(modify=("src/**",), timeout=5400.5)
    text = render_contract(contract)
    assert "You may not start helpers" in text
    assert parse_contract(text) == contract


def test_contract_canonicalises_and_validates() -> None:
    assert Contract(modify=["./src", "src/"]).modify == ("/src", "src/")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Modify is empty"):
        Contract(modify=())
    with pytest.raises(ValueError, match="outside Modify"):
        Contract(modify=("a/**",), helper_permissions=HelperPermissions({"t": ["b/**"]}))
    with pytest.raises(ValueError, match="not a role name"):
        HelperPermissions({"Bad Role": ["a"]})
    with pytest.raises(ValueError, match="finite"):
        Contract(modify=("a",), timeout=float("inf"))


# --------------------------------------------------------------------------------------------------------
# helpers' contracts


def test_helper_gets_its_roles_entry_and_the_parents_dont_touch() -> None:
    helper = derive_helper_contract(EXPECTED, "test-agent", paths=None, level=2, timeout=1800)
    assert helper.modify == ("packages/auth/__tests__/**",)
    assert helper.dont_touch == EXPECTED.dont_touch
    assert helper.can_spawn is False and helper.max_helpers == 0
    assert helper.timeout == 1800.0
    assert parse_contract(render_contract(helper)) == helper


def test_paths_narrow_the_role() -> None:
    helper = derive_helper_contract(
        EXPECTED, "api-agent", paths=["packages/auth/api/routes/**", "packages/auth/api/app.py"], level=2
    )
    assert helper.modify == ("packages/auth/api/routes/**", "packages/auth/api/app.py")


def test_paths_never_widen() -> None:
    with pytest.raises(UsageError, match=r"--paths 'packages/auth/\*\*' would widen role 'api-agent'"):
        derive_helper_contract(EXPECTED, "api-agent", paths=["packages/auth/**"], level=2)
    with pytest.raises(UsageError, match=r"'\.\.'"):
        derive_helper_contract(EXPECTED, "api-agent", paths=["packages/auth/api/../../x"], level=2)
    with pytest.raises(UsageError, match="at least one"):
        derive_helper_contract(EXPECTED, "api-agent", paths=[], level=2)


def test_role_not_listed_names_the_roles_that_are() -> None:
    with pytest.raises(UsageError) as caught:
        derive_helper_contract(EXPECTED, "docs-agent", paths=None, level=2)
    assert "role 'docs-agent' is not listed" in caught.value.message
    assert "migration-agent, test-agent, api-agent" in caught.value.message


def test_level_4_is_refused() -> None:
    with pytest.raises(UsageError, match="level 4 is not allowed"):
        derive_helper_contract(EXPECTED, "test-agent", paths=None, level=4)
    with pytest.raises(UsageError, match="level 4 is not allowed"):
        derive_helper_contract(EXPECTED, "test-agent", paths=None, level=4, max_level=9)
    with pytest.raises(UsageError, match="level 3 is not allowed"):
        derive_helper_contract(EXPECTED, "test-agent", paths=None, level=3, max_level=2)


def test_a_parent_that_cannot_spawn_is_refused() -> None:
    parent = Contract(modify=("a/**",), can_spawn=False, helper_permissions=HelperPermissions({"t": ["a/t/**"]}))
    with pytest.raises(UsageError, match="Can spawn helpers: no"):
        derive_helper_contract(parent, "t", paths=None, level=2)


def test_the_last_level_never_spawns() -> None:
    middle = derive_helper_contract(
        EXPECTED,
        "api-agent",
        paths=None,
        level=2,
        can_spawn=True,
        max_helpers=2,
        helper_permissions={"routes": ["packages/auth/api/routes/**"]},
    )
    assert middle.can_spawn and middle.max_helpers == 2 and middle.roles == ("routes",)
    leaf = derive_helper_contract(middle, "routes", paths=None, level=3, can_spawn=True, max_helpers=2)
    assert leaf.can_spawn is False and leaf.max_helpers == 0
    assert leaf.modify == ("packages/auth/api/routes/**",)
    assert leaf.dont_touch == EXPECTED.dont_touch


def test_sub_helper_permissions_cannot_widen() -> None:
    with pytest.raises(UsageError, match="widen"):
        derive_helper_contract(
            EXPECTED,
            "api-agent",
            paths=None,
            level=2,
            can_spawn=True,
            max_helpers=1,
            helper_permissions={"x": ["packages/**"]},
        )


def test_core_does_not_import_textual() -> None:
    code = "import sys, supervisor.core.contract, supervisor.core.pathrules; sys.exit('textual' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --------------------------------------------------------------------------------------------------------
# properties

LINES = [
    "# What This Session Can Do",
    "# Helper Permissions",
    "# What We're Building",
    "# what we’re building",
    "# Other",
    "#",
    "- Modify: src/**",
    "- Modify: ",
    "- Modify: ../x",
    "- Modify: [",
    "- Don't touch: src/x/**, *.lock",
    "- Can spawn helpers: yes",
    "- Can spawn helpers: perhaps",
    "- Max helpers: 2",
    "- Max helpers: 99999999999999999999",
    "- Timeout: 1h30m",
    "- Timeout: " + "9" * 400,
    "- Timeout: " + "9" * 400 + "d",
    "- Stall after: 1d" + "9" * 350 + "h5m",
    "- Stall after: 0.5s",
    "- t: src/t/**",
    "- bad role: x",
    "- t2: elsewhere/**",
    "- goal",
    "  continued",
    "-",
    "* item",
    "<!--",
    "-->",
    "<!-- x -->",
    "",
    "free text",
]


# Durations as a user might mistype them: digit runs of any length (hundreds of digits too), with units.
_digits = st.integers(1, 500).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n))
duration_text = st.lists(st.tuples(_digits, st.sampled_from(["d", "h", "m", "s", ".5s", ".", ""])), min_size=1,
                         max_size=4).map(lambda parts: "".join(digits + unit for digits, unit in parts))
duration_lines = st.tuples(st.sampled_from(["- Timeout: ", "- Stall after: "]), duration_text).map("".join)


@FAST
@given(duration_text)
def test_any_duration_text_is_seconds_in_range_or_a_value_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        assert "duration" in str(error)
        return
    assert isinstance(seconds, float) and 0 <= seconds <= MAX_SECONDS


@FAST
@given(duration_text, st.sampled_from(["Timeout", "Stall after"]))
def test_any_duration_in_a_contract_parses_or_names_its_line(text: str, key: str) -> None:
    try:
        contract = parse_contract(f"# What This Session Can Do\n- Modify: a/**\n- {key}: {text}\n", "c.md")
    except InputFileError as error:
        assert error.line == 3 and str(error).startswith("c.md:3:")
        return
    assert parse_contract(render_contract(contract)) == contract


@FAST
@given(
    st.one_of(
        st.text(max_size=300),
        st.lists(st.one_of(st.sampled_from(LINES), duration_lines, st.text(max_size=30)), max_size=25)
        .map("\n".join),
    )
)
def test_any_text_gives_a_contract_or_an_input_file_error(text: str) -> None:
    try:
        contract = parse_contract(text)
    except InputFileError as error:
        assert error.line is None or 1 <= error.line <= text.count("\n") + 1
        return
    assert parse_contract(render_contract(contract)) == contract


def _canonical_or_none(text: str) -> str | None:
    try:
        return validate_pattern(text)
    except ValueError:
        return None


pattern_text = (
    st.text(alphabet="ab/*?.-_ ,\\é中\t!#[]", min_size=1, max_size=12)
    .map(_canonical_or_none)
    .filter(lambda p: p is not None)
    .map(str)
)
durations = st.none() | st.integers(0, 10**7).map(float) | st.floats(0, MAX_SECONDS, allow_nan=False)
goal_text = st.text(max_size=40).filter(lambda g: "\n" not in g and "\r" not in g and g.strip(" \t"))


def _is_note(text: str) -> bool:
    try:
        Contract(modify=("a",), notes=(text,))
    except ValueError:
        return False
    return True


note_text = st.one_of(st.just(""), st.sampled_from(["Read docs/auth.md first.", "  indented", "a - b", "1. step"]),
                      st.text(max_size=30).filter(_is_note))


@st.composite
def contracts(draw: st.DrawFn) -> Contract:
    modify = draw(st.lists(pattern_text, min_size=1, max_size=3))
    roles = draw(st.lists(st.from_regex(ROLE_NAME, fullmatch=True), max_size=3, unique=True))
    permissions = {role: draw(st.lists(st.sampled_from(modify), min_size=1, max_size=2, unique=True)) for role in roles}
    return Contract(
        modify=tuple(modify),
        dont_touch=tuple(draw(st.lists(pattern_text, max_size=3))),
        can_spawn=draw(st.booleans()),
        max_helpers=draw(st.integers(0, 10**6)),
        timeout=draw(durations),
        stall_after=draw(durations),
        helper_permissions=HelperPermissions(permissions),
        goals=(goals := tuple(draw(st.lists(goal_text, max_size=4)))),
        notes=tuple(draw(st.lists(note_text, max_size=4))),
        goal_notes=tuple(sorted(draw(st.lists(st.tuples(st.integers(0, len(goals)), note_text), max_size=5)),
                                key=lambda entry: entry[0])),
    )


@FAST
@given(contracts())
def test_every_contract_survives_render_and_parse(contract: Contract) -> None:
    text = render_contract(contract)
    assert parse_contract(text) == contract
    assert render_contract(parse_contract(text)) == text
