"""The demo agent's Claude Code behaviour: hooks read from settings files and called like the real CLI.

With `--claude`, the demo agent loads the `hooks` of `~/.claude/settings.json` (`$CLAUDE_CONFIG_DIR/settings.json`
when that is set), `.claude/settings.json`
and `.claude/settings.local.json` (in that order, all of them apply) and runs each matching command with
the event's JSON on stdin, the documented fields included (session_id, transcript_path, cwd,
hook_event_name, and the event's own). A PermissionRequest hook's decision on stdout is honoured.

Like the real CLI it keeps each conversation in `<config dir>/projects/<cwd, / and . as ->/<session id>.jsonl`
(one line per prompt here), which `--resume <id>` reads back: the resumed conversation keeps its id."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.demo.claude_transcript import Transcript, config_dir, transcript_path

_MATCHED_BY_TOOL = {"PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest"}


@dataclass
class ClaudeHooks:
    cwd: Path
    home: Path
    session_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    hooks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    transcript: Transcript | None = None  # the session transcript the hooks name (and the agent writes)

    def path(self, session_id: str) -> Path:
        """Where conversation `session_id` is kept (the hooks' `transcript_path`)."""
        return transcript_path(config_dir(self.home), self.cwd, session_id)

    def remember(self, prompt: str) -> None:
        """Keep a prompt in the conversation's file, as the real CLI keeps its transcript."""
        (self.transcript or Transcript(config_dir(self.home), self.cwd)).user(self.session_id, prompt)

    def recall(self, session_id: str) -> list[str] | None:
        """The prompts of conversation `session_id` (None: no such conversation here)."""
        try:
            lines = self.path(session_id).read_text(encoding="utf-8").splitlines()
        except OSError:
            return None
        prompts = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or record.get("type") != "user":
                continue
            content = (record.get("message") or {}).get("content")
            if isinstance(content, str):
                prompts.append(content)
        return prompts

    def newest(self) -> str | None:
        """The id of the newest conversation in this folder (what `--continue` resumes)."""
        found = sorted(self.path(self.session_id).parent.glob("*.jsonl"), key=lambda path: path.stat().st_mtime)
        return found[-1].stem if found else None

    @classmethod
    def load(cls, cwd: Path, home: Path) -> ClaudeHooks:
        config = config_dir(home)
        found = cls(cwd=cwd, home=home, transcript=Transcript(config, cwd))
        for path in (config / "settings.json", cwd / ".claude" / "settings.json",
                     cwd / ".claude" / "settings.local.json"):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            for event, entries in (data.get("hooks") or {}).items():
                if isinstance(entries, list):
                    found.hooks.setdefault(event, []).extend(e for e in entries if isinstance(e, dict))
        return found

    def fire(self, event: str, matcher_value: str | None = None, **fields: Any) -> dict[str, Any]:
        """Run the hooks of `event`; the merged JSON objects they printed."""
        payload = {"session_id": self.session_id, "transcript_path": str(self.path(self.session_id)),
                   "cwd": str(self.cwd), "permission_mode": "default", "hook_event_name": event, **fields}
        answer: dict[str, Any] = {}
        for entry in self.hooks.get(event, []):
            matcher = str(entry.get("matcher") or "")
            if matcher not in ("", "*") and matcher_value is not None and not re.fullmatch(matcher, matcher_value):
                continue
            for hook in entry.get("hooks", []):
                if hook.get("type") != "command":
                    continue
                try:
                    done = subprocess.run(hook["command"], shell=True, input=json.dumps(payload), text=True,
                                          capture_output=True, cwd=self.cwd, timeout=float(hook.get("timeout", 60)),
                                          env=os.environ.copy())
                except (subprocess.TimeoutExpired, OSError):
                    continue
                try:
                    printed = json.loads(done.stdout) if done.stdout.strip() else {}
                except ValueError:
                    printed = {}
                if isinstance(printed, dict):
                    answer.update(printed)
        return answer

    def tool(self, event: str, tool: str, tool_input: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return self.fire(event, tool, tool_name=tool, tool_input=tool_input, **fields)


def permission_decision(answer: dict[str, Any]) -> tuple[bool | None, str]:
    """(allowed, message) from a PermissionRequest hook's output; allowed is None when it did not decide."""
    output = answer.get("hookSpecificOutput")
    if not isinstance(output, dict):
        return None, ""
    decision = output.get("decision")
    if not isinstance(decision, dict):
        return None, ""
    behavior = decision.get("behavior")
    if behavior == "allow":
        return True, ""
    if behavior == "deny":
        return False, str(decision.get("message") or "denied")
    return None, ""
