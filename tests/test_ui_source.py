"""The dashboard's adapter to the engine tells a dead engine from a slow one, over a real Unix socket."""

from __future__ import annotations

import socket
import tempfile
import threading
from pathlib import Path

import pytest

from supervisor.paths import RepoPaths
from supervisor.ui.source import EngineDown, EngineSlow, EngineSource


def test_no_engine_is_down_and_an_engine_that_does_not_answer_is_slow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", tempfile.mkdtemp(prefix="svs-", dir="/tmp"))
    paths = RepoPaths(root=tmp_path, common_dir=tmp_path / ".git")
    source = EngineSource(paths)
    with pytest.raises(EngineDown):
        source.call("ping", timeout=1.0)
    paths.runtime_dir.mkdir(parents=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(paths.engine_socket))
        listener.listen(4)  # it takes the connection and the request, and never answers
        with pytest.raises(EngineSlow) as slow:
            source.call("merge", {"name": "api"}, timeout=0.3)
        assert slow.value.method == "merge" and "has not answered merge" in str(slow.value)
        listener.accept()[0].close()  # (the merge's connection)

        def hang_up() -> None:  # an engine that closes without an answer (killed while asked) is down
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.close()

        closer = threading.Thread(target=hang_up)
        closer.start()
        with pytest.raises(EngineDown):
            source.call("ls", timeout=5.0)
        closer.join()
    finally:
        listener.close()
