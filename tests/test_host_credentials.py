"""What of the user's CLI logins goes to a host (`hosts.NAME.credentials: host | copy`): by default nothing, the
CLI logs in there; with `copy` the login files go, and the user's `.claude.json` never with their MCP servers or
other projects. The CLI's own `.claude.json` on a host is never replaced once it is there. Written through the
host program's own protocol (run on this machine)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from supervisor.config import HostConfig, load_config
from supervisor.errors import InputFileError
from supervisor.hosts.check import credentials
from supervisor.hosts.remote import staging
from tests.links import Heard
from tests.test_host_link import open_link

USER_CLAUDE_JSON = {"numStartups": 3, "oauthAccount": {"emailAddress": "me@example.com"},
                    "mcpServers": {"db": {"env": {"TOKEN": "secret-token"}}},
                    "projects": {"/home/me/private": {"mcpServers": {"x": {}}, "history": ["secret plan"]},
                                 "/h/far": {"hasTrustDialogAccepted": True, "mcpServers": {"y": {}}}}}


def test_credentials_default_to_the_host_and_a_bad_value_is_refused_with_its_line(tmp_path: Path) -> None:
    config = tmp_path / "supervisor.yaml"
    config.write_text("hosts:\n  box1:\n    ssh: box1\n", encoding="utf-8")
    assert load_config(tmp_path, environ={}).hosts["box1"].credentials == "host"
    config.write_text(textwrap.dedent("""\
        hosts:
          box1:
            ssh: box1
            credentials: cpy
        """), encoding="utf-8")
    with pytest.raises(InputFileError) as info:
        load_config(tmp_path, environ={})
    said = str(info.value)
    assert "supervisor.yaml:4" in said and "hosts.box1.credentials must be one of: host, copy" in said
    assert "did you mean 'copy'?" in (info.value.hint or "")
    assert "not copied" in credentials(HostConfig(name="box1", ssh="box1")).detail
    assert "copied:" in credentials(HostConfig(name="box1", ssh="box1", credentials="copy")).detail


def staged_folder(root: Path, claude_json: dict[str, object]) -> Path:
    staged = root / "staged"
    staged.mkdir(exist_ok=True)
    (staged / ".credentials.json").write_text('{"token": "login-secret"}', encoding="utf-8")
    (staged / ".claude.json").write_text(json.dumps(claude_json), encoding="utf-8")
    (staged / "settings.json").write_text('{"hooks": {}, "env": {"ANTHROPIC_API_KEY": "sk-secret"}, '
                                          '"apiKeyHelper": "pass show claude"}', encoding="utf-8")
    return staged


@pytest.mark.parametrize("mode", ["host", "copy"])
def test_what_goes_to_the_host(tmp_path: Path, mode: str) -> None:
    home = tmp_path / "hosthome"
    home.mkdir()
    link = open_link(home, Heard())
    try:
        state = str(home / "state" / "far")
        staged = staged_folder(tmp_path, USER_CLAUDE_JSON)
        staging.upload(link, staged, state, "hook", credentials=mode, worktree="/h/far")
        there = Path(state)
        settings = json.loads((there / "settings.json").read_text())
        assert ("env" in settings, "apiKeyHelper" in settings) == (mode == "copy", mode == "copy")
        assert (there / ".credentials.json").is_file() == (mode == "copy")
        copied = json.loads((there / ".claude.json").read_text())
        assert "secret-token" not in json.dumps(copied) and "secret plan" not in json.dumps(copied)
        assert copied["projects"] == {"/h/far": {"hasTrustDialogAccepted": True}}
        assert copied["numStartups"] == 3
        assert ("oauthAccount" in copied) == (mode == "copy")

        # The CLI's own file there since: a next launch leaves it as it is.
        (there / ".claude.json").write_text('{"the": "CLI\'s own"}', encoding="utf-8")
        staging.upload(link, staged_folder(tmp_path, {"numStartups": 4}), state, "hook", credentials=mode,
                       worktree="/h/far")
        assert json.loads((there / ".claude.json").read_text()) == {"the": "CLI's own"}
    finally:
        link.close()
