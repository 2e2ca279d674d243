"""Path rules: what an agent may change, as gitignore (pathspec) reads the contract's patterns."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pathspec import GitIgnoreSpec

from supervisor.core.pathrules import (
    PathRules,
    Violation,
    check_changes,
    covers,
    narrows,
    uncovered,
    validate_pattern,
)

FAST = settings(max_examples=200, deadline=None)

# --------------------------------------------------------------------------------------------------------
# validate_pattern


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("packages/auth/**", "packages/auth/**"),
        ("/docs/**", "/docs/**"),
        ("  services/**  ", "services/**"),
        ("./src", "/src"),
        ("a//b/./c/", "a/b/c/"),
        ("a,b", "a\\,b"),
        ("a\\,b", "a\\,b"),
        ("my dir/**", "my dir/**"),
        ("dossier/été/*.md", "dossier/été/*.md"),
        ("trailing\\ ", "trailing\\ "),
        ("name /.", "name\\ "),  # the space ends a name, not the pattern: kept, escaped
        ("**", "**"),
    ],
)
def test_validate_pattern_normalises(raw: str, canonical: str) -> None:
    assert validate_pattern(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("..", "'..'"),
        ("../other-repo/**", "'..'"),
        ("packages/../../etc", "'..'"),
        ("\\.\\./x", "'..'"),
        ("..\\secrets", "'..'"),
        ("//server/share", "absolute"),
        ("C:\\Users\\me", "Windows"),
        ("~/notes", "home"),
        ("a\x00b", "NUL"),
        ("a\nb", "line break"),
        ("a\\", "lone backslash"),
        ("a\\/b", "cannot escape '/'"),
        ("!keep.py", "negation"),
        ("#notes", "comment"),
        ("[abc", "not a valid pattern"),
        ("[z-a]", "not a valid pattern"),
        ("[[a]", "not a valid pattern"),
        ("/", "whole repository"),
    ],
)
def test_validate_pattern_refuses(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match="(?i)" + re.escape(reason)):
        validate_pattern(raw)


@FAST
@given(st.text(alphabet="ab/*.\\ ,!#[]?~:\t\n\x00é", max_size=12))
@example(": /.")  # a space that ends the pattern once the '.' segment is gone
def test_validate_pattern_is_idempotent_or_refuses(raw: str) -> None:
    try:
        canonical = validate_pattern(raw)
    except ValueError:
        return
    assert validate_pattern(canonical) == canonical
    assert ".." not in canonical.replace("\\", "").split("/")


# --------------------------------------------------------------------------------------------------------
# allows / explain


def test_modify_and_dont_touch() -> None:
    rules = PathRules(["packages/auth/**"], ["packages/auth/secrets/**", "services/**"])
    assert rules.allows("packages/auth/login.py")
    assert rules.allows("packages/auth/deep/er/file.ts")
    assert not rules.allows("packages/auth/secrets/key.pem")
    assert not rules.allows("packages/ui/button.tsx")
    assert not rules.allows("services/api.py")


def test_explain_names_the_pattern() -> None:
    rules = PathRules(["packages/auth/**"], ["services/**"])
    assert rules.explain("packages/auth/x.py") is None
    assert rules.explain("services/a.py") == "matches Don't touch 'services/**'"
    assert rules.explain("README.md") == "not under any Modify pattern (packages/auth/**)"


def test_dont_touch_wins_over_modify() -> None:
    rules = PathRules(["**"], ["services/**"])
    assert rules.explain("services/x") == "matches Don't touch 'services/**'"
    assert rules.allows("anything/else")


def test_leading_slash_anchors_at_the_root() -> None:
    anchored = PathRules(["/docs/**"])
    assert anchored.allows("docs/guide.md")
    assert not anchored.allows("packages/docs/guide.md")
    floating = PathRules(["docs/"])
    assert floating.allows("docs/guide.md")
    assert floating.allows("packages/docs/guide.md")


def test_dir_vs_dir_slash_vs_dir_globstar() -> None:
    plain, slash, globstar = PathRules(["src"]), PathRules(["src/"]), PathRules(["src/**"])
    for rules in (plain, slash, globstar):
        assert rules.allows("src/a.py")
        assert rules.allows("src/deep/er/a.py")
        assert not rules.allows("srcs/a.py")
    # Only the plain form also names a file called `src` itself.
    assert plain.allows("src")
    assert not slash.allows("src")
    assert not globstar.allows("src")
    # Without any other slash, `src` and `src/` match at any depth (gitignore); `src/**` only at the root.
    assert plain.allows("lib/src/a.py")
    assert slash.allows("lib/src/a.py")
    assert not globstar.allows("lib/src/a.py")


def test_globstar_crosses_directories() -> None:
    rules = PathRules(["packages/**/tests/*.py"])
    assert rules.allows("packages/tests/a.py")
    assert rules.allows("packages/auth/api/tests/a.py")
    assert not rules.allows("packages/auth/api/tests/a.ts")


def test_spaces_and_unicode_are_opaque() -> None:
    rules = PathRules(["docs/my notes/**", "données/été/*.md"], ["docs/my notes/private draft.md"])
    assert rules.allows("docs/my notes/todo list.md")
    assert not rules.allows("docs/my notes/private draft.md")
    assert rules.allows("données/été/résumé.md")
    assert not rules.allows("données/hiver/résumé.md")
    assert PathRules(["日本語/**"]).allows("日本語/ファイル.txt")


def test_paths_outside_the_repo_are_never_allowed() -> None:
    rules = PathRules(["**"])
    for path in ("", "/etc/passwd", "../x", "a/../../x", "./a"):
        assert not rules.allows(path)
        assert rules.explain(path) is not None


def test_invalid_patterns_are_refused_by_the_rules() -> None:
    with pytest.raises(ValueError, match=r"\.\."):
        PathRules(["../x"])


def test_a_lone_string_is_one_pattern() -> None:
    assert PathRules("src/**").modify == ("src/**",)


# --------------------------------------------------------------------------------------------------------
# check_changes


RULES = PathRules(["packages/auth/**"], ["services/**"])


def test_clean_changes() -> None:
    changes = [("A", "packages/auth/new.py", None), ("M", "packages/auth/old.py", None)]
    assert check_changes(RULES, changes) == []


def test_deletion_counts() -> None:
    assert check_changes(RULES, [("D", "services/db.py", None)]) == [
        Violation("services/db.py", "D", "matches Don't touch 'services/**'")
    ]


def test_rename_out_of_a_forbidden_folder_is_caught_by_its_source() -> None:
    violations = check_changes(RULES, [("R100", "packages/auth/db.py", "services/db.py")])
    assert [(v.path, v.status) for v in violations] == [("services/db.py", "R")]
    assert "matches Don't touch 'services/**'" in violations[0].reason
    assert "renamed to 'packages/auth/db.py'" in violations[0].reason


def test_rename_into_a_forbidden_folder_is_caught_by_its_destination() -> None:
    violations = check_changes(RULES, [("R", "services/db.py", "packages/auth/db.py")])
    assert [(v.path, v.status) for v in violations] == [("services/db.py", "R")]


def test_rename_with_both_sides_forbidden_reports_both() -> None:
    violations = check_changes(RULES, [("R", "services/b.py", "services/a.py")])
    assert [v.path for v in violations] == ["services/a.py", "services/b.py"]


def test_copy_checks_its_destination() -> None:
    assert check_changes(RULES, [("C", "services/copy.py", "packages/auth/a.py")])
    # Copying from a forbidden folder leaves that folder unchanged.
    assert check_changes(RULES, [("C75", "packages/auth/copy.py", "services/a.py")]) == []


def test_type_change_and_unknown_statuses_count() -> None:
    assert check_changes(RULES, [("T", "services/link", None), ("X", "services/odd", None)]) != []
    assert len(check_changes(RULES, [("T", "services/link", None), ("U", "README", None)])) == 2


def test_violation_reads_as_one_line() -> None:
    (violation,) = check_changes(RULES, [("M", "README.md", None)])
    assert str(violation) == "M README.md: not under any Modify pattern (packages/auth/**)"


# --------------------------------------------------------------------------------------------------------
# narrowing


@pytest.mark.parametrize(
    ("parent", "child"),
    [
        ("packages/auth/**", "packages/auth/**"),
        ("packages/auth/**", "/packages/auth/**"),
        ("packages/auth/**", "packages/auth/migrations/**"),
        ("packages/auth/**", "packages/auth/x.py"),
        ("packages/auth/**", "packages/auth/*.py"),
        ("packages/auth/**", "packages/auth/**/tests/"),
        ("packages/auth", "packages/auth/tests/**"),
        ("packages/auth", "packages/auth"),
        ("packages/auth/", "packages/auth/**"),
        ("packages/auth/", "packages/auth/tests/"),
        ("/packages", "packages/auth/**"),
        ("packages/*/src/**", "packages/auth/src/**"),
        ("**", "*.py"),
        ("/**", "anything/at/all"),
        ("docs", "src/docs/**"),
        ("*.py", "src/app.py"),
    ],
)
def test_covers(parent: str, child: str) -> None:
    assert covers(parent, child)


@pytest.mark.parametrize(
    ("parent", "child"),
    [
        ("packages/auth/**", "packages/**"),
        ("packages/auth/**", "packages/auth"),  # also names a file `packages/auth`
        ("packages/auth/**", "packages/authx/**"),
        ("packages/auth/**", "*.py"),
        ("packages/auth/**", "**/auth/**"),
        ("/packages/auth/**", "auth"),
        ("packages/auth/migrations/**", "packages/auth/**"),
        ("docs/", "docs"),
        ("*.py", "src/**/*.py"),  # true, but not provable by the rules: refused
    ],
)
def test_does_not_cover(parent: str, child: str) -> None:
    assert not covers(parent, child)


def test_narrows_and_uncovered() -> None:
    parent = ["packages/auth/**", "docs/auth/**"]
    assert narrows(["packages/auth/api/**", "docs/auth/x.md"], parent)
    assert not narrows(["packages/auth/api/**", "services/**"], parent)
    assert uncovered(["packages/auth/api/**", "services/**", "packages/**"], parent) == (
        "services/**",
        "packages/**",
    )


def test_narrows_with_rules_keeps_the_parents_dont_touch() -> None:
    parent = PathRules(["packages/**"], ["packages/secrets/**"])
    assert narrows(PathRules(["packages/auth/**"], ["packages/secrets/**", "x/**"]), parent)
    assert not narrows(PathRules(["packages/auth/**"]), parent)
    assert uncovered(PathRules(["packages/auth/**"]), parent) == ("Don't touch packages/secrets/**",)


# --------------------------------------------------------------------------------------------------------
# properties

SEGMENTS = ["a", "b", "src", "c d", "é", "x.py", "日本"]
GLOB_SEGMENTS = [*SEGMENTS, "*", "**", "*.py", "?", "[ab]", "s*"]

paths = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=5).map("/".join)


@st.composite
def patterns(draw: st.DrawFn) -> str:
    body = "/".join(draw(st.lists(st.sampled_from(GLOB_SEGMENTS), min_size=1, max_size=4)))
    lead = draw(st.sampled_from(["", "/"]))
    tail = draw(st.sampled_from(["", "/"]))
    return lead + body + tail


pattern_lists = st.lists(patterns(), max_size=3)


def _spec_matches(lines: list[str], path: str) -> bool:
    return GitIgnoreSpec.from_lines(lines).match_file(path)


@FAST
@given(pattern_lists, pattern_lists, paths)
def test_allows_agrees_with_pathspec(modify: list[str], dont_touch: list[str], path: str) -> None:
    rules = PathRules(modify, dont_touch)
    expected = _spec_matches(modify, path) and not _spec_matches(dont_touch, path)
    assert rules.allows(path) == expected
    assert (rules.explain(path) is None) == expected


@FAST
@given(pattern_lists, pattern_lists, paths, paths)
def test_a_rename_is_flagged_iff_either_side_is_disallowed(
    modify: list[str], dont_touch: list[str], old: str, new: str
) -> None:
    rules = PathRules(modify, dont_touch)
    flagged = check_changes(rules, [("R", new, old)]) != []
    assert flagged == (not rules.allows(old) or not rules.allows(new))


@FAST
@given(patterns(), paths, st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=2).map("/".join))
def test_pathspec_matches_whatever_lies_under_a_match(pattern: str, path: str, below: str) -> None:
    # `covers` relies on this: a pattern that matches a path matches everything under it.
    if _spec_matches([pattern], path):
        assert _spec_matches([pattern], f"{path}/{below}")


@FAST
@given(patterns(), patterns(), st.lists(paths, min_size=1, max_size=20))
def test_covers_is_sound(parent: str, child: str, samples: list[str]) -> None:
    if covers(parent, child):
        for path in samples:
            if _spec_matches([child], path):
                assert _spec_matches([parent], path), (parent, child, path)


@st.composite
def related_patterns(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    """A parent and a child sharing a literal prefix, and paths at and under that prefix."""
    prefix = draw(st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=2))
    between = draw(st.lists(st.sampled_from(GLOB_SEGMENTS), max_size=2))
    parent_tail = draw(st.sampled_from(["", "/", "/**", "/*", "/*.py", "/**/x.py", "/**/"]))
    child_tail = draw(st.sampled_from(["", "/", "/**", "/*", "/*.py", "/**/x.py"]))
    lead = draw(st.sampled_from(["", "/"]))
    parent = lead + "/".join(prefix) + parent_tail
    child = "/".join([*prefix, *between]) + child_tail
    if "/" not in child.rstrip("/"):
        child = "/" + child
    suffixes = draw(st.lists(st.lists(st.sampled_from(SEGMENTS), max_size=4), min_size=1, max_size=20))
    samples = ["/".join([*prefix, *suffix]) for suffix in suffixes]
    return parent, child, samples


@FAST
@given(related_patterns())
def test_covers_is_sound_for_related_patterns(case: tuple[str, str, list[str]]) -> None:
    parent, child, samples = case
    if covers(parent, child):
        for path in samples:
            if _spec_matches([child], path):
                assert _spec_matches([parent], path), (parent, child, path)
