"""An agent's CLI folder on a host, read through the host's link: what a profile reads there to resume the agent's
conversation (supervisor/agents/reader.py). Every read stays below that folder (`root`) and follows no link at any
step, a file is read only when regular and never waited on (the host program's `cli_head`, `cli_entries`)."""

from __future__ import annotations

from supervisor.agents.reader import Entry
from supervisor.hosts.link import Link, LinkError
from supervisor.hosts.remote.tmuxlink import CALL_TIMEOUT


class LinkReader:
    def __init__(self, link: Link, root: str) -> None:
        self.link = link
        self.root = root  # the agent's CLI folder on the host: nothing outside it is read

    def head(self, path: str, limit: int) -> bytes | None:
        return self._head(path, limit, line=False)

    def first_line(self, path: str, limit: int) -> bytes | None:
        return self._head(path, limit, line=True)

    def _head(self, path: str, limit: int, *, line: bool) -> bytes | None:
        try:
            found = self.link.call("cli_head", root=self.root, path=path, limit=limit, line=line,
                                   timeout=CALL_TIMEOUT)
        except LinkError:  # no such file (or the link dropped): nothing to read
            return None
        text = found.get("text") if isinstance(found, dict) else None
        return text.encode("utf-8", "surrogateescape") if isinstance(text, str) else None

    def folders(self, folder: str) -> list[str]:
        return [entry.name for entry in self.entries(folder, self.root) if entry.folder]

    def entries(self, folder: str, within: str) -> list[Entry]:
        try:
            found = self.link.call("cli_entries", root=within, dir=folder, timeout=CALL_TIMEOUT)
        except LinkError:
            return []
        return sorted(Entry(str(item["name"]), bool(item["dir"]), float(item["mtime"]))
                      for item in (found if isinstance(found, list) else [])
                      if isinstance(item, dict) and isinstance(item.get("name"), str)
                      and isinstance(item.get("mtime"), (int, float)))
