"""Codex runs on a CODEX_HOME of the agent's own, seeded from the user's: providers and model, credentials
read-only, trust for the worktree of a trusted repository, the model nudge settled; the user's files untouched."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from supervisor.agents import get_profile
from supervisor.agents.codex import seed_state, settle_notices

USER_CONFIG = '''model = "gpt-5.5"
model_provider = "local"
approval_policy = "on-request"

[model_providers.local]
name = "local"
base_url = "http://127.0.0.1:9/v1"
env_key = "OPENAI_API_KEY"
wire_api = "responses"

[projects."/repo"]
trust_level = "trusted"
'''
# What `codex debug models` prints of Codex 0.171.0's catalog, cut to what the nudge depends on.
CATALOG = {"models": [
    {"slug": "gpt-6-sol", "upgrade": None, "availability_nux": None},
    {"slug": "gpt-6.1-sol", "upgrade": None, "availability_nux": {"message": "Try GPT-6.1 Sol"}},
    {"slug": "gpt-5.5", "upgrade": {"model": "gpt-6-sol", "migration_markdown": "Meet GPT-6 Sol\n"}},
]}


def fake_codex(tmp_path: Path) -> Path:
    """A `codex` that answers `debug models` as the real one does."""
    program = tmp_path / "bin" / "codex"
    program.parent.mkdir()
    program.write_text(f"#!/bin/sh\n[ \"$1 $2\" = 'debug models' ] && cat <<'EOF'\n{json.dumps(CATALOG)}\nEOF\n")
    program.chmod(0o755)
    return program


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    (home / ".codex" / "config.toml").write_text(USER_CONFIG)
    (home / ".codex" / "auth.json").write_text('{"OPENAI_API_KEY": "sk-user"}')
    return home


def test_the_agents_codex_home_is_seeded_from_the_users_and_the_users_stays_as_it_was(
        tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(fake_codex(tmp_path).parent), prepend=":")
    state = tmp_path / "state"
    state.mkdir()
    env = get_profile("codex").prepare_state(state, home, Path("/repo"), Path("/repo-worktrees/a1"), "supervisor hook")
    assert env == {"CODEX_HOME": str(state)}
    config = tomllib.loads((state / "config.toml").read_text())
    assert config["model_providers"]["local"]["base_url"] == "http://127.0.0.1:9/v1"
    assert config["approval_policy"] == "on-request"
    assert config["projects"]["/repo-worktrees/a1"] == {"trust_level": "trusted"}
    # What Codex itself writes when a human answers "Use existing model": the nudge does not come back.
    assert config["notice"]["model_migrations"] == {"gpt-5.5": "gpt-6-sol"}
    assert config["tui"]["model_availability_nux"] == {"gpt-6.1-sol": 1}
    auth = state / "auth.json"
    assert auth.read_text() == '{"OPENAI_API_KEY": "sk-user"}' and auth.stat().st_mode & 0o777 == 0o400
    assert (home / ".codex" / "config.toml").read_text() == USER_CONFIG


def test_an_untrusted_repository_gets_no_trust_and_a_new_launch_keeps_what_codex_recorded(
        tmp_path: Path, home: Path) -> None:
    (home / ".codex" / "config.toml").write_text(USER_CONFIG.replace('"trusted"', '"untrusted"'))
    state = tmp_path / "state"
    state.mkdir()
    config = seed_state(state, home, Path("/repo"), Path("/wt/a1"), program=None)
    assert "/wt/a1" not in tomllib.loads(config.read_text())["projects"]
    # The human trusted the folder and answered a notice in the agent's Codex: a relaunch keeps both, and the
    # credentials are copied again over the read-only copy.
    config.write_text(config.read_text() + '\n[projects."/wt/a1"]\ntrust_level = "trusted"\n'
                      '\n[notice]\nhide_full_access_warning = true\n')
    seed_state(state, home, Path("/repo"), Path("/wt/a1"), program=None)
    again = tomllib.loads(config.read_text())
    assert again["projects"]["/wt/a1"] == {"trust_level": "trusted"}
    assert again["notice"] == {"hide_full_access_warning": True}
    assert again["model_providers"]["local"]["wire_api"] == "responses"


def test_a_user_without_codex_config_gets_an_empty_one_and_no_credentials(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    config = seed_state(state, tmp_path / "nobody", Path("/repo"), Path("/wt"), program="/nonexistent/codex")
    assert tomllib.loads(config.read_text()) == {}
    assert not (state / "auth.json").exists()


def test_settling_the_nudge_is_done_once(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    data: dict[str, object] = {"model": "gpt-5.5"}
    assert settle_notices(config, data, CATALOG["models"])
    assert not settle_notices(config, data, CATALOG["models"])
    assert tomllib.loads(config.read_text())["notice"]["model_migrations"] == {"gpt-5.5": "gpt-6-sol"}


def test_the_model_nudge_left_over_is_waiting_with_its_question() -> None:
    """A nudge Codex still shows (a model not in the catalog supervisor read) is the human's to answer."""
    screen = (Path(__file__).parent / "fixtures" / "codex" / "screens" / "startup_model_nudge.txt").read_text()
    reading = get_profile("codex").read(screen)
    assert reading.verdict == "waiting"
    assert reading.reason and "Meet GPT-6 Sol" in reading.reason


