"""Gemini CLI, the real CLI at its pinned version, offline against tests/fixtures/gemini/gemini_api.py."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.conformance.conftest import FIXTURES, Run

QUESTION = "Do you trust the files in this folder?"


def gemini_home(run: Run, *, trusted: bool) -> None:
    """The user's own ~/.gemini, as a configured user has it: API-key auth, folder trust on, auto-update off, and
    the repository trusted (or not)."""
    own = run.box.home / ".gemini"
    own.mkdir(exist_ok=True)
    settings = {"security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": True}},
                "general": {"disableAutoUpdate": True, "enableAutoUpdate": False},
                "privacy": {"usageStatisticsEnabled": False}}
    (own / "settings.json").write_text(json.dumps(settings, indent=2))
    (own / "trustedFolders.json").write_text(json.dumps({str(run.box.root): "TRUST_FOLDER"} if trusted else {}))


@pytest.fixture
def gemini(real_cli: Callable[..., Run]) -> Run:
    run = real_cli("gemini", FIXTURES / "gemini" / "gemini_api.py", env={"GEMINI_API_KEY": "test-key"})
    run.box.env["GOOGLE_GEMINI_BASE_URL"] = run.api.url
    return run


def asked(run: Run, text: str) -> list[dict[str, object]]:
    return [r for r in run.api.requests() if "streamGenerateContent" in str(r.get("path"))
            and text in str(r.get("user"))]


def test_the_trust_dialog_waits_for_a_human_and_the_task_is_not_typed_into_it(gemini: Run) -> None:
    gemini_home(gemini, trusted=False)
    box = gemini.box
    box.sv("start", "g2", "--task", "say hello please")
    agent = box.wait_state("g2", "waiting", timeout=90)
    assert agent["waiting_reason"] == QUESTION
    screen = gemini.record("g2", "conformance_trust_prompt")
    assert "● 1. Trust folder" in screen
    assert not asked(gemini, "say hello please") and "say hello please" not in screen
