"""An agent's CLI folder for a host, made here by the profile's own code (`Profile.prepare_state`, through
supervisor/engine/cli_folder.py) in a local staging folder, then written file by file on the host with the
link's `write` op, its paths made the host's: the staging folder's path becomes the agent's folder there
(`layout.state(name)`), and the hook command this installation writes becomes the host client's."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from supervisor.agents.base import hook_command
from supervisor.hosts.link import Link

CALL_TIMEOUT = 30.0
LIMIT = 8 << 20  # bytes: a file bigger than this is not the CLI's settings, and is not copied


def staging_folder(state_dir: Path, host: str, file_name: str) -> Path:
    """Where an agent's CLI folder for `host` is staged here (kept between launches, the engine's own)."""
    return state_dir / "hosts" / host / "agents" / file_name


def host_text(text: str, staged: Path, state: str, hook: str) -> str:
    """A staged file's text as the host reads it: its staging path → the host's, our hook command → the host's."""
    text = text.replace(str(staged), state)
    ours = hook_command()
    text = text.replace(json.dumps(ours)[1:-1], json.dumps(hook)[1:-1])  # inside JSON strings
    return text.replace(ours, hook)


def host_env(env: Mapping[str, str], staged: Path, state: str) -> dict[str, str]:
    """The launch's environment with every path into the staging folder pointing at the host's folder."""
    return {key: value.replace(str(staged), state) for key, value in env.items()}


def upload(link: Link, staged: Path, state: str, hook: str) -> int:
    """Write each regular file of `staged` at the same place under `state` on the host (its mode kept);
    links and other odd files are left out. How many were written."""
    written = 0
    for folder, folders, files in os.walk(staged, followlinks=False):
        folders[:] = [name for name in folders if not (Path(folder) / name).is_symlink()]
        for name in files:
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file() or path.stat().st_size > LIMIT:
                continue
            text = path.read_bytes().decode("utf-8", "surrogateescape")
            target = f"{state}/{path.relative_to(staged).as_posix()}"
            link.call("write", path=target, text=host_text(text, staged, state, hook),
                      mode=path.stat().st_mode & 0o777, timeout=CALL_TIMEOUT)
            written += 1
    return written