# Screens of Codex 0.171.0 recorded by the conformance suite through the engine's own capture (160x48).
CODEX_171 = {
    "conformance_approval_prompt": ("waiting", "Would you like to run the following command?"),
    "conformance_trust_prompt": ("waiting", "Trust this folder?"),
    "conformance_model_nudge": ("waiting", "Meet GPT-6 Sol"),
    "conformance_done_turn": ("idle", None),
    "conformance_working_hung": ("working", None),
    # Submitted before Codex finished starting: `Waiting for startup · esc cancel`, no idle marker: working.
    "conformance_working_streaming": (None, None),
}


@pytest.mark.parametrize(("name", "expected"), sorted(CODEX_171.items()))
def test_codex_171_screens_as_the_engine_captures_them(name: str, expected: tuple[str | None, str | None]) -> None:
    text = (Path(__file__).parent / "fixtures" / "codex" / "screens" / f"{name}.txt").read_text()
    reading = get_profile("codex").read(text)
    assert (reading.verdict, reading.reason) == expected


def test_codex_171_approval_is_answered_with_yes_once() -> None:
    text = (Path(__file__).parent / "fixtures" / "codex" / "screens" / "conformance_approval_prompt.txt").read_text()
    assert get_profile("codex").answer_keys(text, True) == "1"
    assert get_profile("codex").answer_keys(text, False) == "3"


def test_the_model_catalog_is_read_in_a_codex_home_of_its_own_never_the_agents(
        tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`codex debug models` runs on the engine's side, unsandboxed: what the agent left in its own CODEX_HOME
    must not be where that Codex looks."""
    program = fake_codex(tmp_path)
    seen = tmp_path / "seen"
    program.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$CODEX_HOME\" > {seen}\nls -A \"$CODEX_HOME\" >> {seen}\n"
                       + program.read_text().split("\n", 1)[1])
    monkeypatch.setenv("PATH", str(program.parent), prepend=":")
    state = tmp_path / "state"
    state.mkdir()
    (state / ".env").write_text("PLANTED=1\n")  # the agent's, from an earlier run
    get_profile("codex").prepare_state(state, home, Path("/repo"), Path("/wt/a1"), "supervisor hook")
    where, *files = seen.read_text().split()
    assert Path(where) != state and not Path(where).exists()  # a scratch folder, gone afterwards
    assert sorted(files) == ["auth.json", "config.toml"]
    assert tomllib.loads((state / "config.toml").read_text())["notice"]["model_migrations"] == {"gpt-5.5": "gpt-6-sol"}
