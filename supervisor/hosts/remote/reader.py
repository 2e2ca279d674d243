"""An agent's CLI folder on a host, read through the host's link (`read` and `run`): what a profile reads there to
resume the agent's conversation (supervisor/agents/reader.py)."""

from __future__ import annotations

from supervisor.hosts.link import Link, LinkError
from supervisor.hosts.remote.tmuxlink import CALL_TIMEOUT


class LinkReader:
    def __init__(self, link: Link) -> None:
        self.link = link

    def head(self, path: str, limit: int) -> bytes | None:
        try:
            found = self.link.call("read", path=path, limit=limit, timeout=CALL_TIMEOUT)
        except LinkError:  # no such file (or the link dropped): nothing to read
            return None
        text = found.get("text") if isinstance(found, dict) else None
        return text.encode("utf-8", "surrogateescape") if isinstance(text, str) else None

    def folders(self, folder: str) -> list[str]:
        try:
            ran = self.link.call("run", argv=["find", folder, "-mindepth", "1", "-maxdepth", "1", "-type", "d",
                                              "-printf", "%f\\n"], timeout=CALL_TIMEOUT)
        except LinkError:
            return []
        return sorted(str(ran["stdout"]).splitlines()) if ran.get("rc") == 0 else []
