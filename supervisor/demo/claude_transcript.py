"""The demo agent's Claude Code session transcript, written as the real CLI writes it (2.1.332, recorded in
tests/fixtures/claude/usage/session.jsonl): `$CLAUDE_CONFIG_DIR/projects/<cwd, non-alphanumerics dashed>/<session
id>.jsonl`, one JSON object per line; a user line per prompt; an assistant message written once per content block,
each line repeating its `message.id`, `requestId` and `usage`. The hooks' `transcript_path` names this file."""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "claude-sonnet-4-5"
VERSION = "2.1.332"  # the version whose transcript this one imitates


def config_dir(home: Path) -> Path:
    configured = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(configured) if configured else home / ".claude"


def transcript_path(config: Path, cwd: Path, session_id: str) -> Path:
    return config / "projects" / re.sub(r"[^A-Za-z0-9]", "-", str(cwd)) / f"{session_id}.jsonl"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Transcript:
    config: Path
    cwd: Path
    model: str = DEFAULT_MODEL
    parent: str | None = None
    requests: int = field(default=0)

    def path(self, session_id: str) -> Path:
        return transcript_path(self.config, self.cwd, session_id)

    def user(self, session_id: str, text: str) -> None:
        self._write(session_id, {"type": "user", "message": {"role": "user", "content": text}})

    def reply(self, session_id: str, spec: dict[str, Any]) -> None:
        """One assistant message: `blocks` lines (thinking, text, tool_use, … in turn), each with the whole
        message's usage, as Claude Code writes a message once per content block."""
        usage = {"input_tokens": int(spec.get("input", 0)),
                 "cache_creation_input_tokens": int(spec.get("cache_write", 0)),
                 "cache_read_input_tokens": int(spec.get("cache_read", 0)),
                 "output_tokens": int(spec.get("output", 0)),
                 "service_tier": "standard",
                 "cache_creation": {"ephemeral_1h_input_tokens": 0,
                                    "ephemeral_5m_input_tokens": int(spec.get("cache_write", 0))}}
        message_id, request_id = f"msg_{uuid.uuid4().hex[:24]}", f"req_{uuid.uuid4().hex[:24]}"
        kinds = ("thinking", "text", "tool_use")
        for index in range(max(int(spec.get("blocks", 2)), 1)):
            kind = kinds[index % len(kinds)]
            block: dict[str, Any] = {"type": kind}
            if kind == "thinking":
                block.update(thinking="Let me think.", signature="")
            elif kind == "text":
                block["text"] = str(spec.get("text", "Done."))
            else:
                block.update(id=f"toolu_{uuid.uuid4().hex[:24]}", name="Bash", input={"command": "true"})
            self._write(session_id, {
                "message": {"id": message_id, "type": "message", "role": "assistant",
                            "model": str(spec.get("model") or self.model), "content": [block], "stop_reason": None,
                            "stop_sequence": None, "usage": usage},
                "apiBlockIndex": index, "requestId": request_id, "type": "assistant",
                **({"isSidechain": True} if spec.get("sidechain") else {})})

    def _write(self, session_id: str, entry: dict[str, Any]) -> None:
        ident = str(uuid.uuid4())
        line = {"parentUuid": self.parent, "isSidechain": False, **entry, "uuid": ident, "timestamp": _now(),
                "userType": "external", "entrypoint": "cli", "cwd": str(self.cwd), "sessionId": session_id,
                "version": VERSION}
        self.parent = ident
        path = self.path(session_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, separators=(",", ":")) + "\n")
